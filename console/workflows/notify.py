"""Customer notifications queued from email templates (notification_db).

The console only queues: it writes a PENDING notification that the notification
service sends. Each queued message carries a key in its metadata so a workflow that
is repeated never queues the same message twice. Templates are rendered in the
console's template language (console/templating.py); the text body goes in
``body`` and the HTML body in the metadata's ``body_html``.

The variables each workflow passes are built here, once, by ``order_variables``,
``return_variables`` and ``refund_variables``: the workflows call them, and so does
the template editor's preview with a real order, so both see the same values.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from console.email_templates import CREDENTIAL_TEMPLATES, SECRET_PLACEHOLDER, SECRET_VARIABLES
from console.extensions import db
from console.lookups import DatabaseUnavailable, chunks, database
from console.models.notification import NOTIFICATION_STATUSES, NOTIFICATION_TYPES, EmailTemplate, Notification
from console.models.user import UserProfile
from console.templating import RenderError, render_email

log = logging.getLogger(__name__)


def order_variables(order, first_name: str, **extra) -> dict:
    """What the order emails get: the order's number and the greeting, plus the
    workflow's own (reason, carrier, tracking_number, status)."""
    return {"first_name": first_name, "order_number": order.order_number, **extra}


def return_variables(request, first_name: str, **extra) -> dict:
    """What the return emails get: RMA and order numbers, currency and greeting, plus
    the step's own (instructions, reason, amount)."""
    return {"first_name": first_name, "rma_number": request.rma_number, "currency": request.currency,
            "order_number": (request.metadata_ or {}).get("order_number", ""), **extra}


def refund_variables(refund, first_name: str) -> dict:
    """What a refund's email gets (refund_issued, or return_processed for a return)."""
    meta = refund.metadata_ or {}
    return {"first_name": first_name, "amount": refund.amount, "currency": refund.currency,
            "order_number": meta.get("order_number", ""), "rma_number": meta.get("rma_number", "")}


def render_notification(template: EmailTemplate, variables: dict) -> dict:
    """The columns of a notification rendered from ``template`` (RenderError if it can't be).

    A staff sign-in email's subject is rendered without its secrets (the one-time link):
    whatever its template says, the subject never carries them."""
    email = render_email(template.subject, template.body_html, template.body_text, variables)
    subject = email.subject
    if template.name in CREDENTIAL_TEMPLATES:
        masked = {**variables, **{name: SECRET_PLACEHOLDER for name in SECRET_VARIABLES if name in variables}}
        subject = render_email(template.subject, "", "", masked).subject
    return {"template_id": template.id, "subject": subject, "body": email.body_text,
            "body_html": email.body_html}


# What queue() writes, for a workflow's up-front drift check (console/drift.py).
QUEUED_EMAIL = (Notification,)


def queue(user_id: str | None, template_name: str, variables: dict, *, key: str) -> Notification | None:
    """Queue one EMAIL notification for ``user_id`` unless one with ``key`` exists.

    None when the template is missing or turned off: the workflow goes on without the
    email, the log says why and the Templates screen names a missing template. A template
    that can't be rendered (an error, or out of its time or memory) queues the email as
    FAILED with the reason in its metadata's ``render_error``."""
    return queue_many(template_name, [(user_id, variables, key)])[0]


def queue_many(template_name: str, messages: list[tuple[str | None, dict, str]]) -> list[Notification | None]:
    """``queue`` for many messages of one template, each ``(user_id, variables, key)``:
    the template and the recipients' keyed messages are read once (one query per 1,000
    recipients), not per message. One result per message, in order."""
    users = list(dict.fromkeys(user_id for user_id, _, _ in messages))
    keys = {key for _, _, key in messages}
    found: dict[tuple, Notification] = {}
    # A message to no user (user_id None) is looked up with IS NULL, as queue() always did.
    batches = [Notification.user_id.in_(chunk) for chunk in chunks(u for u in users if u is not None)]
    if None in users:
        batches.append(Notification.user_id.is_(None))
    for condition in batches:
        for existing in db.session.scalars(select(Notification).where(condition)):
            key = (existing.metadata_ or {}).get("key")
            if key in keys:
                found[(existing.user_id, key)] = existing
    template = None
    if any((user_id, key) not in found for user_id, _, key in messages):
        template = db.session.scalar(select(EmailTemplate).where(
            EmailTemplate.name == template_name, EmailTemplate.is_active.is_(True)))
    queued: list[Notification | None] = []
    for user_id, variables, key in messages:
        if (user_id, key) in found:
            queued.append(found[(user_id, key)])
            continue
        if template is None:
            log.warning("No active email template %r: no email queued for %s", template_name, key)
            queued.append(None)
            continue
        try:
            rendered = render_notification(template, variables)
        except RenderError as exc:
            # The workflow's own change stands; the email is recorded as failed, with the
            # reason, so the notification log shows it and the template can be mended.
            log.warning("Email template %r can't be rendered (%s): email for %s queued as failed",
                        template_name, exc.message, key)
            notification = Notification(
                user_id=user_id, type=NOTIFICATION_TYPES.EMAIL, template_id=template.id, subject=None, body="",
                status=NOTIFICATION_STATUSES.FAILED,
                metadata_={"template": template_name, "key": key, "render_error": exc.message})
        else:
            notification = Notification(
                user_id=user_id, type=NOTIFICATION_TYPES.EMAIL, template_id=rendered["template_id"],
                subject=rendered["subject"], body=rendered["body"], status=NOTIFICATION_STATUSES.PENDING,
                metadata_={"template": template_name, "key": key, "body_html": rendered["body_html"]},
            )
        db.session.add(notification)
        found[(user_id, key)] = notification
        queued.append(notification)
    return queued


def first_names(user_ids) -> dict[str, str]:
    """{user id: first name} for email greetings, one query per 1,000 users; empty when
    user_db can't say."""
    ids = [i for i in dict.fromkeys(user_ids) if i]
    names: dict[str, str] = {}
    try:
        with database("user"):
            for chunk in chunks(ids):
                names.update(db.session.execute(select(UserProfile.user_id, UserProfile.first_name)
                                                .where(UserProfile.user_id.in_(chunk))).all())
    except DatabaseUnavailable:
        return {}
    return {user_id: name or "" for user_id, name in names.items()}


def first_name(user_id: str | None) -> str:
    """The customer's first name for an email greeting; blank when user_db can't say."""
    if not user_id:
        return ""
    try:
        with database("user"):
            return db.session.scalar(select(UserProfile.first_name).where(UserProfile.user_id == user_id)) or ""
    except DatabaseUnavailable:
        return ""
