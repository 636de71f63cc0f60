"""Orders: the filtered list, the CSV export, the order page and its actions."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import (Blueprint, abort, current_app, flash, make_response, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from werkzeug.routing import BuildError

from console.screens import orders
from console.permissions import permission_required
from console.views._actions import attempt
from console.views._listing import add_list_routes, vary
from console.workflows import WorkflowError
from console.workflows import orders as actions

bp = Blueprint("orders", __name__, url_prefix="/orders")

@bp.app_template_global()
def product_url(product_id: str | None) -> str | None:
    """The product's own screen when one is registered, else None (shown unlinked)."""
    if product_id and "inventory.product_detail" in current_app.view_functions:
        try:
            return url_for("inventory.product_detail", product_id=product_id)
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


def _render_detail(order, *, notice: tuple[str, str] | None = None, status: int = 200, partial: bool = False):
    data = orders.order_page(order)
    context = {
        "data": data, "notice": notice, "actions": actions,
        # The names the returns and refunds panels expect.
        "order": data.order, "items": data.items, "payment": data.payment,
    }
    template = "orders/_detail_body.html" if partial else "orders/detail.html"
    return vary(make_response(render_template(template, **context), status))


@bp.get("/<key>")
@permission_required("orders.view")
def order_detail(key: str):
    return _render_detail(_order_or_404(key))


def _act(key: str, perform):
    """Run one action on an order. htmx gets the refreshed order body with the outcome
    (the refusal's 4xx status when refused); a plain form post gets a flash and a
    redirect, or the page with the refusal and its status."""
    order = _order_or_404(key)
    done, refused = attempt(lambda: perform(current_user, order.id))
    if refused is None:
        message, category = done
        if request.htmx:
            return _render_detail(_order_or_404(order.id), notice=(category, message), partial=True)
        flash(message, category)
        return redirect(url_for("orders.order_detail", key=order.order_number or order.id), 303)
    order = _order_or_404(order.id)
    if request.htmx:
        return _render_detail(order, notice=("danger", refused.message), status=refused.status, partial=True)
    flash(refused.message, "danger")
    return _render_detail(order, status=refused.status)


@bp.post("/<key>/status")
@permission_required("orders.manage")
def change_status(key: str):
    new_status = request.form.get("status", "")

    def perform(actor, order_id):
        order = actions.transition(actor, order_id, new_status, request.form.get("reason"))
        return f"Order {order.order_number} is now {order.status}.", "success"
    return _act(key, perform)


@bp.post("/<key>/cancel")
@permission_required("orders.manage")
def cancel_order(key: str):
    def perform(actor, order_id):
        outcome = actions.cancel(actor, order_id, request.form.get("reason"))
        return outcome.message, "success" if outcome.complete else "warning"
    return _act(key, perform)


def _weight(raw: str | None) -> Decimal | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise WorkflowError(f"Weight “{text}” is not a number of kilograms such as 1.25.", 422) from None
    if not value.is_finite():
        raise WorkflowError(f"Weight “{text}” is not a number of kilograms such as 1.25.", 422)
    return value.quantize(Decimal("0.01"))


@bp.post("/<key>/ship")
@permission_required("orders.ship")
def ship_order(key: str):
    def perform(actor, order_id):
        shipment = actions.mark_shipped(
            actor, order_id, request.form.get("carrier", ""), request.form.get("service_type", ""),
            request.form.get("tracking_number", ""), request.form.get("reason"),
            weight=_weight(request.form.get("weight")))
        return f"Marked shipped: tracking number {shipment.tracking_number}. The customer will be emailed.", "success"
    return _act(key, perform)


@bp.post("/<key>/notes")
@permission_required("orders.manage")
def add_note(key: str):
    internal = request.form.get("visibility", "internal") != "customer"

    def perform(actor, order_id):
        actions.add_note(actor, order_id, request.form.get("note"), is_internal=internal)
        return ("Internal note added." if internal else "Note for the customer added."), "success"
    return _act(key, perform)
