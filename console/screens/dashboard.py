"""The dashboard's figures for a period: the numbers a shift lead looks at first.

A period is a run of whole store-local days (CONSOLE_TIMEZONE): today, the last 7 or
30 days, this month, or a from/to range; one that includes today ends now. Each period
figure is compared with the period of the same length just before it (for one ending
now: up to the same time of day). Figures:

- sales (order_db): orders placed, revenue and average order value per currency, orders
  by status, revenue by day. Revenue is the total of the orders placed in the period
  whose status is not cancelled (refunded orders still count: refunds are shown apart).
- refunded (payment_db): refunds completed in the period, per currency; beside revenue,
  they are the refunds' share of revenue.
- returned (return_db): return requests made in the period; beside the orders placed,
  the returns rate.
- right now, whatever the period: returns waiting for staff, refunds pending or failed,
  failed notifications, low stock.

Every period figure is a range scan of an index on the period's time column
(ix_orders_created_at_figures and ix_payment_refunds_created_at_figures carry the columns
summed, for an index-only scan where the planner prefers it; return requests are counted
on ix_return_requests_requested_at_id), so its cost follows the rows in the period, not
the size of the table: at a million orders, today reads ~3,000 index entries, 30 days
~80,000. A figure and the period before it are one statement (day_rows). Figures that
read many rows are kept per worker process for
DASHBOARD_CACHE_SECONDS, per period (the page shows when each was computed). Each
figure degrades on its own: a database that is down empties only the figures it feeds
(and a failure is never cached).
"""
from __future__ import annotations

import threading
import time as clock
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from flask import current_app
from sqlalchemy import (TIMESTAMP, Date, Integer, Text, bindparam, cast, func, literal, literal_column, null, or_, select,
                        true, union_all)
from sqlalchemy.dialects.postgresql import ARRAY

from console import localtime
from console.charts import Chart, column_chart, row_chart
from console.extensions import db
from console.filters import choice, date_range
from console.links import orders_url
from console.lookups import DatabaseUnavailable, database
from console.models.notification import NOTIFICATION_STATUSES, Notification
from console.models.order import ORDER_STATUSES, Order
from console.models.payment import REFUND_STATUSES, PaymentRefund
from console.models.product import Product, ProductInventory
from console.models.returns import ReturnRequest
from console.models.types import CENTS
from console.shared_cache import shared_cache
from console.workflows.inventory import low_stock_threshold, stock_level_bounds

LOW_STOCK_ROWS = 10
# Returns that wait for staff: to approve, to receive, to process.
RETURNS_WAITING = ("pending", "approved", "received")
REFUNDS_OPEN = (REFUND_STATUSES.PENDING, REFUND_STATUSES.PROCESSING, REFUND_STATUSES.FAILED)
REFUND_DONE = REFUND_STATUSES.COMPLETED
NOTIFICATIONS_FAILED = (NOTIFICATION_STATUSES.FAILED, NOTIFICATION_STATUSES.BOUNCED)
NOT_REVENUE = "cancelled"
# A custom range covers at most this many days (a year, leap day included).
MAX_DAYS = 366
# A kept day older than DASHBOARD_DAY_SECONDS is due to be read again: one load reads
# at most this many of the due days (the latest ones, in one span) with its figures and
# shows the others as they were kept, the page saying since when. A long period's load
# then never pays for reading its whole range again (a year costs what a week costs),
# and a period viewed again and again is refreshed a week at a time, the latest first.
REFRESH_DAYS_PER_LOAD = 7

# --- periods --------------------------------------------------------------------------------

PERIODS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days", "month": "This month",
           "custom": "From … to"}
DEFAULT_PERIOD = "today"


