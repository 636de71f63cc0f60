"""Editing email templates (notification_db): save with checks, versions, revert,
send a test, and the variables a real order would give (for the preview).

A save is refused, with every reason, when a part has a syntax error (with its line),
uses a variable it does not declare, drops a variable its workflow passes, can't be
rendered with the sample values, or turns off a template a workflow sends. Each save
keeps the previous and the new text in the audit trail (action
``email_template.updated`` or ``.reverted``): those rows are the template's versions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select

from console import audit
from console.email_templates import (
    CREDENTIAL_TEMPLATES, SECRET_VARIABLES,
    declared_variables, required_variables, sample_values, workflows_using,
)
from console.extensions import db
from console.lookups import database, fetch_in, target_or_missing
from console.models.auth import SecurityAuditLog
from console.models.notification import NOTIFICATION_STATUSES, NOTIFICATION_TYPES, EmailTemplate, Notification
from console.models.order import Order
from console.models.payment import PaymentRefund
from console.models.returns import ReturnAuthorization, ReturnRequest, ReturnStatusHistory
from console.models.shipping import Carrier, Shipment
from console.models.types import new_id, utcnow
from console.templating import BUILTIN_NAMES, MAX_SOURCE, RenderError, check, render_email, variables_used
from console.workflows import WorkflowError, notify

CONTENT = ("subject", "body_html", "body_text", "variables", "is_active")
VERSION_ACTIONS = ("email_template.updated", "email_template.reverted")
MAX_SUBJECT_SOURCE = 1000
MAX_VARIABLES = 50
MAX_DESCRIPTION = 300
MAX_SAMPLE = 2000
MAX_VERSIONS = 200
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
KEYWORDS = frozenset({"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if",
                      "else", "for", "endfor", "set", "block", "macro", "call", "filter", "with"})


class TemplateRefused(WorkflowError):
    """A save refused for one or more reasons (``problems``), each for the editor."""

    def __init__(self, problems: list[str], status: int = 422):
        super().__init__(" ".join(problems), status)
        self.problems = problems


@dataclass
class Draft:
    """What the editor holds: the three parts, the declared variables and active."""

    subject: str = ""
    body_html: str = ""
    body_text: str = ""
    variables: list[dict] = field(default_factory=list)
    is_active: bool = True

    @classmethod
    def of(cls, template: EmailTemplate) -> Draft:
        return cls(subject=template.subject or "", body_html=template.body_html or "",
                   body_text=template.body_text or "", variables=declared_variables(template.variables),
                   is_active=bool(template.is_active))

    @classmethod
    def from_content(cls, content: dict) -> Draft:
        return cls(subject=content.get("subject") or "", body_html=content.get("body_html") or "",
                   body_text=content.get("body_text") or "",
                   variables=declared_variables(content.get("variables")),
                   is_active=bool(content.get("is_active", True)))

    def content(self) -> dict:
        return {"subject": self.subject, "body_html": self.body_html, "body_text": self.body_text,
                "variables": self.variables, "is_active": self.is_active}

    @property
    def parts(self) -> dict:
        return {"subject": self.subject, "body_html": self.body_html, "body_text": self.body_text}

    @property
    def names(self) -> list[str]:
        return [v["name"] for v in self.variables]

    @property
    def samples(self) -> dict:
        return {v["name"]: v["sample"] for v in self.variables}


def find_template(key: str) -> EmailTemplate | None:
    """A template by id or by name (notification_db)."""
    key = (key or "").strip()
    if not key or len(key) > 200 or "\x00" in key:
        return None
    return db.session.scalar(select(EmailTemplate).where(or_(EmailTemplate.id == key, EmailTemplate.name == key))
                             .limit(1))


def stamp(template: EmailTemplate) -> str:
    """The version the editor was opened on: a save on another one is refused."""
    return template.updated_at.isoformat() if template.updated_at else ""


def _problems_with_variables(variables: list[dict]) -> list[str]:
    problems, seen = [], set()
    if len(variables) > MAX_VARIABLES:
        problems.append(f"Declare at most {MAX_VARIABLES} variables.")
    for variable in variables:
        name = variable["name"]
        if not VARIABLE_NAME.match(name) or name in KEYWORDS:
            problems.append(f"“{name[:64]}” can't be a variable name: use letters, digits and _ "
                            "(not starting with a digit), like order_number.")
        elif name in BUILTIN_NAMES:
            problems.append(f"“{name}” is a name of the template language itself: choose another.")
        elif name in seen:
            problems.append(f"{name} is declared twice.")
        seen.add(name)
        if len(variable["description"]) > MAX_DESCRIPTION:
            problems.append(f"The description of {name} is longer than {MAX_DESCRIPTION} characters.")
        if len(variable["sample"]) > MAX_SAMPLE:
            problems.append(f"The sample value of {name} is longer than {MAX_SAMPLE} characters.")
    return problems


def problems(template: EmailTemplate, draft: Draft) -> list[str]:
    """Every reason ``draft`` can't be saved as ``template`` (empty: it can)."""
    found = []
    for part, text in draft.parts.items():
        if "\x00" in text:
            found.append(f"The {part.replace('_', ' ')} contains a NUL character; remove it.")
    if len(draft.subject) > MAX_SUBJECT_SOURCE:
        found.append(f"Keep the subject under {MAX_SUBJECT_SOURCE} characters.")
    if not draft.subject.strip():
        found.append("Write a subject.")
    if not draft.body_text.strip() and not draft.body_html.strip():
        found.append("Write a text body, an HTML body or both.")
    if any(len(text) > MAX_SOURCE for text in (draft.body_html, draft.body_text)):
        found.append(f"Keep each body under {MAX_SOURCE:,} characters.")
    found += _problems_with_variables(draft.variables)
    if found:
        return found
    found += check(draft.parts, draft.names)
    if template.name in CREDENTIAL_TEMPLATES and not found:
        leaked = sorted(SECRET_VARIABLES & variables_used(draft.subject, "subject"))
        if leaked:
            found.append(f"The subject may not use {', '.join(leaked)}: the notification log shows subjects, "
                         "and the one-time link must stay in the body.")
    dropped = [name for name in required_variables(template.name) if name not in draft.names]
    if dropped:
        found.append(f"Keep declaring {', '.join(dropped)}: {workflows_using(template.name)[0]} passes "
                     f"{'it' if len(dropped) == 1 else 'them'} to {template.name} (its customers' emails "
                     "may still use them).")
    if not draft.is_active and workflows_using(template.name):
        found.append(f"{template.name} can't be turned off: it is sent by "
                     f"{'; '.join(workflows_using(template.name))}. Turned off, those actions would email "
                     "no one.")
    if not found:
        try:
            render_email(draft.subject, draft.body_html, draft.body_text, draft.samples)
        except RenderError as exc:
            found.append(f"With the sample values: {exc.message}")
    return found


