"""Dropping the services' cached copies of what the console writes, and the drops still owed.

After every commit that changed a row some service caches, the keys the owning service
would drop after the same change (console/service_caches.py) are dropped from that
service's Redis (``<BIND>_REDIS_URL``, or ``CONSOLE_SERVICE_REDIS_URL`` for all; a service
without a URL owes nothing, as on the embedded default):

- *Collected* through the session's events, so every workflow gets it by writing: rows a
  flush inserts, changes (with the values they had before) or deletes, and rows written by
  statements sent through the session (bulk updates by primary key, updates and deletes by
  a condition, whose rows are read first).
- *Journaled* just before the commit (the durable intent), *dropped* right after it, and
  then struck from the journal. A rollback before the commit forgets them.
- *Never lost*: a cache that is down or slow (``CONSOLE_SERVICE_CACHE_TIMEOUT``, half a
  second) leaves the database change standing; the keys stay in the journal as owed, with
  the error, and are dropped by the next commit that reaches the cache (a batch at a
  time; other processes' entries at most every RETRY_EVERY seconds), by ``flask --app
  wsgi console drop-cache-keys``, or by *Retry* on the Databases page, which shows each
  cache's state and the drops waiting.
- *Batched*: exact keys go in UNLINK commands of a thousand, pipelined; patterns are one
  SCAN walk of the cache (never KEYS) per commit, however many rows, each page's matches
  unlinked in the same round trip as the next page is asked for.

The journal is a SQLite file on the console's own disk (``CONSOLE_SERVICE_CACHE_JOURNAL``,
``instance/service_cache_drops.sqlite`` by default). The console owns no database and adds
no table to the services' ones; Redis is the very thing that may be down; a file beside
the console is there whenever the console is, needs nothing installed, and SQLite keeps
each write atomic across the worker processes and threads sharing it (WAL, so a write
costs no fsync; it survives a crashed process, not a lost disk). Each console host keeps
its own: put the instance folder on a disk that outlives a restart. Dropping a key twice
is harmless, so the journal errs that way: entries written for a commit that then failed
are dropped all the same (a commit across several databases may have written part).
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import redis
from flask import current_app, has_app_context
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import event, inspect, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter, ClauseElement

from config import BIND_KEYS
from console.lookups import chunks
from console.service_caches import CACHED, Cached, Owed, caches_of, for_table

log = logging.getLogger(__name__)

OWED = "service_caches.owed"  # session.info: {service: Owed} collected since the last commit
JOURNALED = "service_caches.journaled"  # session.info: {service: journal entry id}, written before the commit

UNLINK_BATCH = 1_000  # keys per UNLINK command
PIPELINE_COMMANDS = 100  # commands sent per round trip
SCAN_COUNT = 1_000  # keys Redis looks at per SCAN page
BREAKER_SECONDS = 10  # a cache that failed is not tried again by commits for this long (they journal)
RETRY_EVERY = 30  # seconds between a process's retries of what is owed, on its later commits
RETRY_BATCH = 500  # journal entries merged into one drop
STALE_SECONDS = 300  # an entry written before a commit and never settled: its process died


class CacheUnavailable(Exception):
    """A cache that failed moments ago: commits journal their drops without trying it."""


def _urls() -> dict[str, str]:
    if not has_app_context():
        return {}
    return current_app.config.get("SERVICE_CACHE_URLS") or {}


def _timeout() -> float:
    return float(current_app.config.get("SERVICE_CACHE_TIMEOUT", 0.5))


def safe_url(url: str) -> str:
    """The URL with its password left out, for the page and the logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


# --- collecting, through the session's events ------------------------------------------------

def _owe(session: Session, entry: Cached, rows: Iterable[object]) -> None:
    if entry.service not in _urls():
        return
    owed = entry.owed(rows)
    if owed:
        session.info.setdefault(OWED, {}).setdefault(entry.service, Owed()).update(owed)


def _values(obj, entry: Cached) -> SimpleNamespace:
    loaded = inspect(obj).dict
    return SimpleNamespace(**{name: loaded.get(name) for name in entry.attributes})


