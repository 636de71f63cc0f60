"""CSRF on every state change (forms and htmx), security headers on every response,
session cookie flags."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from config import DEV_SECRET_KEY, bind_config
from console import create_app
from console.extensions import db
from console.models.auth import User
from console.security import CONTENT_SECURITY_POLICY
from tests.conftest import STAFF_PASSWORD


@pytest.fixture
def csrf_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)


def token_from(html: str) -> str:
    field = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html).group(0)
    return re.search(r'value="([^"]+)"', field).group(1)


def test_sign_in_form_without_token_is_refused(app, auth, client, csrf_on):
    auth.create("support")
    response = client.post("/login", data={"email": "support@staff.test", "password": STAFF_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302
    token = token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "support@staff.test", "password": STAFF_PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302


def test_form_post_without_token_is_refused(app, auth, client, monkeypatch):
    auth.login("support")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    refused = client.post("/logout")
    assert refused.status_code == 400
    assert b"security token" in refused.data
    assert client.get("/").status_code == 200  # still signed in: nothing happened
    token = token_from(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_htmx_post_without_token_is_refused(app, auth, client, monkeypatch):
    auth.login("admin")
    target = auth.create("support")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    refused = client.post(f"/staff/{target}/lock", headers={"HX-Request": "true"})
    assert refused.status_code == 400
    with app.app_context():
        assert db.session.get(User, target).locked_until is None
    html = client.get("/staff").get_data(as_text=True)
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', html).group(1)
    accepted = client.post(f"/staff/{target}/lock", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert accepted.status_code == 200
    with app.app_context():
        assert db.session.get(User, target).locked_until is not None


@pytest.mark.parametrize("path", ["/login", "/", "/static/console.css", "/no-such-page", "/data/", "/healthz"])
def test_security_headers_on_every_response(auth, client, path):
    auth.login("admin")
    response = client.get(path)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_policy_allows_self_only_and_no_inline_script():
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_pages_carry_no_inline_script_or_style(auth, client):
    """The console's own pages keep to the policy (Flask-Admin's are checked in the browser)."""
    auth.login("admin")
    for path in ("/", "/staff", "/activity", "/profile", "/login"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path


def test_session_cookie_flags(auth, client):
    response = auth.login("support")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # testing runs over plain http
    assert "Expires=" in cookie  # permanent session: the idle timeout applies


def test_production_config_sets_secure_cookies(database_urls, app):
    production = create_app("production", {
        "SQLALCHEMY_BINDS": {key: bind_config(url) for key, url in database_urls.items()},
        "SECRET_KEY": "production-test-secret",
    })
    try:
        assert production.config["SESSION_COOKIE_SECURE"] is True
        assert production.config["REMEMBER_COOKIE_SECURE"] is True
        response = production.test_client().get("/login")  # the CSRF token goes into the session
        cookie = response.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        with production.app_context():
            for engine in db.engines.values():
                engine.dispose()


def test_sign_in_page_never_echoes_the_password(auth, client):
    auth.create("support")
    response = client.post("/login", data={"email": "support@staff.test", "password": "Typo-password-123"})
    assert b"Typo-password-123" not in response.data
    with client.application.app_context():
        assert db.session.scalar(select(User.failed_login_attempts).where(User.email == "support@staff.test")) == 1


def test_every_state_changing_route_needs_the_token(app, auth, client, monkeypatch):
    """Walks app.url_map: no POST route is exempt from CSRF, so a new screen cannot
    forget it. The data browser's views share one class, so one view per database
    stands for the rest (as in the permission walk)."""
    from tests.test_permissions import PUBLIC_PATHS, checked_routes, request_for

    auth.login("admin")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    public = [rule for rule in app.url_map.iter_rules() if rule.rule in PUBLIC_PATHS]
    posts = [rule for rule in [*public, *checked_routes(app, every_data_page=False)]
             if rule.methods & {"POST", "PUT", "PATCH", "DELETE"}]
    assert len(posts) > 10
    accepted = []
    for rule in posts:
        _, path = request_for(rule)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.post(path, headers=headers)
            if response.status_code != 400:
                accepted.append(f"POST {path} ({rule.endpoint}) {headers} -> {response.status_code}")
    assert accepted == []
    assert client.get("/").status_code == 200  # still signed in: the refused sign-out did nothing


@pytest.mark.parametrize("key", ["", DEV_SECRET_KEY])  # DEV_SECRET_KEY: what an unset SECRET_KEY gives
def test_production_refuses_to_start_without_a_real_secret_key(database_urls, key):
    binds = {k: bind_config(url) for k, url in database_urls.items()}
    with pytest.raises(RuntimeError, match="Set SECRET_KEY"):
        create_app("production", {"SQLALCHEMY_BINDS": binds, "SECRET_KEY": key})


@pytest.mark.parametrize("hops, seen", [(0, "127.0.0.1"), (1, "203.0.113.7")])
def test_the_client_address_comes_from_a_trusted_proxy_only(database_urls, app, hops, seen):
    """Behind a proxy every request comes from the proxy: the throttle and the audit
    trail need the client's address, but only a configured proxy may say what it is."""
    from tests.conftest import make_app

    from console.demo.builders import make_staff
    from console.models.auth import LoginHistory

    proxied = make_app(database_urls, PROXY_HOPS=hops)
    try:
        with proxied.app_context():
            make_staff("support", "support@staff.test", STAFF_PASSWORD)
            db.session.commit()
        response = proxied.test_client().post(
            "/login", data={"email": "support@staff.test", "password": STAFF_PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
        assert response.status_code == 302
        with proxied.app_context():
            assert db.session.scalars(select(LoginHistory.ip_address)).all() == [seen]
    finally:
        with proxied.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