def _changed(template: EmailTemplate, draft: Draft) -> bool:
    return Draft.of(template).content() != draft.content()


def save(actor, template_id: str, draft: Draft, *, base: str | None = None,
         action: str = "email_template.updated", **details) -> EmailTemplate:
    """Save ``draft`` as the template, or refuse it (TemplateRefused with every reason).

    ``base`` is the stamp the editor was opened on: when someone else saved since, the
    save is refused rather than overwriting their change."""
    with database("notification"):
        template = db.session.scalar(select(EmailTemplate).where(EmailTemplate.id == template_id)
                                     .with_for_update().execution_options(populate_existing=True))
        if template is None:
            raise WorkflowError("That template does not exist.", 404)
        if base is not None and base != stamp(template):
            db.session.rollback()
            raise TemplateRefused([f"{template.name} was saved by someone else after you opened it. "
                                   "Copy your changes, reload the page and apply them again."], 409)
        found = problems(template, draft)
        if found:
            db.session.rollback()
            raise TemplateRefused(found)
        if not _changed(template, draft):
            db.session.rollback()
            return template
        before = Draft.of(template).content()
        template.subject, template.body_html, template.body_text = draft.subject, draft.body_html, draft.body_text
        template.variables = draft.variables
        template.is_active = draft.is_active
        template.updated_at = utcnow()
        audit.record(actor, action, "email_template", template.id, before=before, after=draft.content(),
                     name=template.name, **details)
        db.session.commit()
    return template


