"""The email templates the console's workflows send, as data, and their installer.

Each workflow that emails a customer names a template in ``email_templates`` and
passes it a fixed set of variables (built by the helpers in
``console/workflows/notify.py``). This module declares, per template, which workflows
use it, the variables they pass (with a description and a sample value for the editor
and its preview) and the text shipped with the console. ``install()`` writes the
shipped text for every template a deployment lacks; ``flask console init-db`` and
``flask console seed-demo`` call it. A template that is missing is named on the
Templates screen; the workflows then queue no email for it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from console.extensions import db
from console.models.notification import EmailTemplate


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    sample: str

    def as_data(self) -> dict:
        return {"name": self.name, "description": self.description, "sample": self.sample}


@dataclass(frozen=True)
class ShippedTemplate:
    name: str
    used_by: tuple[str, ...]  # the actions that send it, as staff know them
    variables: tuple[Variable, ...]
    subject: str
    body_text: str
    body_html: str

    @property
    def variable_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)


FIRST_NAME = Variable("first_name", "The customer's first name (user_db profile); empty when unknown",
                      "Ada")
ORDER_NUMBER = Variable("order_number", "The order's number", "ORD-20261101-0042")
RMA_NUMBER = Variable("rma_number", "The return's RMA number", "RMA-20261101-3F2A9C")
CURRENCY = Variable("currency", "The currency of the amounts (ISO code)", "USD")
AMOUNT = Variable("amount", "The amount refunded", "42.50")

RETURN_BASE = (FIRST_NAME, ORDER_NUMBER, RMA_NUMBER, CURRENCY)


# Emails that carry a one-time sign-in link: whoever reads the link can use it, so the
# console never shows their bodies (the notification log and the data browser say why).
CREDENTIAL_TEMPLATES = frozenset({"staff_invitation", "staff_password_reset"})
# What those emails carry that must never leave the body: the subject is shown in the
# notification log, so a subject is rendered with these replaced (and may not use them).
SECRET_VARIABLES = frozenset({"link"})
SECRET_PLACEHOLDER = "(link in the email)"
CREDENTIAL_HIDDEN = ("Not shown: this email holds a one-time link to set a staff password, which anyone "
                     "who reads it could use. The recipient can ask for a new one.")


CREDENTIAL_SUBJECT = "Staff sign-in email (not shown)"


def is_credential_email(notification) -> bool:
    """Whether a queued notification is one of the staff sign-in emails."""
    meta = notification.metadata_ if isinstance(notification.metadata_, dict) else {}
    return meta.get("template") in CREDENTIAL_TEMPLATES


def shown_subject(notification) -> str | None:
    """A notification's subject as the console shows it anywhere (lists, pages, exports,
    labels, the data browser): a staff sign-in email's never, whatever it says."""
    return CREDENTIAL_SUBJECT if is_credential_email(notification) else notification.subject


def _html(*paragraphs: str) -> str:
    return "".join(f"<p>{p}</p>\n" for p in paragraphs)


GREETING = "Hello{% if first_name %} {{ first_name }}{% endif %},"

