"""The console behind PgBouncer in transaction mode (CONSOLE_PGBOUNCER=1).

PgBouncer is started here on a free port in front of the test databases, with two
server connections per database that it hands each transaction in turn
(server_round_robin), so anything that relies on a server session fails at once: a
statement psycopg prepared on one server connection and runs by name on the other, a
setting made for the session. The ten binds go through it.
"""
from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import time
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from config import STATEMENT_TIMEOUT
from console.demo.builders import ensure_shipping_options, make_customer, make_order, make_product
from console.extensions import db
from console.models.order import Order, OrderNote
from console.models.types import utcnow
from tests import databases
from tests.conftest import StaffSignIn, make_app

pytestmark = pytest.mark.postgres_only

PGBOUNCER = "/usr/sbin/pgbouncer"
ORDERS = 12
# psycopg prepares a statement on the server once it has run this many times.
PREPARE_THRESHOLD = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pgbouncer(tmp_path):
    """A PgBouncer in transaction mode in front of the test server; yields its port."""
    if not os.path.exists(PGBOUNCER):
        reason = f"PgBouncer not installed at {PGBOUNCER} (apt-get install -y pgbouncer)"
        if databases.IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    server = make_url(databases.PG_ADMIN_URL)
    port = free_port()
    (tmp_path / "users.txt").write_text(f'"{server.username}" ""\n')
    (tmp_path / "pgbouncer.ini").write_text(f"""\
[databases]
* = host={server.host or '127.0.0.1'} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp_path / 'users.txt'}
pool_mode = transaction
server_round_robin = 1
default_pool_size = 2
""")
    command = [PGBOUNCER, str(tmp_path / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]  # PgBouncer refuses to run as root
    log = open(tmp_path / "pgbouncer.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=port, dbname="postgres", user=server.username,
                                     connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"PgBouncer did not start: {(tmp_path / 'pgbouncer.log').read_text()}")
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def bouncer_app(app, database_urls, pgbouncer):
    """The console with its ten binds through PgBouncer (the test databases, their schema
    made by the ``app`` fixture)."""
    through = {key: make_url(url).set(host="127.0.0.1", port=pgbouncer).render_as_string(hide_password=False)
               for key, url in database_urls.items()}
    for url in through.values():
        # Two transactions at once: PgBouncer opens the second server connection now.
        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(conninfo) as first, psycopg.connect(conninfo) as second:
            first.execute("SELECT 1")
            second.execute("SELECT 1")
    application = make_app(through, PGBOUNCER=True)
    yield application
    with application.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def test_the_console_works_through_pgbouncer_in_transaction_mode(bouncer_app):
    with bouncer_app.app_context():
        ensure_shipping_options()
        mug = make_product("MUG-1", "Blue mug", "10.00", stock=100, reserved=ORDERS)
        ids, numbers = [], []
        for n in range(ORDERS):
            customer, _ = make_customer(f"c{n}@example.com", f"Name{n}", "Smith")
            order = make_order(customer, [(mug, 1)], status="confirmed", created_at=utcnow() - timedelta(days=1)).order
            ids.append(order.id)
            numbers.append(order.order_number)
        db.session.commit()
        db.session.remove()
        for engine in db.engines.values():
            with engine.connect() as connection:
                # One statement in transaction after transaction, each on the other server
                # connection: never prepared on one and run by name on the other (psycopg
                # forgets its counts at a rollback, not at a commit).
                for _ in range(3 * PREPARE_THRESHOLD):
                    # The timeout is set in each transaction (PgBouncer refuses it as a startup option).
                    assert connection.execute(text("SHOW statement_timeout")).scalar() == f"{STATEMENT_TIMEOUT}s"
                    connection.commit()

    client = bouncer_app.test_client()
    StaffSignIn(bouncer_app, client).login("support")
    # The same statements, many more times than psycopg's threshold for preparing them.
    for _ in range(3 * PREPARE_THRESHOLD):
        assert client.get("/orders").status_code == 200
        assert client.get("/orders?status=confirmed&sort=-total").status_code == 200
    assert client.get(f"/orders/{numbers[0]}").status_code == 200

    # Writes across databases: a note, a cancellation (order, stock, history, audit) and a
    # bulk change, one transaction per order.
    noted = client.post(f"/orders/{numbers[0]}/notes", data={"note": "Through the pooler"})
    assert noted.status_code == 303
    cancelled = client.post(f"/orders/{numbers[0]}/cancel", data={"reason": "customer asked"})
    assert cancelled.status_code == 303
    bulk = client.post("/orders/bulk", data={"action": "processing", "scope": "selected", "order_id": ids[1:]})
    assert f"{ORDERS - 1} done, 0 refused" in bulk.get_data(as_text=True)
    with bouncer_app.app_context():
        assert db.session.scalars(select(Order.status).order_by(Order.status)).all() == \
            ["cancelled"] + ["processing"] * (ORDERS - 1)
        assert db.session.scalars(select(OrderNote.note)).all() == ["Through the pooler"]

    # The export: a server-side cursor and its own timeout, in one transaction.
    for _ in range(2):
        export = client.get("/orders/export.csv")
        assert export.status_code == 200
        rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
        assert sorted(row[0] for row in rows[1:]) == sorted(numbers)
