"""Sign-in (password, then the second factor when enrolled), sign-out, and the
staff member's own profile where they turn two-step sign-in on and off."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from console import links, sessions
from console.extensions import db
from console.forms import ConsoleForm, ForgotPasswordForm, LoginForm, MfaCodeForm, SetPasswordForm
from console.links import local_path
from console.lookups import database
from console.models.auth import LoginHistory, User
from console.permissions import permission_required
from console.staff import mfa_required_for
from console.workflows import WorkflowError, invitations, mfa, signin

bp = Blueprint("auth", __name__)

# Between the password and the code, the session holds only the user id and when
# the password was accepted; after this long the password must be given again.
MFA_PENDING_SECONDS = 300
PENDING_KEY = "mfa_pending"


def _sign_in(result, next_url: str | None):
    """The cookie side of a sign-in the workflow has done: a fresh Flask session that
    carries only the server-side session's token."""
    session.clear()  # a new session at sign-in: nothing from before carries over
    session.permanent = True  # clear() dropped it; the cookie's expiry needs it
    staff = result.staff
    staff.session_token = result.token
    login_user(staff)
    flash(f"Signed in as {staff.email}.", "success")
    if mfa_required_for(staff.roles) and not result.mfa_enabled:
        flash("Your role requires two-step sign-in: set it up now to continue.", "warning")
        return redirect(url_for("auth.profile"))
    return redirect(local_path(next_url) or url_for("dashboard.index"))


def _agent() -> str:
    return (request.user_agent.string or "")[:500]


def _pending_user_id() -> str | None:
    pending = session.get(PENDING_KEY)
    if not pending or time.time() - pending.get("since", 0) > MFA_PENDING_SECONDS:
        session.pop(PENDING_KEY, None)
        return None
    return pending.get("user_id")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = signin.authenticate(form.email.data, form.password.data, ip=request.remote_addr,
                                     user_agent=_agent())
        if result.staff:
            return _sign_in(result, request.args.get("next"))
        if result.mfa_user_id:
            session.clear()
            session[PENDING_KEY] = {"user_id": result.mfa_user_id, "since": time.time(),
                                    "next": request.args.get("next")}
            return redirect(url_for("auth.login_mfa"))
        flash(result.message, "danger")
        status = result.status
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/login/mfa", methods=["GET", "POST"])
def login_mfa():
    user_id = _pending_user_id()
    if user_id is None:
        flash("Sign in with your email and password first.", "info")
        return redirect(url_for("auth.login"))
    form = MfaCodeForm()
    status = 200
    if form.validate_on_submit():
        result = signin.verify_second_factor(user_id, form.code.data, ip=request.remote_addr, user_agent=_agent())
        if result.staff:
            return _sign_in(result, session[PENDING_KEY].get("next"))
        if result.message == signin.GENERIC_FAILURE:
            # Locked meanwhile, or no longer staff: start again from the password.
            session.pop(PENDING_KEY, None)
            flash(result.message, "danger")
            return render_template("auth/login.html", form=LoginForm(formdata=None)), result.status
        flash(result.message, "danger")
        status = result.status
    elif request.method == "POST":
        status = 400
    return render_template("auth/mfa.html", form=form), status


def _signed_out(message: str):
    logout_user()
    session.clear()
    flash(message, "info")
    return redirect(url_for("auth.login"))


@bp.post("/logout")
@permission_required("profile.manage")
def logout():
    with database("auth"):
        sessions.end(current_user.session_token)
    return _signed_out("Signed out.")


@bp.post("/logout/everywhere")
@permission_required("profile.manage")
def logout_everywhere():
    """Ends every session of the signed-in member, this one included."""
    ended = signin.sign_out_everywhere(current_user)
    return _signed_out(f"Signed out everywhere: {ended} session{'' if ended == 1 else 's'} ended.")


@bp.post("/profile/sessions/<session_id>/end")
@permission_required("profile.manage")
def end_session(session_id: str):
    """"Sign out this one" on the profile's list of sessions."""
    if session_id == current_user.session_id:
        return logout()
    if signin.end_own_session(current_user, session_id):
        flash("That session is signed out: its browser has to sign in again.", "success")
    else:
        flash("That session had already ended.", "info")
    return redirect(url_for("auth.profile"), 303)


# --- profile and two-step sign-in -----------------------------------------------------

def _render_profile(status: int = 200, **extra):
    user = db.session.get(User, current_user.id)
    recent = db.session.scalars(
        select(LoginHistory).where(LoginHistory.user_id == current_user.id)
        .order_by(LoginHistory.created_at.desc(), LoginHistory.id.desc()).limit(10)
    ).all()
    extra.setdefault("form", MfaCodeForm(formdata=None))
    return render_template("auth/profile.html", user=user, recent=recent,
                           sessions=sessions.active_sessions(current_user.id),
                           must_enrol=current_user.must_enrol_mfa,
                           backup_left=mfa.unused_backup_codes(user.id) if user.mfa_enabled else 0,
                           **extra), status


