"""What the benchmark scripts share: scratch databases, timing, statement counting.

Scratch databases are ten SQLite files in a temporary folder, or ten PostgreSQL
databases named ``<prefix>_<bind>`` on the server ``CONSOLE_BENCH_PG`` names (default
the local one, as root).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import BIND_KEYS, env_var  # noqa: E402

PG_ADMIN = os.environ.get("CONSOLE_BENCH_PG", "postgresql://root@127.0.0.1:5432/postgres")


# --- scratch databases -------------------------------------------------------------------

def postgres_urls(prefix: str) -> dict[str, str]:
    """SQLAlchemy URLs of the databases ``<prefix>_<bind>``."""
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return {key: f"{base}/{prefix}_{key}" for key in BIND_KEYS}


def _admin():
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True)


def create_databases(prefix: str) -> None:
    """Ten empty PostgreSQL databases ``<prefix>_<bind>`` (dropped first if they exist)."""
    with _admin() as conn:
        for key in BIND_KEYS:
            conn.execute(f'DROP DATABASE IF EXISTS "{prefix}_{key}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{prefix}_{key}"')


def drop_databases(prefix: str) -> None:
    with _admin() as conn:
        for key in BIND_KEYS:
            conn.execute(f'DROP DATABASE IF EXISTS "{prefix}_{key}" WITH (FORCE)')


def databases_exist(prefix: str) -> bool:
    with _admin() as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    return all(f"{prefix}_{key}" in names for key in BIND_KEYS)


def vacuum_analyze(urls: dict[str, str]) -> None:
    """VACUUM ANALYZE every database, as autovacuum would have on a live one: planner
    statistics, the visibility map, and GIN indexes' pending lists merged (right after a
    bulk load a trigram index answers slowly from its pending list)."""
    import psycopg

    for url in urls.values():
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def scratch_urls(use_postgres: bool) -> tuple[dict[str, str], Callable[[], None]]:
    """Ten fresh scratch databases and a function that drops them."""
    if not use_postgres:
        folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
        return {k: f"sqlite:///{folder / (k + '.sqlite')}" for k in BIND_KEYS}, lambda: None
    prefix = f"console_bench_{os.getpid()}_{uuid.uuid4().hex[:4]}"
    create_databases(prefix)
    return postgres_urls(prefix), lambda: drop_databases(prefix)


def flask_cli(urls: dict[str, str], *args: str) -> float:
    """Run ``flask console ARGS`` against the databases ``urls``; its seconds."""
    env = {**os.environ, **{env_var(k): u for k, u in urls.items()}}
    started = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "console", *args], cwd=ROOT, env=env,
                   check=True)
    return time.perf_counter() - started


# --- timing ------------------------------------------------------------------------------------

def median_ms(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class Statements:
    """A before_cursor_execute listener counting SQL statements (reset ``count`` to 0)."""

    def __init__(self):
        self.count = 0

    def __call__(self, *args):
        self.count += 1


def timed(client, url: str, repeat: int, counter: Statements) -> tuple[float, int, int]:
    """(median ms, statements of the last request, status) of ``repeat`` GETs of ``url``."""
    times, status = [], 0
    for _ in range(repeat):
        counter.count = 0
        started = time.perf_counter()
        response = client.get(url)
        response.get_data()
        times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return statistics.median(times), counter.count, status


def timed_pair(client, first: str, second: str, repeat: int, counter: Statements) -> tuple[tuple, tuple]:
    """timed() of two URLs, their requests taken in turn, so both see the same load on a
    shared machine: ((median ms, statements, status) of ``first``, the same of ``second``)."""
    runs: dict[str, list] = {first: [], second: []}
    for _ in range(repeat):
        for url in (first, second):
            runs[url].append(timed(client, url, 1, counter))
    return tuple((statistics.median(r[0] for r in runs[url]), runs[url][-1][1], runs[url][-1][2])
                 for url in (first, second))
