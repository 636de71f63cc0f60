"""The dashboard's figures: the numbers a shift lead looks at first.

Each figure is one or two aggregate queries (GROUP BY day or status, or a LIMIT), on
one database. The order figures read a month of orders and every status, which at a
million orders costs a few hundred milliseconds: they are kept per worker process for
DASHBOARD_CACHE_SECONDS (the page shows when each was computed), and the revenue query
reads only the covering index ix_orders_created_at_figures on PostgreSQL. Each figure
degrades on its own: a database that is down empties only the figures it feeds (and a
failure is never cached).
"""
from __future__ import annotations

import threading
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from flask import current_app
from sqlalchemy import case, func, or_, select

from console.charts import Chart, column_chart, row_chart
from console.extensions import db
from console.links import orders_url
from console.lookups import DatabaseUnavailable, database
from console.models.notification import Notification
from console.models.order import ORDER_STATUSES, Order
from console.models.payment import PaymentRefund
from console.models.product import Product, ProductInventory
from console.models.returns import ReturnRequest
from console.models.types import CENTS
from console.workflows.inventory import LOW_STOCK

REVENUE_DAYS = 30
LOW_STOCK_ROWS = 10
# Order statuses in lifecycle order, so the status chart reads top to bottom.
# Returns that wait for staff: to approve, to receive, to process.
RETURNS_WAITING = ("pending", "approved", "received")
REFUNDS_OPEN = ("PENDING", "PROCESSING", "FAILED")
NOTIFICATIONS_FAILED = ("FAILED", "BOUNCED")


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def utc_day(column, bind_key: str):
    """The UTC calendar day of a timestamp column, in the bind's SQL dialect."""
    if db.engines[bind_key].dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores UTC already


def _as_date(value) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        return value.date()
    return value


@dataclass
class OrderCounts:
    today: int
    week: int
    today_from: date
    week_from: date  # Monday of this week (UTC)


def order_counts(now: datetime) -> OrderCounts:
    today = now.astimezone(timezone.utc).date()
    monday = today - timedelta(days=today.weekday())
    since_today = start_of_day(today)
    with database("order"):
        today_count, week_count = db.session.execute(
            select(func.coalesce(func.sum(case((Order.created_at >= since_today, 1), else_=0)), 0), func.count())
            .where(Order.created_at >= start_of_day(monday))).one()
    return OrderCounts(int(today_count), int(week_count), today, monday)


@dataclass
class RevenueDay:
    day: date
    amount: Decimal
    orders: int


@dataclass
class RevenueSeries:
    currency: str
    days: list[RevenueDay]

    @property
    def total(self) -> Decimal:
        return sum((d.amount for d in self.days), Decimal("0.00"))

    @property
    def orders(self) -> int:
        return sum(d.orders for d in self.days)


def revenue_by_day(now: datetime, days: int = REVENUE_DAYS) -> list[RevenueSeries]:
    """Value of the orders placed each UTC day (cancelled ones excluded), per currency,
    biggest currency first; days without orders are zero."""
    today = now.astimezone(timezone.utc).date()
    first = today - timedelta(days=days - 1)
    day = utc_day(Order.created_at, "order")
    with database("order"):
        rows = db.session.execute(
            select(day, Order.currency, func.sum(Order.total_amount), func.count())
            .where(Order.created_at >= start_of_day(first),
                   or_(Order.status.is_(None), Order.status != "cancelled"))
            .group_by(day, Order.currency)).all()
    by_currency: dict[str, dict[date, RevenueDay]] = {}
    for raw_day, currency, amount, count in rows:
        d = _as_date(raw_day)
        by_currency.setdefault(currency or "", {})[d] = RevenueDay(
            d, Decimal(amount or 0).quantize(CENTS), int(count))
    series = []
    for currency, known in by_currency.items():
        filled = [known.get(first + timedelta(days=i)) or RevenueDay(first + timedelta(days=i), Decimal("0.00"), 0)
                  for i in range(days)]
        series.append(RevenueSeries(currency, filled))
    return sorted(series, key=lambda s: s.total, reverse=True)


def revenue_chart(series: RevenueSeries) -> Chart:
    """One bar per day, each linking to that day's orders in that currency."""
    points = []
    for d in series.days:
        day = d.day.isoformat()
        points.append((d.day.strftime("%d %b"), d.amount,
                       orders_url(created_from=day, created_to=day, currency=series.currency or None),
                       f"{day}: {d.amount:,.2f} {series.currency} from {d.orders} order{'' if d.orders == 1 else 's'}"))
    return column_chart(points, tick_format=lambda v: f"{v:,.0f}")


def status_chart(statuses: list[tuple[str, int]]) -> Chart:
    return row_chart([(status, count, orders_url(status=status), f"{count:,} {status}")
                      for status, count in statuses])