@dataclass(frozen=True)
class Period:
    """Store-local days ``first`` … ``last``, read as the UTC range [start, end); the
    previous period is as long and ends where this one starts (shifted by whole days,
    so a period ending now is compared with the same hours before)."""

    key: str
    first: date
    last: date
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def partial(self) -> bool:
        """True when the period ends now, before the end of its last day."""
        return self.end < localtime.start_of_day(self.last + timedelta(days=1))

    @property
    def label(self) -> str:
        if self.key != "custom":
            return PERIODS[self.key]
        if self.first == self.last:
            return self.first.strftime("%d %b %Y")
        return f"{self.first:%d %b %Y} to {self.last:%d %b %Y}"

    @property
    def span(self) -> str:
        """The days covered, in words: "1 Dec 2026" or "25 Nov to 1 Dec 2026"."""
        if self.first == self.last:
            return f"{self.first:%d %b %Y}"
        return f"{self.first:%d %b} to {self.last:%d %b %Y}"

    @property
    def previous_label(self) -> str:
        """What the figures are compared with, in words."""
        first = localtime.local(self.previous_start).date()
        upto = f" up to {localtime.local(self.previous_end):%H:%M}" if self.partial else ""
        if self.days == 1:
            return ("yesterday" if self.key == "today" else f"{first:%d %b %Y}") + upto
        last = first + timedelta(days=self.days - 1)
        return f"the {self.days} days before ({first:%d %b} to {last:%d %b}{upto})"

    @property
    def cache_key(self) -> tuple:
        return (self.key, self.first, self.last)

    @property
    def ranges(self) -> list[tuple[datetime, datetime]]:
        """[start, end) of the period and of the one before it."""
        return [(self.start, self.end), (self.previous_start, self.previous_end)]

    def as_args(self) -> dict:
        if self.key == "custom":
            return {"period": "custom", "from": self.first.isoformat(), "to": self.last.isoformat()}
        return {"period": self.key}

    def orders_link(self, **filters) -> str:
        """The orders list over the same store-local days."""
        return orders_url(created_from=self.first.isoformat(), created_to=self.last.isoformat(), **filters)


def period_of(key: str, first: date, last: date, now: datetime) -> Period:
    start, end = localtime.day_bounds(first, last)
    end = min(end, now)
    days = (last - first).days + 1
    return Period(key, first, last, start, end,
                  localtime.shift_days(start, -days), localtime.shift_days(end, -days))


def named_period(key: str, now: datetime) -> Period:
    today = localtime.today(now)
    first = {"today": today, "7d": today - timedelta(days=6), "30d": today - timedelta(days=29),
             "month": today.replace(day=1)}[key]
    return period_of(key, first, today, now)


def parse_period(args: Mapping, now: datetime) -> tuple[Period, list[str]]:
    """The period a query string asks for, plus a message for each value that can't be
    used (the dashboard then shows today and answers 400)."""
    errors: list[str] = []
    if len(args.get("period") or "") > 40:
        errors.append(f"Period is not one of: {', '.join(PERIODS)}.")  # not echoed: far too long to be one
        key = ""
    else:
        key = choice(args, "period", tuple(PERIODS), "Period", errors)
    first, last = date_range(args, ("from", "From"), ("to", "To"), errors)
    if not key:
        key = "custom" if (first or last) and not errors else DEFAULT_PERIOD
    if key != "custom" or errors:
        return named_period(key if key != "custom" else DEFAULT_PERIOD, now), errors
    today = localtime.today(now)
    first, last = first or last, last or first
    if first is None:
        errors.append("Choose the first and last day of the range (YYYY-MM-DD).")
    elif last > today:
        errors.append(f"“To” is after today ({today.isoformat()}): no orders there yet.")
    elif (last - first).days + 1 > MAX_DAYS:
        errors.append(f"A range covers {MAX_DAYS} days at most: narrow it.")
    if errors:
        return named_period(DEFAULT_PERIOD, now), errors
    return period_of("custom", first, last, now), errors


# --- comparisons ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """A figure against the previous period: the direction, the text a reader sees
    (the percentage, or percentage points for a rate), and whether up is good news."""

    direction: str  # "up", "down", "same", "new" (nothing before), "none" (nothing either time)
    text: str
    good: bool | None  # None: neither good nor bad

    @property
    def arrow(self) -> str:
        return {"up": "▲", "down": "▼"}.get(self.direction, "")


def change(current, previous, *, up_is_good: bool = True, rate: bool = False) -> Change | None:
    """``current`` against ``previous``; None when either is unknown. A rate (a share,
    0..1) changes in percentage points, anything else in percent of the previous value."""
    if current is None or previous is None:
        return None
    current, previous = Decimal(current), Decimal(previous)
    if rate:
        points = (current - previous) * 100
        if points == 0:
            return Change("same", "no change", None)
        direction = "up" if points > 0 else "down"
        return Change(direction, f"{abs(points):.1f} pts", (direction == "up") == up_is_good)
    if previous == 0:
        return Change("none", "none either time", None) if current == 0 else Change("new", "none before", None)
    percent = (current - previous) / previous * 100
    if percent.quantize(Decimal("0.1")) == 0:
        return Change("same", "no change", None)
    direction = "up" if percent > 0 else "down"
    return Change(direction, f"{abs(percent):,.1f}%", (direction == "up") == up_is_good)


def share(part, whole) -> Decimal | None:
    """``part`` / ``whole`` (a rate, 0..1), None when there is no whole."""
    if part is None or not whole:
        return None
    return Decimal(part) / Decimal(whole)


# --- per-day figures, shared between workers ---------------------------------------------------

@dataclass(frozen=True)
class Daily:
    """A figure summed per store-local day: ``measures`` (aggregates, of the ``kinds``
    int or Decimal) grouped by ``keys`` (currency, status ...) of the rows whose ``column``
    falls in the day and that meet ``where``."""

    name: str
    column: Any
    keys: tuple
    measures: tuple
    kinds: tuple
    where: tuple = ()

    def cache_key(self, day: date) -> str:
        return self.key_prefix() + day.isoformat()

    def key_prefix(self) -> str:
        """What every day's key starts with (the zone read once for a year of days)."""
        return f"dashboard:{self.name}:{localtime.zone_name()}:"

    def stored(self, rows: list) -> list:
        return [[*row[:len(self.keys)], *(None if v is None else v if kind is int else str(v)
                                          for kind, v in zip(self.kinds, row[len(self.keys):]))] for row in rows]

    def loaded(self, rows: list) -> list[tuple]:
        width = len(self.keys)
        return [(*row[:width], *(None if v is None else kind(v) for kind, v in zip(self.kinds, row[width:])))
                for row in rows]


