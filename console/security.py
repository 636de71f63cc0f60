"""Security headers on every response, and the idle timeout of staff sessions."""
from __future__ import annotations

from flask import session

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
    return response


def keep_session_fresh():
    # A permanent session expires PERMANENT_SESSION_LIFETIME after the last request
    # (SESSION_REFRESH_EACH_REQUEST): that is the idle timeout.
    session.permanent = True
