"""Customers: the searchable list, the customer page and its panels, account actions."""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console import links
from console.forms import ChoiceField, ConsoleForm, TextField
from console.screens import customers
from console.permissions import permission_required
from console.views._listing import add_list_routes, vary
from console.workflows import WorkflowError
from console.workflows import customers as actions

bp = Blueprint("customers", __name__, url_prefix="/customers")
bp.context_processor(links.template_helpers)


class AccountForm(ConsoleForm):
    """The account panel's one form: Lock, Unlock and Sign out everywhere each post it
    (the duration counts for Lock only). Whether a reason is needed is the workflow's to say."""
    reason = TextField("Reason", max_length=500)
    duration = ChoiceField("Lock for", choices=list(actions.LOCK_DURATIONS), required=False)


add_list_routes(bp, customers.CUSTOMERS, "customers.view")


@bp.get("/<user_id>")
@permission_required("customers.view")
def customer_detail(user_id: str):
    summary = customers.summary(user_id)
    if not summary.found:
        abort(404, f"No customer with id {user_id}: neither auth_db nor user_db knows it.")
    if summary.staff:
        abort(404, f"{summary.email} is a staff account, not a customer. Staff accounts are managed on the Staff screen.")
    return render_template("customers/detail.html", summary=summary, panels=customers.PANELS.values(),
                           durations=actions.LOCK_DURATIONS)


def _render_panel(key: str, user_id: str, status: int = 200, message: str | None = None,
                  category: str = "success"):
    result = customers.load_panel(key, user_id)
    context = {"result": result, "user_id": user_id, "message": message, "category": category,
               "durations": actions.LOCK_DURATIONS}
    template = "customers/_panel.html" if request.htmx else "customers/panel_page.html"
    return vary(make_response(render_template(template, **context), status))


@bp.get("/<user_id>/panels/<panel>")
@permission_required("customers.view")
def customer_panel(user_id: str, panel: str):
    if panel not in customers.PANELS:
        abort(404, f"There is no {panel!r} panel.")
    # Staff accounts are not customers: their details (roles, MFA, sign-ins) are for
    # admins, on the Staff screen. Without auth_db this cannot be told, so it is refused.
    if not current_user.can("staff.manage") and customers.is_staff(user_id):
        abort(404, "This is a staff account, not a customer.")
    # 200 even when the panel's database is down: htmx swaps it and the panel says so.
    return _render_panel(panel, user_id)


def _account_action(user_id: str, perform):
    """Run an account action; answer htmx with the refreshed account panel, a plain
    form post with a flash and a redirect (or the refusal's error page)."""
    form = AccountForm()
    try:
        if not form.validate():
            raise WorkflowError(form.error_message(), 422)
        message = perform(current_user, form)
    except WorkflowError as exc:
        if request.htmx:
            return _render_panel("account", user_id, exc.status, exc.message, "danger")
        abort(exc.status, exc.message)
    if request.htmx:
        response = _render_panel("account", user_id, message=message)
        # The sessions panel listens for this and reloads itself.
        response.headers["HX-Trigger"] = "customer-changed"
        return response
    flash(message, "success")
    return redirect(url_for("customers.customer_detail", user_id=user_id), 303)


@bp.post("/<user_id>/lock")
@permission_required("customers.manage")
def lock_customer(user_id: str):
    def perform(actor, form):
        duration = form.duration.data or "forever"
        user = actions.lock_account(actor, user_id, form.reason.data, duration)
        how_long = actions.LOCK_DURATIONS[duration][0]
        return f"Locked {user.email} {'until unlocked' if duration == 'forever' else 'for ' + how_long}."
    return _account_action(user_id, perform)


@bp.post("/<user_id>/unlock")
@permission_required("customers.manage")
def unlock_customer(user_id: str):
    def perform(actor, form):
        user = actions.unlock_account(actor, user_id, form.reason.data)
        return f"Unlocked {user.email} and cleared its failed sign-ins."
    return _account_action(user_id, perform)


@bp.post("/<user_id>/revoke-sessions")
@permission_required("customers.manage")
def revoke_customer_sessions(user_id: str):
    def perform(actor, form):
        revoked = actions.revoke_sessions(actor, user_id, form.reason.data)
        return (f"Signed the customer out everywhere: {revoked.sessions} session(s) ended, "
                f"{revoked.refresh_tokens} refresh token(s) revoked.")
    return _account_action(user_id, perform)
