"""Schema drift: a service database that is behind or ahead of the console's models.

The services migrate their own databases on their own schedules, so a database may
lack a table or a column the models declare, or hold a column of another type. The
console reads each database's columns once (on the first statement that touches it,
again when staff press "check again" on the Databases page, and again after the
database refused a statement for a table or column gone since: ``watch``) and then:

- never names a drifted column in a statement: entity loads defer it and the loaded
  row holds ``NOT_IN_DATABASE`` in its place, which renders as "not in this
  database" (a screen that does not show the column works as before);
- refuses, before anything is written, a change that sets a drifted column
  (``SchemaDrift``, a 503 naming the column and the database);
- answers a read of a missing table with ``NotInSchema`` (a 503 naming the table,
  handled like a database that is down, so the rest of a page still renders).

With nothing drifted a statement costs one dictionary look-up here; the check itself
reuses console/schema_check.py.
"""
from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from markupsafe import Markup
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, Session, defer
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import visitors

from config import BIND_KEYS
from console.lookups import DatabaseUnavailable
from console.workflows import WorkflowError

EXTENSION = "console_schema_drift"
RETRY_DOWN_SECONDS = 30  # a database that was down when checked is checked again after this


class NotInDatabase:
    """The value of a column the database does not have (or holds with another type)."""

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return "not in this database"

    def __repr__(self) -> str:
        return "NOT_IN_DATABASE"

    def __html__(self) -> str:
        return ('<span class="badge text-bg-warning not-in-database" title="the service that owns this '
                'database has not added this column yet; see the Databases page">not in this database</span>')


NOT_IN_DATABASE = NotInDatabase()


class SchemaDrift(WorkflowError):
    """A write that needs a column the database lacks: refused before anything is written."""

    def __init__(self, bind_key: str, table: str, column: str | None, reason: str):
        self.bind_key, self.table, self.column = bind_key, table, column
        needed = f"the table {table}" if column is None else f"the column {table}.{column}"
        super().__init__(f"This change needs {needed}, which {bind_key}_db {reason}. "
                         f"Nothing was changed: the service that owns {bind_key}_db must migrate it first.", 503)


class NotInSchema(DatabaseUnavailable):
    """A read the database cannot answer: its table is missing, or the statement names a
    drifted column itself (filters or sorts by it). Handled like a database that is down:
    the page says so, the rest of it renders."""

    # Why the database lacks it, and what staff can do (after "<bind>_db <what>, which
    # this page needs: "); {db} is the database's name.
    cause = "the service that owns it has not migrated it yet"
    advice_text = "the service that owns {db} has not migrated it yet (see the Databases page)"

    def __init__(self, bind_key: str, what: str):
        self.what = what  # "does not have the table orders"
        super().__init__(bind_key, f"{bind_key}_db {what}")

    @property
    def reason(self) -> str:
        return f"{self.what} ({self.cause})"

    @property
    def advice(self) -> str:
        return self.advice_text.format(db=f"{self.bind_key}_db")


class SchemaChanged(NotInSchema):
    """A statement the database refused because a table or column is gone that was there
    when the console last read the database's columns: its service changed the schema
    while the console was running. The database is read again on its next statement
    (``watch``), so the page works again on reload, without what is gone."""

    statement_failed = True  # sent and refused: the transaction on that database is over
    cause = "its service changed it while the console was running: reload the page"
    advice_text = ("its service changed {db} while the console was running. The console has read its tables "
                   "again: reload the page (see the Databases page)")

    def __init__(self, bind_key: str, missing: str):
        super().__init__(bind_key, f"no longer has {missing}")


@dataclass(frozen=True)
class DriftedColumn:
    bind_key: str
    table: str
    column: str
    attribute: str  # the model attribute (metadata_ for the column "metadata")
    model: str
    reason: str  # "does not have" / "holds as TEXT (the console expects a number)"
    written_by_default: bool  # the console writes it on insert or update without being told

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def missing(self) -> bool:
        return self.reason == "does not have"

    @property
    def affects(self) -> str:
        shown = f"{self.model}.{self.attribute} shows \u201cnot in this database\u201d; changes that set it are refused"
        if self.written_by_default:
            shown += f"; so is every new or changed {self.table} row (the console fills this column itself)"
        return shown


