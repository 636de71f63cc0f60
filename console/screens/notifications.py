"""The notification log: notifications (notification_db) with their provider log,
filtered, sorted and exported, and one notification's page.

Rows live in notification_db with their template and provider log (the same
database); the customer's email comes from auth_db, one IN query per page. A
notification's page also names the order or return it was about, read from the key
the console's workflows (and the demo data) put in its metadata.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace

from sqlalchemy import func, or_, select

from console.email_templates import CREDENTIAL_HIDDEN, CREDENTIAL_TEMPLATES, is_credential_email, shown_subject
from console.exports import CopyExport, Side
from console.extensions import db
from console.filters import (QueryFilters, choice, customer_ids, customer_text, date_range, text, where_equal,
                             within_days)
from console.lookups import Lookups, Missing, database, fetch_in, resolve
from console.models.auth import User
from console.models.notification import (
    NOTIFICATION_STATUSES, NOTIFICATION_TYPES, EmailTemplate, Notification, NotificationLog)
from console.models.order import Order
from console.models.returns import ReturnRequest
from console.models.user import UserProfile
from console.screens.keyset import capped_count
from console.screens.lists import ListScreen, Sort, unless_down
from console.workflows import notifications as flow
from console.workflows.notifications import RESENDABLE, is_transactional, resendable

STATUSES = NOTIFICATION_STATUSES
# "failed": failed or bounced, what the dashboard's figure counts.
STATUS_CHOICES = (*STATUSES, "failed")
STATUS_LABELS = {"failed": "failed or bounced"}
TYPES = NOTIFICATION_TYPES

# What a workflow's metadata key says the message was about (console/workflows/*.py and
# the demo data): order_cancelled:<order id>, order:<order id>:<template>,
# return:<return id>:<status>, refund:<refund id>.
ORDER_KEY = re.compile(r"^(?:order_cancelled|order_shipped|order):([^:]+)")
RETURN_KEY = re.compile(r"^return:([^:]+):")
REFUND_KEY = re.compile(r"^refund:([^:]+)$")


@dataclass
class NotificationFilters(QueryFilters):
    customer: str = ""
    type: str = ""
    template: str = ""
    subject: str = ""
    status: str = ""
    provider: str = ""
    error: str = ""
    created_from: date | None = None
    created_to: date | None = None

    FIELDS = ("customer", "type", "template", "subject", "status", "provider", "error", "created_from",
              "created_to")

    @classmethod
    def parse(cls, args) -> tuple[NotificationFilters, list[str]]:
        errors: list[str] = []
        f = cls(customer=customer_text(args, errors), template=text(args, "template", errors),
                subject=text(args, "subject", errors), provider=text(args, "provider", errors),
                error=text(args, "error", errors))
        f.type = choice(args, "type", TYPES, "Type", errors)
        status = (args.get("status") or "").strip()
        if status and status not in STATUS_CHOICES:
            errors.append(f"Status “{status[:40]}” is not one of: {', '.join(STATUSES)}, or failed "
                          "(failed or bounced).")
        else:
            f.status = status
        f.created_from, f.created_to = date_range(args, ("created_from", "Created from"),
                                                  ("created_to", "Created to"), errors)
        for name in ("customer", "template", "subject", "provider", "error"):
            if "\x00" in getattr(f, name):
                errors.append(f"The {name} filter contains a NUL character: type plain text.")
                setattr(f, name, "")
        return f, errors


def notifications_query(f: NotificationFilters, lookups=None):
    """The select of notifications matching ``f`` (not ordered). The customer filter is
    resolved to ids in auth_db/user_db first; everything else stays in notification_db."""
    stmt = select(Notification)
    if f.customer:
        stmt = stmt.where(Notification.user_id.in_(customer_ids(f.customer)))
    stmt = where_equal(stmt, (Notification.type, f.type))
    if f.status == "failed":
        stmt = stmt.where(Notification.status.in_(RESENDABLE))
    else:
        stmt = where_equal(stmt, (Notification.status, f.status))
    if f.template:
        stmt = stmt.where(Notification.template_id.in_(select(EmailTemplate.id).where(EmailTemplate.name == f.template)))
    if f.subject:
        # Staff sign-in emails never match: their subjects are not shown, so they may not
        # be probed by filtering either.
        stmt = stmt.where(func.lower(Notification.subject).startswith(f.subject.lower(), autoescape=True),
                          or_(Notification.template_id.is_(None), Notification.template_id.not_in(
                              select(EmailTemplate.id).where(EmailTemplate.name.in_(CREDENTIAL_TEMPLATES)))))
    if f.provider:
        stmt = stmt.where(Notification.id.in_(select(NotificationLog.notification_id)
                                              .where(NotificationLog.provider == f.provider)))
    if f.error:
        # Only failed and bounced messages have an error: the log's status index narrows it.
        stmt = stmt.where(Notification.id.in_(select(NotificationLog.notification_id).where(
            NotificationLog.status.in_(RESENDABLE),
            func.lower(NotificationLog.error).contains(f.error.lower(), autoescape=True))))
    return within_days(stmt, Notification.created_at, f.created_from, f.created_to)


# --- rows ------------------------------------------------------------------------------------

@dataclass
class NotificationRow:
    notification: Notification
    account: object  # auth User, Missing(id) or None
    template_name: str
    log: NotificationLog | None

    @property
    def meta(self) -> dict:
        meta = self.notification.metadata_
        return meta if isinstance(meta, dict) else {}

    @property
    def email(self) -> str:
        if isinstance(self.account, User):
            return self.account.email or ""
        return ""

    @property
    def subject(self) -> str | None:
        return shown_subject(self.notification)

    @property
    def error(self) -> str:
        """The provider's error, or why the console could not write the email at all."""
        if self.log is not None and self.log.error:
            return self.log.error
        return str(self.meta.get("render_error") or "")

    @property
    def is_test(self) -> bool:
        return bool(self.meta.get("test"))

    @property
    def resend_of(self) -> str:
        return str(self.meta.get("resend_of") or "")

    @property
    def resent_as(self) -> str:
        return str(self.meta.get("resent_as") or "")

    @property
    def resendable(self) -> bool:
        return (self.notification.status in RESENDABLE and not self.resent_as
                and flow.unsendable_reason(self.notification) is None)

    @property
    def transactional(self) -> bool:
        return is_transactional(self.template_name)