def _before_and_after(obj, entry: Cached) -> list[SimpleNamespace]:
    state = inspect(obj)
    for name in entry.attributes:
        getattr(obj, name)  # an expired row loads here, before the flush changes it
    now, then = {}, {}
    for name in entry.attributes:
        history = state.attrs[name].history
        current = (history.added or history.unchanged or (None,))[0]
        now[name] = current
        then[name] = history.deleted[0] if history.deleted else current
    return [SimpleNamespace(**now), SimpleNamespace(**then)]


def _before_flush(session, flush_context, instances) -> None:
    # Changed and deleted rows are read before the flush: their values before the change,
    # and the row itself while it still exists.
    if not _urls():
        return
    for obj in [*session.dirty, *session.deleted]:
        entry = CACHED.get(type(obj))
        if entry is None:
            continue
        if obj in session.deleted or session.is_modified(obj, include_collections=False):
            _owe(session, entry, _before_and_after(obj, entry))


def _after_flush(session, flush_context) -> None:
    # New rows after the flush: their ids are set by then.
    if not _urls():
        return
    for obj in session.new:
        entry = CACHED.get(type(obj))
        if entry is not None:
            _owe(session, entry, [_values(obj, entry)])


def _attribute_names(entry: Cached) -> dict[str, str]:
    """Attribute name or column key -> attribute name, for the statement's values."""
    names = {}
    for prop in entry.model.__mapper__.column_attrs:
        names[prop.key] = prop.key
        for column in prop.columns:
            names.setdefault(column.key, prop.key)
    return names


def _as_attributes(entry: Cached, values, names: dict[str, str], wanted: set[str]) -> dict:
    row = {}
    for name, value in (values or {}).items():
        attribute = names.get(getattr(name, "key", name))
        if attribute not in wanted:
            continue
        if isinstance(value, BindParameter):
            value = value.value
        elif isinstance(value, ClauseElement):
            raise TypeError(f"{entry.model.__name__}.{attribute} is set to an expression, which does not name "
                            "the service cache's keys: set it to a value")
        row[attribute] = value
    return row


def _read(session: Session, entry: Cached, condition, wanted: set[str]) -> list[dict]:
    columns = [getattr(entry.model, name).label(name) for name in sorted(wanted)]
    return [dict(row._mapping) for row in session.execute(select(*columns).where(condition))]


def _statement_rows(state, entry: Cached) -> list[dict]:
    """The rows an INSERT, UPDATE or DELETE sent through the session writes: as they were
    (read first, by their primary keys or the statement's condition) and as written."""
    statement = state.statement
    names = _attribute_names(entry)
    key = [names[column.key] for column in entry.table.primary_key]
    wanted = set(entry.attributes) | set(key)
    params = state.parameters
    listed = params if isinstance(params, list) else [params] if isinstance(params, dict) and params else []
    values = _as_attributes(entry, getattr(statement, "_values", None), names, wanted)
    if state.is_insert:
        if getattr(statement, "select", None) is not None:
            raise TypeError(f"INSERT … SELECT into {entry.table.name}: name its rows' service cache keys with "
                            "console.cache_drops.owe()")
        multi = [row if isinstance(row, dict) else dict(zip(entry.table.c, row))
                 for rows in (getattr(statement, "_multi_values", None) or ()) for row in rows]
        return [{**values, **_as_attributes(entry, row, names, wanted)} for row in listed or multi] or [values]
    session = state.session
    if listed:  # an executemany: each dict names its row by primary key
        changes = [{**values, **_as_attributes(entry, row, names, wanted)} for row in listed]
        if len(key) != 1 or any(key[0] not in row for row in changes):
            raise TypeError(f"{entry.table.name}: a bulk write whose rows are not named by their primary key "
                            "does not name the service cache's keys")
        if wanted <= set(changes[0]):
            return changes
        before = []
        for chunk in chunks([row[key[0]] for row in changes]):
            before.extend(_read(session, entry, getattr(entry.model, key[0]).in_(chunk), wanted))
        was = {row[key[0]]: row for row in before}
        return before + [{**was.get(row[key[0]], {}), **row} for row in changes]
    condition = statement.whereclause if statement.whereclause is not None else true()
    before = _read(session, entry, condition, wanted)
    return before + [{**row, **values} for row in before] if values else before


