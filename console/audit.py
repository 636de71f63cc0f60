"""The audit trail: one helper that every workflow calls for every state change."""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from console.extensions import db
from console.models.auth import SecurityAuditLog


def _plain(value):
    """JSON-safe copy: Decimal and datetimes become strings, nothing is lost."""
    return json.loads(json.dumps(value, default=lambda v: str(v) if isinstance(v, (Decimal, datetime, date)) else repr(v)))


def record(actor, action: str, entity: str, entity_id: str | None, *, before=None, after=None,
           **details) -> SecurityAuditLog:
    """Add a security_audit_logs row to the session (the caller commits).

    ``actor`` is the staff user (anything with ``id`` and optionally ``ip``);
    ``action`` is ``<entity>.<verb>`` such as ``order.cancelled``.
    """
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
