"""Database connections: a download the client abandons gives every connection back at
once, and the console's ceiling per PostgreSQL server fits the server.

The downloads run in a real threaded server (werkzeug's, as the browser tests use) on a
real socket, so the server itself closes the response when the client goes away, as
gunicorn does. Small socket buffers make the server block in send() after a few dozen
kilobytes, with the export mid-way: its cursor open, its lookup threads running.
"""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from config import BASE_DIR, BIND_KEYS, bind_config, connection_ceiling
from console.demo.seed import DEMO_STAFF_PASSWORD, seed_demo
from console.extensions import db
from console.models.order import Order
from tests import databases

SEEDED_ORDERS = 1000  # about 250 KB of CSV: far more than the socket buffers below hold
SEEDED_CUSTOMERS = 1000
BATCH = 100  # rows per batch, so a download is many batches deep when it stops
# Connections come back as soon as the server closes the response; this only bounds the wait.
RELEASE_SECONDS = 5


@pytest.fixture
def seeded(app, monkeypatch):
    from console.demo import seed
    from console import exports
    from console.screens import lists, orders

    monkeypatch.setattr(seed, "RICH_CUSTOMERS", 8)
    monkeypatch.setattr(seed, "RICH_ORDERS", 30)
    monkeypatch.setattr(orders, "EXPORT_BATCH", BATCH)
    monkeypatch.setattr(exports, "EXPORT_BATCH", BATCH)
    monkeypatch.setattr(lists, "STREAM_BATCH", BATCH)
    with app.app_context():
        seed_demo(customers=SEEDED_CUSTOMERS, orders=SEEDED_ORDERS, seed=5)
        order_number = db.session.scalar(select(Order.order_number).limit(1))
        db.session.remove()
    return order_number


@contextmanager
def served(app):
    """The app on a free localhost port, threaded, with small send buffers (accepted
    sockets inherit the listening socket's)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def sign_in(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/login", body=f"email=admin%40example.com&password={DEMO_STAFF_PASSWORD}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 302
    return response.getheader("Set-Cookie").split(";")[0]


def get(port: int, path: str, cookie: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers={"Cookie": cookie})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def start_download(port: int, path: str, cookie: str) -> socket.socket:
    """A client with a small receive window that reads the start of ``path`` and then
    nothing more."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(30)
    client.connect(("127.0.0.1", port))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: console.test\r\nCookie: {cookie}\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 2048:
        chunk = client.recv(4096)
        assert chunk, f"the server closed the download early: {received[:300]!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    return client


