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