@dataclass
class DayRows:
    """A range's rows of a Daily figure, per store-local day: {day: [(*keys, *measures)]},
    and when the oldest of the kept days was read (None: every day read just now)."""

    days: dict[date, list[tuple]]
    as_of: datetime | None = None

    def rows(self):
        """(day, *keys, *measures) of every day."""
        for day, rows in self.days.items():
            for row in rows:
                yield (day, *row)


@dataclass(frozen=True)
class Read:
    """A span of a figure to read from the database: by store-local day, or (the day still
    running) as one sum filed under ``day``. ``of``: which range's DayRows it feeds."""

    start: datetime
    end: datetime
    of: int
    day: date | None = None  # None: by day

    def intervals(self) -> list[tuple[datetime, datetime, date]]:
        """[start, end) cut at store-local midnights: (from, to, day) per day."""
        if self.day is not None:
            return [(self.start, self.end, self.day)]
        first = localtime.local(self.start).date()
        starts = localtime.day_starts(first, localtime.local(self.end).date())
        return [(max(self.start, since), min(self.end, until), first + timedelta(days=n))
                for n, (since, until) in enumerate(zip(starts, starts[1:])) if max(self.start, since) < self.end]


def _moments(starts: list[datetime], ends: list[datetime]) -> tuple[str, str]:
    """Aware UTC datetimes as text parameters PostgreSQL splits into ``timestamp[]`` (an
    array parameter would have the driver convert each of a year's 732 bounds in Python);
    each moment written once, though most end one interval and start the next."""
    written: dict[datetime, str] = {}

    def text(moment: datetime) -> str:
        found = written.get(moment)
        if found is None:
            # To the millisecond, as the TIMESTAMP(3) columns keep it (isoformat cuts, like to_millisecond).
            found = written[moment] = moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(
                timespec="milliseconds")
        return found
    return ",".join(map(text, starts)), ",".join(map(text, ends))


@lru_cache(maxsize=None)
def _intervals_statement(figure: Daily):
    """PostgreSQL: ``figure`` over a list of intervals (two text parameters of their bounds),
    one grouped range scan of the time column's index per interval (a LATERAL subquery):
    no row's local day computed (grouping a year of rows by it took about as long again as
    reading them)."""
    def bounds(name: str):
        return cast(func.string_to_array(bindparam(name, type_=Text), literal_column("','")), ARRAY(TIMESTAMP()))
    spans = func.unnest(bounds("starts"), bounds("ends")).table_valued(
        "since", "until", with_ordinality="n").render_derived()
    inner = (select(*figure.keys, *figure.measures)
             .where(figure.column >= spans.c.since, figure.column < spans.c.until, *figure.where)
             .group_by(*figure.keys).lateral())
    return select(spans.c.n, *inner.c).select_from(spans.join(inner, true()))


