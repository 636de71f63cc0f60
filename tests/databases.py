"""Test databases: ten SQLite files or ten PostgreSQL databases, chosen by CONSOLE_TEST_DB.

On PostgreSQL each test run (and each xdist worker) gets its own ten databases,
created here and dropped at the end, so parallel runs never share state. They are made
from the services' own DDL (tests/fixtures/platform/ddl/), never from the console's
models, so every test runs against the shape a real deployment has; and every session
runs in a time zone far from UTC, so a timestamp PostgreSQL converted would show.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from config import BIND_KEYS
from tests import platform_ddl

BACKEND = os.environ.get("CONSOLE_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("CONSOLE_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
# The PostgreSQL sessions' TimeZone in the tests (UTC+12/+13, far from the UTC the columns hold).
SESSION_TIME_ZONE = "Pacific/Auckland"


def with_session_time_zone(bind: dict, zone: str = SESSION_TIME_ZONE) -> dict:
    """A PostgreSQL bind's options with every session's TimeZone set to ``zone``."""
    connect_args = dict(bind.get("connect_args", {}))
    connect_args["options"] = f"{connect_args.get('options', '')} -c TimeZone={zone}".strip()
    return {**bind, "connect_args": connect_args}


def postgres_reason() -> str | None:
    """None when the local PostgreSQL server answers, else why not."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"


def _admin():
    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


def create_postgres_databases(tag: str) -> dict[str, str]:
    """Ten fresh databases; returns bind key -> SQLAlchemy URL."""
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    urls = {}
    with _admin() as conn:
        for key in BIND_KEYS:
            name = f"console_test_{tag}_{key}"
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            urls[key] = f"{base}/{name}"
    for key, url in urls.items():
        load_platform_ddl(key, url)
    return urls


def load_platform_ddl(bind_key: str, url: str) -> None:
    """Create the service's tables in the database at ``url`` as the service does: its DDL."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(platform_ddl.sql(bind_key))


def drop_postgres_databases(tag: str) -> None:
    with _admin() as conn:
        for key in BIND_KEYS:
            name = f"console_test_{tag}_{key}"
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_tag() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{os.getpid()}_{worker}_{uuid.uuid4().hex[:6]}"


@contextmanager
def scratch_database(folder) -> Iterator[str]:
    """One empty database on the backend under test, for a test that alters a schema:
    a SQLite file in ``folder`` or a PostgreSQL database dropped afterwards."""
    if BACKEND != "postgres":
        yield f"sqlite:///{folder / 'scratch.sqlite'}"
        return
    name = f"console_test_{run_tag()}_scratch"
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{base}/{name}"
    finally:
        with _admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
