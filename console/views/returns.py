"""Returns (RMAs): the filtered list, the CSV export, the return page and its actions,
and the "Create return" form reached from the order page."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console import links
from console.screens import returns as screens
from console.permissions import permission_required
from console.views._actions import attempt
from console.views._listing import add_list_routes
from console.workflows import returns as flow

bp = Blueprint("returns", __name__)
bp.context_processor(links.template_helpers)

@bp.app_context_processor
def order_panel_helpers():
    # The order page (another blueprint) includes returns/_order_panel.html, which
    # calls this to load the order's returns.
    return {"order_returns_panel": screens.order_returns}


def _choices() -> dict:
    return {"statuses": flow.STATUSES, "reasons": flow.REASONS, "refund_methods": flow.REFUND_METHODS,
            "label": flow.label}


add_list_routes(bp, screens.RETURNS, "returns.view", _choices, url="/returns")


def _return_or_404(key: str):
    found = screens.find(key)
    if found is None:
        abort(404, f"No return with id or RMA number “{key}”. Search the returns list instead.")
    return found


def _render_detail(found, *, status: int = 200, error: str | None = None, form: dict | None = None):
    page = screens.return_page(found)
    return make_response(render_template("returns/detail.html", page=page, error=error, form=form or {},
                                         conditions=flow.CONDITIONS,
                                         default_address=screens.usual_return_address() if page.can("approved") else {},
                                         **_choices()), status)


@bp.get("/returns/<key>")
@permission_required("returns.view")
def return_detail(key: str):
    return _render_detail(_return_or_404(key))


def _act(key: str, perform):
    """Run one action on a return: a flash and a redirect when done; the page again
    with the refusal (and its 4xx status, or 503 naming the database) when not."""
    found = _return_or_404(key)
    done, refused = attempt(lambda: perform(current_user, found.id))
    if refused is None:
        flash(*done)
        return redirect(url_for("returns.return_detail", key=found.rma_number or found.id), 303)
    return _render_detail(_return_or_404(found.id), status=refused.status, error=refused.message,
                          form=request.form.to_dict())


def _act_with_text(key: str, change, field: str, message: str):
    """An action taking one text field, whose message names the return (``{rma}``)."""
    def perform(actor, return_id):
        changed = change(actor, return_id, request.form.get(field, ""))
        return message.format(rma=changed.rma_number), "success"
    return _act(key, perform)


@bp.post("/returns/<key>/approve")
@permission_required("returns.manage")
def approve_return(key: str):
    form = request.form
    address = {field: form.get(f"address_{field}", "") for field in flow.ADDRESS_FIELDS}

    def perform(actor, return_id):
        authorization = flow.approve(actor, return_id, address, form.get("instructions", ""),
                                     form.get("expires_in_days") or 30)
        return (f"Return {authorization.rma_number} approved; the authorization expires "
                f"{authorization.expires_at:%Y-%m-%d}. The customer was emailed.", "success")
    return _act(key, perform)


@bp.post("/returns/<key>/reject")
@permission_required("returns.manage")
def reject_return(key: str):
    return _act_with_text(key, flow.reject, "reason", "Return {rma} rejected. The customer was emailed the reason.")


@bp.post("/returns/<key>/tracking")
@permission_required("returns.receive")
def track_return(key: str):
    form = request.form

    def perform(actor, return_id):
        event = flow.record_tracking(actor, return_id, form.get("status", ""), form.get("location", ""),
                                     form.get("description", ""), form.get("tracking_number") or None)
        return f"Tracking event “{event.status}” recorded.", "success"
    return _act(key, perform)


@bp.post("/returns/<key>/receive")
@permission_required("returns.receive")
def receive_return(key: str):
    conditions = {k.removeprefix("condition_"): v for k, v in request.form.items() if k.startswith("condition_")}

    def perform(actor, return_id):
        outcome = flow.receive(actor, return_id, conditions)
        return outcome.message, "warning" if outcome.error else "success"
    return _act(key, perform)


@bp.post("/returns/<key>/process")
@permission_required("returns.manage")
def process_return(key: str):
    amounts = {k.removeprefix("amount_"): v for k, v in request.form.items() if k.startswith("amount_")}

    def perform(actor, return_id):
        outcome = flow.process(actor, return_id, amounts)
        if hasattr(outcome, "refund"):
            # A refund the provider completes later moves the return when it does.
            prefix = "" if outcome.refund.status in ("PENDING", "PROCESSING") else "Return processed. "
            return f"{prefix}{outcome.message}", "warning" if outcome.needs_attention else "success"
        return f"Return {outcome.rma_number} processed ({outcome.refund_method and flow.label(outcome.refund_method)}).", "success"
    return _act(key, perform)


@bp.post("/returns/<key>/close")
@permission_required("returns.manage")
def close_return(key: str):
    return _act_with_text(key, flow.close, "notes", "Return {rma} closed.")


# --- create, from the order page -------------------------------------------------------------

def _render_new(order_key: str, *, status: int = 200, error: str | None = None, form: dict | None = None):
    data = screens.new_return_form(order_key)
    if data is None:
        abort(404, f"No order with id or number “{order_key}”.")
    return make_response(render_template("returns/new.html", data=data, error=error, form=form or {},
                                         **_choices()), status)


@bp.get("/orders/<order_key>/returns/new")
@permission_required("returns.manage")
def new_return(order_key: str):
    return _render_new(order_key)


@bp.post("/orders/<order_key>/returns/new")
@permission_required("returns.manage")
def create_return(order_key: str):
    form = request.form
    data = screens.new_return_form(order_key)
    if data is None:
        abort(404, f"No order with id or number “{order_key}”.")
    items = [(item.id, form.get(f"qty_{item.id}") or 0) for item in data.items]
    created, refused = attempt(lambda: flow.create_return(
        current_user, data.order.id, items, form.get("reason", ""), form.get("notes", ""),
        form.get("refund_method", "")), "so no return was created. Try again shortly.")
    if refused:
        return _render_new(order_key, status=refused.status, error=refused.message, form=form.to_dict())
    total = created.refund_amount or Decimal("0")
    flash(f"Return {created.rma_number} created for order {data.order.order_number} "
          f"({total} {created.currency or ''} to refund once received). Approve it to send the customer the RMA.",
          "success")
    return redirect(url_for("returns.return_detail", key=created.rma_number), 303)
