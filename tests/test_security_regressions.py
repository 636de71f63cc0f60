"""The holes a security scan of a production-mode console found, each written as the
attack: the exact requests, and what must answer now. (The session that survived
sign-out is tests/test_sessions.py; the NUL byte in every route is
tests/test_hostile_input.py.)"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import event, select

from config import BASE_DIR, bind_config
from console import create_app
from console.extensions import db
from console.models.auth import RateLimit, User
from console.models.payment import PaymentRefund
from console.workflows import refunds
from tests.conftest import STAFF_PASSWORD
from tests.returns_helpers import paid_order

SIGN_IN = {"email": "support@staff.test", "password": STAFF_PASSWORD}


# --- 1. open redirect after sign-in, and from refund Retry / Refresh status ------------

@pytest.mark.parametrize("target", ["/%09/evil.example/", "/%0A/evil.example/", "/%0D/evil.example/",
                                    "/%5Cevil.example/", "%5C%5Cevil.example/", "//evil.example/",
                                    "https://evil.example/", "%20//evil.example/", "/%09%09/evil.example/"])
def test_sign_in_never_redirects_off_site(auth, client, target):
    """``target`` as it stands in the address (percent-encoded)."""
    auth.create("support")
    response = client.post(f"/login?next={target}", data=SIGN_IN)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_the_scanned_request_exactly(auth, client):
    """GET-then-POST /login?next=/%09/evil.example/ once answered Location: //evil.example/."""
    auth.create("support")
    assert client.get("/login?next=/%09/evil.example/").status_code == 200
    response = client.post("/login?next=/%09/evil.example/", data=SIGN_IN)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_refund_retry_and_sync_never_redirect_off_site(app, auth, client, monkeypatch):
    with app.app_context():
        data = paid_order(provider="STRIPE")  # a refund the payment service executes: Refresh status
        made = refunds.refund_order(data.actor, data.order.id, "5.00", key="open-redirect", reason="scan")
        refund_id = made.refund.id
    auth.login("finance")
    for action in ("sync", "retry"):
        for target in ("/\t/evil.example/", "/\\evil.example/", "//evil.example/"):
            response = client.post(f"/refunds/{refund_id}/{action}", data={"next": target})
            # Refused by the form (a tab is no part of an address) or sent to the list: never away.
            if response.status_code == 422:
                assert "\t" in target
                continue
            assert response.status_code == 303, (action, target)
            assert response.headers["Location"] == "/refunds", (action, target)
    response = client.post(f"/refunds/{refund_id}/sync", data={"next": "/refunds?status=pending"})
    assert response.headers["Location"] == "/refunds?status=pending"  # a local path is still followed


# --- 3. NUL bytes answer 500, anonymously too, and skip the throttle --------------------

def test_a_nul_byte_at_sign_in_is_a_400_before_any_database_work(app, client):
    with app.app_context():
        engines = list(db.engines.values())
    statements = []

    def count(*args):
        statements.append(args[2])

    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(40):
            response = client.post("/login", data="email=a%00b&password=x",
                                   content_type="application/x-www-form-urlencoded")
            assert response.status_code == 400
            assert b"control character" in response.data
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert statements == []


@pytest.mark.parametrize("where", ["path", "query", "form"])
def test_a_nul_byte_anywhere_is_a_400_for_signed_in_staff_too(auth, client, where):
    auth.login("admin")
    if where == "path":
        response = client.get("/orders/ORD%00X")
    elif where == "query":
        response = client.get("/orders", query_string={"q": "a\x00b"})
    else:
        response = client.post("/staff/grant", data={"email": "a\x00b@x.test", "role": "support"})
    assert response.status_code == 400 and b"control character" in response.data


