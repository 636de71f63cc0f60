"""Schema drift on the services' own shape: the databases are built as the services build
them (their DDL on PostgreSQL, init-db on SQLite), then a service falls behind: a
camelCase column dropped, an enum column turned into text, a whole table dropped.

A fresh console on those databases knows the drift at its first /healthz, before any
screen is opened; no screen answers 500 (a 503 names the column or the table); the
sign-in throttle, the login history, the server-side sessions and the audit trail refuse
a write that needs a drifted column before anything is written. A column dropped while
the console runs costs one 503 that says so, then the console works without it."""
from __future__ import annotations

import re
import uuid
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import func, select, text

from console.drift import drift
from console.extensions import db
from console.models.auth import LoginHistory, RateLimit, SecurityAuditLog, UserSession
from console.models.order import Order
from tests.conftest import STAFF_PASSWORD, StaffSignIn, make_app
from tests.databases import BACKEND, load_platform_ddl, scratch_database
from tests.returns_helpers import paid_order
from tests.test_drift import get_routes
from tests.test_hostile_input import path_values

POSTGRES = BACKEND == "postgres"


@contextmanager
def scratch_binds(database_urls, tmp_path, keys):
    """The test databases with ``keys`` swapped for scratch databases of the services'
    shape; yields the URLs (each app made on them is disposed by its own block)."""
    with ExitStack() as stack:
        urls = dict(database_urls)
        for key in keys:
            folder = tmp_path / key
            folder.mkdir()
            urls[key] = stack.enter_context(scratch_database(folder))
        builder = make_app(urls)
        with builder.app_context():
            for key in keys:
                if POSTGRES:
                    load_platform_ddl(key, urls[key])
                else:
                    db.create_all(bind_key=key)  # what init-db creates
        dispose(builder)
        yield urls


def dispose(application) -> None:
    with application.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def drop_column(conn, table: str, column: str) -> None:
    """ALTER TABLE … DROP COLUMN; SQLite first drops the indexes on the column (PostgreSQL
    drops them itself)."""
    if conn.dialect.name == "sqlite":
        for (index,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
                                          "AND sql LIKE :c"), {"t": table, "c": f"%{column}%"}).all():
            conn.execute(text(f'DROP INDEX "{index}"'))
    conn.execute(text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))


def drift_databases(urls, changes) -> None:
    """Apply ``changes`` (bind key -> callables taking a connection) from an app of its own."""
    other = make_app(urls)
    with other.app_context():
        for key, steps in changes.items():
            with db.engines[key].begin() as conn:
                for step in steps:
                    step(conn)
    dispose(other)


# (bind key, what the Databases page marks, the change)
WALKED_DRIFT = [
    ("order", "order.orders.orderNumber", lambda conn: drop_column(conn, "orders", "orderNumber")),
    ("payment", "payment.refunds", lambda conn: conn.execute(text("DROP TABLE refunds"))),
    ("product", "product.stock_alerts", lambda conn: conn.execute(text("DROP TABLE stock_alerts"))),
]
if POSTGRES:  # SQLite holds an enum as text anyway
    WALKED_DRIFT.append(("notification", "notification.notifications.status", lambda conn: conn.execute(
        text("ALTER TABLE notifications ALTER COLUMN status TYPE text USING status::text"))))
DRIFTED_NAMES = ("orders.orderNumber", "the table refunds", "the table stock_alerts", "notifications.status")


