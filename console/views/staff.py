"""The Staff screen (admins): staff members, their roles, locks and MFA, changed inline."""
from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console import links
from console.errors import render_error
from console.forms import ChoiceField, ConsoleForm, InviteStaffForm, TextField
from console.lookups import DatabaseUnavailable
from console.permissions import STAFF_ROLES, permission_required
from console.screens import staff as staff_list
from console.views._listing import add_list_routes, vary
from console.workflows import WorkflowError
from console.workflows import invitations
from console.workflows import staff as actions

bp = Blueprint("staff", __name__, url_prefix="/staff")


class GrantByEmailForm(ConsoleForm):
    email = TextField("Email", max_length=254)
    role = ChoiceField("Role", choices=STAFF_ROLES, required=False)


def _invitation_message(invitation, verb: str) -> tuple[str, str]:
    if invitation.queued:
        return (f"{verb} {invitation.user.email}: the invitation email is queued. Its link works once, for "
                f"{current_app.config['INVITATION_HOURS']} hours.", "success")
    return (f"{verb} {invitation.user.email}, but the email could not be queued (notification_db is "
            "unavailable, or the staff_invitation template is missing, turned off or can't be rendered: the "
            "notification log says which): use “Resend invitation” on their row once that is mended.", "warning")


@bp.post("/invite")
@permission_required("staff.manage")
def invite():
    """Invite a new staff member by email with roles (plain form post)."""
    form = InviteStaffForm()
    if not form.validate():
        errors = [e for field in (form.email, form.roles) for e in field.errors] or [
            "The form expired: reload the page and try again."]
        flash("Not invited: " + " ".join(errors), "danger")
        return redirect(url_for("staff.list_staff"), 303)
    try:
        invitation = invitations.invite(current_user, form.email.data, form.roles.data, links.password_link_maker())
    except WorkflowError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("staff.list_staff"), 303)
    except DatabaseUnavailable as exc:
        flash(f"{exc.bind_key}_db is unavailable, so nobody was invited. Try again shortly.", "danger")
        return redirect(url_for("staff.list_staff"), 303)
    flash(*_invitation_message(invitation, "Invited"))
    return redirect(url_for("staff.list_staff", q=invitation.user.email), 303)


class RoleForm(ConsoleForm):
    role = ChoiceField("Role", choices=STAFF_ROLES, required=False)


class RowForm(ConsoleForm):
    """Lock, unlock, MFA reset and removing a role: nothing but the CSRF token."""


add_list_routes(bp, staff_list.STAFF, "staff.manage",
                lambda: {"roles": STAFF_ROLES, "states": staff_list.STATES,
                         "invite_form": InviteStaffForm(formdata=None)})


@bp.post("/grant")
@permission_required("staff.manage")
def add_staff():
    """Give a staff role to an existing account by email (plain form post)."""
    form = GrantByEmailForm()
    role = form.role.data or ""
    if not form.validate():
        abort(422, form.error_message())
    try:
        user = actions.grant_role_by_email(current_user, form.email.data or "", role)
    except WorkflowError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("staff.list_staff"), 303)
    flash(f"Granted the {role} role to {user.email}.", "success")
    return redirect(url_for("staff.list_staff", q=user.email), 303)


def _row_action(user_id: str, perform, form_class=RowForm):
    """Run one row action. htmx gets the refreshed row and an HX-Trigger carrying the
    message (static/console.js shows it); a refusal goes to the message area instead
    of the row. A plain form post gets a flash and a redirect."""
    form = form_class()
    if not form.validate() and not request.htmx:
        abort(422, form.error_message())
    try:
        if form.errors:
            raise WorkflowError(form.error_message(), 422)
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
                                              f"{actions.grant_role(actor, user_id, role).email}.", RoleForm)


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


@bp.post("/<user_id>/sessions/end")
@permission_required("staff.manage")
def end_sessions(user_id: str):
    def perform(actor):
        user, ended = actions.end_sessions(actor, user_id)
        return f"Signed {user.email} out everywhere: {ended} session{'' if ended == 1 else 's'} ended."
    return _row_action(user_id, perform)


@bp.post("/<user_id>/invitation")
@permission_required("staff.manage")
def resend_invitation(user_id: str):
    def perform(actor):
        message, category = _invitation_message(invitations.resend_invitation(actor, user_id, links.password_link_maker()),
                                                "Sent a new invitation to")
        if category != "success":
            raise WorkflowError(message, 503)
        return message + " The earlier link no longer works."
    return _row_action(user_id, perform)


@bp.post("/<user_id>/mfa/reset")
@permission_required("staff.manage")
def reset_mfa(user_id: str):
    return _row_action(user_id, lambda actor: f"Reset two-step sign-in for {actions.reset_mfa(actor, user_id).email}: "
                                              "they sign in with their password and can enrol again.")
