"""Customer notifications queued from email templates (notification_db).

The console only queues: it writes a PENDING notification that the notification
service sends. Each queued message carries a key in its metadata so a workflow that
is repeated never queues the same message twice.
"""
from __future__ import annotations

from string import Formatter

from sqlalchemy import select

from console.extensions import db
from console.lookups import DatabaseUnavailable, database
from console.models.notification import EmailTemplate, Notification
from console.models.user import UserProfile

# Templates the console's workflows use: name -> (subject, text body). Seeded by the
# demo data; when a deployment lacks one, the text here is used instead.
DEFAULT_TEMPLATES: dict[str, tuple[str, str]] = {
    "order_cancelled": ("Your order {order_number} was cancelled",
                        "Hello {first_name},\n\nyour order {order_number} was cancelled. {reason}\n"),
    "order_shipped": ("Your order {order_number} is on its way",
                      "Hello {first_name},\n\nyour order {order_number} shipped with {carrier}. "
                      "Tracking number: {tracking_number}.\n"),
    "order_status_changed": ("Update on your order {order_number}",
                             "Hello {first_name},\n\nyour order {order_number} is now {status}.\n"),
    "return_approved": ("Your return {rma_number} is approved",
                        "Hello {first_name},\n\nyour return {rma_number} is approved. {instructions}\n"),
    "return_rejected": ("Your return request for order {order_number}",
                        "Hello {first_name},\n\nwe could not accept your return: {reason}\n"),
    "return_in_transit": ("Your return {rma_number} is on its way to us",
                          "Hello {first_name},\n\nwe can see your return {rma_number} is on its way.\n"),
    "return_received": ("We received your return {rma_number}",
                        "Hello {first_name},\n\nwe received your return {rma_number}.\n"),
    "return_processed": ("Your refund for return {rma_number}",
                         "Hello {first_name},\n\nyour refund of {amount} {currency} for return {rma_number} "
                         "has been issued.\n"),
    "return_closed": ("Your return {rma_number} is complete",
                      "Hello {first_name},\n\nyour return {rma_number} is complete.\n"),
    "back_in_stock": ("{product_name} is back in stock",
                      "Hello {first_name},\n\n{product_name} ({sku}) is back in stock. You asked us to tell you.\n"),
    "refund_issued": ("Your refund for order {order_number}",
                      "Hello {first_name},\n\na refund of {amount} {currency} for order {order_number} "
                      "has been issued.\n"),
}


class _Blank(dict):
    def __missing__(self, key):
        return ""


def render(text: str, variables: dict) -> str:
    # Only plain {name} fields; a template cannot reach attributes or indexes.
    safe = _Blank({k: "" if v is None else str(v) for k, v in variables.items()})
    fields = [f for _, f, _, _ in Formatter().parse(text) if f]
    if any(not f.isidentifier() for f in fields):
        return text
    return text.format_map(safe)


def queue(user_id: str | None, template_name: str, variables: dict, *, key: str) -> Notification:
    """Queue one EMAIL notification for ``user_id`` unless one with ``key`` exists."""
    for existing in db.session.scalars(select(Notification).where(Notification.user_id == user_id)):
        if (existing.metadata_ or {}).get("key") == key:
            return existing
    template = db.session.scalar(select(EmailTemplate).where(
        EmailTemplate.name == template_name, EmailTemplate.is_active.is_(True)))
    subject, body = DEFAULT_TEMPLATES.get(template_name, (template_name, ""))
    if template is not None:
        subject, body = template.subject or subject, template.body_text or body
    notification = Notification(
        user_id=user_id, type="EMAIL", template_id=template.id if template else None,
        subject=render(subject, variables), body=render(body, variables), status="PENDING",
        metadata_={"template": template_name, "key": key},
    )
    db.session.add(notification)
    return notification


def first_name(user_id: str | None) -> str:
    """The customer's first name for an email greeting; blank when user_db can't say."""
    if not user_id:
        return ""
    try:
        with database("user"):
            return db.session.scalar(select(UserProfile.first_name).where(UserProfile.user_id == user_id)) or ""
    except DatabaseUnavailable:
        return ""
