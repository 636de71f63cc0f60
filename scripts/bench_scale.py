"""Benchmark: every screen at scale, on demo data made by ``seed-demo``.

Builds ten scratch PostgreSQL databases (``init-db``, then ``seed-demo --customers C
--orders N``, timed), or uses ten existing ones (``--existing PREFIX``: databases
PREFIX_auth … PREFIX_notification), signs in as the demo admin and prints, in one run:

- each list (orders, customers, returns, refunds, activity, staff): the first page and
  a page ``--depth`` rows deep (keyset cursor), per sortable column, with statements;
- the dashboard, computed and kept (DASHBOARD_CACHE_SECONDS);
- search: an order number, an order number prefix, an email prefix, a tracking number;
- the order page: time and statements;
- the orders export: rows/s and the process's peak memory, next to PostgreSQL's own
  ``COPY (SELECT …) TO STDOUT`` of the same orders;
- a plain Flask-Admin ModelView of the same orders table (its defaults: COUNT(*) and
  OFFSET paging), first page and the same depth;
- the ratios last.

Times are medians of ``--repeat`` requests through Flask's test client (templates,
sign-in and cross-database lookups included; no network).

    .venv/bin/python scripts/bench_scale.py --orders 1000000 --customers 100000
    .venv/bin/python scripts/bench_scale.py --existing console_demo --depth 500000

Scratch databases are dropped at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, select, text  # noqa: E402

from config import BIND_KEYS, bind_config, env_var  # noqa: E402

PG_ADMIN = os.environ.get("CONSOLE_BENCH_PG", "postgresql://root@127.0.0.1:5432/postgres")
PASSWORD = "console-demo-1"
LISTS = (("orders", "/orders"), ("customers", "/customers"), ("returns", "/returns"), ("refunds", "/refunds"),
         ("activity", "/activity"), ("staff", "/staff"))


def database_urls(prefix: str) -> dict[str, str]:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return {key: f"{base}/{prefix}_{key}" for key in BIND_KEYS}


def create_databases(prefix: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for key in BIND_KEYS:
            conn.execute(f'DROP DATABASE IF EXISTS "{prefix}_{key}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{prefix}_{key}"')


def drop_databases(prefix: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for key in BIND_KEYS:
            conn.execute(f'DROP DATABASE IF EXISTS "{prefix}_{key}" WITH (FORCE)')


def flask_cli(urls: dict[str, str], *args: str) -> float:
    env = {**os.environ, **{env_var(k): u for k, u in urls.items()}}
    started = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "console", *args], cwd=ROOT, env=env,
                   check=True)
    return time.perf_counter() - started


class Statements:
    def __init__(self):
        self.count = 0

    def __call__(self, *args):
        self.count += 1


def timed(client, url: str, repeat: int, counter: Statements) -> tuple[float, int, int]:
    """(median ms, statements of the last request, status)."""
    times, status = [], 0
    for _ in range(repeat):
        counter.count = 0
        started = time.perf_counter()
        response = client.get(url)
        response.get_data()
        times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return statistics.median(times), counter.count, status


def cursor_at(app, screen, sort, descending: bool, depth: int) -> str | None:
    """A Next cursor ``depth`` rows down the list (found with one untimed OFFSET query)."""
    from console.extensions import db
    from console.lookups import Lookups
    from console.screens.keyset import encode_cursor, ordered

    with app.test_request_context():
        filters, _ = screen.filters.parse({})
        stmt = ordered(screen.statement(filters, Lookups()), sort.column, screen.id_column, descending)
        row = db.session.scalars(stmt.offset(depth).limit(1)).first()
        if row is None:
            return None
        return encode_cursor(sort.key, getattr(row, sort.column.key), getattr(row, screen.id_column.key))


def peer_app(binds: dict):
    """A plain Flask-Admin list of the orders table, as it comes: COUNT(*) and OFFSET."""
    from flask import Flask
    from flask_admin import Admin
    from flask_admin.contrib.sqla import ModelView

    from console.extensions import db
    from console.models.order import Order

    peer = Flask("peer")
    peer.config.update(SECRET_KEY="bench", SQLALCHEMY_BINDS=binds)
    db.init_app(peer)

    class OrdersView(ModelView):
        page_size = 50
        column_default_sort = ("created_at", True)

    Admin(peer, url="/peer").add_view(OrdersView(Order, db, endpoint="peer_orders", url="/peer/orders"))
    return peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100000)
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--existing", metavar="PREFIX", help="use databases PREFIX_<bind> as they are")
    parser.add_argument("--depth", type=int, default=500000, help="rows down for the deep pages")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--skip-lists", action="store_true", help="leave out the lists (the longest part)")
    opts = parser.parse_args()

    prefix = opts.existing or f"console_bench_{os.getpid()}"
    urls = database_urls(prefix)
    results: list[tuple[str, str]] = []

    def say(label: str, value: str) -> None:
        results.append((label, value))
        print(f"{label:<58} {value}", flush=True)

    try:
        if not opts.existing:
            create_databases(prefix)
            flask_cli(urls, "init-db")
            seconds = flask_cli(urls, "seed-demo", "--customers", str(opts.customers), "--orders", str(opts.orders))
            say("seed-demo", f"{seconds:,.0f} s for {opts.orders:,} orders ({opts.orders / seconds:,.0f} orders/s)")
        run(urls, opts, say)
    finally:
        if not opts.existing and not opts.keep:
            drop_databases(prefix)


def run(urls: dict[str, str], opts, say) -> None:
    from console import create_app
    from console.extensions import db
    from console.models.auth import User
    from console.models.order import Order
    from console.models.shipping import Shipment
    from console.models.user import UserProfile
    from console.screens import activity, customers, orders, refunds, returns, staff

    binds = {key: bind_config(url) for key, url in urls.items()}
    app = create_app("testing", {"SQLALCHEMY_BINDS": binds, "WTF_CSRF_ENABLED": False, "DASHBOARD_CACHE_SECONDS": 0})
    counter = Statements()
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", counter)
        total = db.session.scalar(select(func.count()).select_from(Order))
        sample = db.session.execute(select(Order.order_number, Order.id).where(Order.tracking_number.isnot(None))
                                    .order_by(Order.created_at.desc()).limit(1)).one()
        tracking = db.session.scalar(select(Shipment.tracking_number).where(Shipment.order_id == sample.id))
        email = db.session.scalar(select(UserProfile.email).order_by(UserProfile.created_at.desc()).limit(1))
        assert db.session.scalar(select(User.id).where(User.email == "admin@example.com"))
    depth = min(opts.depth, total // 2)
    say("orders in the databases", f"{total:,} (deep pages {depth:,} rows down)")
    client = app.test_client()
    assert client.post("/login", data={"email": "admin@example.com", "password": PASSWORD}).status_code == 302

    screens = {"orders": orders.ORDERS, "customers": customers.CUSTOMERS, "returns": returns.RETURNS,
               "refunds": refunds.REFUNDS, "activity": activity.ACTIVITY, "staff": staff.STAFF}
    console_deep = None
    for name, url in ([] if opts.skip_lists else LISTS):
        screen = screens[name]
        for sort in screen.sorts:
            arg = ("-" if sort.descending else "") + sort.key
            first, statements, status = timed(client, f"{url}?sort={arg}", opts.repeat, counter)
            cursor = cursor_at(app, screen, sort, sort.descending, depth)
            line = f"first {first:7.1f} ms ({statements} statements, {status})"
            if cursor:
                deep, deep_statements, status = timed(client, f"{url}?sort={arg}&cursor={cursor}", opts.repeat,
                                                      counter)
                line += f"   deep {deep:7.1f} ms ({deep_statements} statements, {status})"
                if name == "orders" and sort.key == "created":
                    console_deep = (first, deep)
            say(f"list {name} by {arg}", line)

    dash_ms, statements, _ = timed(client, "/", opts.repeat, counter)
    say("dashboard, computed on every load", f"{dash_ms:7.1f} ms ({statements} statements)")
    app.config["DASHBOARD_CACHE_SECONDS"] = 60
    client.get("/")
    kept_ms, kept_statements, _ = timed(client, "/", opts.repeat, counter)
    say("dashboard, order figures kept (60 s)", f"{kept_ms:7.1f} ms ({kept_statements} statements)")

    for label, term in (("order number", sample.order_number), ("order number prefix", sample.order_number[:12]),
                        ("email prefix", email[:5]), ("tracking number", tracking)):
        ms, statements, status = timed(client, f"/search?q={term}", opts.repeat, counter)
        say(f"search: {label} ({term})", f"{ms:7.1f} ms ({statements} statements, {status})")

    ms, statements, status = timed(client, f"/orders/{sample.order_number}", opts.repeat, counter)
    say("order page", f"{ms:7.1f} ms ({statements} statements, {status})")

    # The export, streamed as a browser would read it, against PostgreSQL's COPY.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get("/orders/export.csv", buffered=False)
    lines = sum(chunk.count(b"\n") for chunk in response.iter_encoded())
    seconds = time.perf_counter() - started
    export_rate = (lines - 1) / seconds
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    say("orders export (with customer email)", f"{lines - 1:,} rows in {seconds:,.1f} s = {export_rate:,.0f} rows/s; "
        f"peak RSS {peak / 1024:,.0f} MB (before {before / 1024:,.0f} MB)")
    copy_rate = copy_orders(urls["order"])
    say("COPY (SELECT orders) TO STDOUT", f"{copy_rate:,.0f} rows/s")

    peer = peer_app(binds)
    peer_client = peer.test_client()
    with peer.app_context():
        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", counter)
    peer_first, peer_statements, status = timed(peer_client, "/peer/orders/", opts.repeat, counter)
    say("Flask-Admin ModelView orders, first page", f"{peer_first:7.1f} ms ({peer_statements} statements, {status})")
    peer_deep, _, status = timed(peer_client, f"/peer/orders/?page={depth // 50}", opts.repeat, counter)
    say(f"Flask-Admin ModelView orders, page {depth // 50}", f"{peer_deep:7.1f} ms ({status})")

    print("\nratios")
    if console_deep:
        print(f"  orders list first page: console {console_deep[0]:.1f} ms vs Flask-Admin {peer_first:.1f} ms "
              f"= {peer_first / console_deep[0]:.1f}x")
        print(f"  orders list {depth:,} rows deep: console {console_deep[1]:.1f} ms vs Flask-Admin {peer_deep:.1f} ms "
              f"= {peer_deep / console_deep[1]:.1f}x")
    print(f"  export / COPY: {export_rate:,.0f} / {copy_rate:,.0f} rows/s = {100 * export_rate / copy_rate:.1f}%")
    print(f"  dashboard computed / kept: {dash_ms / kept_ms:.1f}x")


def copy_orders(url: str) -> float:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute("SET statement_timeout = 0")
        rows = 0
        started = time.perf_counter()
        with cur.copy("COPY (SELECT * FROM orders ORDER BY created_at DESC, id DESC) TO STDOUT") as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
        return rows / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
