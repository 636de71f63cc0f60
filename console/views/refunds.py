"""Refunds: the list by status (with "needs attention" and Retry, and Refresh status for
refunds the payment service executes), the CSV export, and the Refund action of the
order page."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console import links
from console.forms import ConsoleForm, MoneyField, TextField
from console.permissions import permission_required
from console.screens import refunds as screens
from console.views._actions import attempt, attempt_form
from console.views._listing import add_list_routes, vary
from console.workflows import refund_providers
from console.workflows import refunds as flow

bp = Blueprint("refunds", __name__)
bp.context_processor(links.template_helpers)


class RefundForm(ConsoleForm):
    """The order page's goodwill or partial refund. The amount's currency is the
    payment's; whether it is still refundable is the workflow's to say."""
    amount = MoneyField("Amount", minimum=Decimal("0.01"))
    reason = TextField("Reason", max_length=300)
    key = TextField("Request key", max_length=flow.MAX_KEY_LENGTH)


class FollowUpForm(ConsoleForm):
    """Retry and Refresh status: only where to go back to."""
    next = TextField("Back to", max_length=2000)

@bp.app_context_processor
def order_panel_helpers():
    # The order page (another blueprint) includes refunds/_order_panel.html, which reads
    # what a refund's pending steps are called and whether it waits for the provider.
    return {"refund_step_labels": flow.STEP_LABELS, "refund_awaits_provider": flow.awaits_provider}


add_list_routes(bp, screens.REFUNDS, "refunds.view",
                lambda: {"statuses": screens.STATUS_FILTERS, "providers": refund_providers.names()}, url="/refunds")


def _follow_up(refund_id: str, step, unavailable: str, meanwhile: str, report):
    """Retry or Refresh status on one refund, then back to where it was asked from. A 409
    means it was done meanwhile: said with the ``meanwhile`` category, not as an error.
    ``report(outcome)`` gives the flash (message, category)."""
    form = FollowUpForm()
    if not form.validate():
        abort(422, form.error_message())
    back = links.local_path(form.next.data) or url_for("refunds.list_refunds")
    outcome, refused = attempt(lambda: step(current_user, refund_id), unavailable)
    if refused is None:
        flash(*report(outcome))
    elif refused.status == 409:
        flash(refused.message, meanwhile)
    else:
        abort(refused.status, refused.message)
    return redirect(back, 303)


def _retried(outcome) -> tuple[str, str]:
    if outcome.needs_attention:
        return (f"Retry stopped again: the {flow.STEP_LABELS[outcome.failed_step]} could not be updated "
                f"({outcome.error}). Nothing was done twice; retry once the database is back.", "warning")
    r = outcome.refund
    return (f"Refund of {r.amount} {r.currency} ({r.status}): every remaining step is done, "
            "nothing was refunded twice.", "success")


def _refreshed(outcome) -> tuple[str, str]:
    r = outcome.refund
    category = "warning" if outcome.needs_attention or r.status == flow.STATUSES.FAILED else (
        "info" if r.status in flow.OPEN else "success")
    return outcome.message, category


@bp.post("/refunds/<refund_id>/retry")
@permission_required("refunds.issue")
def retry_refund(refund_id: str):
    # A 409: done meanwhile (another retry, or a double click).
    return _follow_up(refund_id, flow.retry_refund, "so the refund could not be retried. Try again shortly.",
                      "warning", _retried)


@bp.post("/refunds/<refund_id>/sync")
@permission_required("refunds.issue")
def sync_refund(refund_id: str):
    """Refresh status: follow a refund the payment service executes. A 409: followed
    meanwhile (another refresh, or the cron job)."""
    return _follow_up(refund_id, flow.sync_refund,
                      "so the refund's status could not be refreshed. Try again shortly.", "info", _refreshed)


def _order_or_404(order_id: str):
    order = screens.order_by_id(order_id)
    if order is None:
        abort(404, f"No order with id “{order_id}”.")
    return order


@bp.post("/orders/<order_id>/refunds")
@permission_required("refunds.issue")
def refund_order(order_id: str):
    """A goodwill or partial refund. htmx: the panel again with the refusal (4xx), or a
    redirect to the refreshed order page; a plain post: a flash and the order page."""
    order = _order_or_404(order_id)
    # Read now: once the money step has committed, order_db may be gone, and nothing
    # after that step may fail the request (it would hide a refund that happened).
    order_key, order_number = order.id, order.order_number
    form = RefundForm()
    form.amount.currency = order.currency
    outcome, refused = attempt_form(form, lambda: flow.refund_order(
            current_user, order_key, form.amount.data, key=form.key.data, reason=form.reason.data),
            "so nothing was refunded. Try again shortly.")
    if refused:
        if request.htmx:
            # A form error is shown next to its field; a refusal above the form.
            error = "Nothing was refunded: correct the form below." if form.errors else refused.message
            panel = render_template("refunds/_order_panel.html", order=order, refunds_panel=screens.order_refunds(order),
                                    error=error, form=form.posted_values(), refund_form=form)
            return vary(make_response(panel, refused.status))
        abort(refused.status, refused.message)
    flash(outcome.message, "warning" if outcome.needs_attention or not outcome.created else "success")
    if outcome.needs_attention:
        # The refund and the step still to do, on a page that needs payment_db only.
        target = url_for("refunds.list_refunds", status="needs_attention")
    else:
        target = links.order_url(order_number or order_key)
    if request.htmx:
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return vary(response)
    return redirect(target, 303)
