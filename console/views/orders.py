"""Orders: the filtered list, the CSV export, the order page and its actions."""
from __future__ import annotations

from decimal import Decimal

from flask import (Blueprint, abort, current_app, flash, make_response, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from werkzeug.routing import BuildError

from console.forms import NAME_MAX, ChoiceField, ConsoleForm, DecimalNumberField, NoteField, TextField
from console.permissions import permission_required
from console.screens import orders
from console.views._actions import Refusal, attempt
from console.views._listing import add_list_routes, vary
from console.workflows import orders as actions

bp = Blueprint("orders", __name__, url_prefix="/orders")

# The forms of the order page. They parse and bound what was typed; whether a value
# is required or allowed now is the workflow's to say (console/workflows/orders.py).
# order_status_history.reason and the history notes: one line.
REASON_MAX = 500


class StatusForm(ConsoleForm):
    form_name = "status"
    status = ChoiceField("Next step", choices=actions.ORDER_STATUSES)
    reason = TextField("Reason", max_length=REASON_MAX)


class CancelForm(ConsoleForm):
    form_name = "cancel"
    reason = TextField("Reason", max_length=REASON_MAX)


class ShipForm(ConsoleForm):
    form_name = "ship"
    carrier = TextField("Carrier", max_length=NAME_MAX)
    service_type = ChoiceField("Service", choices=actions.SERVICE_TYPES)
    tracking_number = TextField("Tracking number", max_length=40)
    weight = DecimalNumberField("Weight (kg)", required=False, places=2, maximum=Decimal("9999"),
                                what="a number of kilograms")
    reason = TextField("Note", max_length=REASON_MAX)


class NoteForm(ConsoleForm):
    form_name = "note"
    note = NoteField("Note")
    visibility = ChoiceField("Who sees it", choices=["internal", "customer"], required=False)

@bp.app_template_global()
def product_url(product_id: str | None) -> str | None:
    """The product's own screen when one is registered, else None (shown unlinked)."""
    if product_id and "products.product_detail" in current_app.view_functions:
        try:
            return url_for("products.product_detail", key=product_id)
        except BuildError:
            return None
    return None


add_list_routes(bp, orders.ORDERS, "orders.view",
                lambda: {"statuses": actions.ORDER_STATUSES, "payment_statuses": orders.PAYMENT_STATUSES})


def _order_or_404(key: str):
    order = orders.find_order(key)
    if order is None:
        abort(404, f"No order with number or id “{key}”. Search the orders list instead.")
    return order


def _render_detail(order, *, notice: tuple[str, str] | None = None, status: int = 200, partial: bool = False,
                   form: ConsoleForm | None = None):
    data = orders.order_page(order)
    context = {
        "data": data, "notice": notice, "actions": actions, "posted": form, "order": data.order,
    }
    template = "orders/_detail_body.html" if partial else "orders/detail.html"
    return vary(make_response(render_template(template, **context), status))


@bp.get("/<key>")
@permission_required("orders.view")
def order_detail(key: str):
    return _render_detail(_order_or_404(key))


def _act(key: str, form_class, perform):
    """Run one action on an order with its form. htmx gets the refreshed order body with
    the outcome (the refusal's 4xx status when refused, the form's messages next to its
    fields); a plain form post gets a flash and a redirect, or the page with the refusal
    and its status."""
    order = _order_or_404(key)
    form = form_class()
    if form.validate():
        done, refused = attempt(lambda: perform(current_user, order.id, form))
    else:
        done, refused = None, Refusal(form.error_message(), 422)
    if refused is None:
        message, category = done
        if request.htmx:
            return _render_detail(_order_or_404(order.id), notice=(category, message), partial=True)
        flash(message, category)
        return redirect(url_for("orders.order_detail", key=order.order_number or order.id), 303)
    order = _order_or_404(order.id)
    if request.htmx:
        return _render_detail(order, notice=("danger", refused.message), status=refused.status, partial=True,
                              form=form)
    flash(refused.message, "danger")
    return _render_detail(order, status=refused.status, form=form)


@bp.post("/<key>/status")
@permission_required("orders.manage")
def change_status(key: str):
    def perform(actor, order_id, form):
        order = actions.transition(actor, order_id, form.status.data, form.reason.data)
        return f"Order {order.order_number} is now {order.status}.", "success"
    return _act(key, StatusForm, perform)


@bp.post("/<key>/cancel")
@permission_required("orders.manage")
def cancel_order(key: str):
    def perform(actor, order_id, form):
        outcome = actions.cancel(actor, order_id, form.reason.data)
        return outcome.message, "success" if outcome.complete else "warning"
    return _act(key, CancelForm, perform)


@bp.post("/<key>/ship")
@permission_required("orders.ship")
def ship_order(key: str):
    def perform(actor, order_id, form):
        shipment = actions.mark_shipped(actor, order_id, form.carrier.data, form.service_type.data,
                                        form.tracking_number.data, form.reason.data, weight=form.weight.data)
        return f"Marked shipped: tracking number {shipment.tracking_number}. The customer will be emailed.", "success"
    return _act(key, ShipForm, perform)


@bp.post("/<key>/notes")
@permission_required("orders.manage")
def add_note(key: str):
    def perform(actor, order_id, form):
        internal = form.visibility.data != "customer"
        actions.add_note(actor, order_id, form.note.data, is_internal=internal)
        return ("Internal note added." if internal else "Note for the customer added."), "success"
    return _act(key, NoteForm, perform)
