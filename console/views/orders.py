"""Orders: the filtered list, the CSV export, the order page and its actions."""
from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl

from flask import (Blueprint, abort, current_app, flash, make_response, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BuildError

from console import pdf
from console.exports import csv_response
from console.extensions import db
from console.filters import FilterError
from console.forms import (NAME_MAX, ChoiceField, ConsoleForm, DecimalNumberField, IdListField, NoteField, TextField,
                           WholeNumberField)
from console.lookups import database
from console.models.order import Order
from console.permissions import forbidden_message, permission_required
from console.screens import documents, orders
from console.screens.keyset import capped_count, ordered
from console.screens.lists import ExportPlan
from console.views._actions import attempt, attempt_form
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
                lambda: {"statuses": actions.ORDER_STATUSES, "payment_statuses": orders.PAYMENT_STATUSES,
                         "bulk_max": actions.MAX_BULK, "slips_max": documents.MAX_SLIPS})


def order_or_404(key: str):
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
    return _render_detail(order_or_404(key))


def _act(key: str, form_class, perform):
    """Run one action on an order with its form. htmx gets the refreshed order body with
    the outcome (the refusal's 4xx status when refused, the form's messages next to its
    fields); a plain form post gets a flash and a redirect, or the page with the refusal
    and its status."""
    order = order_or_404(key)
    form = form_class()
    done, refused = attempt_form(form, lambda: perform(current_user, order.id, form))
    if refused is None:
        message, category = done
        if request.htmx:
            return _render_detail(order_or_404(order.id), notice=(category, message), partial=True)
        flash(message, category)
        return redirect(url_for("orders.order_detail", key=order.order_number or order.id), 303)
    order = order_or_404(order.id)
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


# --- bulk actions on the list ---------------------------------------------------------------

# What each bulk action needs, besides seeing orders.
BULK_ACTIONS = {"processing": "orders.manage", "export": "orders.view", "slips": "orders.slips"}
# The most orders each action takes at once.
BULK_LIMITS = {"processing": actions.MAX_BULK, "export": actions.MAX_BULK, "slips": documents.MAX_SLIPS}
BULK_REASON = "Bulk action on the orders list"


class BulkForm(ConsoleForm):
    form_name = "bulk"
    action = ChoiceField("Action", choices=list(BULK_ACTIONS))
    scope = ChoiceField("Which orders", choices=["selected", "matching"])
    order_id = IdListField("Selected orders", maximum=actions.MAX_BULK, what="orders")
    filters = TextField("Filters", max_length=2000)
    count = WholeNumberField("Orders matching", required=False, maximum=10_000_000)


def _selected_ids(ids: list[str]) -> list[str]:
    """The ticked orders, each checked to exist (400 naming those that don't)."""
    if not ids:
        abort(400, "Tick at least one order in the list, or choose all the orders matching the filters.")
    with database("order"):
        known = set(db.session.scalars(select(Order.id).where(Order.id.in_(ids))))
    unknown = [i for i in ids if i not in known]
    if unknown:
        abort(400, f"No order has the id {', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''}. "
                   "Reload the list and tick the orders again.")
    return ids


def _matching_ids(query: str, expected: int | None, limit: int) -> list[str]:
    """The orders the list's filters select, in the list's order, at most ``limit``: more
    is refused naming the count and the bound, and so is a count that changed since the
    page showed it (the confirmation named that count)."""
    args = MultiDict(parse_qsl(query, keep_blank_values=True))
    filters, errors = orders.OrderFilters.parse(args)
    ordering = orders.ORDERS.ordering(args.get("sort"), errors)
    if errors:
        abort(400, " ".join(errors))
    try:
        stmt = orders.orders_query(filters)
    except FilterError as exc:
        abort(400, str(exc))
    with database("order"):
        ids = list(db.session.scalars(ordered(stmt.with_only_columns(Order.id), ordering.sort.column, Order.id,
                                              ordering.descending).limit(limit + 1)))
        if len(ids) > limit:
            total, capped = capped_count(stmt)
            abort(409, f"{'More than ' if capped else ''}{total:,} orders match these filters; this action takes "
                       f"at most {limit:,} at once. Narrow the filters (a status, a date range) and try again.")
    if expected is not None and expected != len(ids):
        abort(409, f"{len(ids):,} orders match these filters now, not the {expected:,} the page showed. "
                   "Look at the list again before acting on all of them.")
    if not ids:
        abort(400, "No order matches these filters.")
    return ids


@bp.post("/bulk")
@permission_required("orders.view")
def bulk():
    """One action on the ticked orders, or on all the orders matching the list's filters
    (bounded): mark them processing, export them as CSV, or print their packing slips."""
    form = BulkForm()
    if not form.validate():
        abort(400, form.error_message())
    action = form.action.data
    needed = BULK_ACTIONS[action]
    if not current_user.can(needed):
        abort(403, forbidden_message(needed))
    limit = BULK_LIMITS[action]
    if form.scope.data == "matching":
        ids = _matching_ids(form.filters.data or "", form.count.data, limit)
    else:
        if len(form.order_id.data) > limit:
            abort(409, f"{len(form.order_id.data):,} orders are ticked; this action takes at most {limit:,} at once.")
        ids = _selected_ids(form.order_id.data)
    if action == "export":
        plan = orders.ORDERS.export_plan(orders.OrderFilters(), orders.ORDERS.ordering(None))
        plan = ExportPlan(plan.stmt.where(Order.id.in_(ids)), plan.down)
        return csv_response("orders-selected", list(orders.ORDERS.export_header), orders.ORDERS.export_rows(plan))
    if action == "slips":
        slips = documents.packing_slips(ids)
        return pdf.download(pdf.packing_slips_pdf(slips, documents.seller().name), f"packing-slips-{len(slips)}")
    done, refused = attempt(lambda: actions.bulk_transition(current_user, ids, "processing", BULK_REASON))
    if refused:
        abort(refused.status, refused.message)
    return render_template("orders/bulk_result.html", outcome=done, action="Mark processing",
                           slips_allowed=current_user.can("orders.slips"))