def _template_names(notifications: list[Notification]) -> dict[str, str]:
    rows = fetch_in("notification", "email_templates", "id", (n.template_id for n in notifications))
    return {t.id: t.name for t in rows}


def _logs(notifications: list[Notification]) -> dict[str, NotificationLog]:
    rows = fetch_in("notification", "notification_logs", "notification_id", (n.id for n in notifications))
    return {log.notification_id: log for log in rows}


def decorate(notifications: list[Notification], lookups: Lookups) -> list[NotificationRow]:
    """Template name and provider log (notification_db), customer email (auth_db): one
    query per table for the page."""
    names = lookups.run("notification", lambda: _template_names(notifications), {})
    logs = lookups.run("notification", lambda: _logs(notifications), {})
    accounts = lookups.run("auth", lambda: resolve("notification.notifications.user_id",
                                                   [n.user_id for n in notifications]), {})
    rows = []
    for n in notifications:
        meta = n.metadata_ if isinstance(n.metadata_, dict) else {}
        account = None if lookups.down("auth") or not n.user_id else accounts.get(n.user_id) or Missing(n.user_id)
        rows.append(NotificationRow(n, account, str(meta.get("template") or names.get(n.template_id or "", "")),
                                    logs.get(n.id)))
    return rows


def _export_row(row: NotificationRow, lookups: Lookups) -> list:
    n, log = row.notification, row.log
    return [n.created_at, unless_down(lookups, "auth", row.email), n.type, row.template_name, row.subject, n.status,
            log.provider if log else "", log.provider_message_id if log else "", row.error,
            n.sent_at, n.delivered_at, "yes" if row.is_test else "", row.resend_of, row.resent_as, n.id, n.user_id]


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as _export_row ---

