"""A page that only reads PostgreSQL reads it outside transactions.

Every database a request touches through the session costs, besides its statements, a
``BEGIN`` before the first and a ``ROLLBACK`` when the request ends: two more round trips
each, fourteen on the orders list (seven databases), about as many as its statements,
and under load each waits its turn for the server. At READ COMMITTED, PostgreSQL's
default and the console's, every statement of a transaction takes its own snapshot
anyway, so a transaction that only reads gives its statements nothing they do not have
alone: a GET or HEAD request's session connections to PostgreSQL run in autocommit, and
psycopg sends neither (its rollback of a connection with no transaction open sends
nothing).

What needs a transaction gets one. The moment the session is asked for anything but a
plain read (a flush, an INSERT, UPDATE or DELETE, a ``SELECT ... FOR UPDATE``, text SQL
such as ``SET LOCAL`` or an advisory lock, a streamed result, whose server-side cursor
lives in a transaction), the request stops reading untransacted: its connections leave
autocommit before that statement runs, so it and everything after it are in a
transaction as on any other request. (A lock a function takes for the transaction, such
as ``pg_advisory_xact_lock``, is taken through text SQL, as the workflows do: a select
of it would be read as a read.) Writes made on connections of their own
(``engine.begin()``: the session's sliding expiry, the exports' COPY) never were
affected. Not under PgBouncer, where each transaction sets its statement timeout
(console/pgbouncer.py), nor on SQLite, which has nothing of the kind to save.
"""
from __future__ import annotations

from flask import Flask, g, has_request_context, request
from psycopg.pq import TransactionStatus
from sqlalchemy import Select, event
from sqlalchemy.orm import Session

# g's attribute: the driver connections this request put in autocommit (None: the
# request reads in transactions, as writes need).
_UNTRANSACTED = "console_untransacted_connections"
READ_METHODS = frozenset({"GET", "HEAD"})
IDLE = TransactionStatus.IDLE


def install(app: Flask, engines) -> None:
    if app.config.get("PGBOUNCER"):
        return
    app.before_request(_start)
    for engine in engines:
        if engine.dialect.name == "postgresql" and not event.contains(engine, "checkin", _reset_on_checkin):
            event.listen(engine, "checkin", _reset_on_checkin)
    if not event.contains(Session, "after_begin", _after_begin):
        event.listen(Session, "after_begin", _after_begin)
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "do_orm_execute", _on_execute)


def _start() -> None:
    if request.method in READ_METHODS:
        setattr(g, _UNTRANSACTED, [])


def _after_begin(session, transaction, connection) -> None:
    # The session has just taken this connection for the request; psycopg opens a
    # transaction only with its first statement, so none is open yet.
    if not has_request_context():
        return
    untransacted = g.get(_UNTRANSACTED)
    if untransacted is None or connection.dialect.name != "postgresql":
        return
    driver = connection.connection.driver_connection
    # Only a connection with nothing open (IDLE) may change; anything else keeps its
    # transactions.
    if not driver.autocommit and driver.info.transaction_status == IDLE:
        driver.autocommit = True
        untransacted.append(driver)
        # Back in the pool it is an ordinary connection again (_reset_on_checkin).
        connection.connection.info[_UNTRANSACTED] = True


def in_transactions() -> None:
    """From here on, this request's session statements run in transactions."""
    if not has_request_context():
        return
    untransacted = g.get(_UNTRANSACTED)
    if untransacted is None:
        return
    setattr(g, _UNTRANSACTED, None)
    for driver in untransacted:
        if not driver.closed:
            driver.autocommit = False  # allowed: in autocommit nothing is left open


def _before_flush(session, flush_context, instances) -> None:
    in_transactions()


def _on_execute(state) -> None:
    if not has_request_context() or g.get(_UNTRANSACTED) is None:
        return
    options = state.execution_options
    plain_read = (isinstance(state.statement, Select) and state.statement._for_update_arg is None
                  and not options.get("yield_per") and not options.get("stream_results"))
    if not plain_read:
        in_transactions()


def _reset_on_checkin(dbapi_connection, record) -> None:
    # A connection a request put in autocommit goes back to the pool as it came out.
    if record.info.pop(_UNTRANSACTED, False) and not dbapi_connection.closed:
        dbapi_connection.autocommit = False