def test_every_screen_on_drifted_service_databases(app, database_urls, tmp_path):
    keys = [key for key, _, _ in WALKED_DRIFT]
    with scratch_binds(database_urls, tmp_path, keys) as urls:
        builder = make_app(urls)
        with builder.app_context():
            data = paid_order()
            rows_of = {"order_id": data.order.id, "order_key": data.order.order_number,
                       "key": data.order.order_number, "user_id": data.customer.id}
        dispose(builder)
        changes: dict = {}
        for key, _, change in WALKED_DRIFT:
            changes.setdefault(key, []).append(change)
        drift_databases(urls, changes)

        console = make_app(urls)
        try:
            client = console.test_client()
            # Known at the first /healthz, before any screen or sign-in touched a database.
            health = client.get("/healthz")
            assert health.status_code == 200
            assert health.json["schema"] == "drifted" and health.json["drifted"] == len(WALKED_DRIFT)

            auth = StaffSignIn(console, client)
            auth.login("admin")
            page = client.get("/databases").get_data(as_text=True)
            for _, name, _ in WALKED_DRIFT:
                assert f'data-drift="{name}"' in page, name

            rows = {
                "orders": {"key": rows_of["key"], "order_id": rows_of["order_id"], "order_key": rows_of["key"]},
                "customers": {"user_id": rows_of["user_id"], "panel": "account"},
                "auth": {"session_id": str(uuid.uuid4()), "token": "no-such-token"},
                "any": {"export_type": "csv", "filename": "console.css", "panel": "account", "role": "support"},
            }
            failures = []
            for rule in get_routes(console):
                path = rule.build(path_values(rule, rows))[1]
                response = client.get(path)
                body = response.get_data(as_text=True)
                if response.status_code == 503:
                    if "is unavailable" in body or "Database unavailable" in body or not any(
                            name in body for name in DRIFTED_NAMES):
                        failures.append(f"{path}: 503 without naming what is missing")
                elif response.status_code >= 500:
                    failures.append(f"{path}: {response.status_code}")
            assert failures == []

            # Search and a list sorted by the missing column name it.
            for path in (f"/search?q={rows_of['key']}", "/orders?sort=number", "/orders?sort=-number"):
                response = client.get(path)
                assert response.status_code in (200, 503), path
                if response.status_code == 503:
                    assert "orderNumber" in response.get_data(as_text=True), path
            # A list of a missing table names it.
            alerts = client.get("/products/alerts")
            assert alerts.status_code in (200, 503)
            if alerts.status_code == 503:
                assert "stock_alerts" in alerts.get_data(as_text=True)
            # Sign-in still works: auth_db has not drifted.
            auth.logout()
            assert client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD}
                               ).status_code == 302
        finally:
            dispose(console)


def _counts() -> dict:
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (RateLimit, LoginHistory, UserSession)}


AUTH_DRIFT = {
    "users.lockedUntil": lambda conn: drop_column(conn, "users", "lockedUntil"),
    "rate_limits.expiresAt": lambda conn: drop_column(conn, "rate_limits", "expiresAt"),
    "devices.lastUsedAt": lambda conn: drop_column(conn, "devices", "lastUsedAt"),
    "login_history.userAgent": lambda conn: drop_column(conn, "login_history", "userAgent"),
}


@pytest.mark.parametrize("drifted", sorted(AUTH_DRIFT))
def test_sign_in_on_a_drifted_auth_database_refuses_clearly_and_writes_nothing(app, database_urls, tmp_path,
                                                                                drifted):
    with scratch_binds(database_urls, tmp_path, ["auth"]) as urls:
        console = make_app(urls)
        try:
            client = console.test_client()
            auth = StaffSignIn(console, client)
            auth.login("admin")  # before the drift: a live session
            drift_databases(urls, {"auth": [AUTH_DRIFT[drifted]]})
            with console.app_context():
                from console.drift import drift

                drift().check(force=True)  # as "check again" on the Databases page
            # The live session: either still works or is signed out; never a 500.
            assert client.get("/profile").status_code in (200, 302, 503)

            fresh = console.test_client()
            with console.app_context():
                before = _counts()
            refused = fresh.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
            body = refused.get_data(as_text=True)
            assert refused.status_code == 503, body[:500]
            assert drifted in body and "auth_db" in body and "Nothing was changed" in body
            with console.app_context():
                assert _counts() == before
            wrong = fresh.post("/login", data={"email": "admin@staff.test", "password": "wrong"})
            assert wrong.status_code == 503
            with console.app_context():
                assert _counts() == before
        finally:
            dispose(console)


def test_an_audit_trail_that_cannot_be_written_refuses_the_change(app, database_urls, tmp_path):
    """Signing out everywhere is recorded in the audit trail: without its metadata column
    the sessions are not ended either."""
    with scratch_binds(database_urls, tmp_path, ["auth"]) as urls:
        console = make_app(urls)
        try:
            client = console.test_client()
            StaffSignIn(console, client).login("admin")
            drift_databases(urls, {"auth": [lambda conn: drop_column(conn, "security_audit_logs", "metadata")]})
            with console.app_context():
                from console.drift import drift

                drift().check(force=True)
                active = db.session.scalar(select(func.count()).select_from(UserSession)
                                           .where(UserSession.is_active.is_(True)))
                audited = db.session.scalar(select(func.count(SecurityAuditLog.id)))
            response = client.post("/logout/everywhere")
            body = response.get_data(as_text=True)
            assert response.status_code == 503, body[:500]
            assert "security_audit_logs.metadata" in body
            with console.app_context():
                assert db.session.scalar(select(func.count()).select_from(UserSession)
                                         .where(UserSession.is_active.is_(True))) == active
                assert db.session.scalar(select(func.count(SecurityAuditLog.id))) == audited
        finally:
            dispose(console)