SHIPPED: tuple[ShippedTemplate, ...] = (
    ShippedTemplate(
        "order_cancelled", ("Cancel order (order page)",),
        (FIRST_NAME, ORDER_NUMBER, Variable("reason", "Why the order was cancelled, as staff wrote it",
                                            "Out of stock")),
        "Your order {{ order_number }} was cancelled",
        GREETING + "\n\nyour order {{ order_number }} was cancelled.{% if reason %} {{ reason }}{% endif %}\n",
        _html(GREETING, "your order <strong>{{ order_number }}</strong> was cancelled."
              "{% if reason %} {{ reason }}{% endif %}")),
    ShippedTemplate(
        "order_shipped", ("Mark shipped (order page)",),
        (FIRST_NAME, ORDER_NUMBER, Variable("carrier", "The carrier's name", "UPS"),
         Variable("tracking_number", "The parcel's tracking number", "1Z999AA10123456784")),
        "Your order {{ order_number }} is on its way",
        GREETING + "\n\nyour order {{ order_number }} shipped with {{ carrier }}. "
                   "Tracking number: {{ tracking_number }}.\n",
        _html(GREETING, "your order <strong>{{ order_number }}</strong> shipped with {{ carrier }}.",
              "Tracking number: <strong>{{ tracking_number }}</strong>.")),
    ShippedTemplate(
        "order_status_changed", (),
        (FIRST_NAME, ORDER_NUMBER, Variable("status", "The order's new status", "processing")),
        "Update on your order {{ order_number }}",
        GREETING + "\n\nyour order {{ order_number }} is now {{ status }}.\n",
        _html(GREETING, "your order <strong>{{ order_number }}</strong> is now {{ status }}.")),
    ShippedTemplate(
        "return_approved", ("Approve return (return page)",),
        (*RETURN_BASE, Variable("instructions", "What the customer should do next, as staff wrote it",
                                "Print the label in your account.")),
        "Your return {{ rma_number }} is approved",
        GREETING + "\n\nyour return {{ rma_number }} is approved. {{ instructions }}\n",
        _html(GREETING, "your return <strong>{{ rma_number }}</strong> is approved. {{ instructions }}")),
    ShippedTemplate(
        "return_rejected", ("Reject return (return page)",),
        (*RETURN_BASE, Variable("reason", "Why the return was rejected, as staff wrote it",
                                "Outside the 30-day return window")),
        "Your return request for order {{ order_number }}",
        GREETING + "\n\nwe could not accept your return: {{ reason }}\n",
        _html(GREETING, "we could not accept your return: {{ reason }}")),
    ShippedTemplate(
        "return_in_transit", ("Record return tracking (return page)",), RETURN_BASE,
        "Your return {{ rma_number }} is on its way to us",
        GREETING + "\n\nwe can see your return {{ rma_number }} is on its way.\n",
        _html(GREETING, "we can see your return <strong>{{ rma_number }}</strong> is on its way.")),
    ShippedTemplate(
        "return_received", ("Receive returned items (return page)",), RETURN_BASE,
        "We received your return {{ rma_number }}",
        GREETING + "\n\nwe received your return {{ rma_number }}.\n",
        _html(GREETING, "we received your return <strong>{{ rma_number }}</strong>.")),
    ShippedTemplate(
        "return_processed", ("Process return (return page)", "Refund of a returned order (refunds)"),
        (*RETURN_BASE, AMOUNT),
        "Your refund for return {{ rma_number }}",
        GREETING + "\n\nyour refund of {{ amount }} {{ currency }} for return {{ rma_number }} has been issued.\n",
        _html(GREETING, "your refund of <strong>{{ amount }} {{ currency }}</strong> for return "
                        "{{ rma_number }} has been issued.")),
    ShippedTemplate(
        "return_closed", ("Close return (return page)",), RETURN_BASE,
        "Your return {{ rma_number }} is complete",
        GREETING + "\n\nyour return {{ rma_number }} is complete.\n",
        _html(GREETING, "your return <strong>{{ rma_number }}</strong> is complete.")),
    ShippedTemplate(
        "refund_issued", ("Refund (order page)",),
        (FIRST_NAME, ORDER_NUMBER, Variable("rma_number", "The return's RMA number (empty: not a return)", ""),
         AMOUNT, CURRENCY),
        "Your refund for order {{ order_number }}",
        GREETING + "\n\na refund of {{ amount }} {{ currency }} for order {{ order_number }} has been issued.\n",
        _html(GREETING, "a refund of <strong>{{ amount }} {{ currency }}</strong> for order "
                        "{{ order_number }} has been issued.")),
    ShippedTemplate(
        "back_in_stock", ("Notify waiting customers (product page)",),
        (FIRST_NAME, Variable("product_name", "The product's name (and variant) the customer waits for",
                              "Trail Running Shoe (Size 42)"),
         Variable("sku", "The product's SKU", "SHOE-TRAIL-42")),
        "{{ product_name }} is back in stock",
        GREETING + "\n\n{{ product_name }} ({{ sku }}) is back in stock. You asked us to tell you.\n",
        _html(GREETING, "<strong>{{ product_name }}</strong> ({{ sku }}) is back in stock. "
                        "You asked us to tell you.")),
    ShippedTemplate(
        "staff_invitation", ("Invite staff (Staff screen)",),
        (Variable("inviter", "The admin who sent the invitation", "admin@example.com"),
         Variable("roles", "The roles given, comma-separated", "finance"),
         Variable("hours", "How many hours the link works", "72"),
         Variable("link", "The one-time link to set a password", "https://console.example.com/password/set/abc"),
         Variable("email", "The invited email address", "new.member@example.com")),
        "You are invited to the operations console",
        "Hello,\n\n{{ inviter }} invited you to the operations console ({{ roles }}).\n"
        "Set your password here (the link works once, for {{ hours }} hours):\n\n{{ link }}\n",
        _html("Hello,", "{{ inviter }} invited you to the operations console ({{ roles }}).",
              "Set your password here (the link works once, for {{ hours }} hours):",
              '<a href="{{ link }}">{{ link }}</a>')),
    ShippedTemplate(
        "staff_password_reset", ("Forgot password (sign-in page)",),
        (Variable("email", "The staff member's email address", "member@example.com"),
         Variable("hours", "How many hours the link works", "1"),
         Variable("link", "The one-time link to set a new password", "https://console.example.com/password/set/abc")),
        "Set a new password for the operations console",
        "Hello,\n\nsomeone (we hope you) asked to set a new password for {{ email }}.\n"
        "Set it here (the link works once, for {{ hours }} hour(s)):\n\n{{ link }}\n\n"
        "If it was not you, ignore this email: your password stays as it is.\n",
        _html("Hello,", "someone (we hope you) asked to set a new password for {{ email }}.",
              "Set it here (the link works once, for {{ hours }} hour(s)):", '<a href="{{ link }}">{{ link }}</a>',
              "If it was not you, ignore this email: your password stays as it is.")),
)
BY_NAME = {t.name: t for t in SHIPPED}

