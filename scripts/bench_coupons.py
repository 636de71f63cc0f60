"""Benchmark: bulk coupon code generation and the coupon usage report.

In ten scratch databases (SQLite files, or PostgreSQL with --postgres) it times:

- generating 10,000 codes from one coupon, twice with the same prefix (the second
  generation checks its codes against the first 10,000);
- the usage report's totals for a coupon used on N orders (--uses), which streams the
  order ids to order_db in chunks of 1,000.

    .venv/bin/python scripts/bench_coupons.py
    .venv/bin/python scripts/bench_coupons.py --postgres --uses 20000
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

from sqlalchemy import insert  # noqa: E402

from config import BIND_KEYS, bind_config  # noqa: E402
from scripts.benchlib import scratch_urls  # noqa: E402


def fill_uses(db, coupon_id: str, uses: int) -> None:
    from console.models.discount import CouponUsage
    from console.models.order import Order

    rng = random.Random(3)
    now = datetime.now(timezone.utc)
    orders, rows = [], []
    for i in range(uses):
        order_id, user_id = str(uuid.uuid4()), str(uuid.UUID(int=rng.getrandbits(128)))
        at = now - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
        orders.append({"id": order_id, "order_number": f"ORD-B-{i:07d}", "user_id": user_id,
                       "status": rng.choice(("delivered", "shipped", "cancelled", "refunded", "pending")),
                       "currency": "USD", "total_amount": Decimal(rng.randint(1000, 30000)) / 100, "created_at": at})
        rows.append({"id": str(uuid.uuid4()), "coupon_id": coupon_id, "user_id": user_id, "order_id": order_id,
                     "discount_amount": Decimal("5.00"), "used_at": at, "created_at": at})
    for start in range(0, uses, 5000):
        db.session.execute(insert(Order.__table__), orders[start:start + 5000])
        db.session.execute(insert(CouponUsage.__table__), rows[start:start + 5000])
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--uses", type=int, default=20_000)
    args = parser.parse_args()
    urls, drop = scratch_urls(args.postgres)
    try:
        from console import create_app
        from console.extensions import db
        from console.screens import usage
        from console.workflows import coupons

        app = create_app("testing", {"SQLALCHEMY_BINDS": {k: bind_config(u) for k, u in urls.items()}})
        with app.app_context():
            db.create_all(bind_key=list(BIND_KEYS))
            template = coupons.create_coupon(None, coupons.CouponInput(
                code="BENCH", name="Bench", type=coupons.TYPES.PERCENTAGE, discount_value=Decimal("10")))
            for run in (1, 2):
                started = time.perf_counter()
                result = coupons.generate_codes(None, template.id, 10_000, prefix="B-", length=6)
                print(f"generate 10,000 codes (run {run}): {time.perf_counter() - started:.2f} s, "
                      f"{len(set(result.codes)):,} distinct")
            fill_uses(db, template.id, args.uses)
            started = time.perf_counter()
            totals = usage.totals("coupon", template.id)
            print(f"usage report totals for {totals.uses:,} uses: {(time.perf_counter() - started) * 1000:.0f} ms")
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
    finally:
        drop()


if __name__ == "__main__":
    main()