@dataclass
class BindDrift:
    key: str
    checked_at: float = 0.0
    error: str = ""  # the database could not be reached: nothing is known about it
    missing_tables: list[str] = field(default_factory=list)
    columns: list[DriftedColumn] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.missing_tables) + len(self.columns)


class Drift:
    """One app's knowledge of its databases' drift."""

    def __init__(self):
        self.binds: dict[str, BindDrift] = {}
        self.by_mapper: dict[Mapper, list[DriftedColumn]] = {}
        self.tables: dict[str, str] = {}  # missing table's Table key -> bind key
        self.clean = False  # every database checked and nothing drifted: the fast path
        # Databases checked with nothing drifted: a statement known to run on one of them
        # needs no look at its tables (a process that never touches some database never
        # becomes ``clean``).
        self.clean_binds: frozenset[str] = frozenset()
        self.lock = threading.Lock()

    @property
    def count(self) -> int:
        return sum(b.count for b in self.binds.values())

    def needs_check(self, key: str) -> bool:
        bind = self.binds.get(key)
        return bind is None or (bool(bind.error) and time.monotonic() - bind.checked_at > RETRY_DOWN_SECONDS)

    def check(self, keys=BIND_KEYS, force: bool = False) -> None:
        with self.lock:
            for key in keys:
                if force or self.needs_check(key):
                    self.binds[key] = _check(key)
            self._index()

    def forget(self, keys=None) -> None:
        """Check every database (or those of ``keys``) again on its next statement."""
        with self.lock:
            self.binds = {} if keys is None else {k: b for k, b in self.binds.items() if k not in keys}
            self._index()

    def _index(self) -> None:
        from console.models import models_of

        by_mapper: dict = {}
        tables: dict = {}
        for key, bind in self.binds.items():
            models = {m.__tablename__: m for m in models_of(key)}
            for table in bind.missing_tables:
                tables[models[table].__table__.key] = key
            for drifted in bind.columns:
                model = models[drifted.table]
                by_mapper.setdefault(model.__mapper__, []).append(drifted)
        self.by_mapper, self.tables = by_mapper, tables
        self.clean_binds = frozenset(key for key, bind in self.binds.items() if not bind.count and not bind.error)
        self.clean = len(self.binds) == len(BIND_KEYS) and not any(
            b.count or b.error for b in self.binds.values())


def _check(key: str) -> BindDrift:
    from console.models import models_of
    from console.schema_check import check_bind

    report = check_bind(key)
    bind = BindDrift(key, checked_at=time.monotonic(), error=report.error,
                     missing_tables=list(report.missing_tables))
    models = {m.__tablename__: m for m in models_of(key)}
    problems = [(name, "does not have") for name in report.missing_columns]
    problems += [(name, f"holds as {found}") for name, found in report.mistyped_columns.items()]
    for name, reason in problems:
        table, column_name = name.split(".", 1)
        model = models[table]
        column = next(c for c in model.__table__.columns if c.name == column_name)  # c[] is by attribute
        attribute = model.__mapper__.get_property_by_column(column).key
        bind.columns.append(DriftedColumn(key, table, column_name, attribute, model.__name__, reason,
                                          column.default is not None or column.onupdate is not None
                                          or column.server_default is not None))
    return bind


def drift() -> Drift | None:
    """This app's drift registry (None outside an app context)."""
    if not has_app_context():
        return None
    extensions = current_app.extensions
    registry = extensions.get(EXTENSION)
    if registry is None:
        registry = extensions.setdefault(EXTENSION, Drift())
    return registry


def _bind_key(mapper: Mapper) -> str | None:
    return getattr(mapper.class_, "__bind_key__", None)


def _ensure(registry: Drift, mappers) -> None:
    keys = {_bind_key(m) for m in mappers} & set(BIND_KEYS)
    stale = [k for k in keys if registry.needs_check(k)]
    if stale:
        registry.check(stale)