@bp.get("/profile")
@permission_required("profile.manage")
def profile():
    return _render_profile()


@bp.post("/profile/mfa/start")
@permission_required("profile.manage")
def mfa_start():
    form = ConsoleForm()
    if not form.validate():
        flash(form.error_message(), "danger")
        return _render_profile(422)
    try:
        enrolment = mfa.start_enrolment(current_user)
    except WorkflowError as exc:
        flash(exc.message, "warning")
        return _render_profile(exc.status)
    return _render_profile(enrolment=enrolment)


@bp.post("/profile/mfa/confirm")
@permission_required("profile.manage")
def mfa_confirm():
    form = MfaCodeForm()
    if not form.validate():
        flash(form.error_message(), "danger")
        return _render_profile(400, form=form)
    try:
        codes = mfa.confirm_enrolment(current_user, form.code.data)
    except WorkflowError as exc:
        flash(exc.message, "danger")
        user = db.session.get(User, current_user.id)
        # A wrong code during enrolment: show the same secret again so the staff
        # member can retry without rescanning.
        enrolment = mfa.enrolment_for(user, current_user.email) if user.mfa_secret and not user.mfa_enabled else None
        return _render_profile(exc.status, enrolment=enrolment)
    flash("Two-step sign-in is on. Store the backup codes below somewhere safe: they are shown only now.",
          "success")
    return _render_profile(backup_codes=codes)


@bp.post("/profile/mfa/disable")
@permission_required("profile.manage")
def mfa_disable():
    form = MfaCodeForm()
    if not form.validate():
        flash(form.error_message(), "danger")
        return _render_profile(400, form=form)
    try:
        mfa.disable(current_user, form.code.data)
    except WorkflowError as exc:
        flash(exc.message, "danger")
        return _render_profile(exc.status)
    flash("Two-step sign-in is off, and your backup codes no longer work.", "success")
    return redirect(url_for("auth.profile"))


# --- invitations and "forgot password" ----------------------------------------------------

@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    status = 200
    if form.validate_on_submit():
        trusted = not current_app.config.get("REQUIRE_PUBLIC_URL")
        answer = invitations.request_reset(form.email.data, request.remote_addr, links.password_link_maker(trusted))
        flash(answer.message, "info" if answer.status == 200 else "danger")
        if answer.status == 200:
            return redirect(url_for("auth.login"), 303)
        status = answer.status
    elif request.method == "POST":
        status = 400
    return render_template("auth/forgot.html", form=form), status


# The session key holding an opened link's token (exchanged: see open_password_link).
LINK_TOKEN = "password_link"


@bp.get("/password/set/<token>")
def open_password_link(token: str):
    """Where an invitation or reset email's link lands. Its token is exchanged for a new
    one kept in the session, and the browser goes on to the address without a token: the
    token in this address (in access logs, proxies and histories) no longer works."""
    try:
        session[LINK_TOKEN] = invitations.exchange_link(token)
    except WorkflowError as exc:
        if session.get(LINK_TOKEN):  # opened again in the browser that opened it first
            return redirect(url_for("auth.set_password"), 303)
        return render_template("auth/link_refused.html", message=exc.message), exc.status
    return redirect(url_for("auth.set_password"), 303)


@bp.route("/password/set", methods=["GET", "POST"])
def set_password():
    """The page an invitation or a reset link opens: choose a password (once)."""
    token = session.get(LINK_TOKEN) or ""
    try:
        user = invitations.user_for_link(token)
    except WorkflowError as exc:
        session.pop(LINK_TOKEN, None)
        return render_template("auth/link_refused.html", message=exc.message), exc.status
    form = SetPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            invitations.set_password(token, form.password.data, request.remote_addr)
        except WorkflowError as exc:
            if exc.status == 404:
                return render_template("auth/link_refused.html", message=exc.message), exc.status
            form.password.errors = [*form.password.errors, exc.message]
            status = exc.status
        else:
            session.pop(LINK_TOKEN, None)
            result = signin.start_session_after_new_password(user.id, request.remote_addr, _agent())
            if result.staff:
                return _sign_in(result, None)
            flash(result.message, "success")
            return redirect(url_for("auth.login"), 303)
    elif request.method == "POST":
        status = 400
    return render_template("auth/set_password.html", form=form, email=user.email,
                           invited=invitations.is_invited(user)), status
