"""Benchmark: the orders list and its CSV export at scale.

Fills ten scratch databases (SQLite files in a temporary folder, or PostgreSQL with
--postgres) with N orders plus their customers, items, payments and shipments, then
prints:

- the orders list: SQL statements and median time per page at 10, 50 and 200 rows
  (the statement count must not grow with the page size);
- deep paging: a keyset page far down the list against the same page fetched with
  OFFSET (the peer the list avoids), timed in the same run;
- the export: rows per second and peak Python memory for a tenth of the orders and
  for all of them (streamed, so the peak must stay flat as N grows);
- every list, every sortable column, both directions: the first page against a page
  90% of the way down (reached by a keyset cursor, as the Next link would), and their
  ratio; keyset seeks on the (column, id) indexes make the ratio about 1 at any depth.
  Returns, refunds and audit rows are a tenth of the orders each.

    .venv/bin/python scripts/bench_orders.py --orders 50000
    .venv/bin/python scripts/bench_orders.py --orders 50000 --postgres
    .venv/bin/python scripts/bench_orders.py --orders 100000 --postgres --only-sorts
"""
from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import url_for as flask_url_for  # noqa: E402
from sqlalchemy import event, func, insert, select, text  # noqa: E402

from config import BIND_KEYS, bind_config  # noqa: E402
from scripts.benchlib import median_ms, scratch_urls  # noqa: E402

def fill(db, n_orders: int, n_customers: int = 2000) -> None:
    """Bulk rows through Core inserts: the ORM builders are too slow for 10^5 orders."""
    from console.models.auth import SecurityAuditLog, User
    from console.models.order import Order, OrderItem
    from console.models.payment import PAYMENT_PROVIDERS, PAYMENT_STATUSES, REFUND_STATUSES, Payment, PaymentRefund
    from console.models.returns import ReturnRequest
    from console.models.shipping import Carrier, Shipment
    from console.models.user import UserProfile

    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    users = [{"id": str(uuid.UUID(int=rng.getrandbits(128))), "email": f"customer{i}@example.com",
              "is_active": True, "created_at": now} for i in range(n_customers)]
    db.session.execute(insert(User.__table__), users)
    db.session.execute(insert(UserProfile.__table__), [
        {"id": str(uuid.uuid4()), "user_id": u["id"], "email": u["email"], "first_name": "Pat",
         "last_name": f"Customer{i}", "created_at": now} for i, u in enumerate(users)])
    carrier_id = str(uuid.uuid4())
    db.session.execute(insert(Carrier.__table__), [{"id": carrier_id, "name": "UPS", "code": "ups",
                                                    "is_active": True, "created_at": now}])
    batch = 5000
    for start in range(0, n_orders, batch):
        orders, items, payments, shipments, returns, refunds, logs = [], [], [], [], [], [], []
        for i in range(start, min(start + batch, n_orders)):
            order_id = str(uuid.UUID(int=rng.getrandbits(128)))
            created = now - timedelta(minutes=i * 3)
            total = Decimal(rng.randint(1000, 90000)) / 100
            status = rng.choice(("pending", "confirmed", "processing", "shipped", "delivered"))
            orders.append({"id": order_id, "order_number": f"ORD-{created:%Y%m%d}-{i:08d}",
                           "user_id": users[i % n_customers]["id"], "status": status, "payment_status": "paid",
                           "subtotal": total, "tax_amount": Decimal("0.00"), "shipping_amount": Decimal("0.00"),
                           "discount_amount": Decimal("0.00"), "total_amount": total, "currency": "USD",
                           "created_at": created, "updated_at": created})
            for line in range(2):
                items.append({"id": str(uuid.uuid4()), "order_id": order_id, "product_id": None,
                              "product_name": f"Item {line}", "product_sku": f"SKU-{line}",
                              "unit_price": total / 2, "quantity": 1, "total_price": total / 2, "created_at": created})
            payments.append({"id": str(uuid.uuid4()), "order_id": order_id, "user_id": users[i % n_customers]["id"],
                             "status": PAYMENT_STATUSES.SUCCEEDED, "payment_provider": PAYMENT_PROVIDERS.STRIPE,
                             "provider_payment_id": f"stripe_{order_id}", "amount": total, "currency": "USD",
                             "created_at": created})
            if status in ("shipped", "delivered"):
                shipments.append({"id": str(uuid.uuid4()), "order_id": order_id, "carrier_id": carrier_id,
                                  "tracking_number": f"1Z{i:012d}", "status": "in_transit", "created_at": created})
            if i % 10 == 0:  # a tenth of the orders have a return, a refund and an audit row
                user_id = users[i % n_customers]["id"]
                returns.append({"id": str(uuid.uuid4()), "order_id": order_id, "user_id": user_id,
                                "rma_number": f"RMA-{i:09d}", "status": rng.choice(("pending", "approved", "received")),
                                "return_reason": "other", "refund_method": "original_payment",
                                "refund_amount": total / 2, "currency": "USD", "requested_at": created,
                                "created_at": created})
                refunds.append({"id": str(uuid.uuid4()), "payment_id": payments[-1]["id"], "order_id": order_id,
                                "reason": "bench", "amount": total / 3, "currency": "USD",
                                "status": rng.choice((REFUND_STATUSES.PENDING, REFUND_STATUSES.COMPLETED,
                                                      REFUND_STATUSES.FAILED)), "metadata": {},
                                "created_at": created})
                logs.append({"id": str(uuid.uuid4()), "user_id": None, "action": rng.choice(("order.noted", "staff.locked")),
                             "metadata": {"entity": "order", "entity_id": order_id}, "created_at": created})
        db.session.execute(insert(Order.__table__), orders)
        db.session.execute(insert(OrderItem.__table__), items)
        db.session.execute(insert(Payment.__table__), payments)
        if shipments:
            db.session.execute(insert(Shipment.__table__), shipments)
        for model, rows in ((ReturnRequest, returns), (PaymentRefund, refunds), (SecurityAuditLog, logs)):
            if rows:
                db.session.execute(insert(model.__table__), rows)
        db.session.commit()


