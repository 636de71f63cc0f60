"""A page that only reads PostgreSQL reads it outside transactions (no BEGIN, no
ROLLBACK); whatever needs a transaction still gets one (console/untransacted_reads.py)."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select, text

from console.extensions import db
from console.models.auth import User
from console.models.order import Order
from tests.conftest import every_statement, make_app

pytestmark = pytest.mark.postgres_only

IDLE, INTRANS = psycopg.pq.TransactionStatus.IDLE, psycopg.pq.TransactionStatus.INTRANS


class DriverStates:
    """For every statement the engines run: (database, autocommit, transaction status)
    of the driver connection it runs on, as it starts."""

    def __init__(self):
        self.seen: list[tuple[str, bool, object]] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        driver = conn.connection.driver_connection
        self.seen.append((conn.engine.url.database, driver.autocommit, driver.info.transaction_status))


@pytest.fixture
def driver_states(app):
    with every_statement(app, DriverStates()) as states:
        yield states


def _pooled_connections_in_transactions(app) -> None:
    """Every connection back in the pools is an ordinary one again."""
    with app.app_context():
        for engine in db.engines.values():
            with engine.connect() as connection:
                assert connection.connection.driver_connection.autocommit is False


def test_a_list_page_reads_every_database_without_a_transaction(app, auth, client, driver_states):
    from console.demo.seed import seed_demo

    with app.app_context():
        seed_demo(customers=8, orders=24, seed=3)
        db.session.remove()
    auth.login("support")
    driver_states.seen.clear()
    assert client.get("/orders").status_code == 200
    databases = {name for name, _, _ in driver_states.seen}
    assert len(databases) >= 5  # the session check, the page, its lookups in the other databases
    assert all(autocommit and status == IDLE for _, autocommit, status in driver_states.seen), driver_states.seen
    _pooled_connections_in_transactions(app)


def test_a_form_post_runs_in_transactions(app, auth, client, driver_states):
    auth.login("admin")
    driver_states.seen.clear()
    client.post("/logout")
    assert driver_states.seen
    assert not any(autocommit for _, autocommit, _ in driver_states.seen), driver_states.seen
    _pooled_connections_in_transactions(app)


def _driver(bind: str):
    return db.session.connection(bind_arguments={"bind": db.engines[bind]}).connection.driver_connection


def test_a_read_request_that_locks_gets_a_transaction_that_holds_the_lock(app):
    """Text SQL (here a transaction-scoped advisory lock) turns the request's reads back
    into transactions before it runs: the lock lasts until the commit."""
    with app.test_request_context("/orders", method="GET"):
        app.preprocess_request()
        db.session.execute(select(Order.id).limit(1))
        driver = _driver("order")
        assert driver.autocommit and driver.info.transaction_status == IDLE
        db.session.execute(text("SELECT pg_advisory_xact_lock(424242)"), bind_arguments={"bind": db.engines["order"]})
        assert not driver.autocommit and driver.info.transaction_status == INTRANS
        with db.engines["order"].connect() as other:
            held = other.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                      "AND objid = 424242")).scalar()
        assert held == 1
        db.session.commit()
        db.session.remove()


def test_a_read_request_that_writes_writes_all_or_nothing(app):
    """A flush in a GET request runs in a transaction: rolled back, nothing is left."""
    from console.demo.builders import make_staff

    with app.test_request_context("/orders", method="GET"):
        app.preprocess_request()
        assert db.session.scalar(select(User.id).where(User.email == "half@staff.test")) is None
        assert _driver("auth").autocommit
        make_staff("support", "half@staff.test", "Test-password-1")
        db.session.flush()
        assert not _driver("auth").autocommit and _driver("auth").info.transaction_status == INTRANS
        db.session.rollback()
        db.session.remove()
    with app.app_context():
        assert db.session.scalar(select(User.id).where(User.email == "half@staff.test")) is None
        db.session.remove()


def test_select_for_update_in_a_read_request_holds_its_row_lock(app):
    with app.test_request_context("/orders", method="GET"):
        app.preprocess_request()
        db.session.execute(select(User.id).limit(1))
        assert _driver("auth").autocommit
        db.session.execute(select(User.id).limit(1).with_for_update())
        assert not _driver("auth").autocommit and _driver("auth").info.transaction_status == INTRANS
        db.session.rollback()
        db.session.remove()


def test_behind_pgbouncer_reads_keep_their_transactions(database_urls):
    """There every transaction sets its statement timeout as it begins."""
    bouncer_app = make_app(database_urls, PGBOUNCER=True)
    with bouncer_app.test_request_context("/orders", method="GET"):
        bouncer_app.preprocess_request()
        db.session.execute(select(Order.id).limit(1))
        driver = _driver("order")
        assert not driver.autocommit and driver.info.transaction_status == INTRANS
        db.session.remove()
    with bouncer_app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def test_outside_a_request_nothing_changes(app):
    with app.app_context():
        db.session.execute(select(Order.id).limit(1))
        assert _driver("order").info.transaction_status == INTRANS
        db.session.remove()
