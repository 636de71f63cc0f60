"""Security headers on every response, the one guard against control characters in
requests, the cookie side of staff sessions and the way to required MFA enrolment."""
from __future__ import annotations

import re

from flask import abort, current_app, g, make_response, redirect, request, session, url_for
from flask_login import current_user

# Self only and no inline script. htmx's inline indicator styles are turned off
# (htmx-config meta) and the indicator CSS lives in static/console.css.
# The same policy holds for the data browser (/data): Flask-Admin's list pages carry
# one inline onclick="return false;" and javascript:void(0) links, which the policy
# blocks to no effect because Flask-Admin's own scripts handle those clicks; filters,
# the date picker and the menus work unchanged, so /data needs no relaxed policy.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; object-src 'none'"
)

# Pages that show an email's HTML (the template editor's preview, a notification's
# page) put it in an <iframe sandbox srcdoc>: no scripts, no forms, no popups, and the
# frame inherits this page's policy, so nothing outside the console loads. Emails are
# styled with style attributes, so those pages allow inline styles; scripts stay 'self'.
EMAIL_FRAME_POLICY = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def allow_email_styles(response):
    response.headers["Content-Security-Policy"] = EMAIL_FRAME_POLICY
    return response


def apply_security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    if current_app.config.get("HSTS_SECONDS"):
        # Production only (served over HTTPS): browsers then refuse plain http for it.
        response.headers["Strict-Transport-Security"] = f"max-age={current_app.config['HSTS_SECONDS']}"
    return response


def keep_session_fresh():
    # The cookie expires PERMANENT_SESSION_LIFETIME after the last request: a hint to
    # the browser. The server enforces the idle timeout itself (console/sessions.py).
    session.permanent = True


# NUL and the other C0 control characters (and DEL) are refused everywhere: PostgreSQL
# cannot store NUL at all, and none of them belongs in an address, a filter or a form.
# Tab, line feed and carriage return are allowed in values (pasted from a spreadsheet,
# typed into a note), never in the path or in a parameter's name.
CONTROL_IN_PATH = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# No field of the console takes more than a few thousand characters (a note: 2,000);
# anything far longer is refused here, before a view or a database spends time on it.
MAX_VALUE_CHARS = 10_000
MAX_PATH_CHARS = 2_000
TOO_LONG = ("The address or a field of the form is far too long (more than {limit:,} characters). "
            "Shorten it and try again.")
CONTROL_REFUSED = ("The address or the form holds a control character (such as a NUL byte) that no field "
                   "accepts. Remove it (retype the text rather than pasting it) and try again.")


def _problem(params) -> str | None:
    for key, value in params.items(multi=True):
        if not isinstance(value, str):
            continue
        if CONTROL_IN_PATH.search(key) or CONTROL_IN_VALUE.search(value):
            return CONTROL_REFUSED
        if len(key) > MAX_VALUE_CHARS or len(value) > MAX_VALUE_CHARS:
            return TOO_LONG.format(limit=MAX_VALUE_CHARS)
    return None


def refuse_control_characters():
    """The one guard, before any database work: 400 for a control character (or a
    value far longer than any field) in the path, the query string or a submitted form."""
    if CONTROL_IN_PATH.search(request.path):
        problem = CONTROL_REFUSED
    elif len(request.path) > MAX_PATH_CHARS:
        problem = TOO_LONG.format(limit=MAX_PATH_CHARS)
    else:
        problem = _problem(request.args) or (
            _problem(request.form) if request.method not in ("GET", "HEAD") else None)
    if problem:
        # The error page is drawn as for a visitor, so not even the session is read.
        g._login_user = current_app.login_manager.anonymous_user()
        abort(400, problem)


# Where a member who must enrol in two-step sign-in may still go.
ENROLMENT_ENDPOINTS = {"auth.profile", "auth.mfa_start", "auth.mfa_confirm", "auth.logout",
                       "auth.logout_everywhere", "auth.end_session"}


def send_to_mfa_enrolment():
    """A member whose role requires two-step sign-in and who has not enrolled is sent
    to enrolment (their profile) from every other page, and can do nothing else."""
    endpoint = request.endpoint or ""
    if endpoint in ENROLMENT_ENDPOINTS or endpoint == "static" or endpoint.endswith(".static"):
        return None
    if "_user_id" not in session:  # anonymous: no session to read
        return None
    if not (current_user.is_authenticated and getattr(current_user, "must_enrol_mfa", False)):
        return None
    target = url_for("auth.profile")
    if getattr(request, "htmx", False):
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)
