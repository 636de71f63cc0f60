"""The Staff screen (admins): staff members, their roles, locks and MFA, changed inline."""
from __future__ import annotations

import json

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console.screens import staff as staff_list
from console.errors import render_error
from console.permissions import STAFF_ROLES, permission_required
from console.views._listing import add_list_routes, vary
from console.workflows import WorkflowError
from console.workflows import staff as actions

bp = Blueprint("staff", __name__, url_prefix="/staff")


add_list_routes(bp, staff_list.STAFF, "staff.manage",
                lambda: {"roles": STAFF_ROLES, "states": staff_list.STATES})


@bp.post("/grant")
@permission_required("staff.manage")
def add_staff():
    """Give a staff role to an existing account by email (plain form post)."""
    role = request.form.get("role", "")
    try:
        user = actions.grant_role_by_email(current_user, request.form.get("email", ""), role)
    except WorkflowError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("staff.list_staff"), 303)
    flash(f"Granted the {role} role to {user.email}.", "success")
    return redirect(url_for("staff.list_staff", q=user.email), 303)


def _row_action(user_id: str, perform):
    """Run one row action. htmx gets the refreshed row and an HX-Trigger carrying the
    message (static/console.js shows it); a refusal goes to the message area instead
    of the row. A plain form post gets a flash and a redirect."""
    try:
        message = perform(current_user)
    except WorkflowError as exc:
        if not request.htmx:
            flash(exc.message, "danger")
            return redirect(url_for("staff.list_staff"), 303)
        body, status = render_error(exc.status, exc.message, "Not done")
        response = make_response(body, status)
        response.headers["HX-Retarget"] = "#flashes"
        response.headers["HX-Reswap"] = "innerHTML"
        return vary(response)
    if not request.htmx:
        flash(message, "success")
        return redirect(url_for("staff.list_staff"), 303)
    row = staff_list.staff_row(user_id)
    response = make_response(render_template("staff/_row.html", row=row, roles=STAFF_ROLES))
    response.headers["HX-Trigger"] = json.dumps({"console:flash": {"message": message, "category": "success"}})
    return vary(response)


@bp.post("/<user_id>/roles")
@permission_required("staff.manage")
def grant_role(user_id: str):
    role = request.form.get("role", "")
    return _row_action(user_id, lambda actor: f"Granted the {role} role to "
                                              f"{actions.grant_role(actor, user_id, role).email}.")


@bp.post("/<user_id>/roles/<role>/revoke")
@permission_required("staff.manage")
def revoke_role(user_id: str, role: str):
    return _row_action(user_id, lambda actor: f"Removed the {role} role from "
                                              f"{actions.revoke_role(actor, user_id, role).email}.")


@bp.post("/<user_id>/lock")
@permission_required("staff.manage")
def lock(user_id: str):
    return _row_action(user_id, lambda actor: f"Locked {actions.lock(actor, user_id).email} until unlocked; "
                                              "their session ends at their next click.")


@bp.post("/<user_id>/unlock")
@permission_required("staff.manage")
def unlock(user_id: str):
    return _row_action(user_id, lambda actor: f"Unlocked {actions.unlock(actor, user_id).email} "
                                              "and cleared their failed sign-ins.")


@bp.post("/<user_id>/mfa/reset")
@permission_required("staff.manage")
def reset_mfa(user_id: str):
    return _row_action(user_id, lambda actor: f"Reset two-step sign-in for {actions.reset_mfa(actor, user_id).email}: "
                                              "they sign in with their password and can enrol again.")