_NOTIFICATIONS, _TEMPLATES, _LOGS, _USERS = (Notification.__table__.c, EmailTemplate.__table__.c,
                                             NotificationLog.__table__.c, User.__table__.c)
_EXPORT_COLUMNS = (
    *(_NOTIFICATIONS[name] for name in ("created_at", "type", "subject", "status", "sent_at", "delivered_at", "id",
                                        "user_id", "metadata_")),
    # The template lives in the same database: its name comes with the row.
    select(_TEMPLATES.name).where(_TEMPLATES.id == _NOTIFICATIONS.template_id).scalar_subquery().label("template"))
_EXPORT_SIDES = {
    # The provider's log: a lookup of its own (a notification may have several; the list
    # shows the last one read, as _logs keeps it).
    "logs": Side("notification", lambda batch: [row[6] for row in batch], lambda ids, among: select(
        _LOGS.notification_id, _LOGS.provider, _LOGS.provider_message_id, _LOGS.error)
        .where(among(_LOGS.notification_id, ids))),
    "customers": Side("auth", lambda batch: [row[7] for row in batch], lambda ids, among: select(
        _USERS.id, _USERS.email).where(among(_USERS.id, ids)), kept=True),
}


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    logs, customers = found["logs"], found["customers"]
    no_email = "unavailable" if lookups.down("auth") else ""
    rows = []
    for created, kind, subject, status, sent, delivered, notification_id, user_id, meta, template in batch:
        meta = meta if isinstance(meta, dict) else {}
        log = logs.get(notification_id)
        log = log[-1] if log else None
        customer = customers.get(user_id)
        email = (customer[0][1] or "") if customer else no_email
        rows.append([
            created, email, kind, str(meta.get("template") or template or ""),
            shown_subject(SimpleNamespace(metadata_=meta, subject=subject)), status,
            log[1] if log else "", log[2] if log else "",
            log[3] if log is not None and log[3] else str(meta.get("render_error") or ""),
            sent, delivered, "yes" if meta.get("test") else "", str(meta.get("resend_of") or ""),
            str(meta.get("resent_as") or ""), notification_id, user_id])
    return rows


NOTIFICATIONS = ListScreen(
    name="notifications", noun="notifications", home="notification",
    filters=NotificationFilters, statement=notifications_query, id_column=Notification.id,
    sorts=(Sort("created", Notification.created_at, "Created"),
           Sort("status", Notification.status, "Status", descending=False),
           Sort("subject", Notification.subject, "Subject", descending=False)),
    default_sort="-created", decorate=decorate,
    export_header=("created_at", "customer_email", "type", "template", "subject", "status", "provider",
                   "provider_message_id", "error", "sent_at", "delivered_at", "test", "resend_of", "resent_as",
                   "notification_id", "user_id"),
    export_row=_export_row, export_binds=("auth",),
    export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells, _EXPORT_SIDES),
)


def template_names() -> list[str]:
    """The template names for the filter's choices (a short table)."""
    with database("notification"):
        return [n for n in db.session.scalars(select(EmailTemplate.name).order_by(EmailTemplate.name).limit(500)) if n]


def providers() -> list[str]:
    with database("notification"):
        return [p for p in db.session.scalars(select(NotificationLog.provider).distinct()
                                              .order_by(NotificationLog.provider).limit(50)) if p]


# --- resend all ------------------------------------------------------------------------------

@dataclass
class ResendAllPlan:
    ids: list[str]
    more: bool  # more than the limit match: the oldest are resent first


def resend_all_plan(filters: NotificationFilters, limit: int | None = None) -> ResendAllPlan:
    """The failed or bounced, not yet resent notifications the filters select, oldest
    first, at most ``limit`` (and whether there are more)."""
    limit = limit or flow.RESEND_ALL_LIMIT
    stmt = resendable(notifications_query(filters)).with_only_columns(Notification.id)
    with database("notification"):
        ids = list(db.session.scalars(stmt.order_by(Notification.created_at, Notification.id).limit(limit + 1)))
    return ResendAllPlan(ids[:limit], len(ids) > limit)


