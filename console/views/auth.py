"""Sign-in (password, then the second factor when enrolled), sign-out, and the
staff member's own profile where they turn two-step sign-in on and off."""
from __future__ import annotations

import time

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from console.extensions import db
from console.forms import ConsoleForm, LoginForm, MfaCodeForm
from console.models.auth import LoginHistory, User
from console.permissions import permission_required
from console.workflows import WorkflowError, mfa, signin

bp = Blueprint("auth", __name__)

# Between the password and the code, the session holds only the user id and when
# the password was accepted; after this long the password must be given again.
MFA_PENDING_SECONDS = 300
PENDING_KEY = "mfa_pending"


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.index")


def _sign_in(staff, next_url: str | None):
    session.clear()  # a new session at sign-in: nothing from before carries over
    session.permanent = True  # clear() dropped it; the idle timeout needs it
    login_user(staff)
    flash(f"Signed in as {staff.email}.", "success")
    return redirect(_safe_next(next_url))


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
        result = signin.authenticate(form.email.data, form.password.data, ip=request.remote_addr)
        if result.staff:
            return _sign_in(result.staff, request.args.get("next"))
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
        result = signin.verify_second_factor(user_id, form.code.data, ip=request.remote_addr)
        if result.staff:
            return _sign_in(result.staff, session[PENDING_KEY].get("next"))
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


@bp.post("/logout")
@permission_required("profile.manage")
def logout():
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))


# --- profile and two-step sign-in -----------------------------------------------------

def _render_profile(status: int = 200, **extra):
    user = db.session.get(User, current_user.id)
    recent = db.session.scalars(
        select(LoginHistory).where(LoginHistory.user_id == current_user.id)
        .order_by(LoginHistory.created_at.desc(), LoginHistory.id.desc()).limit(10)
    ).all()
    extra.setdefault("form", MfaCodeForm(formdata=None))
    return render_template("auth/profile.html", user=user, recent=recent,
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