def refuse_missing(mapper: Mapper, attributes) -> None:
    """Raise SchemaDrift when ``attributes`` (keys of ``mapper``) include a drifted column."""
    registry = drift()
    if registry is None:
        return
    _ensure(registry, [mapper])
    if registry.clean:
        return
    bind_key = registry.tables.get(mapper.local_table.key)
    if bind_key:
        raise SchemaDrift(bind_key, mapper.local_table.name, None, "does not have the table")
    for drifted in registry.by_mapper.get(mapper, ()):
        if drifted.attribute in attributes:
            raise SchemaDrift(drifted.bind_key, drifted.table, drifted.column, drifted.reason)


def missing_table(model) -> str:
    """"order_db does not have the table order_notes" when it does not; "" otherwise.
    For statements the per-statement hook cannot see into (a UNION of Core selects)."""
    registry = drift()
    if registry is None or registry.clean:
        return ""
    _ensure(registry, [model.__mapper__])
    bind_key = registry.tables.get(model.__table__.key)
    return f"{bind_key}_db does not have the table {model.__tablename__}" if bind_key else ""


def require(model, *attributes: str) -> None:
    """For a workflow, before its first write: refuse at once when the database lacks a
    column it will set, so nothing is half done. No attributes: the workflow inserts rows
    of ``model``, and every column of it counts."""
    mapper = model.__mapper__
    refuse_missing(mapper, set(attributes) if attributes else {a.key for a in mapper.column_attrs})


def require_writes(*writes) -> None:
    """For a workflow whose steps write several databases, before its first step:
    ``writes`` are (model, attribute, …) tuples naming what every step sets ((model,)
    for rows it inserts), so a
    database that a later step can't write refuses the whole workflow up front instead
    of leaving the earlier steps done."""
    for model, *attributes in writes:
        require(model, *attributes)


def _named_columns(statement) -> set:
    """(table, column name) of every column the statement names itself (not the
    columns an entity brings, which defer() leaves out)."""
    return {(id(element.table), element.name) for element in visitors.iterate(statement)
            if element.__visit_name__ == "column" and getattr(element, "table", None) is not None}


def _entities(statement) -> list:
    """(entity, mapper) for each mapped class or alias a select loads whole: those that
    defer() applies to."""
    entities = []
    for description in getattr(statement, "column_descriptions", ()):
        info = sa_inspect(description.get("expr"), raiseerr=False)
        if info is None:
            continue
        if getattr(info, "is_mapper", False):
            entities.append((info.class_, info))
        elif getattr(info, "is_aliased_class", False):
            entities.append((info.entity, info.mapper))
    return entities


def _deferred(registry: Drift, statement):
    options = []
    for entity, mapper in _entities(statement):
        for d in registry.by_mapper.get(mapper, ()):
            options.append(defer(getattr(entity, d.attribute)))
    return statement.options(*options) if options else statement


def without_drifted(statement):
    """``statement`` (a select of one entity, to be used as a subquery, which the
    per-statement hook does not reach) selecting only the columns the database has."""
    registry = drift()
    if registry is None or registry.clean:
        return statement
    entities = _entities(statement)
    if len(entities) != 1:
        return statement
    mapper = entities[0][1]
    _ensure(registry, [mapper])
    drifted = {d.column for d in registry.by_mapper.get(mapper, ())}
    if not drifted:
        return statement
    kept = [c for c in mapper.local_table.columns if c.name not in drifted]
    return statement.with_only_columns(*kept, maintain_column_froms=True)


def drifted_attributes(attributes) -> set[str]:
    """The keys of ``attributes`` (mapped column attributes) whose column the database
    lacks or holds with another type: a select of columns leaves them out and its rows
    show ``NOT_IN_DATABASE`` in their place, as an entity load does."""
    registry = drift()
    if registry is None or registry.clean:
        return set()
    mappers = {attribute.parent for attribute in attributes}
    _ensure(registry, mappers)
    keys = {attribute.key for attribute in attributes}
    return {d.attribute for mapper in mappers for d in registry.by_mapper.get(mapper, ()) if d.attribute in keys}


def bind_is_clean(bind_key: str) -> bool:
    """Whether ``bind_key``'s database was checked and has nothing drifted (statements
    built for it may then be kept)."""
    registry = drift()
    if registry is None:
        return False
    if registry.needs_check(bind_key):
        registry.check([bind_key])
    return registry.clean or bind_key in registry.clean_binds


