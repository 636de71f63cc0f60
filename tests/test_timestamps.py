"""Timestamps are TIMESTAMP(3) without time zone holding UTC: the console converts at its
edge (console/models/types.py UTCDateTime), so a value reads back as the same UTC instant
whatever the database session's TimeZone, and the stored value is the UTC wall time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from console.extensions import db
from console.models.auth import RateLimit
from tests import databases

# A moment given in a zone that is neither UTC nor the sessions' own.
INDIA = timezone(timedelta(hours=5, minutes=30))
MOMENT = datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=INDIA)


def stored_text(column) -> str:
    """The stored value as the database prints it, with no conversion by the console."""
    table = column.table.name
    if databases.BACKEND == "postgres":
        sql = f'SELECT "{column.name}"::text FROM "{table}"'
    else:
        sql = f'SELECT "{column.name}" FROM "{table}"'
    return db.session.execute(text(sql), bind_arguments={"bind": db.engines["auth"]}).scalar_one()


def test_a_timestamp_reads_back_as_the_same_utc_instant_stored_as_utc(ctx):
    if databases.BACKEND == "postgres":
        zone = db.session.execute(text("SHOW TimeZone"), bind_arguments={"bind": db.engines["auth"]}).scalar_one()
        assert zone == databases.SESSION_TIME_ZONE  # the pass runs its sessions far from UTC
    db.session.add(RateLimit(key="signin:someone", count=1, expires_at=MOMENT, created_at=MOMENT))
    db.session.commit()
    db.session.expire_all()

    back = db.session.scalars(select(RateLimit.expires_at)).one()
    assert back == MOMENT
    assert back.tzinfo == timezone.utc
    assert back == datetime(2026, 3, 14, 3, 56, 53, 589000, tzinfo=timezone.utc)
    assert stored_text(RateLimit.__table__.c.expires_at).startswith("2026-03-14 03:56:53.589")
    # A comparison binds the same way: the row is found by its instant.
    assert db.session.scalars(select(RateLimit.key).where(RateLimit.created_at == MOMENT)).one() == "signin:someone"


def test_a_naive_timestamp_is_refused(ctx):
    db.session.add(RateLimit(key="signin:naive", count=1, expires_at=datetime(2026, 3, 14, 9, 0)))
    with pytest.raises(Exception, match="naive datetime"):
        db.session.commit()
    db.session.rollback()
