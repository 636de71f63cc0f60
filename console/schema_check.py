"""Does a live database fit the console? Compare each bind with the models.

For staff pointing the console at databases the services created: per database, the
tables and columns the console expects but cannot find (the console would fail on
them), and the ones it finds but does not know (harmless: it never reads them); and the
indexes the models declare that are missing (the console works, but the screens each
one serves scan their tables: ``console create-indexes`` builds them without locking).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Index, inspect, text, types
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex

from config import BIND_KEYS
from console.extensions import db
from console.models import models_of
from console.models.indexing import TRIGRAM_EXTENSION, has_trigram


@dataclass(frozen=True)
class MissingIndex:
    table: str
    name: str
    serves: str
    invalid: bool = False  # present but unusable: a concurrent build that failed half-way


@dataclass
class BindReport:
    key: str
    url: str
    error: str = ""  # set when the database could not be reached
    tables_expected: int = 0
    missing_tables: list[str] = field(default_factory=list)
    extra_tables: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)  # "table.column"
    extra_columns: list[str] = field(default_factory=list)
    # "table.column" -> the type found, where the console expects another kind of value
    mistyped_columns: dict[str, str] = field(default_factory=dict)
    missing_indexes: list[MissingIndex] = field(default_factory=list)
    skipped_indexes: list[MissingIndex] = field(default_factory=list)  # need an extension that is absent

    @property
    def up(self) -> bool:
        return not self.error

    @property
    def fits(self) -> bool:
        """Reachable, with every table and column the console needs."""
        return self.up and not self.missing_tables and not self.missing_columns and not self.mistyped_columns


# Kinds of value: a live column of another kind than its model's cannot be read as it.
# Ids may be uuid columns in a service's own DDL: read as strings all the same.
KINDS = (
    (types.Boolean, "boolean"), (types.Integer, "number"), (types.Numeric, "number"),
    (types.DateTime, "date and time"), (types.Date, "date"), (types.Time, "time"),
    (types.JSON, "JSON"), (types.ARRAY, "array"), (types.Uuid, "text"), (types.String, "text"),
    (types.LargeBinary, "bytes"),
)


def kind(type_, dialect) -> str | None:
    """The kind of value a column type holds (None when unknown: never called drift).
    Finer where a difference changes what the console reads or how it must bind: a native
    enum type (PostgreSQL: text does not compare with it) and which; a time with or without
    time zone (the console stores UTC without one); money's precision and scale."""
    type_ = type_.dialect_impl(dialect)
    while isinstance(type_, types.TypeDecorator):
        type_ = type_.impl_instance.dialect_impl(dialect)
    if isinstance(type_, types.Enum) and type_.native_enum and dialect.name == "postgresql":
        return f"enum {type_.name}"
    for base, name in KINDS:
        if isinstance(type_, base):
            if base is types.DateTime and dialect.name == "postgresql":
                return f"{name} {'with' if type_.timezone else 'without'} time zone"
            if base is types.Numeric and type_.scale is not None:
                return f"{name} ({type_.precision},{type_.scale})"
            return name
    return None


def expected_columns(bind_key: str) -> dict[str, list[str]]:
    """table -> column names, as the models declare them."""
    return {model.__tablename__: [column.name for column in model.__table__.columns] for model in models_of(bind_key)}


def _mistyped(model, live: dict, dialect) -> dict[str, str]:
    found = {}
    for column in model.__table__.columns:
        if column.name not in live:
            continue
        expected, actual = kind(column.type, dialect), kind(live[column.name], dialect)
        if expected and actual and expected != actual:
            found[f"{model.__tablename__}.{column.name}"] = f"{live[column.name]} ({actual}; the console expects {expected})"
    return found


def serves(index: Index) -> str:
    """The screen or lookup a console index is for (every one says: tests/test_models.py)."""
    return index.info["serves"]


def declared_indexes(bind_key: str) -> list[Index]:
    """The console's own indexes for one database (what the screens need beyond the
    service's own, which the service builds), named, in table order."""
    return [index for model in models_of(bind_key)
            for index in sorted(model.__table__.indexes, key=lambda i: i.name or "")
            if index.name and not index.info.get("service")]


