"""The Activity screen's reading side: security_audit_logs, filtered, paged by keyset,
with the acting staff member's email and what each change was made to (an order's
number, an RMA number, a SKU, a coupon code, an email) resolved once per page (or export
batch): one query per table the page's rows point at (console/labels.py).

audit.record() writes metadata as {"entity", "entity_id", "before", "after", ...details};
rows written by the auth service itself may carry other shapes, so every field
here is read defensively.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlencode

from flask import url_for
from sqlalchemy import func, select

from console.exports import CopyExport, entity_cells
from console.extensions import db
from console.filters import date_range, text, within_days
from console.labels import Label, LabelBatch
from console.links import order_url
from console.lookups import Lookups, Missing
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
    "email_template": ("email_templates.edit_template", "key"),
    "notification": ("notifications.notification_detail", "notification_id"),
}
# entity name used in audit.record() -> the table its id is a row of (its label: console/labels.py).
ENTITY_TABLES = {
    "order": ("order", "orders"),
    "return_request": ("return", "return_requests"),
    "user": ("auth", "users"),
    "staff": ("auth", "users"),
    "product": ("product", "products"),
    "product_review": ("product", "product_reviews"),
    "product_question": ("product", "product_questions"),
    "coupon": ("discount", "coupons"),
    "promotion": ("discount", "promotions"),
    "email_template": ("notification", "email_templates"),
    "notification": ("notification", "notifications"),
    "payment": ("payment", "payments"),
    "payment_refund": ("payment", "refunds"),
    "shipment": ("shipping", "shipments"),
}
# Details that hold the id of a row staff know by name: shown by that name.
DETAIL_TABLES = {
    "order_id": ("order", "orders"),
    "return_request_id": ("return", "return_requests"),
    "return_id": ("return", "return_requests"),
    "product_id": ("product", "products"),
    "variant_id": ("product", "product_variants"),
    "payment_id": ("payment", "payments"),
    "refund_id": ("payment", "refunds"),
    "coupon_id": ("discount", "coupons"),
    "promotion_id": ("discount", "promotions"),
    "template_id": ("notification", "email_templates"),
    "user_id": ("auth", "users"),
}
# Detail ids whose rows have a page of their own: (endpoint, argument).
DETAIL_PAGES = {"order_id": ("orders.order_detail", "key"), "return_request_id": ("returns.return_detail", "key"),
                "return_id": ("returns.return_detail", "key"), "product_id": ("products.product_detail", "key"),
                "coupon_id": ("coupons.coupon_detail", "key"), "promotion_id": ("promotions.promotion_detail", "key")}
# Entities shown on their order's page (they have none of their own).
ON_ORDER_PAGE = ("payment", "payment_refund", "shipment")
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
    # What the change was made to: its Label, Missing(id) when the row is gone, None when
    # the entity has no table, or its database is unavailable (the id is shown).
    subject: Label | Missing | None = None
    # Detail key -> the Label or Missing of the id it holds (DETAIL_TABLES).
    detail_labels: dict = field(default_factory=dict)

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
    def entity_label(self) -> str:
        """The entity as staff know it (order number, SKU, code, email), else its id."""
        return self.subject.text or self.entity_id if isinstance(self.subject, Label) else self.entity_id

    @property
    def entity_url(self) -> str | None:
        if isinstance(self.subject, Missing):
            return None  # nothing to open
        row = self.subject.row if isinstance(self.subject, Label) else None
        if self.entity == "staff":
            email = getattr(row, "email", None) or self.metadata.get("email")
            return url_for("staff.list_staff") + "?" + urlencode({"q": email}) if email else None
        if self.entity in ON_ORDER_PAGE:
            return order_url(row.order_id) if getattr(row, "order_id", None) else None
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

    @property
    def detail_lines(self) -> list[tuple[str, object, str | None]]:
        """(key, value, link) for each detail; an id of a known row reads as its label
        (a Label, or Missing), linked to its page where it has one."""
        lines = []
        for key, value in self.details.items():
            label = self.detail_labels.get(key)
            href = None
            if isinstance(label, Label) and key in DETAIL_PAGES:
                endpoint, argument = DETAIL_PAGES[key]
                href = url_for(endpoint, **{argument: label.id})
            lines.append((key, label if label is not None else value, href))
        return lines


def _entity_of(log: SecurityAuditLog) -> tuple[str, str]:
    meta = log.metadata_ if isinstance(log.metadata_, dict) else {}
    return str(meta.get("entity") or ""), str(meta.get("entity_id") or "")


def _detail_ids(log: SecurityAuditLog) -> list[tuple[str, str]]:
    meta = log.metadata_ if isinstance(log.metadata_, dict) else {}
    return [(key, value) for key, value in meta.items()
            if key in DETAIL_TABLES and isinstance(value, str) and value and len(value) <= 200]


def decorate(logs: list[SecurityAuditLog], lookups: Lookups) -> list[ActivityRow]:
    """For a whole page or export batch: one IN query per table the rows point at (the
    staff members and the people changed share one query on auth_db's users)."""
    labels = LabelBatch(lookups)
    labels.want("auth", "users", (log.user_id for log in logs))
    for log in logs:
        entity, entity_id = _entity_of(log)
        if entity in ENTITY_TABLES:
            labels.want(*ENTITY_TABLES[entity], [entity_id])
        for key, value in _detail_ids(log):
            labels.want(*DETAIL_TABLES[key], [value])
    labels.load()
    rows = []
    for log in logs:
        staff = labels.label("auth", "users", log.user_id)
        entity, entity_id = _entity_of(log)
        subject = labels.label(*ENTITY_TABLES[entity], entity_id) if entity in ENTITY_TABLES else None
        details = {key: labels.label(*DETAIL_TABLES[key], value) for key, value in _detail_ids(log)}
        if staff is None and log.user_id:
            staff = log.user_id  # auth_db unavailable: the id, neither "system" nor "missing"
        rows.append(ActivityRow(log, staff.row if isinstance(staff, Label) else staff, subject,
                                {k: v for k, v in details.items() if v is not None}))
    return rows


def _json(value) -> str:
    return "" if value in (None, {}) else json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)