def _read(figure: Daily, reads: list[Read]):
    """(read, day, *keys, *measures) of each of ``reads``, in one statement. The caller
    opens the figure's database."""
    if not reads:
        return
    dialect = db.session.get_bind(mapper=figure.column.class_).dialect.name
    if dialect == "postgresql":
        cut = [(read, *interval) for read in reads for interval in read.intervals()]
        starts, ends = _moments([c[1] for c in cut], [c[2] for c in cut])
        rows = db.session.execute(_intervals_statement(figure), {"starts": starts, "ends": ends})
        for n, *row in rows:
            read, _, _, day = cut[n - 1]
            yield (read, day, *row)
        return
    # Elsewhere (SQLite): a UNION ALL of one grouped select per read, by the local day.
    parts = []
    for i, read in enumerate(reads):
        day = localtime.local_date(figure.column) if read.day is None else cast(null(), Date)
        parts.append(select(literal(i).label("read"), day.label("day"), *figure.keys, *figure.measures)
                     .where(figure.column >= read.start, figure.column < read.end, *figure.where)
                     .group_by(*((day,) if read.day is None else ()), *figure.keys))
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    for i, raw_day, *row in db.session.execute(statement, bind_arguments={"mapper": figure.column.class_}):
        read = reads[i]
        yield (read, read.day or _as_date(raw_day), *row)


def day_rows(figure: Daily, ranges: list[tuple[datetime, datetime]], now: datetime) -> list[DayRows]:
    """``figure`` over each of ``ranges`` ([start, end), ``start`` a store-local midnight),
    all in one statement: each day that is over comes from the shared cache
    (console/shared_cache.py), the missing ones read and kept; a kept day older than
    DASHBOARD_DAY_SECONDS is read again (at most REFRESH_DAYS_PER_LOAD of them a load),
    and one older than DASHBOARD_DAY_MAX_SECONDS is gone. The day still running (today,
    or the same hours of an earlier day for a comparison ending now) is read live. So a
    year costs what a day costs once the year's days are kept, and a period and the one
    before it cost one statement. The caller opens the figure's database."""
    seconds = current_app.config.get("DASHBOARD_DAY_SECONDS", 0)
    results = [DayRows({}) for _ in ranges]
    if seconds <= 0:  # nothing kept: every range read whole, by day
        reads = [Read(start, end, i) for i, (start, end) in enumerate(ranges)]
        for read, day, *row in _read(figure, reads):
            results[read.of].days.setdefault(day, []).append(tuple(row))
        return results
    # The days that are over and wholly inside each range: each one whose next midnight is
    # at or before the range's end, up to yesterday; then the day still running.
    spans = []
    for start, end in ranges:
        first, stop = localtime.local(start).date(), min(localtime.today(now), localtime.local(end).date())
        full = [first + timedelta(days=n) for n in range((stop - first).days)]
        spans.append((full, stop if full else first))
    cache = shared_cache()
    prefix = figure.key_prefix()
    keys = {d: prefix + d.isoformat() for full, _ in spans for d in full}
    kept = cache.get_many(keys.values()) if keys else {}
    refresh = _due_to_refresh(keys, kept, now - timedelta(seconds=seconds))
    reads, fresh = [], {}
    for i, ((start, end), (full, day)) in enumerate(zip(ranges, spans)):
        result = results[i]
        missing = []
        for d in full:
            entry = kept.get(keys[d])
            if entry is None or d in refresh:
                missing.append(d)
                continue
            result.days[d] = _loaded_day(figure, keys[d], entry)
            at = datetime.fromisoformat(entry["at"])
            result.as_of = at if result.as_of is None else min(result.as_of, at)
        if missing:
            fresh.update({(i, d): [] for d in missing})
            reads.append(Read(*localtime.day_bounds(missing[0], missing[-1]), i))
        running = max(start, localtime.start_of_day(day))
        if running < end:
            result.days[day] = []
            reads.append(Read(running, end, i, day))
    for read, day, *row in _read(figure, reads):
        if read.day is not None:
            results[read.of].days[day].append(tuple(row))
        elif (read.of, day) in fresh:  # the span read may hold days already kept
            fresh[read.of, day].append(tuple(row))
    for (i, d), rows in fresh.items():
        results[i].days[d] = rows
    if fresh:
        cache.set_many({keys[d]: {"at": now.isoformat(), "rows": figure.stored(rows)} for (_, d), rows in fresh.items()},
                       max(seconds, current_app.config.get("DASHBOARD_DAY_MAX_SECONDS", seconds)))
    return results


# Kept days made into rows (amounts as Decimal) once per process: a year's page reads the
# 366 kept days of each figure on every load, and making their rows again was a quarter
# of its Python. Keyed by the day's key and when it was read, so a day read again is
# made again; about 0.5 KB a day, cleared past LOADED_DAYS_KEPT.
LOADED_DAYS_KEPT = 8192
_loaded_days: dict[tuple[str, str], tuple] = {}


def _loaded_day(figure: Daily, key: str, entry: dict) -> tuple:
    found = _loaded_days.get((key, entry["at"]))
    if found is None:
        if len(_loaded_days) >= LOADED_DAYS_KEPT:
            _loaded_days.clear()
        found = _loaded_days[key, entry["at"]] = tuple(figure.loaded(entry["rows"]))
    return found


