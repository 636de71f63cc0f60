"""Batch loader over the reference registry.

For N rows, one ``IN (...)`` query per target table (chunked), never one per row.
A database that cannot be reached raises ``DatabaseUnavailable`` naming it, so a
page can say which database is down and render the rest.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Text, TypeDecorator, any_, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from console.extensions import db
from console.models import model_for_table
from console.references import Reference, get

CHUNK_SIZE = 1000


class DatabaseUnavailable(Exception):
    def __init__(self, bind_key: str, detail: str = ""):
        self.bind_key = bind_key
        self.detail = detail
        super().__init__(f"{bind_key}_db is unavailable")

    @property
    def reason(self) -> str:
        """What follows "<bind>_db " in a message: why it can't answer."""
        return "is unavailable"


@contextmanager
def database(bind_key: str) -> Iterator[None]:
    """Turn a connection failure on one bind into DatabaseUnavailable(bind_key)."""
    try:
        yield
    except DBAPIError as exc:
        # OperationalError: refused, timed out, file unopenable; an invalidated
        # connection: the server went away mid-query. Anything else is a bug.
        if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
            raise
        db.session.rollback()
        raise DatabaseUnavailable(bind_key, str(exc.orig or exc).strip()) from exc
    except PoolTimeout as exc:
        # Every connection of this worker's pool to the database stayed in use for the
        # pool's timeout: for this request the database is as good as down.
        db.session.rollback()
        raise DatabaseUnavailable(bind_key, f"no free connection: {exc}") from exc
    except DatabaseUnavailable as exc:
        # A statement the database refused for a table or column gone since it was read
        # (console/drift.py SchemaChanged): its transaction there is over, as above.
        if getattr(exc, "statement_failed", False):
            db.session.rollback()
        raise


@dataclass(frozen=True)
class Missing:
    """A reference whose target does not exist: rendered, never raised."""

    id: str

    def __str__(self) -> str:
        return f"missing (id {self.id})"

    def __bool__(self) -> bool:
        return False


def chunks(values: Iterable, size: int = CHUNK_SIZE) -> Iterator[list]:
    batch: list = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def one_of(column, values: list, dialect: str):
    """``column IN values`` for a large batch of ids. On PostgreSQL one text parameter,
    split by the server: ``column = ANY(string_to_array(:ids, ','))``. ``IN`` sends one
    parameter per value, and even an array parameter has the driver quote each element in
    Python: for thousands of ids per batch, longer than the query. The server splits at
    commas in half the time it reads an array's literal (0.34 against 0.7 ms for 3,000
    ids), so a batch whose ids hold no comma goes that way, any other as ids_parameter
    sends its ids. Elsewhere the plain ``IN``."""
    values = list(values)
    if dialect != "postgresql":
        return column.in_(values)
    joined = ",".join(values)
    if joined.count(",") == len(values) - 1:
        return column == any_(func.string_to_array(bindparam(None, joined, type_=Text), literal_column("','")))
    return column == _any_id(bindparam(None, values, type_=IdsText()))


def ids_parameter(column, dialect: str):
    """``column`` is one of the values of the ``ids`` parameter (a list). On PostgreSQL one
    text parameter, PostgreSQL's literal of a text array (``column = ANY(CAST(:ids AS
    TEXT[]))``, the literal written by IdsText): the statement's text is the same whatever
    the number of ids, so SQLAlchemy, psycopg and the server keep its compiled, parsed and
    prepared forms (an expanding ``IN`` is rendered afresh with one parameter per id, and
    past psycopg's 4 KB its text is parsed anew each time); one text costs psycopg a
    fraction of dumping a list (150 of 300 µs a statement of 50 ids: six of them a page
    of orders). Elsewhere an expanding IN."""
    if dialect == "postgresql":
        return column == _any_id(bindparam("ids", type_=IdsText()))
    return column.in_(bindparam("ids", expanding=True))


def _any_id(ids):
    """ANY of ``ids``, a parameter of type IdsText, read by the server as a text array."""
    return any_(cast(ids, ARRAY(Text)))


