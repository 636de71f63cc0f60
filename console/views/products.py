"""Products and stock: the product page and its actions (adjust stock, price, status,
visibility, notify waiting customers), bulk stock updates from CSV (dry run, apply,
result)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console import links
from console.exports import csv_response
from console.forms import ChoiceField, ConsoleForm, MoneyField, NoteField, TextField, WholeNumberField
from console.lookups import DatabaseUnavailable
from console.permissions import permission_required
from console.screens import products as screens
from console.screens.stock_alerts import ALERTS
from console.screens.stock_alerts import STATES as ALERT_STATES
from console.screens.product_list import PRODUCTS, STATUSES, STOCK_LEVELS, category_choices
from console.views._actions import attempt, attempt_form, dry_run_or_404
from console.views._listing import add_list_routes
from console.workflows import WorkflowError, bulk_stock, catalog, stock_alerts
from console.workflows import inventory as stock

bp = Blueprint("products", __name__, url_prefix="/products")
bp.context_processor(links.template_helpers)

add_list_routes(bp, PRODUCTS, "inventory.view", lambda: {
    "statuses": STATUSES, "stock_levels": STOCK_LEVELS, "categories": category_choices(),
    "threshold": stock.low_stock_threshold(), "stock_labels": {
        "in": f"in stock (> {stock.low_stock_threshold()})", "low": f"low stock (≤ {stock.low_stock_threshold()})",
        "out": "out of stock (0)"}})


add_list_routes(bp, ALERTS, "inventory.alerts", lambda: {"states": ALERT_STATES}, url="/alerts")


@bp.get("/low-stock")
@permission_required("inventory.view")
def low_stock():
    """The saved low-stock view: available at or below the threshold, lowest first."""
    return redirect(url_for("products.list_products", stock="low"), 302)


def _product_or_404(key: str):
    try:
        product = screens.find_product(key)
    except DatabaseUnavailable:
        abort(503, "product_db is unavailable, and the products live there. Try again shortly.")
    if product is None:
        abort(404, f"No product with id or SKU “{key[:80]}”. Search the products list instead.")
    return product


def _render_detail(product, *, notice=None, status: int = 200, confirm=None, form=None):
    page = screens.product_page(product)
    body = render_template("products/detail.html", page=page, p=page.product, notice=notice, confirm=confirm,
                           form=form or {}, reasons=stock.REASONS, statuses=catalog.STATUSES,
                           steps=catalog.STATUS_STEPS.get(page.product.status, catalog.STATUSES),
                           customers=screens.customers_of([r.user_id for r in page.reviews]
                                                          + [q.user_id for q in page.questions]))
    return make_response(body, status)


@bp.get("/<key>")
@permission_required("inventory.view")
def product_detail(key: str):
    return _render_detail(_product_or_404(key))


# The forms of the product page. They parse and bound what was typed; whether the change
# is allowed now is the workflow's to say (console/workflows/inventory.py, catalog.py).

class AdjustForm(ConsoleForm):
    mode = ChoiceField("Change", choices=stock.MODES)
    quantity = WholeNumberField("Units", maximum=stock.MAX_QUANTITY, what="a number of units")
    variant_id = TextField("Variant", max_length=64)
    reason = ChoiceField("Reason", choices=list(stock.REASONS))
    location = TextField("Location", max_length=stock.MAX_LOCATION)
    note = NoteField("Note", max_length=stock.MAX_NOTE)


class PriceForm(ConsoleForm):
    variant_id = TextField("For", max_length=64)
    price = MoneyField("New price")
    compare_at_price = MoneyField("Compare at", required=False)
    reason = TextField("Reason", max_length=catalog.MAX_REASON)
    confirmed = ChoiceField("Confirmed", choices=["yes"], required=False)


class StatusForm(ConsoleForm):
    status = ChoiceField("Status", choices=catalog.STATUSES)
    reason = TextField("Reason", max_length=catalog.MAX_REASON)
    confirmed = ChoiceField("Confirmed", choices=["yes"], required=False)


class VisibilityForm(ConsoleForm):
    visible = ChoiceField("Visible", choices=["yes", "no"])
    reason = TextField("Reason", max_length=catalog.MAX_REASON)


class NotifyForm(ConsoleForm):
    """The CSRF token only."""


def _act(key: str, form_class, perform):
    """Run one action on a product with its form: a flash and back to its page when
    done; the page again with the refusal (its 4xx, and what was typed) when not.
    ``perform`` may answer ("confirm", question) for an action that needs a second click."""
    product = _product_or_404(key)
    form = form_class()
    done, refused = attempt_form(form, lambda: perform(current_user, product.id, form))
    if refused is None:
        message, category = done
        if category == "confirm":  # the question (NeedsConfirmation), answered by posting the form again
            return _render_detail(product, confirm=message, status=409, form=request.form.to_dict())
        flash(message, category)
        return redirect(url_for("products.product_detail", key=product.sku or product.id), 303)
    return _render_detail(product, notice=("danger", refused.message), status=refused.status,
                          form=request.form.to_dict())


@bp.post("/<key>/stock")
@permission_required("inventory.manage")
def adjust(key: str):
    def perform(actor, product_id, form):
        change = stock.adjust_stock(actor, product_id, mode=form.mode.data, quantity=form.quantity.data,
                                    reason=form.reason.data, note=form.note.data, location=form.location.data,
                                    variant_id=form.variant_id.data or None)
        message = (f"Stock of {change.sku}: {change.before.get('quantity')} → {change.quantity} on hand, "
                   f"{change.available} available. Recorded in the history.")
        if change.was_sold_out:
            message += " It was sold out: customers waiting for it can be notified below."
        return message, "success"
    return _act(key, AdjustForm, perform)


@bp.post("/<key>/price")
@permission_required("catalog.prices")
def change_price(key: str):
    def perform(actor, product_id, form):
        try:
            change = catalog.change_price(actor, product_id, price=form.price.data,
                                          compare_at_price=form.compare_at_price.data, reason=form.reason.data,
                                          variant_id=form.variant_id.data or None,
                                          confirmed=form.confirmed.data == "yes")
        except catalog.NeedsConfirmation as exc:
            return exc, "confirm"
        target = change.variant.sku if change.variant is not None else change.product.sku
        return (f"Price of {target}: {change.before['price']} → {change.after['price']}. "
                "Recorded in the price history."), "success"
    return _act(key, PriceForm, perform)


@bp.post("/<key>/status")
@permission_required("catalog.status")
def change_status(key: str):
    def perform(actor, product_id, form):
        try:
            product = catalog.change_status(actor, product_id, form.status.data, reason=form.reason.data,
                                            confirmed=form.confirmed.data == "yes")
        except catalog.NeedsConfirmation as exc:
            return exc, "confirm"
        return f"{product.sku} is now {product.status}.", "success"
    return _act(key, StatusForm, perform)


@bp.post("/<key>/visibility")
@permission_required("catalog.status")
def change_visibility(key: str):
    def perform(actor, product_id, form):
        product = catalog.set_visibility(actor, product_id, form.visible.data == "yes", reason=form.reason.data)
        return f"{product.sku} is now {'visible in the shop' if product.is_visible else 'hidden from the shop'}.", "success"
    return _act(key, VisibilityForm, perform)


@bp.post("/<key>/alerts/notify")
@permission_required("inventory.alerts")
def notify_alerts(key: str):
    def perform(actor, product_id, form):
        done = stock_alerts.notify_waiting(actor, product_id)
        message = f"Queued a back-in-stock email to {done.queued} waiting customer{'s' if done.queued != 1 else ''}."
        if done.still_waiting:
            message += f" {done.still_waiting} wait for a variant that is still out of stock."
        return message, "success"
    return _act(key, NotifyForm, perform)


# --- bulk stock updates ---------------------------------------------------------------------

SHOWN_ROWS = 500  # rows of a dry run shown on the page; the CSV has all of them


@bp.get("/bulk")
@permission_required("inventory.bulk")
def bulk_upload():
    return render_template("products/bulk.html", reasons=stock.REASONS, max_mb=bulk_stock.MAX_BYTES // 1024 // 1024,
                           max_rows=bulk_stock.MAX_ROWS, form={}, error=None)


class BulkForm(ConsoleForm):
    reason = ChoiceField("Reason", choices=list(stock.REASONS))
    note = NoteField("Note", max_length=stock.MAX_NOTE)


class ApplyForm(ConsoleForm):
    """The CSRF token only: Apply works from the dry run's own record."""


