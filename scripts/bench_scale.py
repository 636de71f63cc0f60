"""Benchmark: every screen at scale, on demo data made by ``seed-demo``.

Builds ten scratch PostgreSQL databases ``<prefix>_<bind>`` (``init-db``, then
``seed-demo --customers C --orders N``, timed, then VACUUM ANALYZE as autovacuum would
on a live database), or with ``--reuse`` uses them as a previous run left them, signs
in as the demo admin and prints, in one run:

- each list (orders, customers, returns, refunds), per sortable column: the first page
  and a page ``--depth`` of the way down (reached by a keyset cursor, as the Next link
  would), 50 rows each: time, SQL statements, and the ratio deep/first;
- the dashboard, computed and kept (DASHBOARD_CACHE_SECONDS);
- search: an order number, an order number prefix, an email prefix, a tracking number;
- the order page: time and statements;
- the orders export (with the customer email, from auth_db): rows/s and the process's
  peak memory, next to PostgreSQL's own ``COPY (SELECT …) TO STDOUT`` of the same orders;
- the customers, returns and refunds exports: rows/s, each next to PostgreSQL's ``COPY``
  of the same columns of its own database (what its export reads there);
- a plain Flask-Admin ModelView of the same orders table (its defaults: COUNT(*) and
  OFFSET paging), its first page and the page at the orders list's depth;
- the dashboard's today, 30 days and 366 days with nothing kept and with past days kept,
  and 366 days with every kept day due to be read again;
- gunicorn started as the README says (production settings, 4 workers x 2 threads):
  ``/orders`` under ``wrk -t2 -c8 -d20s``, and the orders export over HTTP with the
  worker's peak memory beside ``psql \\copy`` of the same order_db columns;
- the ratios last.

Every figure is the median of ``--repeat`` runs (7); pages go through Flask's test client
(templates, sign-in and cross-database lookups included; no network).

    .venv/bin/python scripts/bench_scale.py                     # 1,000,000 orders
    .venv/bin/python scripts/bench_scale.py --orders 100000     # a quicker run
    .venv/bin/python scripts/bench_scale.py --orders 100000 --reuse

The databases are kept for ``--reuse`` (``--drop`` drops them at the end).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, select  # noqa: E402

from config import bind_config  # noqa: E402
from scripts.benchlib import (Statements, create_databases, databases_exist, drop_databases, flask_cli,  # noqa: E402
                              postgres_urls, timed, timed_pair, vacuum_analyze)

PASSWORD = "console-demo-1"
PAGE = 50
LISTS = ("orders", "customers", "returns", "refunds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, help="default: a tenth of the orders")
    parser.add_argument("--prefix", help="database names <prefix>_<bind> (default console_bench_scale_<orders>)")
    parser.add_argument("--reuse", action="store_true", help="skip seeding when the databases exist")
    parser.add_argument("--drop", action="store_true", help="drop the databases at the end")
    parser.add_argument("--depth", type=float, default=0.9, help="how far down the deep pages are (0.9: 90%%)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (the median is shown)")
    parser.add_argument("--gunicorn-only", action="store_true",
                        help="only the figures under gunicorn (wrk on /orders, the export over HTTP)")
    opts = parser.parse_args()
    customers = opts.customers or max(opts.orders // 10, 1)
    prefix = opts.prefix or f"console_bench_scale_{opts.orders}"
    urls = postgres_urls(prefix)
    results = Results()
    try:
        if opts.reuse and databases_exist(prefix):
            flask_cli(urls, "create-indexes")  # any index declared since they were built
            results.say("databases", f"{prefix}_* as they are (--reuse)")
        else:
            create_databases(prefix)
            flask_cli(urls, "init-db")
            seconds = flask_cli(urls, "seed-demo", "--customers", str(customers), "--orders", str(opts.orders))
            results.say("seed-demo", f"{seconds:,.0f} s for {opts.orders:,} orders and {customers:,} customers "
                                     f"({opts.orders / seconds:,.0f} orders/s)")
            started = time.perf_counter()
            vacuum_analyze(urls)
            results.say("VACUUM ANALYZE", f"{time.perf_counter() - started:,.0f} s")
        if opts.gunicorn_only:
            under_gunicorn(urls, results, opts.repeat)
            for line in results.ratios:
                print("  " + line)
        else:
            run(urls, opts, results)
    finally:
        if opts.drop:
            drop_databases(prefix)


class Results:
    def __init__(self):
        self.ratios: list[str] = []

    def say(self, label: str, value: str) -> None:
        print(f"{label:<52} {value}", flush=True)

    def ratio(self, text: str) -> None:
        self.ratios.append(text)


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


def list_rows(app, screen) -> int:
    from console.extensions import db
    from console.lookups import Lookups

    with app.test_request_context():
        filters, _ = screen.filters.parse({})
        stmt = screen.statement(filters, Lookups())
        return db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))


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
        page_size = PAGE
        column_default_sort = ("created_at", True)

    Admin(peer, url="/peer").add_view(OrdersView(Order, db, endpoint="peer_orders", url="/peer/orders"))
    return peer


def run(urls: dict[str, str], opts, results: Results) -> None:
    from console import create_app
    from console.extensions import db
    from console.models.auth import User
    from console.models.order import Order
    from console.models.shipping import Shipment
    from console.models.user import UserProfile

    binds = {key: bind_config(url) for key, url in urls.items()}
    # Testing config for fast sign-in, without its query recording: it keeps every
    # statement and its parameters for the whole request, which a long export would
    # show as hundreds of megabytes.
    app = create_app("testing", {"SQLALCHEMY_BINDS": binds, "WTF_CSRF_ENABLED": False, "DASHBOARD_CACHE_SECONDS": 0,
                                 "SQLALCHEMY_RECORD_QUERIES": False})
    counter = Statements()
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", counter)
        total = db.session.scalar(select(func.count()).select_from(Order))
        sample = db.session.execute(select(Order.order_number, Order.id).where(Order.tracking_number.isnot(None))
                                    .order_by(Order.created_at.desc()).limit(1)).one()
        tracking = db.session.scalar(select(Shipment.tracking_number).where(Shipment.order_id == sample.id)) \
            or db.session.scalar(select(Order.tracking_number).where(Order.id == sample.id))
        email = db.session.scalar(select(UserProfile.email).order_by(UserProfile.created_at.desc()).limit(1))
        # The most common first name: the broadest name prefix.
        first_name = db.session.scalar(select(UserProfile.first_name).group_by(UserProfile.first_name)
                                       .order_by(func.count().desc()).limit(1))
        assert db.session.scalar(select(User.id).where(User.email == "admin@example.com"))
    results.say("orders in the databases", f"{total:,}; deep pages {opts.depth:.0%} of the way down; "
                                           f"median of {opts.repeat}")
    client = app.test_client()
    assert client.post("/login", data={"email": "admin@example.com", "password": PASSWORD}).status_code == 302
    repeat = opts.repeat

    # --- the lists ---
    screens = {screen.name: (endpoint, screen) for endpoint, screen in app.extensions["list_screens"].items()}
    worst = (0.0, "")
    orders_depth, console_orders = None, None
    for name in LISTS:
        endpoint, screen = screens[name]
        with app.test_request_context():
            from flask import url_for

            url = url_for(endpoint)
        rows = list_rows(app, screen)
        depth = int(rows * opts.depth)
        for sort in screen.sorts:
            arg = ("-" if sort.descending else "") + sort.key
            first_url = f"{url}?sort={arg}&size={PAGE}"
            cursor = cursor_at(app, screen, sort, sort.descending, depth)
            if not cursor:
                first, first_sql, status = timed(client, first_url, repeat, counter)
                line = f"first {first:7.1f} ms ({first_sql} SQL, {status})"
            else:
                # First and deep pages in turn, so both see the same load.
                (first, first_sql, status), (deep, deep_sql, deep_status) = timed_pair(
                    client, first_url, f"{first_url}&cursor={cursor}", repeat, counter)
                line = (f"first {first:7.1f} ms ({first_sql} SQL, {status})   at row {depth:,}: {deep:7.1f} ms "
                        f"({deep_sql} SQL, {deep_status})   deep/first {deep / first:5.2f}")
                worst = max(worst, (deep / first, f"{name} by {arg}"))
                if name == "orders" and sort.key == "created":
                    orders_depth, console_orders = depth, (first, deep)
            results.say(f"list {name} by {arg} ({rows:,} rows)", line)

    # --- the dashboard, search, the order page ---
    dash_ms, dash_sql, _ = timed(client, "/", repeat, counter)
    results.say("dashboard, computed on every load", f"{dash_ms:7.1f} ms ({dash_sql} SQL)")
    app.config["DASHBOARD_CACHE_SECONDS"] = 60
    client.get("/")
    kept_ms, kept_sql, _ = timed(client, "/", repeat, counter)
    results.say("dashboard, order figures kept (60 s)", f"{kept_ms:7.1f} ms ({kept_sql} SQL)")

    # Each period with nothing kept (every figure read afresh), then with the past days'
    # figures kept (the period's own cache off): today, 30 days and a 366-day range.
    from datetime import date, timedelta

    year = (date.today() - timedelta(days=365)).isoformat()
    periods = (("today", "/?period=today"), ("30 days", "/?period=30d"),
               ("366 days", f"/?period=custom&from={year}&to={date.today().isoformat()}"))
    app.config["DASHBOARD_CACHE_SECONDS"] = 0
    for kept in (0, 300):
        app.config["DASHBOARD_DAY_SECONDS"] = kept
        figures = []
        for label, url in periods:
            client.get(url)  # fills the kept days, when kept
            ms, statements, _ = timed(client, url, repeat, counter)
            figures.append(f"{label} {ms:6.1f} ms ({statements} SQL)")
        results.say("dashboard, " + ("nothing kept" if not kept else "past days kept"), " / ".join(figures))
    # The kept days all due again (older than DASHBOARD_DAY_SECONDS): each load reads a week of them.
    app.config["DASHBOARD_DAY_SECONDS"] = 1
    time.sleep(1.1)
    ms, statements, _ = timed(client, periods[-1][1], repeat, counter)
    results.say("dashboard, 366 days, every kept day due", f"{ms:6.1f} ms ({statements} SQL)")

    for label, term in (("order number", sample.order_number), ("order number prefix", sample.order_number[:-3]),
                        ("email prefix", email[:5]), ("name prefix", first_name), ("tracking number", tracking)):
        ms, statements, status = timed(client, f"/search?q={term}", repeat, counter)
        results.say(f"search: {label} ({term})", f"{ms:7.1f} ms ({statements} SQL, {status})")

    ms, statements, status = timed(client, f"/orders/{sample.order_number}", repeat, counter)
    results.say("order page", f"{ms:7.1f} ms ({statements} SQL, {status})")

    # --- the export against COPY, same run, taken in turn so both see the same load ---
    rates, copy_rates, lines = [], [], 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/orders/export.csv", buffered=False)
        lines = sum(chunk.count(b"\n") for chunk in response.iter_encoded()) - 1
        rates.append(lines / (time.perf_counter() - started))
        copy_rates.append(copy_orders(urls["order"]))
    export_rate, copy_rate = statistics.median(rates), statistics.median(copy_rates)
    share = statistics.median(100 * e / c for e, c in zip(rates, copy_rates))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.say("orders export (customer email included)",
                f"{lines:,} rows at {export_rate:,.0f} rows/s (median; runs {min(rates):,.0f}–{max(rates):,.0f}); "
                f"peak RSS {peak / 1024:,.0f} MB (before the exports {before / 1024:,.0f} MB)")
    results.say("COPY (SELECT * FROM orders ORDER BY …) TO STDOUT",
                f"{copy_rate:,.0f} rows/s (median; runs {min(copy_rates):,.0f}–{max(copy_rates):,.0f})")

    # --- the other lists' exports against COPY of the same columns, each in turn with its anchor ---
    list_exports = []
    for name in LISTS[1:]:
        endpoint, screen = screens[name]
        with app.test_request_context():
            from flask import url_for

            export_url = url_for(endpoint.rsplit(".", 1)[0] + "." + screen.export_endpoint)
            query = list_export_select(screen)
        rates, anchors = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(export_url, buffered=False)
            rows = sum(chunk.count(b"\n") for chunk in response.iter_encoded()) - 1
            rates.append(rows / (time.perf_counter() - started))
            anchors.append(copy_anchor(urls[screen.home], query))
        rate, anchor = statistics.median(rates), statistics.median(anchors)
        results.say(f"{name} export", f"{rows:,} rows at {rate:,.0f} rows/s (median; runs "
                                      f"{min(rates):,.0f}–{max(rates):,.0f})")
        results.say(f"COPY of the {name} export's {screen.home}_db columns",
                    f"{anchor:,.0f} rows/s (median; runs {min(anchors):,.0f}–{max(anchors):,.0f})")
        list_exports.append((name, rate, anchor))

    # --- the peer: Flask-Admin's ModelView of the same table ---
    peer = peer_app(binds)
    peer_client = peer.test_client()
    with peer.app_context():
        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", counter)
    page = (orders_depth or 0) // PAGE
    (peer_first, peer_sql, status), (peer_deep, peer_deep_sql, deep_status) = timed_pair(
        peer_client, "/peer/orders/", f"/peer/orders/?page={page}", repeat, counter)
    results.say("Flask-Admin ModelView orders, first page", f"{peer_first:7.1f} ms ({peer_sql} SQL, {status})")
    results.say(f"Flask-Admin ModelView orders, page {page:,} (row {page * PAGE:,})",
                f"{peer_deep:7.1f} ms ({peer_deep_sql} SQL, {deep_status})")

    under_gunicorn(urls, results, repeat)

    print("\nratios")
    for line in results.ratios:
        print("  " + line)
    if console_orders:
        print(f"  orders list, first page: Flask-Admin {peer_first:.1f} ms / console {console_orders[0]:.1f} ms "
              f"= {peer_first / console_orders[0]:.1f}x")
        print(f"  orders list, row {orders_depth:,}: Flask-Admin {peer_deep:.1f} ms / "
              f"console {console_orders[1]:.1f} ms = {peer_deep / console_orders[1]:.1f}x")
        print(f"  orders list deep/first: console {console_orders[1] / console_orders[0]:.2f}, "
              f"Flask-Admin {peer_deep / peer_first:.2f}")
    if worst[1]:
        print(f"  worst deep/first of any list and sort: {worst[0]:.2f} ({worst[1]})")
    print(f"  export / COPY: {export_rate:,.0f} / {copy_rate:,.0f} rows/s = {100 * export_rate / copy_rate:.1f}% "
          f"(median of each run's own share: {share:.1f}%)")
    for name, rate, anchor in list_exports:
        print(f"  {name} export / COPY: {rate:,.0f} / {anchor:,.0f} rows/s = {100 * rate / anchor:.1f}%")
    print(f"  dashboard computed / kept: {dash_ms:.1f} / {kept_ms:.1f} ms = {dash_ms / kept_ms:.1f}x")


def export_select() -> str:
    """The orders export's order_db part (its columns, in its order) as SQL text."""
    from sqlalchemy.dialects import postgresql

    from console.exports import written_columns
    from console.models.order import Order, OrderItem
    from console.screens.orders import _EXPORT_KEYS, _EXPORT_WRITTEN

    # As the export of every order reads them (each column once, as it is stored): the
    # units joined from one grouped pass.
    units = select(OrderItem.order_id, func.sum(OrderItem.quantity).label("units")).group_by(OrderItem.order_id) \
        .subquery()
    written = written_columns(_EXPORT_WRITTEN)
    columns = (*_EXPORT_KEYS, *(column for column in written if column.key not in ("units", "order_id")))
    stmt = select(*columns, func.coalesce(units.c.units, 0)) \
        .outerjoin(units, units.c.order_id == Order.id).order_by(Order.created_at.desc(), Order.id.desc())
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def list_export_select(screen) -> str:
    """A list's export: its home database's part (the columns its COPY path reads, in the
    list's default order, unfiltered) as SQL text. Call in a request context."""
    from sqlalchemy.dialects import postgresql

    filters, _ = screen.filters.parse({})
    plan = screen.export_plan(filters, screen.ordering(None))
    stmt = screen.export_fast.statement(plan.stmt)
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def copy_anchor(url: str, query: str) -> float:
    """Rows/s of PostgreSQL's own ``COPY (query) TO STDOUT`` in CSV, read by psycopg."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute("SET statement_timeout = 0")
        rows = 0
        started = time.perf_counter()
        with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
        return rows / (time.perf_counter() - started)


def psql_copy(url: str, query: str) -> float:
    """Rows/s of ``psql \\copy (query) TO /dev/null`` in CSV: the client-side COPY anchor."""
    import subprocess

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    started = time.perf_counter()
    done = subprocess.run(["psql", conninfo, "-X", "-c", "SET statement_timeout = 0",
                           "-c", f"\\copy ({' '.join(query.split())}) TO '/dev/null' WITH (FORMAT csv)"],
                          check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return int(done.stdout.split()[-1]) / seconds  # psql ends with "COPY <rows>"


def under_gunicorn(urls: dict[str, str], results: Results, repeat: int) -> None:
    """/orders under wrk and the orders export, against gunicorn started as the README
    says (production settings, gunicorn.conf.py; 4 workers x 2 threads), signed in as support."""
    import os
    import re
    import shutil
    import signal
    import subprocess
    import urllib.parse
    import urllib.request

    from config import env_var

    port = 8765
    env = {**os.environ, **{env_var(key): url for key, url in urls.items()},
           "CONSOLE_ENV": "production", "SECRET_KEY": "bench-" + "x" * 40,
           "CONSOLE_PUBLIC_URL": f"http://127.0.0.1:{port}", "CONSOLE_BIND": f"127.0.0.1:{port}",
           "CONSOLE_MFA_REQUIRED_ROLES": "",
           "CONSOLE_CACHE_REDIS_URL": os.environ.get("CONSOLE_CACHE_REDIS_URL", "redis://127.0.0.1:6379/0")}
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen([str(root / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "--access-logfile",
                               "/dev/null", "wsgi:app"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/login", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        # Sign in by hand: the production cookie is Secure, which a cookie jar keeps off http.
        page = urllib.request.urlopen(base + "/login")
        jar = _cookies(page)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.read().decode()).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "email": "support@example.com",
                                       "password": PASSWORD}).encode()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            answer = opener.open(urllib.request.Request(base + "/login", data=form, headers={"Cookie": jar}))
        except urllib.error.HTTPError as redirect:
            answer = redirect
        cookie = _cookies(answer) or jar
        assert urllib.request.urlopen(urllib.request.Request(base + "/orders", headers={"Cookie": cookie})).status == 200
        if shutil.which("wrk"):
            # A few seconds first, so every worker has compiled its templates and statements
            # (what a server that has been up for a while has done) before the measured run.
            subprocess.run(["wrk", "-t2", "-c8", "-d3s", "-H", f"Cookie: {cookie}", base + "/orders"],
                           capture_output=True, check=True)
            out = subprocess.run(["wrk", "-t2", "-c8", "-d20s", "--latency", "-H", f"Cookie: {cookie}",
                                  base + "/orders"], capture_output=True, text=True, check=True).stdout
            rate = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
            p99 = re.search(r"99%\s+(\S+)", out).group(1)
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            results.say("/orders under wrk -t2 -c8 -d20s (gunicorn 4x2)",
                        f"{float(rate):,.0f} req/s, p99 {p99}" + (f", {errors.group(1)} not 200" if errors else ""))
        rates, anchors = [], []
        query = export_select()
        for _ in range(max(1, repeat // 2)):
            started = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(base + "/orders/export.csv",
                                                               headers={"Cookie": cookie})) as download:
                lines = 0
                while block := download.read(1 << 16):
                    lines += block.count(b"\n")
            rates.append((lines - 1) / (time.perf_counter() - started))
            anchors.append(psql_copy(urls["order"], query))
        peak = max(_peak_kb(pid) for pid in _children(server.pid))
        results.say("orders CSV export under gunicorn",
                    f"{statistics.median(rates):,.0f} rows/s; worker peak {peak / 1024:,.0f} MB")
        results.say("psql \\copy of the export's order columns",
                    f"{statistics.median(anchors):,.0f} rows/s")
        results.ratio(f"export under gunicorn / psql \\copy: "
                      f"{100 * statistics.median(r / a for r, a in zip(rates, anchors)):.1f}%")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _cookies(response) -> str:
    return "; ".join(value.split(";", 1)[0] for key, value in response.headers.items() if key.lower() == "set-cookie")


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def copy_orders(url: str) -> float:
    """Rows/s of PostgreSQL's own COPY of the orders, in the export's order, read by psycopg."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute("SET statement_timeout = 0")
        rows = 0
        started = time.perf_counter()
        from console.models.order import Order

        created = Order.__table__.c.created_at.name  # the database's own name ("createdAt")
        with cur.copy(f'COPY (SELECT * FROM orders ORDER BY "{created}" DESC, id DESC) TO STDOUT') as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
        return rows / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
