"""Returns (RMAs): the filtered list, the CSV export, the return page and its actions,
and the "Create return" form reached from the order page."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from console import links
from console.extensions import db
from console.formatting import when
from console.forms import (NAME_MAX, ZERO_DECIMAL_CURRENCIES, ChoiceField, ConsoleForm, MoneyField, NoteField,
                           TextField, WholeNumberField)
from console.lookups import database
from console.models.returns import ReturnItem
from console.permissions import permission_required
from console.screens import returns as screens
from console.views._actions import Refusal, attempt, attempt_form
from console.views._listing import add_list_routes
from console.workflows import refunds as refund_flow
from console.workflows import returns as flow

bp = Blueprint("returns", __name__)
bp.context_processor(links.template_helpers)


# --- the forms of the return screens ---------------------------------------------------------
# They parse and bound what was typed; whether a step is allowed, and with what, is the
# workflow's to say (console/workflows/returns.py). Forms whose fields depend on the
# return's items are made per request.

class ApproveForm(ConsoleForm):
    address_name = TextField("Addressee", max_length=NAME_MAX)
    address_address_line1 = TextField("Street", max_length=NAME_MAX)
    address_city = TextField("City", max_length=100)
    address_postal_code = TextField("Postal code", max_length=20)
    address_country = TextField("Country", max_length=60)
    instructions = NoteField("Instructions")
    expires_in_days = WholeNumberField("Valid for (days)", minimum=1, maximum=365, required=False,
                                       what="a number of days")


class RejectForm(ConsoleForm):
    reason = NoteField("Reason")


class TrackingForm(ConsoleForm):
    status = TextField("Event", max_length=100)
    location = TextField("Location", max_length=NAME_MAX)
    description = TextField("Description", max_length=500)
    tracking_number = TextField("Tracking number", max_length=60)


class CloseForm(ConsoleForm):
    notes = NoteField("Notes")


def receive_form(items):
    fields = {f"condition_{item.id}": ChoiceField(item.product_sku or item.product_name or "Condition",
                                                  choices=flow.CONDITIONS, required=False) for item in items}
    return type("ReceiveForm", (ConsoleForm,), fields)()


class _ProcessBase(ConsoleForm):
    include_shipping = ChoiceField("Shipping", choices=["yes"], required=False)


def process_form(items, currency):
    # The most each item may refund is the workflow's to say ("lowered, never raised").
    fields = {f"amount_{item.id}": MoneyField(item.product_sku or item.product_name or "Amount", currency=currency,
                                              required=False) for item in items}
    return type("ProcessForm", (_ProcessBase,), fields)()


QUANTITY_MAX = 100_000


class _CreateBase(ConsoleForm):
    reason = ChoiceField("Reason", choices=[(r, flow.label(r)) for r in flow.REASONS])
    refund_method = ChoiceField("Refund method", choices=flow.REFUND_METHODS, required=False)
    notes = NoteField("Notes")


def create_form(items):
    # How many can still be returned is the workflow's to say (it names what is left).
    fields = {f"qty_{item.id}": WholeNumberField(item.product_sku or item.product_name or "Quantity", minimum=0,
                                                 maximum=QUANTITY_MAX, required=False, what="a quantity")
              for item in items}
    return type("CreateReturnForm", (_CreateBase,), fields)()


def _choices() -> dict:
    return {"statuses": flow.STATUSES, "reasons": flow.REASONS, "refund_methods": flow.REFUND_METHODS,
            "label": flow.label, "shop_fault_reasons": flow.SHOP_FAULT_REASONS,
            "zero_decimal_currencies": ZERO_DECIMAL_CURRENCIES}


add_list_routes(bp, screens.RETURNS, "returns.view", _choices, url="/returns")


def _return_or_404(key: str):
    found = screens.find(key)
    if found is None:
        abort(404, f"No return with id or RMA number “{key}”. Search the returns list instead.")
    return found


def _render_detail(found, *, status: int = 200, error: str | None = None, form: dict | None = None,
                   posted: ConsoleForm | None = None):
    page = screens.return_page(found)
    return make_response(render_template("returns/detail.html", page=page, error=error, form=form or {},
                                         posted=posted,
                                         conditions=flow.CONDITIONS,
                                         default_address=screens.usual_return_address() if page.can("approved") else {},
                                         **_choices()), status)


@bp.get("/returns/<key>")
@permission_required("returns.view")
def return_detail(key: str):
    return _render_detail(_return_or_404(key))


def _act(key: str, form, perform):
    """Run one action on a return with its form (a ConsoleForm, or a function of the
    return making one): a flash and a redirect when done; the page again with the
    refusal (and its 4xx status, or 503 naming the database) when not, the form's
    messages next to its fields."""
    found = _return_or_404(key)
    if not isinstance(form, ConsoleForm):
        form = form(found)
    done, refused = attempt_form(form, lambda: perform(current_user, found.id, form))
    if refused is None:
        flash(*done)
        return redirect(url_for("returns.return_detail", key=found.rma_number or found.id), 303)
    return _render_detail(_return_or_404(found.id), status=refused.status, error=refused.message,
                          form=form.posted_values(), posted=form)


def _act_with_text(key: str, form, change, field: str, message: str):
    """An action taking one text field, whose message names the return (``{rma}``)."""
    def perform(actor, return_id, form):
        changed = change(actor, return_id, form[field].data or "")
        return message.format(rma=changed.rma_number), "success"
    return _act(key, form, perform)


def _items(found):
    with database("return"):
        return list(db.session.scalars(select(ReturnItem).where(ReturnItem.return_request_id == found.id)
                                       .order_by(ReturnItem.created_at, ReturnItem.id)))


@bp.post("/returns/<key>/approve")
@permission_required("returns.manage")
def approve_return(key: str):
    def perform(actor, return_id, form):
        address = {field: form[f"address_{field}"].data or "" for field in flow.ADDRESS_FIELDS}
        authorization = flow.approve(actor, return_id, address, form.instructions.data or "",
                                     form.expires_in_days.data or 30)
        return (f"Return {authorization.rma_number} approved; the authorization expires "
                f"{when(authorization.expires_at, '%Y-%m-%d')}. The customer was emailed.", "success")
    return _act(key, ApproveForm(), perform)


@bp.post("/returns/<key>/reject")
@permission_required("returns.manage")
def reject_return(key: str):
    return _act_with_text(key, RejectForm(), flow.reject, "reason",
                          "Return {rma} rejected. The customer was emailed the reason.")


@bp.post("/returns/<key>/tracking")
@permission_required("returns.receive")
def track_return(key: str):
    def perform(actor, return_id, form):
        event = flow.record_tracking(actor, return_id, form.status.data or "", form.location.data or "",
                                     form.description.data or "", form.tracking_number.data or None)
        return f"Tracking event “{event.status}” recorded.", "success"
    return _act(key, TrackingForm(), perform)


@bp.post("/returns/<key>/receive")
@permission_required("returns.receive")
def receive_return(key: str):
    unknown = [k for k in request.form if k.startswith("condition_")]

    def perform(actor, return_id, form):
        conditions = {name.removeprefix("condition_"): form[name].data if name in form else request.form[name]
                      for name in unknown}
        outcome = flow.receive(actor, return_id, conditions)
        return outcome.message, "warning" if outcome.error else "success"
    return _act(key, lambda found: receive_form(_items(found)), perform)


@bp.post("/returns/<key>/process")
@permission_required("returns.manage")
def process_return(key: str):
    def make_form(found):
        items = _items(found)
        return process_form(items, found.currency)

    def perform(actor, return_id, form):
        # Amounts of items not in this return are the workflow's to refuse.
        amounts = {name.removeprefix("amount_"): (form[name].data if name in form else request.form[name])
                   for name in request.form if name.startswith("amount_")}
        amounts = {k: v for k, v in amounts.items() if v is not None}
        outcome = flow.process(actor, return_id, amounts, include_shipping=form.include_shipping.data == "yes")
        if hasattr(outcome, "refund"):
            # A refund the provider completes later moves the return when it does.
            prefix = "" if outcome.refund.status in refund_flow.OPEN else "Return processed. "
            return f"{prefix}{outcome.message}", "warning" if outcome.needs_attention else "success"
        return f"Return {outcome.rma_number} processed ({outcome.refund_method and flow.label(outcome.refund_method)}).", "success"
    return _act(key, make_form, perform)


@bp.post("/returns/<key>/close")
@permission_required("returns.manage")
def close_return(key: str):
    return _act_with_text(key, CloseForm(), flow.close, "notes", "Return {rma} closed.")


# --- create, from the order page -------------------------------------------------------------

def _render_new(order_key: str, *, status: int = 200, error: str | None = None, form: dict | None = None,
                posted: ConsoleForm | None = None):
    data = screens.new_return_form(order_key)
    if data is None:
        abort(404, f"No order with id or number “{order_key}”.")
    return make_response(render_template("returns/new.html", data=data, error=error, form=form or {},
                                         posted=posted, **_choices()), status)


@bp.get("/orders/<order_key>/returns/new")
@permission_required("returns.manage")
def new_return(order_key: str):
    return _render_new(order_key)


@bp.post("/orders/<order_key>/returns/new")
@permission_required("returns.manage")
def create_return(order_key: str):
    data = screens.new_return_form(order_key)
    if data is None:
        abort(404, f"No order with id or number “{order_key}”.")
    form = create_form(data.items)
    if form.validate():
        items = [(item.id, form[f"qty_{item.id}"].data or 0) for item in data.items]
        created, refused = attempt(lambda: flow.create_return(
            current_user, data.order.id, items, form.reason.data, form.notes.data or "",
            form.refund_method.data or "original_payment"), "so no return was created. Try again shortly.")
    else:
        created, refused = None, Refusal(form.error_message(), 422)
    if refused:
        return _render_new(order_key, status=refused.status, error=refused.message, form=form.posted_values(),
                           posted=form)
    total = created.refund_amount or Decimal("0")
    flash(f"Return {created.rma_number} created for order {data.order.order_number} "
          f"({total} {created.currency or ''} to refund once received). Approve it to send the customer the RMA.",
          "success")
    return redirect(url_for("returns.return_detail", key=created.rma_number), 303)