@bp.post("/bulk")
@permission_required("inventory.bulk")
def bulk_preview_create():
    form = BulkForm()
    upload = request.files.get("file")

    def perform():
        if not form.validate():
            raise WorkflowError(form.error_message(), 422)
        # Refuse a huge upload before reading it all.
        if (request.content_length or 0) > bulk_stock.MAX_BYTES + 64 * 1024:
            raise bulk_stock.BulkFileError(
                f"The file is larger than {bulk_stock.MAX_BYTES // 1024 // 1024} MB. Split it into smaller files.")
        if upload is None or not upload.filename:
            raise WorkflowError("Choose a CSV file to upload.", 422)
        data = upload.stream.read(bulk_stock.MAX_BYTES + 1)
        return bulk_stock.preview(current_user, data, upload.filename, reason=form.reason.data, note=form.note.data)
    result, refused = attempt(perform, "so the file could not be checked. Try again shortly.")
    if refused:
        body = render_template("products/bulk.html", reasons=stock.REASONS, form=request.form.to_dict(),
                               error=refused.message,
                               max_mb=bulk_stock.MAX_BYTES // 1024 // 1024, max_rows=bulk_stock.MAX_ROWS)
        return make_response(body, refused.status)
    return redirect(url_for("products.bulk_preview", preview_id=result.id), 303)


def _preview_or_404(preview_id: str):
    return dry_run_or_404(bulk_stock.load_preview, preview_id)


def _render_preview(recorded, *, error=None, status=200):
    show = request.args.get("show", "problems" if recorded.problems else "changes")
    rows = {"problems": recorded.problems, "changes": recorded.changes}.get(show, recorded.rows)
    return make_response(render_template("products/bulk_preview.html", preview=recorded, rows=rows[:SHOWN_ROWS],
                                         more=max(0, len(rows) - SHOWN_ROWS), show=show, error=error,
                                         reasons=stock.REASONS), status)


@bp.get("/bulk/<preview_id>")
@permission_required("inventory.bulk")
def bulk_preview(preview_id: str):
    return _render_preview(_preview_or_404(preview_id))


@bp.post("/bulk/<preview_id>/apply")
@permission_required("inventory.bulk")
def bulk_apply(preview_id: str):
    recorded = _preview_or_404(preview_id)
    form = ApplyForm()
    done, refused = attempt_form(form, lambda: bulk_stock.apply(current_user, recorded.id))
    if refused:
        return _render_preview(_preview_or_404(preview_id), error=refused.message, status=refused.status)
    flash(f"Applied: {done.changed} product{'s' if done.changed != 1 else ''} changed in one go"
          + (f", {done.unchanged} row(s) already at their value" if done.unchanged else "")
          + ". Each change is in its product's history; download the result below.", "success")
    return redirect(url_for("products.bulk_preview", preview_id=recorded.id, show="changes"), 303)


@bp.get("/bulk/<preview_id>/result.csv")
@permission_required("inventory.bulk")
def bulk_result(preview_id: str):
    recorded = _preview_or_404(preview_id)
    stem = "stock-update-result" if recorded.applied else "stock-update-dry-run"
    return csv_response(stem, bulk_stock.RESULT_HEADER, bulk_stock.result_rows(recorded))
