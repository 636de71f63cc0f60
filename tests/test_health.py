"""Database health: /healthz and the Databases page, with every database up and
with one that cannot be reached (answered quickly, named, the rest still shown)."""
from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from config import BIND_KEYS, POSTGRES_OPTIONS
from console.health import MAIN_TABLES, check_all
from tests.conftest import STAFF_PASSWORD
from tests.second_app import UNOPENABLE_SQLITE, UNREACHABLE_POSTGRES, app_with_unreachable

UNREACHABLE = pytest.mark.parametrize("url", [UNREACHABLE_POSTGRES, UNOPENABLE_SQLITE], ids=["postgres", "sqlite"])


def rows_by_bind(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-bind="(\w+)">(.*?)</tr>', html, re.S))


def test_healthz_reports_every_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok" and body["down"] == []
    assert set(body["databases"]) == set(BIND_KEYS)
    assert all(d == {"up": True} for d in body["databases"].values())  # nothing more for anonymous callers
    with client.application.app_context():
        assert all(h.up and h.round_trip_ms >= 0 for h in check_all(with_details=False))


def test_health_details_count_tables_and_rows(app, auth):
    auth.create("support")  # one user and two roles in auth_db
    with app.app_context():
        results = {h.key: h for h in check_all()}
    for key, health in results.items():
        assert health.up and health.tables_present == health.tables_expected
        assert list(health.row_counts) == list(MAIN_TABLES[key])
    if results["auth"].dialect == "sqlite":  # exact counts; PostgreSQL shows the planner's estimate
        assert results["auth"].row_counts["users"] == 1
        assert results["order"].row_counts == {"orders": 0, "order_items": 0}


@UNREACHABLE
def test_healthz_answers_503_quickly_naming_the_database(app, database_urls, url):
    with app_with_unreachable(database_urls, "payment", url) as broken:
        started = time.perf_counter()
        response = broken.test_client().get("/healthz")
        elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert elapsed < 5
    body = response.json
    assert body["status"] == "degraded" and body["down"] == ["payment"]
    assert body["databases"]["payment"] == {"up": False}  # the error stays on the Databases page
    assert all(body["databases"][key]["up"] for key in BIND_KEYS if key != "payment")
    with broken.app_context():
        assert next(h for h in check_all(with_details=False) if h.key == "payment").error


@UNREACHABLE
def test_databases_page_shows_the_down_database_and_the_others(app, auth, database_urls, url):
    auth.create("admin")
    with app_with_unreachable(database_urls, "payment", url) as broken:
        client = broken.test_client()
        signed_in = client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
        assert signed_in.status_code == 302
        started = time.perf_counter()
        page = client.get("/databases")
        elapsed = time.perf_counter() - started
    assert page.status_code == 200 and elapsed < 5
    rows = rows_by_bind(page.get_data(as_text=True))
    assert list(rows) == list(BIND_KEYS)
    assert "payment_db" in rows["payment"] and ">down<" in rows["payment"]
    for key in BIND_KEYS:
        if key != "payment":
            assert ">up<" in rows[key] and ">down<" not in rows[key], key


def test_databases_page_needs_its_permission(auth, client):
    auth.login("warehouse")
    assert client.get("/databases").status_code == 403
    auth.logout()
    auth.login("finance")
    page = client.get("/databases")
    assert page.status_code == 200
    rows = rows_by_bind(page.get_data(as_text=True))
    assert len(rows) == 10 and all(">up<" in row for row in rows.values())
    assert "12 / 12" in rows["auth"] and "14 / 14" in rows["product"]


@pytest.fixture
def silent_server():
    """A local port that accepts TCP connections and never says a word: a hung
    database server, which refuses nothing and so gives no quick error."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel completes the handshake; nobody ever reads or replies
    yield f"postgresql+psycopg://nobody@127.0.0.1:{listener.getsockname()[1]}/none"
    listener.close()


def test_healthz_gives_up_on_a_silent_server_within_the_connect_timeout(app, database_urls, silent_server):
    timeout = POSTGRES_OPTIONS["connect_args"]["connect_timeout"]
    with app_with_unreachable(database_urls, "shipping", silent_server) as hung:
        started = time.perf_counter()
        response = hung.test_client().get("/healthz")
        elapsed = time.perf_counter() - started
        assert response.status_code == 503
        assert response.json["down"] == ["shipping"]
        # Not the minutes of a TCP timeout: the connect timeout, plus the first call's read
        # of the other nine databases' columns (the drift report), slow on a busy machine.
        assert elapsed < timeout + 8
        with hung.app_context():
            assert "timeout" in next(h for h in check_all(with_details=False) if h.key == "shipping").error.lower()


def test_a_check_that_hangs_after_connecting_is_cut_off_at_the_deadline(app, client, monkeypatch):
    """A pooled connection to a server gone silent gets no connect timeout: the
    overall deadline still answers, naming the database that did not reply."""
    from console import health

    real_check = health.check_bind
    release = threading.Event()

    def order_db_hangs(key, engine, with_details=True):
        if key == "order":
            release.wait(10)
        return real_check(key, engine, with_details)

    monkeypatch.setattr(health, "check_bind", order_db_hangs)
    monkeypatch.setitem(app.config, "HEALTH_CHECK_SECONDS", 0.5)
    try:
        started = time.perf_counter()
        response = client.get("/healthz")
        elapsed = time.perf_counter() - started
    finally:
        release.set()
    assert response.status_code == 503 and elapsed < 2
    assert response.json["down"] == ["order"]
    assert response.json["databases"]["order"] == {"up": False}
    with app.app_context():
        release.clear()
        try:
            assert next(h for h in check_all(with_details=False) if h.key == "order").error == "no answer within 0.5 s"
        finally:
            release.set()