def _mapped_tables() -> dict:
    """Table -> mapper of every model, for Core statements that name a table rather
    than an entity (the sign-in throttle's upsert, a bulk INSERT)."""
    from console.extensions import db

    tables = getattr(_mapped_tables, "cache", None)
    if tables is None:
        tables = _mapped_tables.cache = {m.local_table: m for m in db.Model.registry.mappers}
    return tables


def _mappers_of(state) -> list:
    mappers = list(state.all_mappers)
    tables = _mapped_tables()
    for element in visitors.iterate(state.statement):
        if element.__visit_name__ == "table":
            mapper = tables.get(element)
            if mapper is not None and mapper not in mappers:
                mappers.append(mapper)
    return mappers


def check_read(statement, bind_key: str | None = None) -> None:
    """For a select run on a connection directly (a streamed export), which the
    per-statement hook does not see: NotInSchema naming the missing table or the drifted
    column it names, instead of the database's own error. ``bind_key``: the database it
    runs on, when known (nothing to look at when that one has nothing drifted)."""
    registry = drift()
    if registry is None or registry.clean:
        return
    if bind_key is not None:
        if registry.needs_check(bind_key):
            registry.check([bind_key])
        if bind_key in registry.clean_binds:
            return
    tables = _mapped_tables()
    mappers = {tables[e] for e in visitors.iterate(statement) if e.__visit_name__ == "table" and e in tables}
    _ensure(registry, mappers)
    named = _named_columns(statement)
    for mapper in mappers:
        bind_key = registry.tables.get(mapper.local_table.key)
        if bind_key:
            raise NotInSchema(bind_key, f"does not have the table {mapper.local_table.name}")
        for d in registry.by_mapper.get(mapper, ()):
            if (id(mapper.local_table), d.column) in named:
                raise NotInSchema(d.bind_key, f"{d.reason} the column {d.name}")


def _on_execute(state) -> None:
    registry = drift()
    if registry is None or registry.clean:
        return
    # A statement runs on one database, the one its bind mapper picks: when that one is
    # checked and clean, nothing the statement names can be drifted (clean_binds).
    bound = state.bind_mapper
    if bound is not None and getattr(getattr(bound, "class_", bound), "__bind_key__", None) in registry.clean_binds:
        return
    mappers = _mappers_of(state)
    if not mappers:
        return
    _ensure(registry, mappers)
    if registry.clean:
        return
    for mapper in mappers:
        bind_key = registry.tables.get(mapper.local_table.key)
        if bind_key and state.is_select:
            raise NotInSchema(bind_key, f"does not have the table {mapper.local_table.name}")
        if bind_key:
            raise SchemaDrift(bind_key, mapper.local_table.name, None, "does not have the table")
    drifted = [d for m in mappers for d in registry.by_mapper.get(m, ())]
    if not drifted:
        return
    if state.is_select:
        statement = _deferred(registry, state.statement)
        compile_options = getattr(statement, "_compile_options", None)
        only = getattr(compile_options, "_only_load_props", None)
        left_out = {d.attribute for d in drifted}
        if only and left_out & set(only):
            # Reloading an expired row names its attributes itself (defer() does not apply).
            statement = statement._clone()
            statement._compile_options = compile_options + {"_only_load_props": frozenset(set(only) - left_out)}
        named = _named_columns(state.statement)
        for mapper in mappers:
            for d in registry.by_mapper.get(mapper, ()):
                if (id(mapper.local_table), d.column) not in named:
                    continue
                # Selected, filtered or sorted by explicitly: no way to leave it out.
                raise NotInSchema(d.bind_key, f"{d.reason} the column {d.name}")
        state.statement = statement
    else:  # a change: refused before it is sent, whatever it names the column in
        named = _named_columns(state.statement)
        for mapper in mappers:
            keys = set()
            values = getattr(state.statement, "_values", None) or {}
            keys.update(getattr(k, "key", k) for k in values)
            params = state.parameters
            for row in (params if isinstance(params, list) else [params] if params else []):
                keys.update(row)
            for d in registry.by_mapper.get(mapper, ()):
                if d.attribute in keys or d.column in keys or (id(mapper.local_table), d.column) in named or (
                        state.is_update and
                                                               mapper.local_table.c[d.attribute].onupdate is not None):
                    raise SchemaDrift(d.bind_key, d.table, d.column, d.reason)