def _due_to_refresh(keys: dict[date, str], kept: dict, kept_before: datetime) -> set[date]:
    """The kept days read again this load: of the days kept before ``kept_before``, the
    latest due one and the due days of the REFRESH_DAYS_PER_LOAD days up to it."""
    due = [d for d, key in keys.items()
           if (entry := kept.get(key)) is not None and datetime.fromisoformat(entry["at"]) < kept_before]
    if not due:
        return set()
    latest = max(due)
    return {d for d in due if (latest - d).days < REFRESH_DAYS_PER_LOAD}


# --- sales (order_db) -----------------------------------------------------------------------

@dataclass
class CurrencySales:
    currency: str
    revenue: Decimal = Decimal("0.00")
    orders: int = 0  # orders that count towards revenue (not cancelled)

    @property
    def average(self) -> Decimal | None:
        return (self.revenue / self.orders).quantize(CENTS) if self.orders else None


@dataclass
class SalesTotals:
    placed: int = 0  # every order placed, cancelled ones included
    cancelled: int = 0
    currencies: dict[str, CurrencySales] = field(default_factory=dict)

    def of(self, currency: str) -> CurrencySales:
        return self.currencies.get(currency) or CurrencySales(currency)

    def add(self, currency: str | None, status: str | None, count: int, amount) -> None:
        self.placed += count
        if status == NOT_REVENUE:
            self.cancelled += count
            return
        money = self.currencies.setdefault(currency or "", CurrencySales(currency or ""))
        money.revenue += Decimal(amount or 0).quantize(CENTS)
        money.orders += count


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


@dataclass
class Sales:
    period: Period
    current: SalesTotals
    previous: SalesTotals
    series: list[RevenueSeries]  # revenue by day per currency, biggest currency first
    statuses: list[tuple[str, int]]  # orders placed in the period, by status
    days_as_of: datetime | None = None  # when the oldest kept day was read

    @property
    def currencies(self) -> list[str]:
        """Currencies with revenue now or before, biggest now first."""
        names = [s.currency for s in self.series]
        return names + sorted(c for c in self.previous.currencies if c not in names)

    @property
    def main_currency(self) -> str | None:
        return self.currencies[0] if self.currencies else None


def _as_date(value) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        return value.date()
    return value


ORDER_DAYS = Daily("orders", Order.created_at, (Order.currency, Order.status),
                   (func.count(), func.sum(Order.total_amount)), (int, Decimal))


def sales(now: datetime, period: Period) -> Sales:
    """Orders by store-local day, currency and status over the period and the one before,
    from kept days and the day still running (day_rows), read on
    ix_orders_created_at_figures (index only on PostgreSQL)."""
    current, previous = SalesTotals(), SalesTotals()
    by_currency: dict[str, dict[date, RevenueDay]] = {}
    statuses: dict[str | None, int] = {}
    with database("order"):
        now_days, before_days = day_rows(ORDER_DAYS, period.ranges, now)
    rows = now_days.rows()
    before = (row[1:] for row in before_days.rows())
    for raw_day, currency, status, count, amount in rows:
        current.add(currency, status, count, amount)
        statuses[status] = statuses.get(status, 0) + count
        if status == NOT_REVENUE:
            continue
        d = _as_date(raw_day)
        known = by_currency.setdefault(currency or "", {})
        entry = known.setdefault(d, RevenueDay(d, Decimal("0.00"), 0))
        entry.amount += Decimal(amount or 0).quantize(CENTS)
        entry.orders += count
    for currency, status, count, amount in before:
        previous.add(currency, status, count, amount)
    series = []
    for currency, known in by_currency.items():
        filled = [known.get(period.first + timedelta(days=i)) or RevenueDay(period.first + timedelta(days=i),
                                                                            Decimal("0.00"), 0)
                  for i in range(period.days)]
        series.append(RevenueSeries(currency, filled))
    series.sort(key=lambda s: s.total, reverse=True)
    ordered = [(s, statuses.pop(s)) for s in ORDER_STATUSES if s in statuses]
    ordered += sorted(((s or "(none)"), n) for s, n in statuses.items())
    return Sales(period, current, previous, series, ordered, _oldest(now_days.as_of, before_days.as_of))


# Stands for the day in a link built once per chart (a year of days is 366 links).
_DAY = "0000-00-00"


