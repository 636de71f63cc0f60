"""Running behind PgBouncer in transaction mode (CONSOLE_PGBOUNCER=1).

PgBouncer hands each transaction whichever server connection is free, so nothing may
live in a server session between transactions:

- psycopg prepares a statement on the server once it has run five times
  (``prepare_threshold``) and from then on runs it by name, on a server connection that
  may never have seen it ("prepared statement does not exist"; PgBouncer only tracks
  them from 1.21): turned off.
- the statement timeout is a startup option elsewhere (config.POSTGRES_OPTIONS), which
  PgBouncer refuses ("unsupported startup parameter: options"): here every transaction
  sets it with SET LOCAL as it begins.

What the console does within one transaction works as it is: an export's server-side
cursor and its SET LOCALs, pg_advisory_xact_lock.
"""
from __future__ import annotations

from sqlalchemy import event

from config import STATEMENT_TIMEOUT


def bind_options(binds: dict[str, dict]) -> dict[str, dict]:
    """SQLALCHEMY_BINDS for PgBouncer: PostgreSQL binds without prepared statements and
    without the startup option."""
    adapted = {}
    for key, options in binds.items():
        if "connect_args" in options:  # PostgreSQL (config.bind_config)
            connect_args = {name: value for name, value in options["connect_args"].items() if name != "options"}
            options = {**options, "connect_args": {**connect_args, "prepare_threshold": None}}
        adapted[key] = options
    return adapted


def install(engines) -> None:
    for engine in engines:
        if engine.dialect.name == "postgresql":
            event.listen(engine, "begin", _statement_timeout)


def _statement_timeout(connection) -> None:
    # On the driver's connection: SQLAlchemy's own is still beginning. psycopg opens the
    # transaction with this statement; an AUTOCOMMIT connection (index builds) has none.
    driver = connection.connection.dbapi_connection
    if not driver.autocommit:
        driver.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT * 1000}")
