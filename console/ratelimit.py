"""Counters in auth_db.rate_limits that stay right under concurrent requests.

Each change is one ``INSERT … ON CONFLICT (key) DO UPDATE`` (PostgreSQL and SQLite
both have it): the database serialises concurrent writers on the row, so two
requests at once can never both read the old value and both pass.
The caller commits, promptly, so the row lock is held only for a moment.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite

from console.drift import require_writes
from console.extensions import db
from console.models.auth import RateLimit
from console.models.types import new_id, utcnow

TABLE = RateLimit.__table__
# What hit() and advance() write, for the up-front drift check (console/drift.py): a
# counter row, every column of it.
WRITES = ((RateLimit,),)


def _upsert(values: dict, set_: dict, where=None):
    require_writes(*WRITES)
    engine = db.engines["auth"]
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(TABLE).values(id=new_id(), created_at=utcnow(), **values)
    stmt = stmt.on_conflict_do_update(index_elements=[TABLE.c.key], set_=set_(stmt.excluded), where=where)
    return db.session.execute(stmt.returning(TABLE.c.count), bind_arguments={"bind": engine}).scalar()


def hit(key: str, window_seconds: int, now: datetime | None = None) -> int:
    """Count one event under ``key`` in a fixed window; returns the count so far,
    this event included. A window that has run out starts again at 1."""
    now = now or utcnow()
    expired = TABLE.c.expires_at <= now
    return _upsert(
        {"key": key, "count": 1, "expires_at": now + timedelta(seconds=window_seconds)},
        lambda new: {
            "count": case((expired, 1), else_=TABLE.c.count + 1),
            "expires_at": case((expired, new.expires_at), else_=TABLE.c.expires_at),
        },
    )


def advance(key: str, value: int, keep_seconds: int) -> bool:
    """Store ``value`` under ``key`` only if it is higher than the stored one.
    True when it was stored; False when the stored value was already as high
    (used to refuse a one-time code whose time step was used before)."""
    stored = _upsert(
        {"key": key, "count": value, "expires_at": utcnow() + timedelta(seconds=keep_seconds)},
        lambda new: {"count": new.count, "expires_at": new.expires_at},
        where=TABLE.c.count < value,
    )
    return stored is not None


def clear(key: str) -> None:
    db.session.execute(TABLE.delete().where(TABLE.c.key == key), bind_arguments={"bind": db.engines["auth"]})