def revenue_chart(series: RevenueSeries) -> Chart:
    """One bar per store-local day, each linking to that day's orders in that currency."""
    before, between, after = orders_url(created_from=_DAY, created_to=_DAY,
                                        currency=series.currency or None).split(_DAY)
    currency = series.currency
    points = []
    for d in series.days:
        day = d.day.isoformat()
        points.append((d.day.strftime("%d %b"), d.amount, f"{before}{day}{between}{day}{after}",
                       f"{day}: {d.amount:,.2f} {currency} from {d.orders} order{'' if d.orders == 1 else 's'}"))
    return column_chart(points, tick_format=lambda v: f"{v:,.0f}", label_every=max(1, -(-len(points) // 8)))


# --- refunds (payment_db) and returns (return_db) in the period --------------------------------

@dataclass
class Refunded:
    """Refunds completed in the period and the one before: {currency: (amount, count)}."""

    current: dict[str, tuple[Decimal, int]]
    previous: dict[str, tuple[Decimal, int]]
    days_as_of: datetime | None = None

    def amount(self, currency: str, previous: bool = False) -> Decimal:
        return (self.previous if previous else self.current).get(currency, (Decimal("0.00"), 0))[0]


REFUND_DAYS = Daily("refunds", PaymentRefund.created_at, (PaymentRefund.currency,),
                    (func.sum(PaymentRefund.amount), func.count()), (Decimal, int),
                    (PaymentRefund.status == REFUND_DONE,))
RETURN_DAYS = Daily("returns", ReturnRequest.requested_at, (), (func.count(),), (int,))


def _oldest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def _refunds_by_currency(days: DayRows) -> dict[str, tuple[Decimal, int]]:
    totals: dict[str, tuple[Decimal, int]] = {}
    for _, currency, amount, count in days.rows():
        known = totals.get(currency or "", (Decimal("0.00"), 0))
        totals[currency or ""] = (known[0] + Decimal(amount or 0).quantize(CENTS), known[1] + int(count))
    return totals


def refunded(now: datetime, period: Period) -> Refunded:
    """Completed refunds per currency by day (day_rows), on ix_payment_refunds_created_at_figures."""
    with database("payment"):
        current, previous = day_rows(REFUND_DAYS, period.ranges, now)
    return Refunded(_refunds_by_currency(current), _refunds_by_currency(previous),
                    _oldest(current.as_of, previous.as_of))


@dataclass
class Returned:
    """Return requests made in the period and the one before."""

    current: int
    previous: int
    days_as_of: datetime | None = None


def returned(now: datetime, period: Period) -> Returned:
    """Return requests by day (day_rows), on the requested_at index."""
    with database("return"):
        current, previous = day_rows(RETURN_DAYS, period.ranges, now)
    return Returned(sum(int(row[1]) for row in current.rows()), sum(int(row[1]) for row in previous.rows()),
                    _oldest(current.as_of, previous.as_of))


# --- the period's headline figures -------------------------------------------------------------

@dataclass
class Kpi:
    """One headline card: its value as text, what it counts, and the previous period."""

    id: str
    label: str
    value: str | None = None  # None: a database it needs is down
    unit: str = ""  # the currency, shown smaller beside the value
    note: str = ""
    href: str | None = None  # a list behind the figure, for those holding ``needs``
    needs: str = "orders.view"
    change: Change | None = None
    was: str = ""  # the previous period's value, as text
    down: str | None = None


def _money(amount: Decimal | None, currency: str) -> str:
    return "—" if amount is None else f"{amount:,.2f} {currency}".rstrip()


def _percent(rate: Decimal | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def period_kpis(board: Board) -> list[Kpi]:
    """Orders, revenue, average order value, refunds as a share of revenue and the
    returns rate, each against the previous period. A figure whose database is down
    says so; a figure combining two databases needs both."""
    sales_fig, refunds_fig, returns_fig = board["sales"], board["refunded"], board["returned"]
    period = board.period
    cards = [Kpi("kpi-orders", "Orders placed"), Kpi("kpi-revenue", "Revenue"),
             Kpi("kpi-average", "Average order value"), Kpi("kpi-refund-share", "Refunds / revenue"),
             Kpi("kpi-returns-rate", "Returns rate")]
    orders, revenue, average, refund_share, returns_rate = cards
    sales_data: Sales | None = sales_fig.value if not sales_fig.down else None
    if sales_data is None:
        for card in cards:
            card.down = sales_fig.down
    else:
        now, before = sales_data.current, sales_data.previous
        orders.value = f"{now.placed:,}"
        orders.href = period.orders_link()
        orders.change = change(now.placed, before.placed)
        orders.was = f"{before.placed:,}"
        orders.note = f"{now.cancelled:,} cancelled" if now.cancelled else "none cancelled"
        currency = sales_data.main_currency
        if currency is None:
            revenue.value, average.value = _money(Decimal("0.00"), ""), "—"
            revenue.was, average.was = "0.00", "—"
        else:
            cur, old = now.of(currency), before.of(currency)
            revenue.value, revenue.unit = f"{cur.revenue:,.2f}", currency
            revenue.href = period.orders_link(currency=currency or None)
            revenue.change = change(cur.revenue, old.revenue)
            revenue.was = _money(old.revenue, currency)
            average.value, average.unit = (f"{cur.average:,.2f}", currency) if cur.average is not None else ("—", "")
            average.change = change(cur.average, old.average)
            average.was = _money(old.average, currency)
            others = len(sales_data.currencies) - 1
            if others:
                revenue.note = f"+ {others} other currenc{'y' if others == 1 else 'ies'} below"
        revenue.note = "; ".join(filter(None, ["orders placed, cancelled ones not counted", revenue.note]))
        average.note = "revenue ÷ orders counted in it"
        if refunds_fig.down:
            refund_share.down = refunds_fig.down
        else:
            done: Refunded = refunds_fig.value
            key = currency or ""
            rate = share(done.amount(key), now.of(key).revenue)
            old_rate = share(done.amount(key, previous=True), before.of(key).revenue)
            refund_share.value = _percent(rate)
            refund_share.change = change(rate, old_rate, up_is_good=False, rate=True)
            refund_share.was = _percent(old_rate)
            refund_share.note = f"{_money(done.amount(key), key)} refunded (completed refunds)"
            refund_share.href = None
        if returns_fig.down:
            returns_rate.down = returns_fig.down
        else:
            requests: Returned = returns_fig.value
            rate, old_rate = share(requests.current, now.placed), share(requests.previous, before.placed)
            returns_rate.value = _percent(rate)
            returns_rate.change = change(rate, old_rate, up_is_good=False, rate=True)
            returns_rate.was = _percent(old_rate)
            returns_rate.note = f"{requests.current:,} return request{'' if requests.current == 1 else 's'} ÷ orders placed"
            returns_rate.href = None
    return cards


@dataclass
class CurrencyRow:
    """A line of the revenue table: one currency now and before."""

    currency: str
    now: CurrencySales
    before: CurrencySales
    refunded: Decimal | None  # None: payment_db unavailable
    refunded_before: Decimal | None

    @property
    def revenue_change(self) -> Change | None:
        return change(self.now.revenue, self.before.revenue)

    @property
    def average_change(self) -> Change | None:
        return change(self.now.average, self.before.average)

    @property
    def refund_share(self) -> Decimal | None:
        return share(self.refunded, self.now.revenue)

    @property
    def refund_share_change(self) -> Change | None:
        return change(self.refund_share, share(self.refunded_before, self.before.revenue), up_is_good=False, rate=True)


def currency_rows(board: Board) -> list[CurrencyRow]:
    sales_fig, refunds_fig = board["sales"], board["refunded"]
    if sales_fig.down:
        return []
    data: Sales = sales_fig.value
    done: Refunded | None = None if refunds_fig.down else refunds_fig.value
    return [CurrencyRow(c, data.current.of(c), data.previous.of(c),
                        done.amount(c) if done else None, done.amount(c, previous=True) if done else None)
            for c in data.currencies]


def status_chart(statuses: list[tuple[str, int]], period: Period) -> Chart:
    """Orders placed in the period by status, each bar linking to those orders."""
    return row_chart([(status, count, period.orders_link(status=status), f"{count:,} {status}")
                      for status, count in statuses])


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
    recent: list  # the newest few (id, user_id, subject, status, created_at), so support can see whom they missed

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


def failed_notifications(now: datetime, recent: int = 8) -> FailedNotifications:
    """The failed notifications per status (the status index, counted) and the newest few
    (the created_at index, walked backwards), in one statement: a UNION ALL whose rows say
    which part they are (a count, or a notification)."""
    n = Notification
    failed = n.status.in_(NOTIFICATIONS_FAILED)
    counts = (select(n.status, func.count().label("count"), cast(null(), Text).label("id"),
                     cast(null(), Text).label("user_id"), cast(null(), Text).label("subject"),
                     cast(null(), n.created_at.type).label("created_at"))
              .where(failed).group_by(n.status))
    rows = (select(n.status, cast(null(), Integer).label("count"), n.id, n.user_id, n.subject, n.created_at)
            .where(failed).order_by(n.created_at.desc()).limit(recent))
    with database("notification"):
        found = db.session.execute(union_all(select(counts.subquery()), select(rows.subquery())),
                                   bind_arguments={"mapper": Notification}).all()
    counted = {row.status: row.count for row in found if row.id is None}
    newest = sorted((row for row in found if row.id is not None), key=lambda row: row.created_at, reverse=True)
    return FailedNotifications([(status, counted.get(status, 0)) for status in NOTIFICATIONS_FAILED], newest)


@dataclass
class LowStock:
    product_id: str
    sku: str | None
    name: str | None
    available: int
    reserved: int


def low_stock(now: datetime, limit: int = LOW_STOCK_ROWS) -> list[LowStock]:
    """The products closest to running out (available <= the threshold), archived ones aside."""
    with database("product"):
        rows = db.session.execute(
            select(ProductInventory.product_id, Product.sku, Product.name,
                   ProductInventory.available_quantity, ProductInventory.reserved_quantity)
            .join(Product, Product.id == ProductInventory.product_id)
            .where(ProductInventory.available_quantity <= stock_level_bounds("low")[1],
                   or_(Product.status.is_(None), Product.status != "archived"))
            .order_by(ProductInventory.available_quantity, Product.sku).limit(limit)).all()
    return [LowStock(pid, sku, name, available or 0, reserved or 0) for pid, sku, name, available, reserved in rows]


@dataclass
class Figure:
    value: object = None
    down: str | None = None  # the database that could not be read
    as_of: datetime | None = None  # when it was computed, if earlier than this load


# Figures kept between loads: the ones that read many rows. Kept per period.
CACHED = ("sales", "refunded", "returned")
_cache: dict[tuple, tuple[float, datetime, object]] = {}  # (name, period) -> (expires, computed at, value)
_cache_lock = threading.Lock()


def _cached(name: str, now: datetime, period: Period):
    """(value, computed at) of a figure still fresh in this process, else None."""
    seconds = current_app.config.get("DASHBOARD_CACHE_SECONDS", 0)
    if name not in CACHED or seconds <= 0:
        return None
    with _cache_lock:
        entry = _cache.get((name, period.cache_key))
    if entry is None or entry[0] < clock.monotonic() or localtime.today(entry[1]) != localtime.today(now):
        return None
    return entry[2], entry[1]


def _keep(name: str, now: datetime, period: Period, value) -> None:
    seconds = current_app.config.get("DASHBOARD_CACHE_SECONDS", 0)
    if name in CACHED and seconds > 0:
        with _cache_lock:
            expired = [k for k, entry in _cache.items() if entry[0] < clock.monotonic()]
            for key in expired:  # custom ranges must not pile up
                del _cache[key]
            _cache[(name, period.cache_key)] = (clock.monotonic() + seconds, now, value)


def forget_cached() -> None:
    with _cache_lock:
        _cache.clear()


def _now_only(load: Callable[[datetime], object]) -> Callable[[datetime, Period], object]:
    return lambda now, period: load(now)


# name -> (database, loader). Loaders take the current time and the period; the
# figures of "right now" ignore the period.
FIGURES: dict[str, tuple[str, Callable[[datetime, Period], object]]] = {
    "sales": ("order", sales),
    "refunded": ("payment", refunded),
    "returned": ("return", returned),
    "returns": ("return", _now_only(returns_waiting)),
    "refunds": ("payment", _now_only(refunds_open)),
    "low_stock": ("product", _now_only(low_stock)),
    "notifications": ("notification", _now_only(failed_notifications)),
}


@dataclass
class Board:
    now: datetime
    period: Period
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

    @property
    def days_as_of(self) -> datetime | None:
        """When the oldest past day's figures on the board were read (None: just now)."""
        return _oldest(*(getattr(f.value, "days_as_of", None) for f in self.figures.values()))


def collect(now: datetime, period: Period | None = None) -> Board:
    """Every figure for ``period`` (default: today); a database found down is not tried
    again for the next figure, so a dead server costs one connection timeout, not one
    per figure."""
    period = period or named_period(DEFAULT_PERIOD, now)
    board = Board(now, period)
    down: set[str] = set()
    for name, (bind, load) in FIGURES.items():
        if bind in down:
            board.figures[name] = Figure(down=bind)
            continue
        kept = _cached(name, now, period)
        if kept is not None:
            board.figures[name] = Figure(kept[0], as_of=kept[1])
            continue
        try:
            board.figures[name] = Figure(load(now, period))
            _keep(name, now, period, board.figures[name].value)
        except DatabaseUnavailable as exc:
            down.add(exc.bind_key)
            board.figures[name] = Figure(down=exc.bind_key)
    return board