def _on_execute(state) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    urls = _urls()
    table = getattr(state.statement, "table", None)
    if not urls or table is None:
        return
    entry = for_table(table)
    if entry is None or entry.service not in urls:
        return
    rows = _statement_rows(state, entry)
    _owe(state.session, entry, [SimpleNamespace(**{name: row.get(name) for name in entry.attributes})
                                for row in rows])


def owe(model: type, rows: Iterable[object]) -> None:
    """For a write that does not go through the session (a raw connection): the keys of
    ``rows`` (anything with the model's declared attributes) are owed after the commit."""
    from console.extensions import db

    entry = CACHED.get(model)
    if entry is not None:
        _owe(db.session(), entry, rows)


def _before_commit(session) -> None:
    if not _urls():
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit flushes only after this event: its rows belong in the journal too
    owed = session.info.get(OWED)
    if owed:
        try:
            session.info[JOURNALED] = journal().write_ahead(owed)
        except Exception:  # noqa: BLE001 - the journal must never stop a commit
            log.exception("service cache journal: could not record the drops owed before a commit")


def _after_commit(session) -> None:
    owed = session.info.pop(OWED, None)
    journaled = session.info.pop(JOURNALED, None) or {}
    if owed:
        _drop_committed(owed, journaled)


def _after_rollback(session) -> None:
    session.info.pop(OWED, None)
    journaled = session.info.pop(JOURNALED, None)
    if journaled:
        try:
            journal().attempted(list(journaled.values()), "the commit did not finish: dropped anyway, "
                                                           "in case part of it was written")
        except Exception:  # noqa: BLE001
            log.exception("service cache journal: could not mark the drops of a failed commit")


def install() -> None:
    """Hook the listeners once for every app (each reads its own configuration)."""
    if getattr(install, "done", False):
        return
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _on_execute)
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)
    install.done = True


# --- Redis ------------------------------------------------------------------------------------

_lock = threading.Lock()
_clients: dict[tuple[str, float], redis.Redis] = {}
_down_until: dict[str, tuple[float, str]] = {}  # url -> (monotonic time, error)
_next_retry: dict[tuple[str, str], float] = {}  # (journal path, service) -> monotonic time


def client(url: str, timeout: float | None = None) -> redis.Redis:
    """One client (and connection pool) per cache and process. No retries: a cache that
    does not answer within the timeout is owed, not waited for."""
    timeout = _timeout() if timeout is None else timeout
    with _lock:
        found = _clients.get((url, timeout))
        if found is None:
            found = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                         retry=Retry(NoBackoff(), 0), health_check_interval=0)
            _clients[(url, timeout)] = found
        return found


def _escape(text: bytes) -> bytes:
    out = bytearray()
    for byte in text:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)


def _glob_regex(pattern: bytes):
    import re

    parts, i = [], 0
    while i < len(pattern):
        char = pattern[i:i + 1]
        if char == b"*":
            parts.append(b".*")
        elif char == b"?":
            parts.append(b".")
        elif char == b"\\" and i + 1 < len(pattern):
            i += 1
            parts.append(re.escape(pattern[i:i + 1]))
        elif char == b"[":
            raise ValueError(f"character classes are not declared in service cache patterns: {pattern!r}")
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile(b"".join(parts) + b"\\Z", re.DOTALL)


def _literal_head(pattern: bytes) -> bytes:
    head = bytearray()
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char in b"*?[":
            break
        if char == ord("\\") and i + 1 < len(pattern):
            i += 1
            char = pattern[i]
        head.append(char)
        i += 1
    return bytes(head)