def test_an_export_with_a_nul_byte_is_refused_before_it_streams(auth, client):
    auth.login("admin")
    response = client.get("/orders/export.csv", query_string={"q": "\x00"})
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_the_sign_in_throttle_counts_before_looking_the_user_up(app, client, auth, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_IP_LIMIT", 2)
    auth.create("support")
    for _ in range(2):
        client.post("/login", data={"email": "support@staff.test", "password": "wrong-password"})
    with app.app_context():
        engine = db.engines["auth"]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = client.post("/login", data=SIGN_IN)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 429
    assert not any("FROM users" in s for s in statements)  # throttled before any user lookup
    with app.app_context():
        assert db.session.scalar(select(RateLimit.count).where(RateLimit.key == "login:ip:127.0.0.1")) == 3


# --- 4. a 500 after the money moved ------------------------------------------------------

def test_order_db_going_away_during_the_refund_never_answers_500(app, auth, client, monkeypatch):
    """order_db goes away after the money step: the refund happened, so the answer shows
    it and what is still to do, never an error page that says nothing was saved."""
    auth.login("support")
    with app.app_context():
        data = paid_order()
        order_id = data.order.id
        engine = db.engines["order"]
    dbapi_error = engine.dialect.loaded_dbapi.OperationalError
    real_run_steps = refunds._run_steps

    def refuse_connections(*args, **kwargs):
        raise dbapi_error("order_db went away")

    def order_db_goes_away(actor, refund_id):
        event.listen(engine, "do_connect", refuse_connections)
        engine.dispose()
        return real_run_steps(actor, refund_id)

    monkeypatch.setattr(refunds, "_run_steps", order_db_goes_away)
    try:
        # The whole payment, so the order step has to mark the order refunded.
        response = client.post(f"/orders/{order_id}/refunds", data={"amount": "64.40", "reason": "Late",
                                                                   "key": "order-db-away"})
    finally:
        if event.contains(engine, "do_connect", refuse_connections):
            event.remove(engine, "do_connect", refuse_connections)
        engine.dispose()
    assert response.status_code == 303
    assert response.headers["Location"] == "/refunds?status=needs_attention"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Refund of 64.40 USD recorded" in page and "needs attention" in page
    assert "order_db is unavailable" in page
    with app.app_context():
        (refund,) = db.session.scalars(select(PaymentRefund)).all()
        assert refund.metadata_["steps"]["order"] == "pending"


def test_the_error_page_no_longer_claims_nothing_was_saved():
    from console.errors import MESSAGES

    assert "Nothing was half-saved" not in MESSAGES[500][1]


# --- 5. staff details through the customer panels ------------------------------------------

@pytest.mark.parametrize("role", ["support", "marketing", "finance"])
@pytest.mark.parametrize("panel", ["account", "signins"])
def test_customer_panels_refuse_staff_accounts(auth, client, role, panel):
    admin_id = auth.create("admin")
    auth.login(role)
    assert client.get(f"/customers/{admin_id}").status_code == 404
    response = client.get(f"/customers/{admin_id}/panels/{panel}")
    assert response.status_code == 404
    assert b"admin@staff.test" not in response.data


def test_admins_still_see_the_panels_and_customers_are_unaffected(app, auth, client):
    member = auth.create("support")
    auth.login("admin")
    assert client.get(f"/customers/{member}/panels/account").status_code == 200
    with app.app_context():
        customer_id = paid_order().customer.id
    client.post("/logout")
    auth.login("finance", "finance2@staff.test")
    assert client.get(f"/customers/{customer_id}/panels/account").status_code == 200


# --- 6. turning MFA off by guessing codes -----------------------------------------------------

def test_wrong_codes_at_mfa_disable_count_towards_the_lockout(app, auth, client):
    user_id = auth.create("support")
    secret = pyotp.random_base32()
    with app.app_context():
        user = db.session.get(User, user_id)
        user.mfa_secret, user.mfa_enabled = secret, True
        db.session.commit()
    client.post("/login", data=SIGN_IN)
    client.post("/login/mfa", data={"code": pyotp.TOTP(secret).now()})
    assert client.get("/profile").status_code == 200
    limit = app.config["LOGIN_MAX_FAILURES"]
    for attempt in range(1, limit):
        response = client.post("/profile/mfa/disable", data={"code": f"{attempt:06d}"})
        assert response.status_code == 422 and b"count towards" in response.data
    last = client.post("/profile/mfa/disable", data={"code": "999999"})
    assert last.status_code == 423 and b"locked" in last.data
    # Locked and signed out: the session is over, and the right password is refused.
    response = client.get("/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.mfa_enabled is True and user.failed_login_attempts == limit and user.locked_until
    assert client.post("/login", data=SIGN_IN).status_code == 401


# --- 7. /healthz details, HSTS, Server header ----------------------------------------------

def test_anonymous_healthz_names_no_host_port_or_database(app, database_urls):
    from tests.second_app import UNOPENABLE_SQLITE, UNREACHABLE_POSTGRES, app_with_unreachable

    url = UNREACHABLE_POSTGRES if "postgresql" in database_urls["auth"] else UNOPENABLE_SQLITE
    with app_with_unreachable(database_urls, "payment", url) as broken:
        response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["databases"]["payment"] == {"up": False}
    text = response.get_data(as_text=True)
    for detail in ("127.0.0.1", "localhost", "5432", "nobody", "error", "no_such", "/nonexistent"):
        assert detail not in text, detail


def test_production_sends_hsts(database_urls):
    production = create_app("production", {
        "SQLALCHEMY_BINDS": {key: bind_config(url) for key, url in database_urls.items()},
        "SECRET_KEY": "production-test-secret"})
    try:
        response = production.test_client().get("/login")
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        with production.app_context():
            for engine in db.engines.values():
                engine.dispose()


def test_development_sends_no_hsts(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_sends_no_server_header(tmp_path):
    """gunicorn, started as the README says, with the project's gunicorn.conf.py."""
    port = _free_port()
    env = {**os.environ, "CONSOLE_ENV": "production", "SECRET_KEY": "gunicorn-test-secret",
           "CONSOLE_INSTANCE_DIR": str(tmp_path)}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen([str(gunicorn), "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"], cwd=BASE_DIR,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        headers = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/console.css", timeout=2) as response:
                    headers = response.headers
                    break
            except OSError:
                time.sleep(0.1)
        assert headers is not None, "gunicorn did not answer"
        assert "Server" not in headers
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        server.terminate()
        server.wait(10)


def test_a_value_far_longer_than_any_field_is_a_400_saying_so(auth, client):
    auth.login("admin")
    response = client.get("/orders", query_string={"q": "x" * 100_000})
    assert response.status_code == 400 and b"far too long" in response.data
    response = client.post("/staff/grant", data={"email": "x" * 100_000, "role": "support"})
    assert response.status_code == 400 and b"far too long" in response.data