def applies(index: Index, dialect: str) -> bool:
    only = index.info.get("only")
    condition = getattr(index, "_ddl_if", None)  # Index(...).ddl_if(dialect=...) (SQLAlchemy 2.0)
    if only is None and condition is not None and condition.dialect:
        only = condition.dialect
    return only is None or only == dialect or (not isinstance(only, str) and dialect in only)


def invalid_indexes(conn) -> set[str]:
    """PostgreSQL: indexes left invalid by a failed CREATE INDEX CONCURRENTLY."""
    return set(conn.execute(text(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE NOT i.indisvalid AND c.relnamespace = 'public'::regnamespace")).scalars())


def live_index_names(conn) -> set[str]:
    """Every index name in the database, in one catalog query (SQLAlchemy's inspector
    skips expression indexes on SQLite and asks table by table)."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
    return set(conn.execute(text(sql)).scalars())


def index_gaps(conn, present_tables: set[str], bind_key: str) -> tuple[list[MissingIndex], list[MissingIndex]]:
    """(missing, skipped) declared indexes of the bind behind ``conn``."""
    dialect = conn.dialect.name
    declared = declared_indexes(bind_key)
    wants_trigram = any(i.info.get("extension") == TRIGRAM_EXTENSION for i in declared)
    trigram = dialect == "postgresql" and wants_trigram and has_trigram(conn)
    if dialect == "postgresql":  # names and validity in one catalog query
        rows = conn.execute(text(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace")).all()
        live, broken = {name for name, _ in rows}, {name for name, valid in rows if not valid}
    else:
        live, broken = live_index_names(conn), set()
    missing, skipped = [], []
    for index in declared:
        table = index.table.name
        if table not in present_tables or not applies(index, dialect):
            continue
        gap = MissingIndex(table, index.name, serves(index), invalid=index.name in broken)
        if index.name in live and not gap.invalid:
            continue
        if index.info.get("extension") == TRIGRAM_EXTENSION and not trigram:
            skipped.append(gap)
        else:
            missing.append(gap)
    return missing, skipped


def check_bind(bind_key: str) -> BindReport:
    engine = db.engines[bind_key]
    expected = expected_columns(bind_key)
    models = {model.__tablename__: model for model in models_of(bind_key)}
    report = BindReport(bind_key, engine.url.render_as_string(hide_password=True), tables_expected=len(expected))
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            present = set(inspector.get_table_names())
            report.missing_tables = [t for t in expected if t not in present]
            report.extra_tables = sorted(present - set(expected))
            for table, columns in expected.items():
                if table not in present:
                    continue
                live_types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
                live = list(live_types)
                report.mistyped_columns.update(_mistyped(models[table], live_types, engine.dialect))
                report.missing_columns += [f"{table}.{c}" for c in columns if c not in live]
                report.extra_columns += [f"{table}.{c}" for c in live if c not in columns]
            report.missing_indexes, report.skipped_indexes = index_gaps(conn, present, bind_key)
    except DBAPIError as exc:
        report.error = str(exc.orig or exc).strip().splitlines()[0][:300]
    return report


def ensure_extensions() -> dict[str, str]:
    """Create pg_trgm in each PostgreSQL database whose models want it, where allowed.
    Returns bind key -> why it could not be created (its trigram indexes are skipped)."""
    problems = {}
    for key in BIND_KEYS:
        engine = db.engines[key]
        wanted = any(i.info.get("extension") == TRIGRAM_EXTENSION for i in declared_indexes(key))
        if engine.dialect.name != "postgresql" or not wanted:
            continue
        try:
            with engine.connect() as conn:
                if not has_trigram(conn):
                    conn.execute(text(f"CREATE EXTENSION IF NOT EXISTS {TRIGRAM_EXTENSION}"))
                    conn.commit()
        except DBAPIError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0][:200]
            problems[key] = (f"could not create the {TRIGRAM_EXTENSION} extension ({reason}); "
                             "“contains” filters on it will scan their tables")
    return problems


def create_schema() -> dict[str, str]:
    """init-db: every missing table and index (pg_trgm first, where it may be created).
    Returns ensure_extensions()'s problems."""
    problems = ensure_extensions()
    db.create_all(bind_key=list(BIND_KEYS))
    return problems


def create_missing_indexes(bind_key: str, echo=lambda line: None) -> int:
    """Build the bind's missing indexes, on PostgreSQL with CREATE INDEX CONCURRENTLY (the
    services keep writing meanwhile); an invalid leftover is dropped first. Returns how
    many were built."""
    engine = db.engines[bind_key]
    report = check_bind(bind_key)
    if not report.up:
        raise DatabaseDown(bind_key, report.error)
    by_name = {index.name: index for index in declared_indexes(bind_key)}
    postgres = engine.dialect.name == "postgresql"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if postgres:
            conn.execute(text("SET statement_timeout = 0"))  # a big table takes minutes
        try:
            _build(conn, report, by_name, engine.dialect, postgres, bind_key, echo)
        finally:
            if postgres:
                conn.execute(text("RESET statement_timeout"))  # the connection goes back to the pool
    return len(report.missing_indexes)


def _build(conn, report, by_name, dialect, postgres: bool, bind_key: str, echo) -> None:
    for gap in report.missing_indexes:
        ddl = str(CreateIndex(by_name[gap.name], if_not_exists=not gap.invalid).compile(dialect=dialect))
        if postgres:
            if gap.invalid:
                conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{gap.name}"'))
            ddl = ddl.replace("CREATE INDEX ", "CREATE INDEX CONCURRENTLY ", 1) \
                     .replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX CONCURRENTLY ", 1)
        echo(f"{bind_key}_db: building {gap.name} on {gap.table} ({gap.serves})")
        conn.execute(text(ddl))


class DatabaseDown(Exception):
    def __init__(self, bind_key: str, error: str):
        super().__init__(f"{bind_key}_db is unreachable: {error}")
        self.bind_key = bind_key


def check_all() -> list[BindReport]:
    return [check_bind(key) for key in BIND_KEYS]


def report_lines(reports: list[BindReport]) -> list[str]:
    """The report as text lines: one heading per database, one line per difference."""
    lines = []
    for report in reports:
        name = f"{report.key}_db"
        if not report.up:
            lines.append(f"{name}: DOWN, could not connect ({report.url}): {report.error}")
            continue
        found = report.tables_expected - len(report.missing_tables)
        verdict = "fits" if report.fits else "DOES NOT FIT"
        lines.append(f"{name}: {verdict}, {found} of {report.tables_expected} tables ({report.url})")
        lines += [f"  missing table   {t}" for t in report.missing_tables]
        lines += [f"  missing column  {c}" for c in report.missing_columns]
        lines += [f"  mistyped column {c}: {found}" for c, found in report.mistyped_columns.items()]
        lines += [f"  extra table     {t}  (not used by the console)" for t in report.extra_tables]
        lines += [f"  extra column    {c}  (not used by the console)" for c in report.extra_columns]
        lines += [f"  missing index   {i.table}.{i.name}{' (invalid: a build failed half-way)' if i.invalid else ''}"
                  f"  serves {i.serves}" for i in report.missing_indexes]
        lines += [f"  no {TRIGRAM_EXTENSION}       {i.table}.{i.name}  serves {i.serves}: "
                  f"CREATE EXTENSION {TRIGRAM_EXTENSION} to build it" for i in report.skipped_indexes]
    misfits = [r for r in reports if r.up and not r.fits]
    down = [r for r in reports if not r.up]
    if not misfits and not down:
        lines.append(f"All {len(reports)} databases have every table and column the console needs.")
    else:
        if misfits:
            lines.append(f"{len(misfits)} database(s) lack tables or columns the console needs: "
                         + ", ".join(f"{r.key}_db" for r in misfits)
                         + ". Run `flask --app wsgi console init-db` to create missing tables; "
                           "missing or mistyped columns must be migrated by the service that owns the database.")
        if down:
            lines.append(f"{len(down)} database(s) could not be checked: " + ", ".join(f"{r.key}_db" for r in down))
    slow = [r for r in reports if r.missing_indexes]
    if slow:
        lines.append(f"{sum(len(r.missing_indexes) for r in slow)} index(es) missing in "
                     + ", ".join(f"{r.key}_db" for r in slow)
                     + ": the console works, but the screens they serve scan their tables. "
                       "Run `flask --app wsgi console create-indexes` to build them without locking.")
    return lines
