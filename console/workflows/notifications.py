"""Resending notifications that failed or bounced (notification_db).

A resend is a new PENDING notification with the same content, for the notification
service to send again; the original and the resend name each other in their metadata
(``resent_as`` / ``resend_of``). A notification is resent once: the original's row is
locked while it is checked and marked, so a double click or two staff at once queue
one resend (the second is shown the first). A resend that fails in its turn can be
resent itself.

Preferences: order and return emails (the workflows' templates) are transactional and
resent whatever the customer chose. Any other message is not resent to a customer who
turned its channel off for marketing or for that template, in notification_db's
``notification_preferences`` or user_db's ``user_notification_preferences``.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from console import audit
from console.email_templates import TRANSACTIONAL, is_credential_email
from console.extensions import db
from console.lookups import chunks, database
from console.models.notification import (NOTIFICATION_STATUSES, NOTIFICATION_TYPES, EmailTemplate, Notification,
                                         NotificationPreference)
from console.models.types import new_id, utcnow
from console.models.user import UserNotificationPreference
from console.workflows import WorkflowError

RESENDABLE = (NOTIFICATION_STATUSES.FAILED, NOTIFICATION_STATUSES.BOUNCED)
RESEND_ALL_LIMIT = 1000
BATCH = 100
# notification type -> (notification_preferences column, user_notification_preferences channel)
CHANNELS = {NOTIFICATION_TYPES.EMAIL: ("email_enabled", "email"), NOTIFICATION_TYPES.SMS: ("sms_enabled", "sms"),
            NOTIFICATION_TYPES.PUSH: ("push_enabled", "push")}
# The kind of message preferences name for anything that is not transactional.
NON_TRANSACTIONAL_KIND = "marketing"


def template_name_of(notification: Notification, names: dict[str, str] | None = None) -> str:
    meta = notification.metadata_ if isinstance(notification.metadata_, dict) else {}
    return str(meta.get("template") or (names or {}).get(notification.template_id or "", "") or "")


def is_transactional(template_name: str) -> bool:
    return template_name in TRANSACTIONAL


def _template_names(notifications: list[Notification]) -> dict[str, str]:
    ids = {n.template_id for n in notifications if n.template_id and not (n.metadata_ or {}).get("template")}
    if not ids:
        return {}
    return dict(db.session.execute(select(EmailTemplate.id, EmailTemplate.name).where(EmailTemplate.id.in_(ids))))


def unsendable_reason(notification: Notification) -> str | None:
    """Why a notification can't be resent whatever its status, or None.

    A staff sign-in email is never resent (its link may have been replaced; the member
    asks for a new one), and an email the console never wrote (its template could not
    be rendered) has nothing to send."""
    meta = notification.metadata_ if isinstance(notification.metadata_, dict) else {}
    if is_credential_email(notification):
        return ("A staff sign-in email is not resent: resend the invitation from the Staff screen, or the member "
                "uses “Forgot password”.")
    if meta.get("render_error"):
        return ("This email was never written (its template could not be rendered), so there is nothing to "
                "resend: mend the template, then repeat the action that sends it.")
    return None


def preference_refusals(notifications: list[Notification]) -> dict[str, str]:
    """{notification id: why the customer's preferences forbid resending it} for those
    that may not be resent; one query per database for the whole list."""
    with database("notification"):
        names = _template_names(notifications)
    wanted = {n.id: n for n in notifications
              if n.user_id and not is_transactional(template_name_of(n, names))}
    if not wanted:
        return {}
    users = {n.user_id for n in wanted.values()}
    off: dict[tuple[str, str, str], str] = {}  # (user, channel, kind) -> where it was turned off
    with database("notification"):
        for chunk in chunks(users):
            for pref in db.session.scalars(select(NotificationPreference).where(NotificationPreference.user_id.in_(chunk))):
                for kind_type, (column, _) in CHANNELS.items():
                    if getattr(pref, column) is False:
                        off[(pref.user_id, kind_type, pref.notification_type or "")] = "notification preferences"
    with database("user"):
        for chunk in chunks(users):
            for pref in db.session.scalars(select(UserNotificationPreference)
                                           .where(UserNotificationPreference.user_id.in_(chunk))):
                for kind_type, (_, channel) in CHANNELS.items():
                    if (pref.channel or "").lower() == channel and pref.enabled is False:
                        off.setdefault((pref.user_id, kind_type, pref.category or ""), "account preferences")
    refusals = {}
    for notification in wanted.values():
        channel = (notification.type or NOTIFICATION_TYPES.EMAIL).upper()
        name = template_name_of(notification, names)
        for kind in (NON_TRANSACTIONAL_KIND, name):
            where = off.get((notification.user_id, channel, kind))
            if where:
                refusals[notification.id] = (f"The customer turned {channel.lower()} off for {kind} messages "
                                             f"({where}), and this {name or 'message'} is not an order or "
                                             "return email.")
                break
    return refusals


@dataclass
class Resent:
    original: Notification
    resend: Notification
    already: bool  # True: resent before (by this click's twin, or earlier); nothing new was queued


def _lock(notification_id: str) -> Notification | None:
    return db.session.scalar(select(Notification).where(Notification.id == notification_id)
                             .with_for_update().execution_options(populate_existing=True))


def _resend_locked(actor, original: Notification) -> Resent:
    meta = dict(original.metadata_) if isinstance(original.metadata_, dict) else {}
    if meta.get("resent_as"):
        existing = db.session.get(Notification, meta["resent_as"])
        if existing is not None:
            return Resent(original, existing, True)
    now = utcnow()
    copy = {k: v for k, v in meta.items() if k in ("template", "body_html", "test", "to")}
    resend = Notification(
        id=new_id(), user_id=original.user_id, type=original.type, template_id=original.template_id,
        subject=original.subject, body=original.body, status=NOTIFICATION_STATUSES.PENDING,
        metadata_={**copy, "key": f"resend:{original.id}", "resend_of": original.id, "resent_by": actor.id},
        scheduled_at=now, created_at=now, updated_at=now)
    db.session.add(resend)
    original.metadata_ = {**meta, "resent_as": resend.id}
    audit.record(actor, "notification.resent", "notification", original.id,
                 before={"status": original.status}, after={"resent_as": resend.id},
                 template=meta.get("template"), user_id=original.user_id)
    return Resent(original, resend, False)


def resend(actor, notification_id: str) -> Resent:
    """Queue a FAILED or BOUNCED notification again, once (see the module's text)."""
    with database("notification"):
        valid = notification_id and len(notification_id) <= 64 and "\x00" not in notification_id
        original = db.session.get(Notification, notification_id) if valid else None
        if original is None:
            raise WorkflowError("That notification does not exist.", 404)
        if original.status not in RESENDABLE:
            raise WorkflowError(f"Only failed or bounced notifications are resent; this one is "
                                f"{original.status or 'without a status'}.", 409)
        unsendable = unsendable_reason(original)
        if unsendable:
            raise WorkflowError(unsendable, 409)
    refusal = preference_refusals([original]).get(original.id)
    if refusal:
        raise WorkflowError(f"Not resent. {refusal}", 409)
    with database("notification"):
        try:
            original = _lock(notification_id)
            if original is None or original.status not in RESENDABLE:
                raise WorkflowError("That notification changed meanwhile; reload the page.", 409)
            result = _resend_locked(actor, original)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return result


@dataclass
class ResendAll:
    queued: int = 0
    already: int = 0
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # reason -> count
    skipped: int = 0  # no longer failed by the time it was reached

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())


def resendable(stmt):
    """``stmt`` (a select of notifications) narrowed to those a resend-all would queue:
    failed or bounced and not resent yet."""
    return stmt.where(Notification.status.in_(RESENDABLE),
                      Notification.metadata_["resent_as"].as_string().is_(None))


def resend_all(actor, notification_ids: Iterable[str], *, limit: int | None = None) -> ResendAll:
    """Resend each of ``notification_ids`` (at most ``limit``, RESEND_ALL_LIMIT by default,
    which the list's Resend all confirms beforehand) that may be resent; in batches,
    each batch one transaction."""
    limit = limit or RESEND_ALL_LIMIT
    ids = list(dict.fromkeys(notification_ids))
    if len(ids) > limit:
        raise WorkflowError(f"Resend at most {limit:,} notifications at once: narrow the filters.", 422)
    summary = ResendAll()
    for batch in chunks(ids, BATCH):
        with database("notification"):
            rows = list(db.session.scalars(select(Notification).where(Notification.id.in_(batch))))
        refusals = preference_refusals([n for n in rows if n.status in RESENDABLE])
        refusals.update({n.id: reason.split(":")[0] for n in rows if (reason := unsendable_reason(n))})
        for reason in refusals.values():
            summary.refused[reason.split(" (")[0]] += 1
        with database("notification"):
            try:
                for notification_id in batch:
                    if notification_id in refusals:
                        continue
                    original = _lock(notification_id)
                    if original is None or original.status not in RESENDABLE:
                        summary.skipped += 1
                        continue
                    outcome = _resend_locked(actor, original)
                    if outcome.already:
                        summary.already += 1
                    else:
                        summary.queued += 1
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise
    return summary