class Connections:
    """What the app's pools have checked out, the export threads alive and, on
    PostgreSQL, the test databases' backends that are busy or that no pool keeps."""

    def __init__(self, app):
        with app.app_context():
            self.engines = dict(db.engines)
        self.postgres = all(engine.dialect.name == "postgresql" for engine in self.engines.values())
        self.baseline = self.now()

    def _backends(self) -> dict[str, tuple[int, int]]:
        names = {engine.url.database: key for key, engine in self.engines.items()}
        with psycopg.connect(databases.PG_ADMIN_URL) as admin:
            rows = admin.execute("SELECT datname, count(*), count(*) FILTER (WHERE state <> 'idle') "
                                 "FROM pg_stat_activity WHERE datname = ANY(%s) GROUP BY datname",
                                 [list(names)]).fetchall()
        return {names[name]: (total, busy) for name, total, busy in rows}

    def now(self) -> dict:
        checked_out = {key: engine.pool.checkedout() for key, engine in self.engines.items()}
        state = {"checked out": {key: n for key, n in checked_out.items() if n},
                 "export threads": sorted(t.name for t in threading.enumerate() if t.name.startswith("export-"))}
        if self.postgres:
            backends = self._backends()
            state["busy backends"] = {key: busy for key, (_, busy) in backends.items() if busy}
            # Backends beyond what the pools hold (those of other apps in the run stay as they were).
            state["outside the pools"] = {
                key: backends.get(key, (0, 0))[0] - engine.pool.checkedin() - engine.pool.checkedout()
                for key, engine in self.engines.items()}
        return state

    def held(self) -> bool:
        return bool(self.now()["checked out"])

    def wait_until(self, condition, seconds: float) -> dict:
        deadline = time.monotonic() + seconds
        while not condition(state := self.now()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return state


# The lists the seeded data makes far longer than the socket buffers (the others' files
# fit in them whole, so no download of theirs stops half-way); all of them export through
# the same COPY path (console/exports.py, copy_blocks).
@pytest.mark.parametrize("path, home", [("/orders/export.csv", "order"), ("/customers/export.csv", "user")],
                         ids=["orders (COPY, five lookups per batch)", "customers (COPY, two lookups per batch)"])
def test_a_download_dropped_half_way_gives_every_connection_back_at_once(app, seeded, path, home):
    pools = Connections(app)
    assert pools.baseline["checked out"] == {} and pools.baseline["export threads"] == []
    assert not pools.baseline.get("busy backends")
    with served(app) as port:
        cookie = sign_in(port)
        client = start_download(port, path, cookie)
        # Mid-way: the server is blocked sending the rest, its cursor open on the list's database.
        during = pools.wait_until(lambda state: home in state["checked out"], 30)
        assert home in during["checked out"], during
        client.close()  # unread data: the server's next send fails, as with a browser cancelling

        after = pools.wait_until(lambda state: state == pools.baseline, RELEASE_SECONDS)
        assert after == pools.baseline
        assert get(port, f"/orders/{seeded}", cookie) == 200


def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(app, seeded, monkeypatch):
    monkeypatch.setitem(app.config, "EXPORT_SEND_TIMEOUT", 2)
    pools = Connections(app)
    with served(app) as port:
        cookie = sign_in(port)
        client = start_download(port, "/orders/export.csv", cookie)
        # The client keeps the connection open and reads nothing more.
        after = pools.wait_until(lambda state: state == pools.baseline, 2 + 3 * RELEASE_SECONDS)
        assert after == pools.baseline
        received = b""
        while chunk := client.recv(65536):
            received += chunk
        client.close()
        # The server gave up: the chunked body never got its last, empty chunk.
        assert not received.endswith(b"0\r\n\r\n")
        assert received.count(b"\n") < SEEDED_ORDERS
        assert get(port, f"/orders/{seeded}", cookie) == 200


@pytest.mark.postgres_only
def test_downloads_under_way_leave_the_other_threads_their_connections(app, seeded, monkeypatch):
    """With a pool per database as large as the threads (README, "Connections to
    PostgreSQL"), downloads on all threads but one leave that one every connection a
    page needs: each download holds one connection per database it reads. (The default
    EXPORTS_AT_ONCE allows fewer downloads than that; here it is raised to the most.)"""
    order_pool = app.config["SQLALCHEMY_BINDS"]["order"]
    threads = order_pool["pool_size"] + order_pool["max_overflow"]
    assert app.config["EXPORTS_AT_ONCE"] <= threads - 1
    monkeypatch.setitem(app.config, "EXPORTS_AT_ONCE", threads - 1)
    pools = Connections(app)
    with served(app) as port:
        cookie = sign_in(port)
        clients = [start_download(port, "/orders/export.csv", cookie) for _ in range(threads - 1)]
        during = pools.wait_until(lambda state: state["checked out"].get("order") == threads - 1, 30)
        assert during["checked out"].get("order") == threads - 1, during
        assert get(port, f"/orders/{seeded}", cookie) == 200
        assert get(port, "/orders", cookie) == 200
        for client in clients:
            client.close()
        assert pools.wait_until(lambda state: state == pools.baseline, RELEASE_SECONDS) == pools.baseline


def test_closing_the_csv_part_way_closes_its_rows():
    """The server's close() reaches the rows (and their cursor, threads and connections)
    at once, even while something else still refers to them."""
    from console.exports import csv_lines

    closed = []

    def rows():
        try:
            for n in range(100_000):
                yield [n, "x" * 100]
        finally:
            closed.append(True)

    source = rows()
    lines = csv_lines(["n", "text"], source)
    next(lines), next(lines)
    lines.close()
    assert closed == [True]


def test_closing_the_read_ahead_part_way_closes_the_rows_it_reads():
    """An export reads its next batch on a thread while the current one is written: when
    the download is closed part-way, the batches' source is closed too (its COPY
    cancelled), after the read under way has finished, not left open on its connection."""
    from console.exports import _read_ahead

    closed, read = [], []

    def batches():
        try:
            for n in range(1000):
                read.append(n)
                yield [[n]]
        finally:
            closed.append(len(read))

    source = batches()  # the export keeps its own reference to the rows
    ahead = _read_ahead(source)
    assert next(ahead) == [[0]]
    ahead.close()
    assert closed == [2]  # the first batch written, the second read ahead, no more


@pytest.mark.postgres_only
def test_a_big_download_closed_part_way_cancels_its_copy(app, seeded, monkeypatch):
    """The orders export's COPY outgrows the socket between the server and the console
    (a few MB here): closing the download part-way cancels it and gives the connection back,
    instead of waiting for ever on a server that is still sending."""
    from console import exports

    monkeypatch.setattr(exports, "copy_batches", _padded(exports.copy_batches))
    monkeypatch.setattr(exports, "ROWS_PER_WRITE", 10)  # the first chunks hold a few batches, not all
    pools = Connections(app)
    client = app.test_client()
    assert client.post("/login", data={"email": "admin@example.com", "password": DEMO_STAFF_PASSWORD}).status_code == 302
    closed = []

    def download_part_and_close():  # on a thread of its own: a hang fails the test, not the run
        response = client.get("/orders/export.csv", buffered=False)
        chunks = response.iter_encoded()
        next(chunks), next(chunks)
        response.close()
        closed.append(True)

    downloading = threading.Thread(target=download_part_and_close, daemon=True)
    downloading.start()
    downloading.join(RELEASE_SECONDS * 6)
    assert closed, "closing the download waited on its COPY"
    assert pools.wait_until(lambda state: state == pools.baseline, RELEASE_SECONDS) == pools.baseline


def _padded(copy_batches):
    """copy_batches over a statement whose every row carries 50 KB more (dropped again from
    the rows), so the server's output outgrows the socket buffers within a few batches."""
    from sqlalchemy import func, literal

    def padded(connection, stmt, batch_size):
        rows = copy_batches(connection, stmt.add_columns(func.repeat(literal("x"), 50_000).label("padding")),
                            batch_size)
        try:
            for batch in rows:
                yield [row[:-1] for row in batch]
        finally:
            rows.close()
    return padded


# --- the ceiling ---------------------------------------------------------------------------------

def test_the_ceiling_is_workers_times_each_servers_databases_times_their_pool():
    pg = "postgresql+psycopg://console@{}/{}_db"
    one_server = {key: bind_config(pg.format("db.internal:5432", key)) for key in BIND_KEYS}
    pool = one_server["order"]["pool_size"] + one_server["order"]["max_overflow"]
    assert connection_ceiling(2, one_server) == {
        "db.internal:5432": (2 * 10 * pool, f"2 workers x 10 databases x (pool {one_server['order']['pool_size']} "
                                            f"+ overflow {one_server['order']['max_overflow']}) = {20 * pool}")}
    # The defaults fit a default PostgreSQL: max_connections 100, 3 of them for superusers.
    assert 2 * 10 * pool <= 97

    split = {key: {"url": pg.format("auth.internal", key), "pool_size": 3, "max_overflow": 1} if key == "auth"
             else {"url": pg.format("db.internal:6432", key), "pool_size": 1, "max_overflow": 2}
             for key in BIND_KEYS}
    split["cart"] = {"url": "sqlite:///cart_db.sqlite"}  # a file: no server to count
    assert {server: connections for server, (connections, _) in connection_ceiling(4, split).items()} == {
        "auth.internal:5432": 4 * 1 * 4, "db.internal:6432": 4 * 8 * 3}
    assert connection_ceiling(4, {"cart": {"url": "sqlite:///cart_db.sqlite"}}) == {}


def test_gunicorn_refuses_to_start_above_the_servers_connections(tmp_path):
    env = {**os.environ, "CONSOLE_WORKERS": "3", "CONSOLE_BIND": "127.0.0.1:0", "CONSOLE_ENV": "testing",
           "CONSOLE_PG_MAX_CONNECTIONS": "97", "CONSOLE_POOL_SIZE": "2", "CONSOLE_POOL_OVERFLOW": "2",
           **{f"{key.upper()}_DATABASE_URL": f"postgresql+psycopg://console@127.0.0.1:1/{key}_db"
              for key in BIND_KEYS}}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    finished = subprocess.run([gunicorn, "-c", "gunicorn.conf.py", "wsgi:app"],
                              cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 1
    assert "3 workers x 10 databases x (pool 2 + overflow 2) = 120" in finished.stderr
    assert "more than CONSOLE_PG_MAX_CONNECTIONS=97" in finished.stderr


# --- pooled connections checked at checkout --------------------------------------------------------

def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()


@pytest.mark.postgres_only
def test_a_pooled_connection_the_server_ended_is_replaced_at_checkout(app):
    """A connection that the server closed while it sat in the pool (a restart,
    pg_terminate_backend) never reaches a request: the next checkout sees its socket
    readable and opens a new one, with no error and no ping."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    with app.app_context():
        engine = db.engines["order"]
        engine.pool.dispose()
        pid = _backend_pid(engine)
        assert _backend_pid(engine) == pid  # the same pooled connection, reused
        with create_engine(engine.url, poolclass=NullPool).connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
            deadline = time.monotonic() + 10
            while other.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}).scalar() and time.monotonic() < deadline:
                time.sleep(0.05)  # until the backend has gone, its goodbye sent
        with engine.connect() as connection:  # the same checkout a request makes: no error
            assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid


@pytest.mark.postgres_only
def test_a_connection_idle_past_the_limit_is_pinged_and_a_dead_one_replaced(app, monkeypatch):
    """A peer that vanished without a word leaves nothing to read: a connection unused for
    longer than PING_AFTER_IDLE is pinged at checkout, and replaced when the ping fails."""
    from console import liveness

    with app.app_context():
        engine = db.engines["order"]
        engine.pool.dispose()
        pid = _backend_pid(engine)
        pings = []
        ping = engine.dialect.do_ping

        def ping_as_if_the_first_were_gone(dbapi_connection):
            pings.append(dbapi_connection.info.backend_pid)
            if dbapi_connection.info.backend_pid == pid:
                raise engine.dialect.loaded_dbapi.OperationalError("the peer is gone")
            return ping(dbapi_connection)

        monkeypatch.setattr(engine.dialect, "do_ping", ping_as_if_the_first_were_gone)
        assert _backend_pid(engine) == pid and not pings  # just used: not pinged
        monkeypatch.setattr(liveness, "PING_AFTER_IDLE", -1.0)
        new_pid = _backend_pid(engine)
        assert pings[0] == pid and new_pid != pid