class _Matcher:
    """Client-side: does a key SCAN returned fall under one of the owed prefixes or patterns?"""

    def __init__(self, owed: Owed):
        self.prefixes = {p.encode() for p in owed.prefixes}
        self.lengths = sorted({len(p) for p in self.prefixes})
        self.patterns = [_glob_regex(p.encode()) for p in owed.patterns]
        heads = [*self.prefixes, *(_literal_head(p.encode()) for p in owed.patterns)]
        common = heads[0]
        for head in heads[1:]:
            while not head.startswith(common):
                common = common[:-1]
        # Redis filters the walk by the part every pattern shares; the rest is told apart here.
        if len(heads) == 1 and owed.patterns:
            self.scan_match = next(iter(owed.patterns)).encode()
        else:
            self.scan_match = _escape(common) + b"*"

    def __call__(self, key: bytes) -> bool:
        for length in self.lengths:
            if length > len(key):
                break
            if key[:length] in self.prefixes:
                return True
        return any(p.match(key) for p in self.patterns)


def drop(connection: redis.Redis, owed: Owed) -> int:
    """Drop the owed keys; returns how many existed. Round trips: one per hundred UNLINK
    commands of a thousand keys, and one per SCAN page when there are patterns."""
    removed = 0
    for batch in chunks(chunks(sorted(owed.keys), UNLINK_BATCH), PIPELINE_COMMANDS):
        pipe = connection.pipeline(transaction=False)
        for names in batch:
            pipe.unlink(*names)
        removed += sum(pipe.execute())
    if not (owed.prefixes or owed.patterns):
        return removed
    matcher = _Matcher(owed)
    cursor, matched = 0, []
    while True:
        pipe = connection.pipeline(transaction=False)
        if matched:
            pipe.unlink(*matched)
        pipe.scan(cursor, match=matcher.scan_match, count=SCAN_COUNT)
        answers = pipe.execute()
        if matched:
            removed += answers[0]
        cursor, found = answers[-1]
        matched = [name for name in found if matcher(name)]
        if cursor == 0:
            break
    if matched:
        removed += connection.unlink(*matched)
    return removed


def _trip(url: str, exc: Exception) -> None:
    with _lock:
        _down_until[url] = (time.monotonic() + BREAKER_SECONDS, _describe(exc))


def _reset(url: str) -> None:
    with _lock:
        _down_until.pop(url, None)


def _drop_with_breaker(url: str, owed: Owed) -> int:
    with _lock:
        until, error = _down_until.get(url, (0.0, ""))
    if time.monotonic() < until:
        raise CacheUnavailable(f"did not answer moments ago ({error})")
    try:
        removed = drop(client(url), owed)
    except Exception as exc:
        _trip(url, exc)
        raise
    _reset(url)
    return removed


def _drop_committed(owed: dict[str, Owed], journaled: dict[str, int]) -> None:
    """After a commit: drop each service's keys; what fails stays in the journal as owed.
    Never raises: the commit has happened, whatever becomes of its cache."""
    urls = _urls()
    for service, keys in owed.items():
        url, entry_id = urls.get(service), journaled.get(service)
        if url is None:
            continue
        try:
            _drop_with_breaker(url, keys)
        except Exception as exc:  # noqa: BLE001 - any failure means "owed"
            log.warning("%s service cache at %s: %d key(s) or pattern(s) left owed: %s",
                        service, safe_url(url), len(keys), _describe(exc))
            try:
                store = journal()
                store.owe(entry_id, service, keys, _describe(exc))
                with _lock:  # the next commit the cache answers takes it
                    _next_retry.pop((str(store.path), service), None)
            except Exception:  # noqa: BLE001
                log.exception("service cache journal: could not record the drops owed to %s", service)
            continue
        try:
            if entry_id is not None:
                journal().settle([entry_id])
            _retry_now_and_then(service)
        except Exception:  # noqa: BLE001
            log.exception("service cache journal: could not settle the drops of %s", service)


def _retry_now_and_then(service: str) -> None:
    """The cache answered: take one batch of what it is still owed, right after this process
    journaled some, else at most every RETRY_EVERY seconds (other processes' entries)."""
    store = journal()
    due_key = (str(store.path), service)
    now = time.monotonic()
    with _lock:
        if now < _next_retry.get(due_key, 0.0):
            return
        _next_retry[due_key] = now + RETRY_EVERY
    if any(outcome.waiting for outcome in retry([service], batches=1)):
        with _lock:
            _next_retry.pop(due_key, None)  # more than a batch: the next commit takes the next one


