"""Benchmark: a carrier file of N rows (default 2,000), dry run and Apply, then Apply again.

In ten scratch databases (SQLite files, or PostgreSQL with --postgres) with N orders in
processing, it times the dry run, the Apply that ships every order through Mark shipped,
and a second Apply of the same file (which ships nothing).

    .venv/bin/python scripts/bench_carrier_file.py
    .venv/bin/python scripts/bench_carrier_file.py --postgres --rows 2000
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from config import BIND_KEYS, bind_config  # noqa: E402
from scripts.benchlib import scratch_urls  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    urls, drop = scratch_urls(args.postgres)
    try:
        from console import create_app, email_templates
        from console.demo.builders import ensure_shipping_options, make_staff
        from console.extensions import db
        from console.models.order import Order
        from console.workflows import carrier_file

        app = create_app("testing", {"SQLALCHEMY_BINDS": {k: bind_config(u) for k, u in urls.items()}})
        with app.app_context():
            db.create_all(bind_key=list(BIND_KEYS))
            email_templates.install()
            ensure_shipping_options()
            now = datetime.now(timezone.utc)
            db.session.execute(insert(Order.__table__), [
                {"id": str(uuid.uuid4()), "order_number": f"ORD-B-{i:07d}", "user_id": str(uuid.uuid4()),
                 "status": "processing", "currency": "USD", "total_amount": Decimal("20.00"), "created_at": now}
                for i in range(args.rows)])
            db.session.commit()
            data = ("order_number,carrier,tracking_number\n" + "".join(
                f"ORD-B-{i:07d},ups,1ZB{i:010d}\n" for i in range(args.rows))).encode()
            staff = make_staff("warehouse", "bench@staff.test")
            db.session.commit()
            actor = SimpleNamespace(id=staff.id, email=staff.email, ip="127.0.0.1")
            started = time.perf_counter()
            result = carrier_file.preview(actor, data, "bench.csv")
            print(f"dry run of {args.rows:,} rows: {time.perf_counter() - started:.2f} s {result.counts}")
            for run in (1, 2):
                started = time.perf_counter()
                applied = carrier_file.apply(actor, result.id)
                print(f"apply (run {run}): {time.perf_counter() - started:.2f} s {applied.counts}")
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
    finally:
        drop()


if __name__ == "__main__":
    main()