# --- versions ------------------------------------------------------------------------------

@dataclass
class Version:
    """One saved state of a template: ``content`` as it was after ``log``'s save (or,
    for the original, before the first save the console recorded)."""

    key: str
    at: datetime | None
    by: object  # the staff User, Missing(id) or None
    action: str
    content: dict
    current: bool = False

    @property
    def label(self) -> str:
        return "original" if self.action == "original" else self.action.rsplit(".", 1)[-1]


def versions(template: EmailTemplate) -> list[Version]:
    """The template's saved states, newest first (the newest is the current text)."""
    with database("auth"):
        logs = list(db.session.scalars(
            select(SecurityAuditLog)
            .where(SecurityAuditLog.action.in_(VERSION_ACTIONS),
                   SecurityAuditLog.metadata_["entity_id"].as_string() == template.id)
            .order_by(SecurityAuditLog.created_at.desc(), SecurityAuditLog.id.desc()).limit(MAX_VERSIONS)))
        staff = {u.id: u for u in fetch_in("auth", "users", "id", (log.user_id for log in logs))}
    found = []
    for log in logs:
        meta = log.metadata_ if isinstance(log.metadata_, dict) else {}
        if isinstance(meta.get("after"), dict):
            found.append(Version(f"after:{log.id}", log.created_at, target_or_missing(staff, log.user_id),
                                 log.action, meta["after"]))
    if logs and len(logs) < MAX_VERSIONS:
        first = logs[-1].metadata_ if isinstance(logs[-1].metadata_, dict) else {}
        if isinstance(first.get("before"), dict):
            found.append(Version(f"before:{logs[-1].id}", template.created_at, None, "original", first["before"]))
    if found:
        found[0].current = Draft.from_content(found[0].content).content() == Draft.of(template).content()
    return found


def version_content(template: EmailTemplate, key: str) -> dict:
    """The content kept under a version key (``after:<log id>`` or ``before:<log id>``)."""
    side, _, log_id = (key or "").partition(":")
    if side not in ("after", "before") or not log_id or len(log_id) > 64:
        raise WorkflowError("That version does not exist.", 404)
    with database("auth"):
        log = db.session.get(SecurityAuditLog, log_id)
    meta = log.metadata_ if log is not None and isinstance(log.metadata_, dict) else {}
    if log is None or log.action not in VERSION_ACTIONS or meta.get("entity_id") != template.id \
            or not isinstance(meta.get(side), dict):
        raise WorkflowError("That version does not exist.", 404)
    return meta[side]


def revert(actor, template_id: str, key: str, *, base: str | None = None) -> EmailTemplate:
    """Make a kept version the template's text again (itself a new version)."""
    with database("notification"):
        template = db.session.get(EmailTemplate, template_id)
        if template is None:
            raise WorkflowError("That template does not exist.", 404)
    draft = Draft.from_content(version_content(template, key))
    return save(actor, template_id, draft, base=base, action="email_template.reverted", reverted_to=key)


# --- a real order's values -----------------------------------------------------------------

@dataclass
class PreviewValues:
    values: dict
    notes: list[str]  # what came from elsewhere than the order (samples), for the preview


def _latest(stmt):
    return db.session.scalars(stmt.limit(1)).first()


