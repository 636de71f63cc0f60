"""Column types shared by every service model.

The services own these tables; the console maps them as DESIGN.md prescribes:
string ids (UUID4 for new rows), money as Numeric(12, 2) handled as Decimal,
timestamps as timezone-aware UTC, JSON as JSONB on PostgreSQL and string arrays
as ARRAY(text) on PostgreSQL (JSON elsewhere, so SQLite can hold them).
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import JSON, DateTime, Index, Text, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import TypeDecorator


# Set only inside repeatable(): an id generator and a fixed "now" (see there).
_repeatable: ContextVar[tuple[random.Random, datetime] | None] = ContextVar("repeatable", default=None)


# Money is Decimal with two places: amounts are quantized to this.
CENTS = Decimal("0.01")


class Vocabulary(tuple):
    """A column's values as its service writes them, in order; each value is also an
    attribute named by the value in upper case (``PAYMENT_STATUSES.SUCCEEDED`` is
    "succeeded"), so code names a value without spelling it."""

    def __new__(cls, *values: str):
        return super().__new__(cls, values)

    def __getnewargs__(self):  # copy and pickle rebuild it from its values
        return tuple(self)

    def __getattr__(self, name: str) -> str:
        for value in self:
            if value.upper() == name:
                return value
        raise AttributeError(f"no value {name!r} in {tuple(self)}")


def sort_indexes(table: str, *columns: str) -> tuple[Index, ...]:
    """For a table's list screen: an index on ``(column, id)`` for each sortable column,
    named ``ix_<table>_<column>_id``, so keyset paging seeks (console/screens/keyset.py)
    and a deep page costs what the first page costs."""
    return tuple(Index(f"ix_{table}_{column}_id", column, "id") for column in columns)


def new_id() -> str:
    state = _repeatable.get()
    if state is not None:
        return str(uuid.UUID(int=state[0].getrandbits(128), version=4))
    return str(uuid.uuid4())


def utcnow() -> datetime:
    state = _repeatable.get()
    return state[1] if state is not None else datetime.now(timezone.utc)


@contextmanager
def repeatable(seed, now: datetime) -> Iterator[None]:
    """Inside, new_id() draws UUID4s from a generator seeded with ``seed`` and
    utcnow() returns ``now``, so the demo seeder writes the same rows (ids, numbers,
    timestamps) on every run with the same seed. Column defaults call these two
    functions, so they follow as well. Per context: other threads are unaffected."""
    if now.tzinfo is None:
        raise ValueError("repeatable() needs a timezone-aware now")
    token = _repeatable.set((random.Random(f"ids-{seed}"), now.astimezone(timezone.utc)))
    try:
        yield
    finally:
        _repeatable.reset(token)


@contextmanager
def clock_at(now: datetime) -> Iterator[None]:
    """Inside repeatable(), utcnow() returns ``now`` for a while (the same id generator
    goes on), so the seeder can run a workflow at a moment of the demo's past."""
    state = _repeatable.get()
    if state is None:
        raise RuntimeError("clock_at() works only inside repeatable()")
    token = _repeatable.set((state[0], now.astimezone(timezone.utc)))
    try:
        yield
    finally:
        _repeatable.reset(token)


class UTCDateTime(TypeDecorator):
    """timestamp with time zone; always hands out aware UTC datetimes.

    SQLite stores no zone, so values are normalised to UTC on the way in and
    marked as UTC on the way out. Naive datetimes are refused: a naive value in
    a multi-service system is a bug waiting to happen.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")
TextArray = JSON().with_variant(ARRAY(Text), "postgresql")


class json_text(FunctionElement):
    """A JSON column's top-level ``key`` as text, with the key written into the SQL
    (``metadata ->> 'entity_id'`` on PostgreSQL, ``json_extract(metadata,
    '$.entity_id')`` on SQLite), so an index on the same expression serves queries that
    filter on it. (A bound key parameter would not match the index.)"""

    type = Text()
    inherit_cache = True

    def __init__(self, column, key: str):
        if not key.isidentifier():
            raise ValueError(f"not a plain JSON key: {key!r}")
        super().__init__(column, literal_column(f"'{key}'"))


@compiles(json_text, "postgresql")
def _json_text_postgresql(element, compiler, **kw):
    column, key = element.clauses
    return f"({compiler.process(column, **kw)} ->> {compiler.process(key, **kw)})"


@compiles(json_text)
def _json_text_sqlite(element, compiler, **kw):
    column, key = element.clauses
    return f"json_extract({compiler.process(column, **kw)}, '$.{key.name[1:]})"