def resend_all_count(filters: NotificationFilters, limit: int | None = None) -> tuple[int, bool]:
    """How many a Resend all would queue, counted up to ``limit`` (and whether more)."""
    with database("notification"):
        return capped_count(resendable(notifications_query(filters)), cap=limit or flow.RESEND_ALL_LIMIT)


# --- one notification ------------------------------------------------------------------------

@dataclass
class NotificationPage:
    row: NotificationRow
    profile: UserProfile | None
    html: str | None  # the HTML body as queued (kept in the metadata), if any
    body: str | None = None  # the text body as queued
    hidden: str = ""  # why the bodies are not shown (a one-time sign-in link)
    order: Order | None = None
    return_request: ReturnRequest | None = None
    original: Notification | None = None  # what this one resends
    resends: list[Notification] = field(default_factory=list)  # what resent this one, in order
    unavailable: set[str] = field(default_factory=set)


def _about(key: str) -> tuple[str | None, str | None, str | None]:
    """(order id, return id, refund id) a workflow's metadata key names."""
    if m := ORDER_KEY.match(key):
        return m.group(1), None, None
    if m := RETURN_KEY.match(key):
        return None, m.group(1), None
    if m := REFUND_KEY.match(key):
        return None, None, m.group(1)
    return None, None, None


def _one(lookups: Lookups, bind_key: str, table: str, column: str, value):
    if not value:
        return None
    return next(iter(lookups.run(bind_key, lambda: fetch_in(bind_key, table, column, [value]), [])), None)


def notification_page(notification_id: str) -> NotificationPage | None:
    """Everything the notification's page shows, each other database on its own."""
    if not notification_id or len(notification_id) > 64 or "\x00" in notification_id:
        return None
    with database("notification"):
        notification = db.session.get(Notification, notification_id)
        if notification is None:
            return None
        meta = notification.metadata_ if isinstance(notification.metadata_, dict) else {}
        original = db.session.get(Notification, meta["resend_of"]) if meta.get("resend_of") else None
        resends, seen, follow = [], {notification.id}, meta.get("resent_as")
        while follow and follow not in seen and len(resends) < 20:
            seen.add(follow)
            nxt = db.session.get(Notification, follow)
            if nxt is None:
                break
            resends.append(nxt)
            follow = (nxt.metadata_ or {}).get("resent_as") if isinstance(nxt.metadata_, dict) else None
        # A resend's key names its original: follow resend_of up to the first message.
        root, hops = original if original is not None else notification, 0
        while hops < 20 and isinstance(root.metadata_, dict) and root.metadata_.get("resend_of"):
            parent = db.session.get(Notification, root.metadata_["resend_of"])
            if parent is None:
                break
            root, hops = parent, hops + 1
        key = str((root.metadata_ if isinstance(root.metadata_, dict) else {}).get("key") or "")
    lookups = Lookups()
    [row] = decorate([notification], lookups)
    profile = _one(lookups, "user", "user_profiles", "user_id", notification.user_id)
    order_id, return_id, refund_id = _about(key)
    if refund_id:
        refund = _one(lookups, "payment", "refunds", "id", refund_id)
        order_id = refund.order_id if refund is not None else None
    order = _one(lookups, "order", "orders", "id", order_id)
    request = _one(lookups, "return", "return_requests", "id", return_id)
    html = meta.get("body_html")
    hidden = CREDENTIAL_HIDDEN if is_credential_email(notification) else ""
    return NotificationPage(row=row, profile=profile, html=html if isinstance(html, str) and not hidden else None,
                            body=None if hidden else notification.body, hidden=hidden, order=order,
                            return_request=request, original=original, resends=resends,
                            unavailable=lookups.unavailable)
