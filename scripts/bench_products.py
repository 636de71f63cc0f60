"""Benchmark: the products list at scale, sorted by what is available and by units sold.

Fills scratch databases (SQLite files in a temporary folder, or PostgreSQL with
--postgres) with N products (inventory rows with varied stock) and M order items
spread over 120 days (so about a quarter fall in the 30-day "units sold" window), then
prints, for the sort by available (lowest first, the default), by SKU and by units sold
(most first): the SQL statements and median time of the first page, and of a page deep
in the list (keyset: the page after a row near the end).

    .venv/bin/python scripts/bench_products.py --products 100000 --items 1000000
    .venv/bin/python scripts/bench_products.py --products 100000 --items 1000000 --postgres
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import event, insert, select  # noqa: E402

from benchlib import median_ms, scratch_urls  # noqa: E402
from config import BIND_KEYS, bind_config  # noqa: E402

ITEMS_PER_ORDER = 4


def fill(db, n_products: int, n_items: int) -> None:
    """Core inserts in batches: the ORM builders are too slow for 10^6 rows."""
    from console.models.order import Order, OrderItem
    from console.models.product import Product, ProductInventory

    rng = random.Random(11)
    now = datetime.now(timezone.utc)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n_products)]
    batch = 10_000
    for start in range(0, n_products, batch):
        products, inventory = [], []
        for i in range(start, min(start + batch, n_products)):
            stock = 0 if i % 10 == 0 else rng.randint(1, 300)
            reserved = rng.randint(0, min(stock, 12))
            products.append({"id": ids[i], "sku": f"SKU-{i:07d}", "name": f"Product {i}", "status": "active",
                             "is_visible": True, "price": Decimal(rng.randint(100, 50000)) / 100,
                             "stock_quantity": stock, "stock_status": "in_stock", "created_at": now, "updated_at": now})
            inventory.append({"id": str(uuid.uuid4()), "product_id": ids[i], "quantity": stock,
                              "reserved_quantity": reserved, "available_quantity": stock - reserved,
                              "location": "MAIN", "created_at": now})
        db.session.execute(insert(Product.__table__), products)
        db.session.execute(insert(ProductInventory.__table__), inventory)
        db.session.commit()
    # Sales follow a long tail: a few products sell a lot, most sell little or nothing.
    popular = ids[: max(1, n_products // 5)]
    n_orders = max(1, n_items // ITEMS_PER_ORDER)
    for start in range(0, n_orders, batch // ITEMS_PER_ORDER):
        orders, items = [], []
        for i in range(start, min(start + batch // ITEMS_PER_ORDER, n_orders)):
            order_id = str(uuid.UUID(int=rng.getrandbits(128)))
            created = now - timedelta(minutes=rng.randint(0, 120 * 24 * 60))
            orders.append({"id": order_id, "order_number": f"ORD-{i:09d}", "status": "delivered",
                           "total_amount": Decimal("10.00"), "currency": "USD", "created_at": created})
            for _ in range(ITEMS_PER_ORDER):
                product_id = popular[int(len(popular) * rng.random() ** 3)]
                items.append({"id": str(uuid.uuid4()), "order_id": order_id, "product_id": product_id,
                              "quantity": rng.randint(1, 3), "unit_price": Decimal("2.50"),
                              "total_price": Decimal("2.50"), "created_at": created})
        db.session.execute(insert(Order.__table__), orders)
        db.session.execute(insert(OrderItem.__table__), items)
        db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true", help="use scratch PostgreSQL databases")
    args = parser.parse_args()

    urls, drop = scratch_urls(args.postgres)
    from console import create_app
    from console.demo.builders import make_staff
    from console.extensions import db
    from console.models.product import Product, ProductInventory
    from console.screens.keyset import encode_cursor
    from console.screens.product_list import sales_ranking

    app = create_app("testing", {"SQLALCHEMY_BINDS": {k: bind_config(u) for k, u in urls.items()},
                                 "SQLALCHEMY_RECORD_QUERIES": False})
    try:
        with app.app_context():
            db.create_all(bind_key=list(BIND_KEYS))
            started = time.perf_counter()
            fill(db, args.products, args.items)
            make_staff("warehouse", "bench@example.com", "Bench-password-1")
            db.session.commit()
            if args.postgres:
                for key in ("product", "order"):
                    with db.engines[key].connect() as conn:
                        conn.exec_driver_sql("ANALYZE")
                        conn.commit()
            print(f"backend: {'postgresql' if args.postgres else 'sqlite'}; {args.products:,} products, "
                  f"{args.items:,} order items, filled in {time.perf_counter() - started:.1f} s")
            engines = list(db.engines.values())
            depth = max(args.products - 100, 0)
            deep = {}
            row = db.session.execute(select(ProductInventory.available_quantity, ProductInventory.product_id)
                                     .order_by(ProductInventory.available_quantity, ProductInventory.product_id)
                                     .offset(depth).limit(1)).one()
            deep["available"] = encode_cursor("available", row[0], row[1])
            row = db.session.execute(select(Product.sku, Product.id).order_by(Product.sku, Product.id)
                                     .offset(depth).limit(1)).one()
            deep["sku"] = encode_cursor("sku", row[0], row[1])
            ranking = sales_ranking()
            sold = {pid for _, pid in ranking}
            # Deep in "units sold": among the products that sold nothing, near the end (ids descending).
            unsold = db.session.scalars(select(Product.id).order_by(Product.id).limit(200)).all()
            last_unsold = next((pid for pid in unsold if pid not in sold), unsold[0])
            deep["-sold"] = encode_cursor("sold", 0, last_unsold)
            print(f"products sold in the last 30 days: {len(ranking):,}")
        client = app.test_client()
        client.post("/login", data={"email": "bench@example.com", "password": "Bench-password-1"})

        statements: list[list] = []  # [statement, started, ms]

        def before(_conn, _cursor, statement, *_args):
            statements.append([statement, time.perf_counter(), 0.0])

        def after(*_args):
            statements[-1][2] = (time.perf_counter() - statements[-1][1]) * 1000

        for engine in engines:
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
        print("\nproducts list, 50 rows a page")
        for sort in ("available", "sku", "-sold"):
            for label, extra in (("first page", ""), ("deep page", f"&cursor={deep[sort]}")):
                url = f"/products?size=50&sort={sort}{extra}"
                statements.clear()
                response = client.get(url)
                assert response.status_code == 200, response.status_code
                queries = len(statements)
                slowest = max(statements, key=lambda st: st[2])
                ms = median_ms(lambda: client.get(url))
                print(f"  sort={sort:<10} {label:<10}: {queries:>3} SQL statements, median {ms:7.1f} ms "
                      f"(slowest statement {slowest[2]:.0f} ms: {' '.join(slowest[0].split())[:70]}…)")
        for engine in engines:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
        drop()


if __name__ == "__main__":
    main()
