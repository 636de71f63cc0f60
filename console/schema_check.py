"""Does a live database fit the console? Compare each bind with the models.

For staff pointing the console at databases the services created: per database, the
tables and columns the console expects but cannot find (the console would fail on
them), and the ones it finds but does not know (harmless: it never reads them).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import inspect, types
from sqlalchemy.exc import DBAPIError

from config import BIND_KEYS
from console.extensions import db
from console.models import models_of


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
    """The kind of value a column type holds (None when unknown: never called drift)."""
    type_ = type_.dialect_impl(dialect)
    while isinstance(type_, types.TypeDecorator):
        type_ = type_.impl_instance.dialect_impl(dialect)
    for base, name in KINDS:
        if isinstance(type_, base):
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
    except DBAPIError as exc:
        report.error = str(exc.orig or exc).strip().splitlines()[0][:300]
    return report


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
    return lines