def buffers(engine, stmt) -> int | None:
    """PostgreSQL: the shared buffers (8 kB pages) the statement touched, from EXPLAIN
    (ANALYZE, BUFFERS): a count the machine's load does not blur. A seek touches about
    as many at any depth; a walk back through earlier rows touches more the deeper it is."""
    if engine.dialect.name != "postgresql":
        return None
    compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + compiled.string,
                                    compiled.params).scalar()
    top = plan[0]["Plan"]
    return top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)


def sorted_lists(app, client, depth_share: float = 0.9) -> None:
    """Every list, every sort column, both directions: first page and a deep page (50 rows)."""
    from console.extensions import db
    from console.lookups import Lookups
    from console.screens.keyset import encode_cursor, ordered

    from console.screens.keyset import keyset_page, page_statement

    print("\nsorted lists: first page against a page 90% of the way down, 50 rows; the whole screen\n"
          "(median of 5) and the page's keyset statement alone (median of 9)")
    print(f"  {'list':<10} {'sort':<16} {'rows':>9} {'first ms':>9} {'deep ms':>9} {'ratio':>6}"
          f" {'sql first':>10} {'sql deep':>9} {'ratio':>6}"
          + (f" {'buffers first':>8} {'deep':>8}" if app.config["SQLALCHEMY_BINDS"]["order"]["url"].startswith("postgresql")
             else ""))
    ratios, sql_ratios = [], []
    with app.test_request_context():
        screens = dict(app.extensions["list_screens"])
    for endpoint, screen in screens.items():
        with app.test_request_context():
            url = flask_url_for(endpoint)
        for sort in screen.sorts:
            for descending in (True, False):
                arg = ("-" if descending else "") + sort.key
                with app.app_context():
                    stmt = ordered(screen.statement(screen.filters(), Lookups()), sort.column, screen.id_column,
                                   descending)
                    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
                    depth = int(total * depth_share)
                    if total < 200:
                        print(f"  {screen.name:<10} {arg:<16} {total:>9,} {'(too few rows to page deep)':>30}")
                        break
                    row = db.session.execute(stmt.offset(depth).limit(1)).scalars().first()
                    cursor = encode_cursor(sort.key, getattr(row, sort.column.key), row.id)
                    base = screen.statement(screen.filters(), Lookups())

                    def page_sql(after=None):
                        keyset_page(base, sort.column, screen.id_column, sort_key=sort.key, descending=descending,
                                    size=50, after=after, count=False)
                        db.session.expunge_all()

                    sql_first = median_ms(page_sql, 9)
                    sql_deep = median_ms(lambda: page_sql(cursor), 9)
                    blocks = [buffers(db.engines[screen.home], page_statement(
                        base, sort.column, screen.id_column, sort_key=sort.key, descending=descending, size=50,
                        after=after)) for after in (None, cursor)]
                first_url, deep_url = f"{url}?sort={arg}&size=50", f"{url}?sort={arg}&size=50&cursor={cursor}"
                assert client.get(first_url).status_code == 200 and client.get(deep_url).status_code == 200
                first, deep = median_ms(lambda: client.get(first_url)), median_ms(lambda: client.get(deep_url))
                ratios.append(deep / first)
                sql_ratios.append(sql_deep / sql_first)
                print(f"  {screen.name:<10} {arg:<16} {total:>9,} {first:>9.1f} {deep:>9.1f} {deep / first:>6.2f}"
                      f" {sql_first:>10.2f} {sql_deep:>9.2f} {sql_deep / sql_first:>6.2f}"
                      + (f" {blocks[0]:>8} {blocks[1]:>8}" if blocks[0] is not None else ""))
    if ratios:
        print(f"  worst deep/first: whole screen {max(ratios):.2f}, keyset statement {max(sql_ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--postgres", action="store_true", help="use scratch PostgreSQL databases")
    parser.add_argument("--only-sorts", action="store_true", help="only the sorted lists' first and deep pages")
    args = parser.parse_args()

    # Stopped with SIGTERM, still drop the scratch databases (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    urls, drop = scratch_urls(args.postgres)
    from console import create_app
    from console.demo.builders import make_staff
    from console.extensions import db
    from console.models.order import Order

    # Testing config for fast password hashes, but without query recording: it keeps
    # every statement and its parameters for the request, which a long export would
    # mistake for a memory leak.
    app = create_app("testing", {"SQLALCHEMY_BINDS": {k: bind_config(u) for k, u in urls.items()},
                                 "SQLALCHEMY_RECORD_QUERIES": False})
    try:
        with app.app_context():
            db.create_all(bind_key=list(BIND_KEYS))
            started = time.perf_counter()
            fill(db, args.orders)
            make_staff("admin", "bench@example.com", "Bench-password-1")
            db.session.commit()
            if args.postgres:  # planner statistics, as a live database has them
                for engine in db.engines.values():
                    with engine.connect() as conn:
                        conn.execute(text("ANALYZE"))
                        conn.commit()
            print(f"backend: {'postgresql' if args.postgres else 'sqlite'}; filled {args.orders:,} orders "
                  f"in {time.perf_counter() - started:.1f} s")
            engines = list(db.engines.values())
        client = app.test_client()
        client.post("/login", data={"email": "bench@example.com", "password": "Bench-password-1"})

        statements = []

        def count(*_args):
            statements.append(1)

        if args.only_sorts:
            sorted_lists(app, client)
            return
        for engine in engines:
            event.listen(engine, "before_cursor_execute", count)
        print("\norders list (newest first)")
        for size in (10, 50, 200):
            statements.clear()
            assert client.get(f"/orders?size={size}").status_code == 200
            queries = len(statements)
            ms = median_ms(lambda: client.get(f"/orders?size={size}"))
            print(f"  {size:>4} rows/page: {queries:>3} SQL statements, median {ms:7.1f} ms")
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)

        depth = max(args.orders - 100, 0)
        with app.app_context():
            from console.screens.keyset import encode_cursor
            row = db.session.execute(select(Order.created_at, Order.id).order_by(
                Order.created_at.desc(), Order.id.desc()).offset(depth).limit(1)).one()
            cursor = encode_cursor("created", row.created_at, row.id)
            order_engine = db.engines["order"]

            def offset_page():
                with order_engine.connect() as conn:
                    conn.execute(text("SELECT * FROM orders ORDER BY created_at DESC, id DESC "
                                      "LIMIT 50 OFFSET :o"), {"o": depth}).all()

            offset_ms = median_ms(offset_page)
        keyset_ms = median_ms(lambda: client.get(f"/orders?size=50&cursor={cursor}"))
        print(f"\ndeep paging at row {depth:,}: keyset page (whole screen) {keyset_ms:.1f} ms; "
              f"OFFSET query alone {offset_ms:.1f} ms")

        print("\nCSV export (streamed)")
        with app.app_context():
            newest = db.session.scalar(select(Order.created_at).order_by(Order.created_at.desc()).limit(1))
        tenth_from = (newest - timedelta(minutes=3 * args.orders // 10)).date().isoformat()
        for label, query in ((f"about a tenth (created_from={tenth_from})", f"?created_from={tenth_from}"),
                             ("all orders", "")):
            started = time.perf_counter()
            rows = sum(chunk.count(b"\n") for chunk in client.get(f"/orders/export.csv{query}").response) - 1
            elapsed = time.perf_counter() - started
            # A second pass under tracemalloc for the memory peak (it slows Python down,
            # so the timing above is taken without it).
            tracemalloc.start()
            for _chunk in client.get(f"/orders/export.csv{query}").response:
                pass
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"  {label}: {rows:,} rows in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s), "
                  f"peak Python memory {peak / 1e6:.1f} MB")
        sorted_lists(app, client)
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
        drop()


if __name__ == "__main__":
    main()