def text_array(values: Iterable[str]) -> str:
    """PostgreSQL's literal of a text array holding ``values``: every element in quotes (a
    comma, a brace, a space or the word NULL is then plain text), a quote or a backslash
    escaped."""
    values = list(values)
    if not values:
        return "{}"
    inner = '","'.join(values)
    # Each separator holds two quotes: any more come from the values.
    if "\\" in inner or inner.count('"') != 2 * (len(values) - 1):
        inner = '","'.join(value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return '{"' + inner + '"}'


class IdsText(TypeDecorator):
    """A list of ids sent as one text: text_array() of it."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else text_array(value)


class Prebuilt:
    """A statement built once per process and database dialect, by ``build(dialect name)``:
    a screen's hot statements then cost SQLAlchemy no construction and no cache key per
    request (``statement(bind key)``)."""

    def __init__(self, build: Callable[[str], object]):
        self.build = build
        self.built: dict[str, object] = {}

    def __call__(self, bind_key: str):
        dialect = db.engines[bind_key].dialect.name
        statement = self.built.get(dialect)
        if statement is None:
            statement = self.built[dialect] = self.build(dialect)
        return statement


def named(*attributes) -> list:
    """Mapped attributes labelled with their attribute names, for a select run without
    the ORM (``plain_rows``) whose rows are read by those names: a column's own name
    may differ (``created_at`` is ``"createdAt"`` in the services' databases)."""
    return [attribute.label(attribute.key) for attribute in attributes]


def plain_rows(bind_key: str, stmt, params: dict | None = None) -> list:
    """The rows of ``stmt`` (a select of columns, no entities) on the session's
    connection to ``bind_key``, in the request's transaction there, without the ORM's
    per-statement work: a screen's hot statements are built once per process and run
    here. A drifted column or missing table it names is refused as the ORM would
    (NotInSchema). Callers wrap it in ``database(bind_key)``."""
    from console.drift import check_read

    check_read(stmt, bind_key)
    return db.session.connection(bind_arguments={"bind": db.engines[bind_key]}).execute(stmt, params).all()


def held_by_session(engine) -> bool:
    """Whether the request's session holds a connection to ``engine``. Work handed to
    other threads reads such a database here instead: under gunicorn a pool has one
    connection per request thread, so a second one for the same request could wait for
    ever on the connection the request itself keeps. (SQLAlchemy names no public way to
    ask a session which connections it holds.)"""
    transaction = db.session().get_transaction()
    return transaction is not None and engine in transaction._connections


# Threads that read lookups on connections of their own while the request's thread goes
# on (search's databases): each database answers on its own, so a page waits for the
# slowest instead of for the sum. Not the orders list's: at its rate the hand-over to a
# thread costs more CPU than the wait it saves (console/screens/orders.py, decorate).
_apart = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lookups")


def read_apart(bind_key: str, statement, params: dict) -> Future | None:
    """Start reading ``statement`` on ``bind_key`` on another thread, on a connection of
    its own in autocommit (one statement, nothing to commit). The future's result is the
    rows, or raises what the read raised: take it inside ``database(bind_key)``, which
    names the database. A column not in the database is refused before anything is sent
    (the future raises it). None where reading apart cannot help: not PostgreSQL, or the
    request's session already holds a connection there (``held_by_session``)."""
    from console.drift import check_read

    engine = db.engines[bind_key]
    if engine.dialect.name != "postgresql" or held_by_session(engine):
        return None
    try:
        check_read(statement, bind_key)
    except DatabaseUnavailable as exc:
        refused: Future = Future()
        refused.set_exception(exc)
        return refused
    return _apart.submit(_read, engine, statement, params)


def _read(engine, statement, params: dict) -> list:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return connection.execute(statement, params).all()


def _distinct(values: Iterable) -> list:
    return list(dict.fromkeys(v for v in values if v is not None and v != ""))


def _as_reference(ref: Reference | str) -> Reference:
    return ref if isinstance(ref, Reference) else get(ref)


def fetch_in(bind_key: str, table: str, column: str, values: Iterable, *options) -> list:
    """Rows of ``bind_key.table`` whose ``column`` is in ``values``: one query per chunk."""
    model = model_for_table(bind_key, table)
    col = getattr(model, column if column != "metadata" else "metadata_")
    rows: list = []
    with database(bind_key):
        for chunk in chunks(_distinct(values)):
            stmt = select(model).where(col.in_(chunk))
            for option in options:
                stmt = stmt.options(option)
            rows.extend(db.session.scalars(stmt))
    return rows


def existing_values(bind_key: str, table: str, column: str, values: Iterable) -> set:
    """Which of ``values`` exist in ``bind_key.table.column``: only that column is
    read, one query per chunk (the integrity report asks this for every batch)."""
    model = model_for_table(bind_key, table)
    col = getattr(model, column if column != "metadata" else "metadata_")
    found: set = set()
    with database(bind_key):
        for chunk in chunks(_distinct(values)):
            found.update(db.session.scalars(select(col).where(col.in_(chunk))))
    return found


def resolve(ref: Reference | str, values: Iterable) -> dict:
    """Follow a reference forwards: {source value: target row}; missing targets are absent."""
    ref = _as_reference(ref)
    wanted = _distinct(v for value in values for v in (value if ref.many else [value])
                       if v not in ref.not_references)
    rows = fetch_in(ref.target_bind, ref.target_table, ref.target_column, wanted)
    return {getattr(row, ref.target_column): row for row in rows}


def referrers(ref: Reference | str, target_values: Iterable) -> dict[str, list]:
    """Follow a reference backwards: {target value: [source rows pointing at it]}."""
    ref = _as_reference(ref)
    if ref.many:
        raise ValueError(f"{ref.name} holds lists; look it up forwards")
    rows = fetch_in(ref.source_bind, ref.source_table, ref.source_column, target_values)
    grouped: dict[str, list] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, ref.source_column)].append(row)
    return dict(grouped)


def target_or_missing(resolved: dict, value):
    """The resolved row, Missing(value) when it does not exist, None when value is empty."""
    if value is None or value == "":
        return None
    return resolved.get(value) or Missing(value)


class Lookups:
    """Runs a page's cross-database lookups so that each database can fail on its own.

    A lookup into a database that is down returns its default and the bind key joins
    ``unavailable``; later lookups into the same database are skipped (no second wait
    for a dead server). Rows are detached after each lookup: a failure rolls the
    session back, which would otherwise expire every row already loaded and reload
    them one query at a time.
    """

    def __init__(self, unavailable=(), *, detach: bool = True):
        self.unavailable: set[str] = set(unavailable)
        self.detach = detach

    def run(self, bind_key: str, load: Callable, default):
        if bind_key in self.unavailable:
            return default
        try:
            result = load()
        except DatabaseUnavailable as exc:
            self.unavailable.add(exc.bind_key)
            return default
        if self.detach:
            db.session.expunge_all()
        return result

    def down(self, bind_key: str) -> bool:
        return bind_key in self.unavailable
