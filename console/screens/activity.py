"""The Activity screen's reading side: security_audit_logs, filtered, paged by keyset,
with the acting staff member's email resolved once per page (or export batch).

audit.record() writes metadata as {"entity", "entity_id", "before", "after", ...details};
rows written by the auth service itself may carry other shapes, so every field
here is read defensively.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from flask import url_for
from sqlalchemy import func, select

from console.extensions import db
from console.filters import date_range, text, within_days
from console.lookups import Lookups, fetch_in, target_or_missing
from console.models.auth import SecurityAuditLog, User
from console.models.types import json_text
from console.screens.lists import ListScreen, Sort

# entity name used in audit.record() -> (endpoint of the page that shows it, the
# endpoint's argument for the entity id). Entities without a page of their own are
# absent; every endpoint here exists (tests/test_links.py).
ENTITY_PAGES = {
    "order": ("orders.order_detail", "key"),
    "return_request": ("returns.return_detail", "key"),
    "user": ("customers.customer_detail", "user_id"),
    "product": ("products.product_detail", "key"),
    "coupon": ("coupons.coupon_detail", "key"),
    "promotion": ("promotions.promotion_detail", "key"),
}
STANDARD_KEYS = ("entity", "entity_id", "before", "after")
SUMMARY_LIMIT = 160


@dataclass
class ActivityFilters:
    staff: str = ""
    action: str = ""
    entity: str = ""
    entity_id: str = ""
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def parse(cls, args: Mapping) -> tuple[ActivityFilters, list[str]]:
        """Filters from a query string, plus a message for each value that can't be used."""
        errors: list[str] = []
        date_from, date_to = date_range(args, ("from", "From"), ("to", "To"), errors)
        return cls(staff=text(args, "staff", errors), action=text(args, "action", errors),
                   entity=text(args, "entity", errors), entity_id=text(args, "entity_id", errors),
                   date_from=date_from, date_to=date_to), errors

    @property
    def active(self) -> bool:
        return bool(self.as_args())

    def as_args(self) -> dict:
        args = {"staff": self.staff, "action": self.action, "entity": self.entity, "entity_id": self.entity_id,
                "from": self.date_from.isoformat() if self.date_from else "",
                "to": self.date_to.isoformat() if self.date_to else ""}
        return {k: v for k, v in args.items() if v}


def _statement(filters: ActivityFilters, lookups: Lookups | None = None):
    log = SecurityAuditLog
    stmt = select(log)
    if filters.staff:
        # users and security_audit_logs share auth_db, so this stays one query.
        emails = select(User.id).where(func.lower(User.email).contains(filters.staff.lower(), autoescape=True))
        stmt = stmt.where(log.user_id.in_(emails))
    if filters.action:
        stmt = stmt.where(log.action.startswith(filters.action, autoescape=True))
    if filters.entity:
        stmt = stmt.where(log.metadata_["entity"].as_string() == filters.entity)
    if filters.entity_id:
        stmt = stmt.where(json_text(log.metadata_, "entity_id") == filters.entity_id)
    return within_days(stmt, log.created_at, filters.date_from, filters.date_to)


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= SUMMARY_LIMIT else text[:SUMMARY_LIMIT - 1] + "…"


@dataclass
class Change:
    key: str
    before: str | None
    after: str | None


@dataclass
class ActivityRow:
    log: SecurityAuditLog
    staff: object  # the User, Missing(id), or None for the system

    @property
    def metadata(self) -> dict:
        return self.log.metadata_ if isinstance(self.log.metadata_, dict) else {}

    @property
    def entity(self) -> str:
        return str(self.metadata.get("entity") or "")

    @property
    def entity_id(self) -> str:
        return str(self.metadata.get("entity_id") or "")

    @property
    def entity_url(self) -> str | None:
        if self.entity == "staff" and self.metadata.get("email"):
            return url_for("staff.list_staff") + "?" + urlencode({"q": self.metadata["email"]})
        page = ENTITY_PAGES.get(self.entity)
        if not page or not self.entity_id:
            return None
        endpoint, argument = page
        return url_for(endpoint, **{argument: self.entity_id})

    @property
    def changes(self) -> list[Change]:
        """before/after side by side, key by key; unchanged keys are left out."""
        before, after = self.metadata.get("before"), self.metadata.get("after")
        if before is None and after is None:
            return []
        # A record with only one side (something created, or removed) still reads key by key.
        if isinstance(before, dict) and after is None:
            after = {}
        elif isinstance(after, dict) and before is None:
            before = {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            return [Change("", None if before is None else _short(before), None if after is None else _short(after))]
        changes = []
        for key in dict.fromkeys([*before, *after]):
            if before.get(key) != after.get(key):
                changes.append(Change(key, _short(before[key]) if key in before else None,
                                      _short(after[key]) if key in after else None))
        return changes

    @property
    def details(self) -> dict:
        return {k: _short(v) for k, v in self.metadata.items() if k not in STANDARD_KEYS and v not in (None, "")}


def decorate(logs: list[SecurityAuditLog], lookups: Lookups) -> list[ActivityRow]:
    """One IN query for the staff members of a whole page or batch."""
    users = lookups.run("auth", lambda: {u.id: u for u in fetch_in("auth", "users", "id", (log.user_id for log in logs))},
                        {})
    return [ActivityRow(log, target_or_missing(users, log.user_id)) for log in logs]


def _json(value) -> str:
    return "" if value in (None, {}) else json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)


def _export_row(row: ActivityRow, lookups: Lookups) -> list:
    staff = row.staff
    email = getattr(staff, "email", None) or (str(staff) if staff is not None else "system")
    return [row.log.created_at, email, row.log.action, row.entity, row.entity_id, row.log.ip_address,
            _json(row.metadata.get("before")), _json(row.metadata.get("after")),
            _json({k: v for k, v in row.metadata.items() if k not in STANDARD_KEYS}),
            row.log.user_id, row.log.id]


ACTIVITY = ListScreen(
    name="activity", noun="changes", home="auth", title="Activity", export_endpoint="export_activity",
    filters=ActivityFilters, statement=_statement, id_column=SecurityAuditLog.id,
    sorts=(Sort("time", SecurityAuditLog.created_at, "Time"),
           Sort("action", SecurityAuditLog.action, "Action", descending=False)),
    default_sort="-time", decorate=decorate,
    export_header=("time", "staff_email", "action", "entity", "entity_id", "ip_address", "before", "after",
                   "details", "staff_user_id", "log_id"),
    export_row=_export_row,
)