def _fill(target, *args) -> None:
    registry = drift()
    if registry is None or registry.clean:
        return
    mapper = target.__mapper__
    drifted = registry.by_mapper.get(mapper)
    if not drifted:
        return
    loaded = target.__dict__
    for d in drifted:
        if d.attribute not in loaded:
            set_committed_value(target, d.attribute, NOT_IN_DATABASE)


def _before_flush(session, flush_context, instances) -> None:
    registry = drift()
    if registry is None or registry.clean:
        return
    for obj in list(session.new) + list(session.dirty):
        mapper = obj.__mapper__
        _ensure(registry, [mapper])
        bind_key = registry.tables.get(mapper.local_table.key)
        if bind_key:
            raise SchemaDrift(bind_key, mapper.local_table.name, None, "does not have the table")
        new = obj in session.new
        for d in registry.by_mapper.get(mapper, ()):
            value = obj.__dict__.get(d.attribute)
            column = mapper.local_table.c[d.attribute]  # columns are keyed by attribute
            if new:
                needed = (value is not None and value is not NOT_IN_DATABASE) or column.default is not None \
                    or column.server_default is not None
            else:
                history = mapper.attrs[d.attribute].class_attribute.impl.get_history(
                    obj._sa_instance_state, obj._sa_instance_state.dict, passive=0)
                changed = any(v is not NOT_IN_DATABASE for v in history.added or ())
                needed = changed or (column.onupdate is not None and session.is_modified(obj))
            if needed:
                raise SchemaDrift(d.bind_key, d.table, d.column, d.reason)


# What a database says of a table or column a statement names that it does not have:
# PostgreSQL's SQLSTATE (undefined column, undefined table), SQLite's message.
_UNDEFINED_SQLSTATES = {"42703": "column", "42P01": "table"}
_NAMED = re.compile(r'(?:column|relation) ("?[\w."]+"?) does not exist|no such (?:column|table): (\S+)'
                    r'|has no column named (\S+)')
_SQLITE_UNDEFINED = ("no such column", "no such table", "has no column named")


def _missing_named(error) -> str | None:
    """"the column orders.shippedAt" (or "a table or column it names") when ``error``,
    a driver's exception, says a statement named what the database does not have; else None."""
    sqlstate = getattr(error, "sqlstate", None)
    message = str(error).splitlines()[0] if str(error) else ""
    if sqlstate in _UNDEFINED_SQLSTATES:
        kind = _UNDEFINED_SQLSTATES[sqlstate]
    elif sqlstate is None and isinstance(error, sqlite3.OperationalError) and any(
            words in message for words in _SQLITE_UNDEFINED):
        kind = "table" if "table:" in message else "column"
    else:
        return None
    found = _NAMED.search(message)
    name = next((g for g in found.groups() if g), None) if found else None
    return f"the {kind} {name.replace(chr(34), '')}" if name else "a table or column the console reads"


def watch(engines: dict) -> None:
    """Hook every database's engine: a statement refused because a table or column it
    names is gone (a migration while the console runs) has that database's columns read
    again on its next statement, and is raised as SchemaChanged (a 503 that says so)
    instead of the driver's error (a 500 on every page that named it, until "check
    again" or a restart)."""
    for key, engine in engines.items():
        if key in BIND_KEYS and not event.contains(engine, "handle_error", _refused_by_schema):
            event.listen(engine, "handle_error", _refused_by_schema)
            engine.console_bind_key = key


def _refused_by_schema(context) -> None:
    missing = _missing_named(context.original_exception)
    key = getattr(context.engine, "console_bind_key", None)
    if missing is None or key is None:
        return
    registry = drift()
    if registry is not None:
        registry.forget([key])
    raise SchemaChanged(key, missing) from context.sqlalchemy_exception


def install() -> None:
    """Hook the listeners once for every app (each finds its own registry)."""
    if getattr(install, "done", False):
        return
    event.listen(Session, "do_orm_execute", _on_execute)
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Mapper, "load", _fill)
    event.listen(Mapper, "refresh", _fill)
    install.done = True


def markup(value) -> Markup | None:
    return Markup(value.__html__()) if isinstance(value, NotInDatabase) else None
