"""The audit trail: one helper that every workflow calls for every state change."""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import insert

from console.drift import require_writes
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.types import new_id, utcnow


def _plain(value):
    """JSON-safe copy: Decimal and datetimes become strings, nothing is lost."""
    return json.loads(json.dumps(value, default=lambda v: str(v) if isinstance(v, (Decimal, datetime, date)) else repr(v)))


# What record() writes, for a workflow's up-front drift check (console/drift.py).
AUDIT_ROW = (SecurityAuditLog,)


def record(actor, action: str, entity: str, entity_id: str | None, *, before=None, after=None,
           **details) -> SecurityAuditLog:
    """Add a security_audit_logs row to the session (the caller commits).

    ``actor`` is the staff user (anything with ``id`` and optionally ``ip``);
    ``action`` is ``<entity>.<verb>`` such as ``order.cancelled``.
    """
    require_writes(AUDIT_ROW)  # a change whose trail can't be written is not made
    metadata = {"entity": entity, "entity_id": entity_id, "before": before, "after": after}
    metadata.update(details)
    row = SecurityAuditLog(
        user_id=getattr(actor, "id", None),
        action=action,
        ip_address=getattr(actor, "ip", None),
        metadata_=_plain(metadata),
    )
    db.session.add(row)
    return row


def record_many(actor, action: str, entries: list[dict]) -> int:
    """Many rows of one ``action`` in a few batched INSERTs (a bulk stock update writes
    one per product). Each entry holds ``entity``, ``entity_id``, ``before``, ``after``
    and its details, as record() stores them; the caller commits."""
    if not entries:
        return 0
    require_writes(AUDIT_ROW)
    now = utcnow()
    rows = [{"id": new_id(), "user_id": getattr(actor, "id", None), "action": action,
             "ip_address": getattr(actor, "ip", None), "metadata_": _plain(entry), "created_at": now}
            for entry in entries]
    db.session.execute(insert(SecurityAuditLog), rows)
    return len(rows)