def orders_by_status(now: datetime) -> list[tuple[str, int]]:
    with database("order"):
        counts = dict(db.session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
    ordered = [(s, counts.pop(s)) for s in ORDER_STATUSES if s in counts]
    return ordered + sorted(((s or "(none)"), n) for s, n in counts.items())


def _status_counts(bind: str, column, wanted: tuple[str, ...]) -> list[tuple[str, int]]:
    with database(bind):
        counts = dict(db.session.execute(
            select(column, func.count()).where(column.in_(wanted)).group_by(column)).all())
    return [(status, counts.get(status, 0)) for status in wanted]


def returns_waiting(now: datetime) -> list[tuple[str, int]]:
    return _status_counts("return", ReturnRequest.status, RETURNS_WAITING)


def refunds_open(now: datetime) -> list[tuple[str, int]]:
    return _status_counts("payment", PaymentRefund.status, REFUNDS_OPEN)


@dataclass
class FailedNotifications:
    counts: list[tuple[str, int]]
    recent: list[Notification]  # the newest few, so support can see whom they missed

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


def failed_notifications(now: datetime, recent: int = 8) -> FailedNotifications:
    counts = _status_counts("notification", Notification.status, NOTIFICATIONS_FAILED)
    with database("notification"):
        rows = list(db.session.scalars(select(Notification).where(Notification.status.in_(NOTIFICATIONS_FAILED))
                                       .order_by(Notification.created_at.desc()).limit(recent)))
    return FailedNotifications(counts, rows)


@dataclass
class LowStock:
    product_id: str
    sku: str | None
    name: str | None
    available: int
    reserved: int


def low_stock_threshold() -> int:
    """Available at or below this is low stock (``CONSOLE_LOW_STOCK``, default 5): the
    dashboard's figure and the products list's low-stock filter agree on it."""
    return int(current_app.config.get("LOW_STOCK_THRESHOLD", LOW_STOCK))


def low_stock(now: datetime, limit: int = LOW_STOCK_ROWS) -> list[LowStock]:
    """The products closest to running out (available <= the threshold), archived ones aside."""
    with database("product"):
        rows = db.session.execute(
            select(ProductInventory.product_id, Product.sku, Product.name,
                   ProductInventory.available_quantity, ProductInventory.reserved_quantity)
            .join(Product, Product.id == ProductInventory.product_id)
            .where(ProductInventory.available_quantity <= low_stock_threshold(),
                   or_(Product.status.is_(None), Product.status != "archived"))
            .order_by(ProductInventory.available_quantity, Product.sku).limit(limit)).all()
    return [LowStock(pid, sku, name, available or 0, reserved or 0) for pid, sku, name, available, reserved in rows]


@dataclass
class Figure:
    value: object = None
    down: str | None = None  # the database that could not be read
    as_of: datetime | None = None  # when it was computed, if earlier than this load


# Figures kept between loads: the ones that read many orders.
CACHED = ("orders", "revenue", "statuses")
_cache: dict[str, tuple[float, datetime, object]] = {}  # name -> (expires, computed at, value)
_cache_lock = threading.Lock()


def _cached(name: str, now: datetime):
    """(value, computed at) of a figure still fresh in this process, else None."""
    seconds = current_app.config.get("DASHBOARD_CACHE_SECONDS", 0)
    if name not in CACHED or seconds <= 0:
        return None
    with _cache_lock:
        entry = _cache.get(name)
    if entry is None or entry[0] < clock.monotonic() or entry[1].date() != now.date():
        return None
    return entry[2], entry[1]


def _keep(name: str, now: datetime, value) -> None:
    seconds = current_app.config.get("DASHBOARD_CACHE_SECONDS", 0)
    if name in CACHED and seconds > 0:
        with _cache_lock:
            _cache[name] = (clock.monotonic() + seconds, now, value)


def forget_cached() -> None:
    with _cache_lock:
        _cache.clear()


# name -> (database, loader). Loaders take the current time.
FIGURES: dict[str, tuple[str, Callable[[datetime], object]]] = {
    "orders": ("order", order_counts),
    "revenue": ("order", revenue_by_day),
    "statuses": ("order", orders_by_status),
    "returns": ("return", returns_waiting),
    "refunds": ("payment", refunds_open),
    "low_stock": ("product", low_stock),
    "notifications": ("notification", failed_notifications),
}


@dataclass
class Board:
    now: datetime
    figures: dict[str, Figure] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Figure:
        return self.figures[name]

    @property
    def down(self) -> list[str]:
        return sorted({f.down for f in self.figures.values() if f.down})

    @property
    def oldest(self) -> datetime | None:
        """When the oldest kept figure on the board was computed (None: all just now)."""
        kept = [f.as_of for f in self.figures.values() if f.as_of]
        return min(kept) if kept else None


def collect(now: datetime) -> Board:
    """Every figure; a database found down is not tried again for the next figure,
    so a dead server costs one connection timeout, not one per figure."""
    board = Board(now)
    down: set[str] = set()
    for name, (bind, load) in FIGURES.items():
        if bind in down:
            board.figures[name] = Figure(down=bind)
            continue
        kept = _cached(name, now)
        if kept is not None:
            board.figures[name] = Figure(kept[0], as_of=kept[1])
            continue
        try:
            board.figures[name] = Figure(load(now))
            _keep(name, now, board.figures[name].value)
        except DatabaseUnavailable as exc:
            down.add(exc.bind_key)
            board.figures[name] = Figure(down=exc.bind_key)
    return board
