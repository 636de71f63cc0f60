"""Column types shared by every service model.

The services own these tables and create them with Prisma; the console maps the types
Prisma gives them: string ids (the writer supplies them, shaped like Prisma's cuid()), money as
DECIMAL(10,2) handled as Decimal, timestamps as TIMESTAMP(3) without time zone holding
UTC (timezone-aware UTC in Python), JSON as JSONB and string lists as TEXT[] on
PostgreSQL (JSON elsewhere, so SQLite can hold them), and notification_db's three native
enum types.
"""
from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import JSON, DateTime, Enum, ForeignKey, Index, Numeric, Text, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.types import TypeDecorator


# Set only inside repeatable(): an id generator and a fixed "now" (see there).
_repeatable: ContextVar[tuple[random.Random, datetime] | None] = ContextVar("repeatable", default=None)


# Money columns are DECIMAL(10,2) (Prisma's ``@db.Decimal(10, 2)``), handled as Decimal.
Money = Numeric(10, 2)
# Amounts are quantized to this.
CENTS = Decimal("0.01")
# The largest amount a money column holds (forms and workflows refuse larger ones).
MONEY_INTEGER_DIGITS = Money.precision - Money.scale
MAX_MONEY = Decimal(10) ** MONEY_INTEGER_DIGITS - CENTS


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


def sort_indexes(table: str, *columns: str, screen: str) -> tuple[Index, ...]:
    """For a table's list screen: an index on ``(column, id)`` for each sortable column,
    named ``ix_<table>_<column>_id``, so keyset paging seeks (console/screens/keyset.py)
    and a deep page costs what the first page costs. ``screen`` names the list, for
    ``check-schema`` and the Databases page."""
    return tuple(Index(f"ix_{table}_{column}_id", column, "id", info={"serves": f"{screen}, sorted by {column}"})
                 for column in columns)


def foreign_key(target: str, name: str, *, on_delete: str) -> ForeignKey:
    """A foreign key inside one database as the services' schemas declare them: named as
    their DDL names it, ``ON UPDATE CASCADE``, ``ON DELETE`` as the relation says.
    ``target`` is ``table.attribute`` (columns are keyed by their Python attribute)."""
    # Added after every table and index exists, as Prisma does: user_db's keys reference
    # user_profiles."userId", which is unique through an index made after its table.
    return ForeignKey(target, name=name, ondelete=on_delete, onupdate="CASCADE", use_alter=True)


# Ids the console writes have the shape of the services' own (Prisma's ``cuid()``): "c"
# and 24 lower-case base-36 characters, 25 in all. Some columns that hold a user id are
# exactly that wide (return_status_history.changed_by is VARCHAR(25)).
ID_LENGTH = 25
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def cuid_from(bits: int) -> str:
    """A 25-character id spelling ``bits`` (random, at least 124 of them) in base 36."""
    digits = []
    for _ in range(ID_LENGTH - 1):
        bits, digit = divmod(bits, 36)
        digits.append(BASE36[digit])
    return "c" + "".join(digits)


def new_id() -> str:
    state = _repeatable.get()
    if state is not None:
        return cuid_from(state[0].getrandbits(128))
    return cuid_from(secrets.randbits(128))


def random_tail(length: int) -> str:
    """``length`` (at most 24) random base-36 characters, drawn as new_id() draws an id
    (so repeatable() makes them repeat too): for tokens and reference numbers."""
    if not 0 < length < ID_LENGTH:
        raise ValueError(f"a tail of 1 to {ID_LENGTH - 1} characters, not {length}")
    return new_id()[1:1 + length]


def to_millisecond(value: datetime) -> datetime:
    """``value`` cut to whole milliseconds: what a TIMESTAMP(3) column keeps."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    """Now, in UTC, to the millisecond the services' TIMESTAMP(3) columns keep, so a
    value written and read back compares equal."""
    state = _repeatable.get()
    return to_millisecond(state[1] if state is not None else datetime.now(timezone.utc))


@contextmanager
def repeatable(seed, now: datetime) -> Iterator[None]:
    """Inside, new_id() draws its ids from a generator seeded with ``seed`` and
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
    """TIMESTAMP(3) without time zone, holding UTC (what Prisma writes for ``DateTime``);
    always hands out aware UTC datetimes.

    Values are converted at this edge and nowhere else: an aware datetime is turned to UTC
    and bound naive, a naive one read back is marked as UTC. PostgreSQL never converts (a
    naive value binds as ``timestamp``, and no ``timestamptz`` is involved), so the server's
    or the session's TimeZone cannot shift a value. Naive datetimes are refused on the way
    in: a naive value in a multi-service system is a bug waiting to happen.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return TIMESTAMP(timezone=False, precision=3)
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use timezone-aware UTC")
        # Cut (not rounded by the server) to the column's milliseconds, alike on SQLite.
        return to_millisecond(value.astimezone(timezone.utc).replace(tzinfo=None))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")
TextArray = JSON().with_variant(ARRAY(Text), "postgresql")


def native_enum(name: str, *labels: str) -> Enum:
    """One of notification_db's enum types: the native type ``name`` on PostgreSQL, so
    comparisons and inserts bind with it (a ``character varying`` parameter has no
    operator against an enum); plain text on SQLite. Not validated in Python: a value
    the type lacks is the database's to refuse, as the services' writes would be."""
    return Enum(*labels, name=name, native_enum=True, create_constraint=False, validate_strings=False)


# notification_db's enum types, as its DDL creates them.
NotificationType = native_enum("notification_type", "EMAIL", "SMS", "PUSH", "IN_APP")
NotificationStatus = native_enum("notification_status", "PENDING", "SENT", "DELIVERED", "FAILED", "BOUNCED")
NotificationLogStatus = native_enum("notification_log_status", "SENT", "DELIVERED", "FAILED", "BOUNCED")


class json_text(FunctionElement):
    """A JSON column's value at ``keys`` (one key, or a path of keys) as text, with the
    keys written into the SQL (``metadata ->> 'entity_id'`` or ``metadata #>> '{steps,
    charge}'`` on PostgreSQL, ``json_extract(metadata, '$.steps.charge')`` on SQLite), so
    an index on the same expression, or a partial index whose condition uses it, serves
    the queries that use it whatever plan the server picks. (A bound key parameter would
    not match the index.)"""

    type = Text()
    inherit_cache = True

    def __init__(self, column, *keys: str):
        if not keys or not all(key.isidentifier() for key in keys):
            raise ValueError(f"not plain JSON keys: {keys!r}")
        super().__init__(column, *(literal_column(key) for key in keys))


@compiles(json_text, "postgresql")
def _json_text_postgresql(element, compiler, **kw):
    column, *keys = element.clauses
    names = [key.name for key in keys]
    if len(names) == 1:
        return f"({compiler.process(column, **kw)} ->> '{names[0]}')"
    return f"({compiler.process(column, **kw)} #>> '{{{','.join(names)}}}')"


@compiles(json_text)
def _json_text_sqlite(element, compiler, **kw):
    column, *keys = element.clauses
    return f"json_extract({compiler.process(column, **kw)}, '$.{'.'.join(key.name for key in keys)}')"