# --- the journal ------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS owed_drops (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    owed TEXT NOT NULL,
    settled_by_commit INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at REAL
);
CREATE INDEX IF NOT EXISTS owed_drops_service ON owed_drops (service, id);
"""


@dataclass
class Waiting:
    """What one service's cache is still owed."""

    count: int = 0
    oldest: datetime | None = None
    last_error: str = ""
    last_attempt: datetime | None = None


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


class Journal:
    """The drops owed, one row per service and commit. ``settled_by_commit`` is 1 while the
    commit that wrote it is expected to drop it itself: such a row waits for a retry only
    once it is STALE_SECONDS old (that process died), or once marked owed."""

    _made: set[str] = set()  # files this process has created the table in

    def __init__(self, path: str):
        self.path = Path(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        fresh = str(self.path) not in Journal._made or not self.path.exists()
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)  # each statement commits
        try:
            if fresh:
                conn.execute("PRAGMA journal_mode=WAL")  # kept by the file
                conn.executescript(SCHEMA)
                Journal._made.add(str(self.path))
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    def _waiting_condition(self) -> tuple[str, tuple]:
        return "(settled_by_commit = 0 OR created_at < ?)", (time.time() - STALE_SECONDS,)

    def write_ahead(self, owed: dict[str, Owed]) -> dict[str, int]:
        now = time.time()
        with self._connect() as conn:
            return {service: conn.execute(
                "INSERT INTO owed_drops (service, owed, settled_by_commit, created_at) VALUES (?, ?, 1, ?)",
                (service, json.dumps(keys.as_json()), now)).lastrowid for service, keys in owed.items()}

    def owe(self, entry_id: int | None, service: str, owed: Owed, error: str) -> None:
        now = time.time()
        with self._connect() as conn:
            if entry_id is not None:
                conn.execute("UPDATE owed_drops SET owed = ?, settled_by_commit = 0, attempts = attempts + 1, "
                             "last_error = ?, last_attempt_at = ? WHERE id = ?",
                             (json.dumps(owed.as_json()), error, now, entry_id))
            else:
                conn.execute("INSERT INTO owed_drops (service, owed, settled_by_commit, created_at, attempts, "
                             "last_error, last_attempt_at) VALUES (?, ?, 0, ?, 1, ?, ?)",
                             (service, json.dumps(owed.as_json()), now, error, now))

    def attempted(self, ids: list[int], error: str) -> None:
        with self._connect() as conn:
            conn.executemany("UPDATE owed_drops SET settled_by_commit = 0, attempts = attempts + 1, last_error = ?, "
                             "last_attempt_at = ? WHERE id = ?", [(error, time.time(), i) for i in ids])

    def settle(self, ids: list[int]) -> None:
        with self._connect() as conn:
            for chunk in chunks(ids, 500):
                conn.execute(f"DELETE FROM owed_drops WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def due(self, service: str, limit: int) -> list[tuple[int, Owed]]:
        condition, args = self._waiting_condition()
        with self._connect() as conn:
            rows = conn.execute(f"SELECT id, owed FROM owed_drops WHERE service = ? AND {condition} ORDER BY id "
                                "LIMIT ?", (service, *args, limit)).fetchall()
        return [(row_id, Owed.from_json(json.loads(text))) for row_id, text in rows]

    def waiting(self) -> dict[str, Waiting]:
        """Per service: the entries a retry would take now. Reads nothing (and creates no
        file) where no journal was ever written."""
        if not self.path.exists():
            return {}
        condition, args = self._waiting_condition()
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT service, COUNT(*), MIN(created_at), MAX(last_attempt_at) FROM owed_drops WHERE {condition} "
                "GROUP BY service", args).fetchall()
            found = {}
            for service, count, oldest, attempt in rows:
                error = conn.execute("SELECT last_error FROM owed_drops WHERE service = ? AND last_error IS NOT NULL "
                                     "ORDER BY last_attempt_at DESC LIMIT 1", (service,)).fetchone()
                found[service] = Waiting(count, _when(oldest), error[0] if error else "", _when(attempt))
        return found


