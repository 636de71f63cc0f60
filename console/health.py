"""Database health: each bind's state, round trip, tables and main row counts.

Checks run in parallel threads on the engines directly, so ten slow databases cost
one connect timeout, not ten. The connect timeout covers a server that never
answers a new connection; a pooled connection to a server that has gone silent is
covered by the overall deadline (HEALTH_CHECK_SECONDS): whatever has not answered
by then is reported down and left to finish in the background, so no page hangs.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import inspect, select, text

from config import BIND_KEYS
from console.extensions import db
from console.models import models_of

MAIN_TABLES = {
    "auth": ("users", "login_history"),
    "user": ("user_profiles", "addresses"),
    "product": ("products", "product_inventory"),
    "cart": ("carts", "cart_items"),
    "order": ("orders", "order_items"),
    "payment": ("payments", "refunds"),
    "shipping": ("shipments", "shipment_tracking"),
    "return": ("return_requests", "refunds"),
    "discount": ("coupons", "coupon_usage"),
    "notification": ("notifications", "email_templates"),
}


@dataclass
class BindHealth:
    key: str
    up: bool
    dialect: str
    round_trip_ms: float | None = None
    tables_present: int = 0
    tables_expected: int = 0
    row_counts: dict[str, int | None] = field(default_factory=dict)
    estimated: bool = False
    error: str = ""
    missing_indexes: list = field(default_factory=list)  # console.schema_check.MissingIndex


def _safe_url(engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _row_counts(conn, dialect: str, tables: list[str]) -> tuple[dict, bool]:
    if dialect == "postgresql":
        # The planner's estimate: no full COUNT(*) on a large table for a status page.
        rows = conn.execute(
            text("SELECT relname, GREATEST(reltuples, 0)::bigint FROM pg_class "
                 "WHERE relkind = 'r' AND relname = ANY(:names) AND relnamespace = 'public'::regnamespace"),
            {"names": tables},
        ).all()
        found = dict(rows)
        return {t: found.get(t) for t in tables}, True
    counts = {}
    for table in tables:
        counts[table] = conn.execute(select(text("count(*)")).select_from(text(f'"{table}"'))).scalar()
    return counts, False


def check_bind(key: str, engine, with_details: bool = True) -> BindHealth:
    expected = [m.__tablename__ for m in models_of(key)]
    health = BindHealth(key=key, up=False, dialect=engine.dialect.name, tables_expected=len(expected))
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            health.round_trip_ms = round((time.perf_counter() - started) * 1000, 1)
            health.up = True
            if with_details:
                present = set(inspect(conn).get_table_names())
                health.tables_present = len(present & set(expected))
                wanted = [t for t in MAIN_TABLES[key] if t in present]
                health.row_counts, health.estimated = _row_counts(conn, health.dialect, wanted)
                from console.schema_check import index_gaps

                missing, skipped = index_gaps(conn, present, key)
                health.missing_indexes = missing + skipped
    except Exception as exc:  # any failure means "down" on a health page
        health.up = False
        health.error = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
    return health


def check_all(with_details: bool = True) -> list[BindHealth]:
    app = current_app._get_current_object()
    engines = {key: db.engines[key] for key in BIND_KEYS}
    deadline = app.config["HEALTH_CHECK_SECONDS"]

    def run(key):
        with app.app_context():
            return check_bind(key, engines[key], with_details)

    pool = ThreadPoolExecutor(max_workers=len(BIND_KEYS))
    futures = {key: pool.submit(run, key) for key in BIND_KEYS}
    wait(futures.values(), timeout=deadline)
    pool.shutdown(wait=False)  # a check still hanging must not hold the page
    results = []
    for key, future in futures.items():
        if future.done():
            results.append(future.result())
        else:
            results.append(BindHealth(key=key, up=False, dialect=engines[key].dialect.name,
                                      tables_expected=len(models_of(key)),
                                      error=f"no answer within {deadline:g} s"))
    return results