def test_a_column_dropped_while_the_console_runs_is_read_again_not_a_500(app, database_urls, tmp_path):
    from console.models.order import OrderStatusHistory

    with scratch_binds(database_urls, tmp_path, ["order"]) as urls:
        console = make_app(urls)
        try:
            client = console.test_client()
            StaffSignIn(console, client).login("admin")
            with console.app_context():
                data = paid_order(status="confirmed")
                order_id, key = data.order.id, data.order.order_number
            order_page = f"/orders/{key}"
            assert client.get(order_page).status_code == 200  # order_db's columns read: nothing drifted
            assert client.get("/orders").status_code == 200
            # The service drops orders.shippedAt (the order page shows it) while the console runs.
            drift_databases(urls, {"order": [lambda conn: drop_column(conn, "orders", "shippedAt")]})

            # The first page that names the column is refused by the database: a 503 that
            # says what is gone and what to do, and order_db's columns are read again.
            refused = client.get(order_page)
            message = refused.get_data(as_text=True)
            assert refused.status_code == 503 and refused.headers["Retry-After"]
            assert "order_db no longer has the column" in message and "shippedAt" in message
            assert "reload the page" in message
            # From then on the page works without it, as with drift found at start-up.
            page = client.get(order_page)
            assert page.status_code == 200
            assert re.search(r"shipped <span class=\"badge[^\"]*not-in-database", page.get_data(as_text=True))
            assert client.get("/orders").status_code == 200
            with console.app_context():
                assert [d.name for d in drift().binds["order"].columns] == ["orders.shippedAt"]

            # The column comes back and goes again: a change asked for meanwhile is refused
            # with the same 503 and writes nothing; asked again, it is made.
            drift_databases(urls, {"order": [lambda conn: conn.execute(
                text('ALTER TABLE orders ADD COLUMN "shippedAt" TIMESTAMP(3)'))]})
            assert client.post("/databases/check-schema").status_code in (302, 303)
            assert client.get(order_page).status_code == 200
            drift_databases(urls, {"order": [lambda conn: drop_column(conn, "orders", "shippedAt")]})
            change = {"status": "processing", "reason": "picked"}

            def history() -> int:
                with console.app_context():
                    return db.session.scalar(select(func.count()).select_from(OrderStatusHistory)
                                             .where(OrderStatusHistory.order_id == order_id))
            before = history()
            refused = client.post(f"{order_page}/status", data=change)
            assert refused.status_code == 503 and "no longer has the column" in refused.get_data(as_text=True)
            assert history() == before
            with console.app_context():
                assert db.session.get(Order, order_id).status == "confirmed"
            made = client.post(f"{order_page}/status", data=change)
            assert made.status_code == 303 and history() == before + 1
            with console.app_context():
                assert db.session.get(Order, order_id).status == "processing"
        finally:
            dispose(console)


def test_what_a_database_says_of_a_missing_column_or_table_is_recognised():
    import sqlite3

    import psycopg

    from console.drift import _missing_named

    column = psycopg.errors.UndefinedColumn('column orders.shippedAt does not exist\nLINE 1: SELECT ...')
    assert _missing_named(column) == "the column orders.shippedAt"
    table = psycopg.errors.UndefinedTable('relation "order_notes" does not exist')
    assert _missing_named(table) == "the table order_notes"
    assert _missing_named(sqlite3.OperationalError("no such column: orders.shippedAt")) == \
        "the column orders.shippedAt"
    assert _missing_named(sqlite3.OperationalError("no such table: order_notes")) == "the table order_notes"
    assert _missing_named(sqlite3.OperationalError("table orders has no column named shippedAt")) == \
        "the column shippedAt"
    # Anything else is not a schema change.
    assert _missing_named(sqlite3.OperationalError("database is locked")) is None
    assert _missing_named(psycopg.errors.UniqueViolation("duplicate key")) is None
    assert _missing_named(psycopg.errors.UndefinedFunction("function nope() does not exist")) is None
