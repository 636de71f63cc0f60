"""The store's time zone (CONSOLE_TIMEZONE): every date and time the console shows, and
every day it is asked about, is read in it; every value it stores stays UTC.

- ``local(moment)``: a stored UTC moment as the store's wall-clock time (screens).
- ``start_of_day(day)``: the UTC moment a store-local day begins, so a filter "from
  2026-12-01 to 2026-12-01" becomes ``created_at >= start_of_day(1 Dec)`` and
  ``< start_of_day(2 Dec)``: plain range conditions an index on the column serves.
- ``today(now)``: the store's calendar day at ``now``.
- ``local_date(column)``: the store-local calendar day of a timestamp column, in SQL
  (``date(timezone(zone, timezone('UTC', column)))`` on PostgreSQL: the column holds UTC without a zone; a Python function on SQLite), for
  figures grouped by day.

CSV exports keep writing stored values as they are (ISO 8601 in UTC, "+00:00"), so a
file reads the same wherever it is opened; see console/exports.py.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_app_context
from sqlalchemy import Date, event, literal_column
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

DEFAULT_ZONE = "UTC"
SQLITE_FUNCTION = "console_local_date"


class BadTimeZone(ValueError):
    """CONSOLE_TIMEZONE names no zone of the IANA database."""


@lru_cache(maxsize=16)
def zone_named(name: str) -> ZoneInfo:
    """The zone called ``name`` (an IANA name such as Pacific/Auckland), else BadTimeZone."""
    text = (name or "").strip()
    try:
        if not text or len(text) > 64 or text.startswith(("/", ".")) or ".." in text:
            raise ValueError(text)
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadTimeZone(
            f"CONSOLE_TIMEZONE={name!r} is not a time zone: use an IANA name such as "
            "Europe/London, America/New_York or Pacific/Auckland (UTC by default).") from None


def zone() -> ZoneInfo:
    """The store's zone: the app's TIMEZONE setting (checked when the app starts)."""
    name = current_app.config.get("TIMEZONE", DEFAULT_ZONE) if has_app_context() else DEFAULT_ZONE
    return zone_named(name or DEFAULT_ZONE)


def zone_name() -> str:
    return zone().key


def local(moment: datetime, store: tzinfo | None = None) -> datetime:
    """A stored moment (aware) in the store's zone (``store``: that zone, looked up once
    by a caller converting many)."""
    return moment.astimezone(store or zone())


def today(now: datetime) -> date:
    return local(now).date()


def start_of_day(day: date) -> datetime:
    """When the store-local ``day`` begins, as an aware UTC datetime (DST-safe: a day
    that begins inside a gap begins at the first moment that exists)."""
    wall = datetime.combine(day, time.min, tzinfo=zone())
    return wall.astimezone(timezone.utc)


def day_starts(first: date, last: date) -> list[datetime]:
    """start_of_day of every store-local day ``first`` … ``last`` and of the day after
    (each day's end), the zone looked up once for a year of days."""
    store = zone()
    return [datetime.combine(first + timedelta(days=n), time.min, tzinfo=store).astimezone(timezone.utc)
            for n in range((last - first).days + 2)]


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the store-local days ``first`` … ``last``."""
    return start_of_day(first), start_of_day(last + timedelta(days=1))


def shift_days(moment: datetime, days: int) -> datetime:
    """``moment`` moved by whole store-local days (same wall-clock time), in UTC."""
    wall = local(moment).replace(tzinfo=None) + timedelta(days=days)
    return wall.replace(tzinfo=zone()).astimezone(timezone.utc)


class local_date(FunctionElement):
    """The store-local calendar day of a timestamp column, in SQL. The zone's name is
    written into the statement (a bound parameter would stop PostgreSQL from seeing
    the expression as the same from one call to the next)."""

    type = Date()
    inherit_cache = True

    def __init__(self, column, zone_key: str | None = None):
        key = zone_key or zone_name()
        zone_named(key)  # only a real zone name is ever written into SQL
        super().__init__(column, literal_column("'" + key.replace("'", "") + "'"))


@compiles(local_date, "postgresql")
def _local_date_postgresql(element, compiler, **kw):
    column, key = element.clauses
    # The columns are timestamp WITHOUT time zone holding UTC: read them as UTC first
    # (timezone('UTC', …) makes the instant), then as the store's wall clock. The
    # session's TimeZone plays no part.
    return f"date(timezone({compiler.process(key, **kw)}, timezone('UTC', {compiler.process(column, **kw)})))"


@compiles(local_date)
def _local_date_sqlite(element, compiler, **kw):
    column, key = element.clauses
    return f"{SQLITE_FUNCTION}({compiler.process(column, **kw)}, {compiler.process(key, **kw)})"


def _sqlite_local_date(value, key):
    """SQLite keeps UTC timestamps as text without a zone: the store-local date of one."""
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone_named(key)).date().isoformat()


@event.listens_for(Engine, "connect")
def _register_sqlite_function(dbapi_connection, connection_record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.create_function(SQLITE_FUNCTION, 2, _sqlite_local_date, deterministic=True)


def check_setting(app) -> None:
    """At start: refuse an unknown CONSOLE_TIMEZONE with a message naming it."""
    zone_named(app.config.get("TIMEZONE") or DEFAULT_ZONE)