# The workflows' emails are about an order or a return the customer made: they are
# transactional, so sent (and resent) whatever the customer's marketing preferences.
# A back-in-stock email is not: the customer's preferences decide.
TRANSACTIONAL = frozenset(BY_NAME) - {"back_in_stock"}

# "{first_name}": a field of the older, Python-style templates, which the Jinja syntax
# prints as it stands.
OLD_FIELD = re.compile(r"(?<![{])\{([A-Za-z_][A-Za-z0-9_]*)\}(?![}])")


def declared_variables(raw) -> list[dict]:
    """A template's ``variables`` column as [{"name", "description", "sample"}]: the
    console writes that shape; a plain list of names (or a {name: description} map),
    as other writers may leave, reads as the same with blanks."""
    if isinstance(raw, dict):
        raw = [{"name": k, "description": v if isinstance(v, str) else ""} for k, v in raw.items()]
    declared = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, str):
            item = {"name": item}
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            declared.append({"name": item["name"], "description": str(item.get("description") or ""),
                             "sample": "" if item.get("sample") is None else str(item["sample"])})
    return declared


def sample_values(raw) -> dict[str, str]:
    return {v["name"]: v["sample"] for v in declared_variables(raw)}


def workflows_using(name: str | None) -> tuple[str, ...]:
    shipped = BY_NAME.get(name or "")
    return shipped.used_by if shipped else ()


def required_variables(name: str | None) -> tuple[str, ...]:
    """The variables a workflow passes to this template: each must stay declared."""
    shipped = BY_NAME.get(name or "")
    return shipped.variable_names if shipped and shipped.used_by else ()


def install() -> list[EmailTemplate]:
    """Add each shipped template the database lacks (by name), active; templates
    that exist, edited or not, are left alone. The caller commits."""
    existing = set(db.session.scalars(select(EmailTemplate.name).where(EmailTemplate.name.in_(BY_NAME))))
    added = []
    for shipped in SHIPPED:
        if shipped.name in existing:
            continue
        template = EmailTemplate(name=shipped.name, subject=shipped.subject, body_text=shipped.body_text,
                                 body_html=shipped.body_html, variables=[v.as_data() for v in shipped.variables],
                                 is_active=True)
        db.session.add(template)
        added.append(template)
    db.session.flush()
    return added


def missing() -> list[ShippedTemplate]:
    """The workflows' templates this deployment lacks or has turned off."""
    active = set(db.session.scalars(select(EmailTemplate.name).where(
        EmailTemplate.name.in_(BY_NAME), EmailTemplate.is_active.is_(True))))
    return [t for t in SHIPPED if t.used_by and t.name not in active]
