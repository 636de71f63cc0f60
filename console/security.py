"""Security headers on every response, the one guard against control characters in
requests, the cookie side of staff sessions and the way to required MFA enrolment."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from flask import abort, current_app, g, make_response, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user
from itsdangerous import BadSignature

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
    # The cookie expires PERMANENT_SESSION_LIFETIME after it was last written: a hint to
    # the browser. The server enforces the idle timeout itself (console/sessions.py).
    # Only set when it is not set yet: setting it marks the session changed, and a
    # changed session is written back on every response (see SlidingCookieSessions).
    if not session.permanent:
        session.permanent = True


class SignedAtSession(SecureCookieSession):
    """The cookie's contents and when it was signed (None: a new session)."""
    signed_at: datetime | None = None


class SlidingCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, written back only when a request changed them or
    when the cookie is older than SESSION_COOKIE_REFRESH_SECONDS.

    Flask's own refresh rewrites the cookie on every response with what the request
    read. Two requests in flight at once (a save, and the preview its button's blur
    sent) then race: the preview's answer, arriving second, puts back the cookie from
    before the save and the save's "Saved" message is gone. Unchanged sessions are now
    rewritten at most once per interval, only to move the cookie's expiry on; the
    browser may therefore drop the cookie up to that interval before the server's own
    idle timeout would end the session."""
    session_class = SignedAtSession

    def open_session(self, app, request):
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        try:
            data, signed_at = serializer.loads(
                value, max_age=int(app.permanent_session_lifetime.total_seconds()), return_timestamp=True)
        except BadSignature:
            return self.session_class()
        opened = self.session_class(data)
        opened.signed_at = signed_at
        return opened

    def should_set_cookie(self, app, session) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        signed_at = getattr(session, "signed_at", None)
        interval = timedelta(seconds=app.config["SESSION_COOKIE_REFRESH_SECONDS"])
        return signed_at is None or datetime.now(timezone.utc) - signed_at >= interval


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


# The fields that hold a whole document: an email template's bodies, which the editor
# takes up to 100,000 characters (console/templating.py MAX_SOURCE) and refuses beyond
# with its own message; here only what is far longer still.
DOCUMENT_FIELDS = {endpoint: ("body_html", "body_text") for endpoint in (
    "email_templates.save_template", "email_templates.preview_template", "email_templates.send_test")}
MAX_DOCUMENT_CHARS = 200_000


def _problem(params, documents=()) -> str | None:
    for key, value in params.items(multi=True):
        if not isinstance(value, str):
            continue
        if CONTROL_IN_PATH.search(key) or CONTROL_IN_VALUE.search(value):
            return CONTROL_REFUSED
        limit = MAX_DOCUMENT_CHARS if key in documents else MAX_VALUE_CHARS
        if len(key) > MAX_VALUE_CHARS or len(value) > limit:
            return TOO_LONG.format(limit=limit)
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
            _problem(request.form, DOCUMENT_FIELDS.get(request.endpoint or "", ()))
            if request.method not in ("GET", "HEAD") else None)
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