def journal() -> Journal:
    return Journal(current_app.config["SERVICE_CACHE_JOURNAL"])


# --- retry, and each cache's state --------------------------------------------------------------

@dataclass
class RetryOutcome:
    service: str
    dropped: int = 0  # journal entries (one per commit) dropped now
    waiting: int = 0  # entries still owed
    error: str = ""

    @property
    def message(self) -> str:
        done = f"{self.service} service cache: dropped the keys of {self.dropped} change(s)"
        if not self.waiting:
            return done + "; nothing more is owed."
        return done + f"; {self.waiting} still waiting ({self.error or 'written meanwhile'})."


def retry(services: Iterable[str] | None = None, *, batches: int | None = None) -> list[RetryOutcome]:
    """Drop what the journal says each cache is owed, oldest first, RETRY_BATCH entries per
    drop; a cache that fails keeps the rest with the error. ``batches`` bounds the work
    (a commit's own retry takes one)."""
    store = journal()
    waiting = store.waiting()
    urls = _urls()
    outcomes = []
    for service in sorted(set(services) & set(waiting) if services is not None else waiting):
        outcome = RetryOutcome(service)
        url = urls.get(service)
        done = 0
        while url and (batches is None or done < batches):
            batch = store.due(service, RETRY_BATCH)
            if not batch:
                break
            merged = Owed()
            for _, owed in batch:
                merged.update(owed)
            ids = [entry_id for entry_id, _ in batch]
            try:
                drop(client(url), merged)
            except Exception as exc:  # noqa: BLE001 - any failure leaves them owed
                _trip(url, exc)
                outcome.error = _describe(exc)
                store.attempted(ids, outcome.error)
                break
            _reset(url)
            store.settle(ids)
            outcome.dropped += len(ids)
            done += 1
        if not url:
            outcome.error = f"no cache URL is configured ({service.upper()}_REDIS_URL)"
        outcome.waiting = store.waiting().get(service, Waiting()).count
        outcomes.append(outcome)
    return outcomes


@dataclass
class CacheHealth:
    """One service's cache on the Databases page."""

    service: str
    url: str = ""  # without its password; "" when not configured
    state: str = "not configured"  # up | down | not configured
    round_trip_ms: float | None = None
    error: str = ""
    waiting: Waiting = field(default_factory=Waiting)
    caches: list[str] = field(default_factory=list)  # the tables it holds copies of


def _ping(url: str, timeout: float) -> tuple[float | None, str]:
    started = time.perf_counter()
    try:
        client(url, timeout).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "down" on a health page
        return None, _describe(exc)
    return round((time.perf_counter() - started) * 1000, 1), ""


def health() -> list[CacheHealth]:
    """Every service's cache: configured or not, up or down (each asked at once, within
    the timeout), and what the journal says it is still owed."""
    urls = _urls()
    timeout = _timeout()
    try:
        waiting = journal().waiting()
    except Exception as exc:  # noqa: BLE001 - the page still shows the caches
        log.warning("service cache journal unreadable: %s", exc)
        waiting = {}
    pool = ThreadPoolExecutor(max_workers=max(len(urls), 1))
    pings = {service: pool.submit(_ping, url, timeout) for service, url in urls.items()}
    wait(pings.values(), timeout=timeout * 2 + 1)
    pool.shutdown(wait=False)
    results = []
    for service in BIND_KEYS:
        row = CacheHealth(service, waiting=waiting.get(service, Waiting()),
                          caches=[entry.table.name for entry in caches_of(service)])
        if service in urls:
            row.url = safe_url(urls[service])
            future = pings[service]
            row.round_trip_ms, row.error = future.result() if future.done() else (None, "no answer in time")
            row.state = "up" if row.round_trip_ms is not None else "down"
        results.append(row)
    return results
