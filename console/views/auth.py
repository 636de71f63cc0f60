"""Sign-in and sign-out."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user

from console.forms import LoginForm
from console.workflows import signin

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = signin.authenticate(form.email.data, form.password.data, ip=request.remote_addr)
        if result.staff:
            session.clear()  # a new session at sign-in: nothing from before carries over
            login_user(result.staff)
            flash(f"Signed in as {result.staff.email}.", "success")
            return redirect(_safe_next(request.args.get("next")))
        flash(result.message, "danger")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