def _export_row(row: ActivityRow, lookups: Lookups) -> list:
    staff = row.staff
    email = getattr(staff, "email", None) or (str(staff) if staff is not None else "system")
    subject = str(row.subject) if row.subject is not None else ""
    return [row.log.created_at, email, row.log.action, row.entity, row.entity_id, subject, row.log.ip_address,
            _json(row.metadata.get("before")), _json(row.metadata.get("after")),
            _json({k: v for k, v in row.metadata.items() if k not in STANDARD_KEYS}),
            row.log.user_id, row.log.id]


# The export through COPY (console/exports.py, "the COPY path"): the log's own columns, the
# labels of what it names looked up per batch as for a page.
_EXPORT_COLUMNS = tuple(SecurityAuditLog.__table__.c[name] for name in ("id", "created_at", "user_id", "action",
                                                                         "ip_address", "metadata_"))

ACTIVITY = ListScreen(
    name="activity", noun="changes", home="auth", title="Activity", export_endpoint="export_activity",
    filters=ActivityFilters, statement=_statement, id_column=SecurityAuditLog.id,
    sorts=(Sort("time", SecurityAuditLog.created_at, "Time"),
           Sort("action", SecurityAuditLog.action, "Action", descending=False)),
    default_sort="-time", decorate=decorate,
    export_header=("time", "staff_email", "action", "entity", "entity_id", "entity_label", "ip_address", "before", "after",
                   "details", "staff_user_id", "log_id"),
    export_row=_export_row,
    export_fast=CopyExport(_EXPORT_COLUMNS, entity_cells(_EXPORT_COLUMNS, decorate, _export_row)),
)
