"""A pooled PostgreSQL connection is checked before a request gets it, at almost no cost.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: a page that reads
seven databases pays seven extra round trips (and the server seven statements) only to
learn that connections used a few milliseconds earlier are still there. Here instead:

- every checkout looks at the connection's socket without waiting: an idle connection
  has nothing to read, so a readable socket means the server has closed it (a restart,
  ``pg_terminate_backend``: PostgreSQL sends its error and closes) and the connection
  is thrown away before a request uses it;
- a connection that sat in the pool longer than ``PING_AFTER_IDLE`` seconds is also
  pinged as before (``SELECT 1``): a peer that vanished without closing (a firewall
  that dropped the idle connection) sends nothing to read.

Either failure raises ``DisconnectionError``, on which the pool opens a new connection
for the same checkout, as ``pool_pre_ping`` does. SQLite keeps ``pool_pre_ping`` (a
file has no socket, and its ping costs nothing).
"""
from __future__ import annotations

import select
import time

from sqlalchemy import event, exc

# Seconds a connection may stay unused in the pool before its checkout also pings it.
PING_AFTER_IDLE = 30.0
_RETURNED = "console_returned_at"


def install(engines) -> None:
    for engine in engines:
        if engine.dialect.name == "postgresql" and not event.contains(engine, "checkin", _returned):
            event.listen(engine, "connect", _returned)
            event.listen(engine, "checkin", _returned)
            event.listen(engine, "checkout", _checkout_of(engine.dialect))


def _returned(dbapi_connection, record) -> None:
    record.info[_RETURNED] = time.monotonic()


def closed_by_server(dbapi_connection) -> bool:
    """Whether the idle connection's socket has something to read (the server's goodbye,
    or the end of the stream): then it is closed, or closing."""
    if dbapi_connection.closed:
        return True
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _checkout_of(dialect):
    def checkout(dbapi_connection, record, proxy) -> None:
        if closed_by_server(dbapi_connection):
            raise exc.DisconnectionError("the server closed the connection while it was in the pool")
        if time.monotonic() - record.info.get(_RETURNED, 0.0) > PING_AFTER_IDLE:
            try:
                dialect.do_ping(dbapi_connection)
            except dialect.loaded_dbapi.Error as error:
                raise exc.DisconnectionError(f"the connection failed its ping: {error}") from error
    return checkout