def order_values(template_name: str, order_number: str, declared: dict[str, str]) -> PreviewValues:
    """The variables the workflow sending ``template_name`` would pass for this order,
    read from order_db, user_db, shipping_db, payment_db and return_db through the
    same helpers the workflows use (console/workflows/notify.py). A declared variable
    the order can't give keeps its sample value, and a note says so."""
    number = (order_number or "").strip()
    if not number or len(number) > 64 or "\x00" in number:
        raise WorkflowError("Type an order number, like ORD-20261101-0042.", 422)
    with database("order"):
        order = _latest(select(Order).where(Order.order_number == number))
        if order is None:
            raise WorkflowError(f"There is no order {number}. Check the number (it is on the order page).", 404)
        db.session.expunge(order)
    first = notify.first_name(order.user_id)
    notes: list[str] = []
    name = template_name
    if name == "order_cancelled":
        from console.workflows.orders import cancellation_of

        values = notify.order_variables(order, first, reason=(cancellation_of(order) or {}).get("reason", ""))
        if order.status != "cancelled":
            notes.append(f"{order.order_number} is {order.status}, not cancelled: the reason is empty.")
    elif name == "order_shipped":
        with database("shipping"):
            shipment = _latest(select(Shipment).where(Shipment.order_id == order.id)
                               .order_by(Shipment.created_at.desc()))
            carrier = db.session.get(Carrier, shipment.carrier_id) if shipment and shipment.carrier_id else None
        if shipment is None:
            notes.append(f"{order.order_number} has no shipment: carrier and tracking number are samples.")
            values = notify.order_variables(order, first)
        else:
            values = notify.order_variables(order, first, carrier=carrier.name if carrier else "",
                                            tracking_number=order.tracking_number or shipment.tracking_number or "")
    elif name == "order_status_changed":
        values = notify.order_variables(order, first, status=order.status)
    elif name == "refund_issued":
        with database("payment"):
            refund = _latest(select(PaymentRefund).where(PaymentRefund.order_id == order.id)
                             .order_by(PaymentRefund.created_at.desc()))
        if refund is None:
            notes.append(f"{order.order_number} has no refund: the amount is a sample.")
            values = notify.order_variables(order, first, currency=order.currency, rma_number="")
        else:
            values = notify.refund_variables(refund, first)
            values["order_number"] = values["order_number"] or order.order_number
    elif name.startswith("return_"):
        values = _return_values(order, first, name, notes)
    else:
        values = notify.order_variables(order, first, status=order.status, currency=order.currency,
                                        amount=order.total_amount, total_amount=order.total_amount)
    for variable, sample in declared.items():
        if variable not in values:
            values[variable] = sample
    return PreviewValues(values, notes)


def _return_values(order: Order, first: str, name: str, notes: list[str]) -> dict:
    with database("return"):
        request = _latest(select(ReturnRequest).where(ReturnRequest.order_id == order.id)
                          .order_by(ReturnRequest.created_at.desc()))
        if request is None:
            notes.append(f"{order.order_number} has no return: the return's numbers are samples.")
            return notify.order_variables(order, first)
        extra = {}
        if name == "return_approved":
            authorization = _latest(select(ReturnAuthorization)
                                    .where(ReturnAuthorization.return_request_id == request.id))
            extra["instructions"] = (authorization.return_instructions if authorization else "") or ""
        elif name == "return_rejected":
            rejected = _latest(select(ReturnStatusHistory).where(
                ReturnStatusHistory.return_request_id == request.id, ReturnStatusHistory.status == "rejected")
                .order_by(ReturnStatusHistory.created_at.desc()))
            extra["reason"] = (rejected.notes if rejected else "") or ""
        elif name == "return_processed":
            extra["amount"] = request.refund_amount
        db.session.expunge(request)
    return notify.return_variables(request, first, **extra)


# --- send a test ---------------------------------------------------------------------------

def send_test(actor, template_id: str, values: dict | None = None) -> Notification:
    """Queue the saved template, rendered with ``values`` (default: its sample values),
    to the staff member's own account, through the same queue as customers' emails;
    its metadata says it is a test and to whom."""
    with database("notification"):
        template = db.session.get(EmailTemplate, template_id)
        if template is None:
            raise WorkflowError("That template does not exist.", 404)
        try:
            rendered = notify.render_notification(template, values or sample_values(template.variables))
        except RenderError as exc:
            raise WorkflowError(f"The saved template can't be rendered: {exc.message}", 422) from None
        notification = Notification(
            id=new_id(), user_id=actor.id, type=NOTIFICATION_TYPES.EMAIL, template_id=template.id, subject=rendered["subject"],
            body=rendered["body"], status=NOTIFICATION_STATUSES.PENDING,
            metadata_={"template": template.name, "key": f"test:{new_id()}", "test": True,
                       "to": getattr(actor, "email", None), "sent_by": actor.id,
                       "body_html": rendered["body_html"]})
        db.session.add(notification)
        audit.record(actor, "email_template.test_sent", "email_template", template.id, name=template.name,
                     notification_id=notification.id, to=getattr(actor, "email", None))
        db.session.commit()
    return notification

