"""Streamed CSV exports: constant memory, dated file names, formula cells neutralised."""
from __future__ import annotations

import csv
import gc
import io
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import itemgetter
from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from flask import Response, abort, current_app, request, stream_with_context
from sqlalchemy import (JSON, Boolean, DateTime, Integer, Numeric, String, Text, case, cast, func, literal_column, or_,
                        type_coerce)
from sqlalchemy import text as sql
from sqlalchemy.exc import DBAPIError, OperationalError

from console.drift import check_read
from console.extensions import db
from console.lookups import Lookups, database, one_of

# A cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
STREAM_BATCH = 500


_FORMULA_START = frozenset(FORMULA_PREFIXES)
# Bytes gathered before a chunk goes to the client: one write per row would make the
# server, not the query, the slow part of a million-row export.
CHUNK_CHARS = 1 << 16
ROWS_PER_WRITE = 1000


def neutralise(value) -> str:
    """Text safe to open in a spreadsheet. Numbers stay numbers (a negative amount is
    data, not a formula); text that could start a formula gets a leading apostrophe."""
    kind = type(value)
    if kind is str:
        return "'" + value if value and value[0] in _FORMULA_START else value
    if value is None:
        return ""
    if kind is Decimal or kind is int or kind is float:
        return str(value)
    if isinstance(value, datetime):
        # Always UTC with its offset, whatever CONSOLE_TIMEZONE the screens use: a file
        # means the same wherever it is opened, and its times sort as text.
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def safe_text(value: str | None, _start=_FORMULA_START) -> str | None:
    """neutralise() for a cell known to be text or empty (None: csv writes "")."""
    return "'" + value if value and value[0] in _start else value


# What makes csv.writer (its default dialect) quote a cell (cell_sql() tests the same).
_QUOTE_CHARS = ',"\r\n'
_QUOTED = re.compile(f"[{_QUOTE_CHARS}]")


def csv_cell(value) -> str:
    """The text csv.writer writes for neutralise(value): quoted, its quotes doubled, when
    it holds a comma, a quote or a line break. A row of such cells is joined by commas."""
    text = neutralise(value)
    return '"' + text.replace('"', '""') + '"' if _QUOTED.search(text) else text


# In written CSV text: a cell (at a line start or after a comma, perhaps quoted) that
# starts like a formula. It also finds harmless text (a negative number, a quoted comma
# followed by "="); those blocks just take the careful way.
_FORMULA_CELL = re.compile(r'[,\n]"?[=+\-@\t\r\n]')
_FORMULA_FIRST_CELL = re.compile(r'"?[=+\-@\t\r\n]')  # the block's first cell, at its start


def csv_lines(header: list[str], rows: Iterable[Iterable], *, plain_cells: bool = False,
              written_cells: bool = False, blocks: bool = False) -> Iterator[str]:
    """The CSV text of ``header`` and ``rows``, in chunks of about CHUNK_CHARS; with
    ``blocks``, ``rows`` gives lists of rows (a batch at a time: no generator step per row).

    Cells go through neutralise(). With ``plain_cells`` (an export's fast path) the rows
    hold only text, numbers and None, written as they are: each block of rows is written,
    and only a block whose text shows a cell starting like a formula is written again with
    its text cells neutralised, so the check costs one regular-expression pass per block.
    With ``written_cells`` every cell is already the text csv_cell() makes of it, and a
    row is its cells joined by commas.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield "\ufeff" + buffer.getvalue()  # BOM: spreadsheet programs then read UTF-8 correctly
    buffer.seek(0)
    buffer.truncate()
    rows = iter(rows)
    # Rows in slices through writerows (or joins): the loop over them runs in C.
    slices = (batch[start:start + ROWS_PER_WRITE] for batch in rows for start in range(0, len(batch), ROWS_PER_WRITE)) \
        if blocks else iter(lambda: list(islice(rows, ROWS_PER_WRITE)), [])
    try:
        for block in slices:
            if written_cells:
                buffer.write("\r\n".join(map(",".join, block)))
                buffer.write("\r\n")
            elif plain_cells:
                start = buffer.tell()
                writer.writerows(block)
                text = buffer.getvalue()
                if _FORMULA_FIRST_CELL.match(text, start) or _FORMULA_CELL.search(text, start):
                    buffer.seek(start)
                    buffer.truncate()
                    writer.writerows([safe_text(cell) if type(cell) is str else cell for cell in row] for row in block)
            else:
                writer.writerows([neutralise(cell) for cell in row] for row in block)
            if buffer.tell() >= CHUNK_CHARS:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue()
    finally:
        # The server closes the response when the client goes away: the rows stop here,
        # and with them their cursor, threads and connections (not whenever the garbage
        # collector gets to them).
        if hasattr(rows, "close"):
            rows.close()


# Where gunicorn and werkzeug's server put the client's socket in the WSGI environment.
SERVER_SOCKETS = ("gunicorn.socket", "werkzeug.socket")


def drop_stalled_client(environ: dict, seconds: float) -> None:
    """A client that stops reading without closing the connection would keep the thread
    in send() for as long as it likes (neither server has a send timeout), and the
    download every connection it holds: give up when one chunk (CHUNK_CHARS and up to
    a block of ROWS_PER_WRITE rows, a few hundred KB) has not gone out within
    ``seconds``. The server then closes the response as for a client that went away.
    gunicorn sets the socket back to blocking before the next request on a kept-alive
    connection."""
    for key in SERVER_SOCKETS:
        sock = environ.get(key)
        if sock is not None and seconds:
            sock.settimeout(seconds)


def csv_response(stem: str, header: list[str], rows: Iterable[Iterable], *, plain_cells: bool = False,
                 written_cells: bool = False, blocks: bool = False, limited: bool = False) -> Response:
    """A streamed download named ``<stem>-YYYY-MM-DD.csv``; ``rows`` may be a generator
    (of lists of rows with ``blocks``; csv_lines() says how the cells are written).
    ``limited``: an export read from the databases, one of at most EXPORTS_AT_ONCE per
    process (503 beyond them)."""
    release = take_export_slot() if limited else None
    try:
        drop_stalled_client(request.environ, current_app.config["EXPORT_SEND_TIMEOUT"])
        filename = f"{stem}-{datetime.now(timezone.utc):%Y-%m-%d}.csv"
        lines = csv_lines(header, rows, plain_cells=plain_cells, written_cells=written_cells, blocks=blocks)
        response = Response(stream_with_context(_then(lines, release) if release else lines),
                            mimetype="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    except BaseException:
        if release:
            release()
        raise
    if release:
        # However the download ends (written, dropped by the client, cut by the send
        # timeout), the server closes the response, and the slot is free again.
        response.call_on_close(release)
    return response


def _then(lines: Iterator[str], release: Callable[[], None]) -> Iterator[str]:
    """``lines``, then ``release()`` as soon as the last one is out (before the server
    gets round to closing the response)."""
    try:
        yield from lines
    finally:
        release()


# Exports being written by this process. Each holds a connection to its list's database
# and one to every database its cells read, for as long as it streams, out of pools of
# CONSOLE_POOL_SIZE + CONSOLE_POOL_OVERFLOW per database (config.py) shared with the
# pages the other threads serve: beyond EXPORTS_AT_ONCE, a download is refused at once
# instead of leaving those pages waiting for a connection.
_exports_lock = threading.Lock()
_exports_running = 0


def exports_running() -> int:
    return _exports_running


def take_export_slot() -> Callable[[], None]:
    """One of the process's EXPORTS_AT_ONCE export slots, or a 503 saying to wait; returns
    the function that gives it back (once, however often it is called)."""
    global _exports_running
    limit = current_app.config["EXPORTS_AT_ONCE"]
    with _exports_lock:
        if _exports_running >= limit:
            abort(503, f"This server is already writing {limit} download{'s' if limit != 1 else ''}, each holding "
                       "database connections. Try again in a minute, when one has finished.")
        _exports_running += 1
    given_back = threading.Event()

    def release() -> None:
        global _exports_running
        with _exports_lock:
            if not given_back.is_set():
                given_back.set()
                _exports_running -= 1
    return release


_collector_lock = threading.Lock()
_collector_users = 0
_collector_threshold: tuple | None = None


@contextmanager
def fewer_collections(first_generation: int = 100_000) -> Iterator[None]:
    """Python's cyclic garbage collector run less often while a long export streams.
    With its default threshold it walks the rows a batch holds every 700 allocations,
    a quarter of a fast export's time; the rows are freed by reference counting as
    always (an export makes no cycles), so the collector has nothing to find there.
    The threshold counts containers allocated and not yet freed: a COPY export's
    batches in flight (EXPORT_BATCH rows read, their looked-up rows, the rows being
    written) come to tens of thousands at a time, so under 100,000 it still walked
    them a few times a batch (at 20,000, a seventh of the export's CPU); above, the
    count falls back as each batch is freed and the collector hardly runs.
    Nested and concurrent exports share one raised threshold; the last one out puts
    the process's own back."""
    global _collector_users, _collector_threshold
    with _collector_lock:
        if _collector_users == 0:
            _collector_threshold = gc.get_threshold()
            gc.set_threshold(max(first_generation, _collector_threshold[0]), *_collector_threshold[1:])
        _collector_users += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_users -= 1
            if _collector_users == 0 and _collector_threshold is not None:
                gc.set_threshold(*_collector_threshold)


def stream_batches(stmt, batch_size: int = STREAM_BATCH) -> Iterator[list]:
    """Mapped rows of ``stmt`` in batches, through a server-side cursor (yield_per), so a
    million rows never sit in memory; callers resolve references once per batch."""
    result = db.session.scalars(stmt.execution_options(yield_per=batch_size))
    for partition in result.partitions(batch_size):
        yield list(partition)


# --- the COPY path ------------------------------------------------------------------------------
# A list export at a million rows is CPU-bound in Python if it reads whole ORM rows and
# decorates them as the list does. A list that declares a CopyExport (console/screens/
# lists.py) is read another way: its home database's part, only the exported columns, as
# CSV text through PostgreSQL's ``COPY (SELECT …) TO STDOUT`` (a plain streamed select
# elsewhere), EXPORT_BATCH rows at a time; the other databases' columns are looked up once
# per batch with only the columns the cells need (one statement per lookup, the batch's
# keys as one parameter), into dictionaries the list's ``cells`` reads row by row. On
# PostgreSQL each looked-up database gets one worker thread holding one connection for
# the whole export, so a batch's lookups run at once, and while Python writes one batch
# the next one's are already running; the COPY is read one batch ahead on a thread of its
# own. Nothing is kept from one batch to the next but the rows of lookups marked ``kept``
# (bounded by KEPT keys), so memory stays flat whatever the size: three batches in flight
# (read, looked up, written). Closing the download cancels the COPY and gives every
# connection back.

EXPORT_BATCH = 5000  # rows per batch of the COPY path
# Keys whose looked-up rows a ``kept`` lookup holds between batches (a customer's email:
# about 0.2 KB a key). The orders export keeps its customers' cells itself, more
# compactly (``known``: console/screens/orders.py, CUSTOMERS_KEPT).
KEPT = 25_000


def by_key(rows) -> dict:
    """{first column: [rows]}."""
    grouped: dict = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    return grouped


@dataclass(frozen=True)
class Side:
    """A lookup in another database, once per batch: ``statement(keys, one_of)`` is a
    select whose first column is the key (``one_of(column, keys)`` is the condition that
    suits the database), ``keys(batch)`` the keys a batch of home rows asks about. With
    ``kept``, the rows of keys already asked (customers recur from batch to batch) are
    kept, and only new keys are looked up; with ``known``, the export's cells keep what
    they made of those keys instead, and ``found`` holds only the keys the batch asked."""

    bind: str
    keys: Callable[[list], Iterable]
    statement: Callable[[list, Callable], Any]
    kept: bool = False
    # rows -> what the cells read of them: every row of each key by default (by_key), one
    # row per key (one_by_key, newest_by) where the cells want only that, or both
    # (each_and_several: the keys with one row read in bulk). A kept side's is a dict.
    fold: Callable[[list], dict] = by_key
    # prepared -> the dict whose keys need no lookup: the export keeps what its cells made
    # of them (CopyExport.prepare's result holds it), in less memory than ``kept`` rows.
    known: Callable[[Any], dict] | None = None


@dataclass(frozen=True)
class CopyExport:
    """How a list's export reads through the COPY path.

    ``columns``: the home statement's columns (table columns or labelled expressions of
    the home database). Each batch's rows reach ``cells`` alike on every database: text
    and numbers (PostgreSQL's text, or the driver's values), booleans and JSON as Python
    values, times as the ISO text neutralise() writes, NULL as "" or None.
    ``sides``: {name: Side}; ``cells(batch, found, lookups, prepared)`` gets
    ``found[name]`` = {key: [rows]} (or what the side's ``fold`` makes of the rows; a
    kept side's holds the keys of earlier batches too; nothing new when that database is
    down, noted in ``lookups``) and returns the batch's CSV rows, cells plain (text,
    numbers, booleans, None; csv_lines neutralises them).
    ``prepare(lookups)``: read once before the rows (a short table such as the carriers).
    ``batch()``: rows per batch, asked when the export starts (EXPORT_BATCH).
    ``written``: home columns (text, numbers, times) whose cells go into the file as they
    are. Each batch row then holds ``columns`` as text ("" for NULL) followed by these as
    the text csv_cell() makes of them (on PostgreSQL written by the database itself:
    cell_sql()), and ``cells`` returns rows of such texts (csv_cell() of what it adds),
    joined by commas (csv_lines' ``written_cells``): on PostgreSQL no cell of the home
    database is parsed, converted or quoted in Python. An item of ``written`` may be a
    tuple of columns whose cells sit side by side in the file: one text, their cells
    joined by commas (fewer texts a row for Python to split, pass along and join)."""

    columns: tuple
    cells: Callable[[list, dict, Any, Any], list[list]]
    sides: dict = field(default_factory=dict)
    prepare: Callable[[Any], Any] | None = None
    batch: Callable[[], int] = lambda: EXPORT_BATCH
    written: tuple = ()

    def statement(self, stmt):
        """``stmt`` (the list's select, ordered) reading only the exported columns."""
        return stmt.with_only_columns(*self.columns, *written_columns(self.written))

    @property
    def binds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(side.bind for side in self.sides.values()))


def written_columns(written: tuple) -> tuple:
    """The columns of a CopyExport's ``written``, each group's in its order."""
    return tuple(column for item in written for column in (item if isinstance(item, tuple) else (item,)))


def written_sql(written: tuple) -> tuple:
    """A CopyExport's ``written`` as the database writes it: each column's cell_sql(), each
    group's cells joined by commas into one text."""
    return tuple(type_coerce(func.concat_ws(literal_column("','"), *map(cell_sql, item)), String)
                 .label("cells_" + item[0].key) if isinstance(item, tuple) else cell_sql(item)
                 for item in written)


def _affinity(column):
    return getattr(column.type, "_type_affinity", None) or type(column.type)


def iso_text(column, name: str | None = None):
    """PostgreSQL text of a UTC time as datetime.isoformat() writes it, NULL kept:
    "2026-11-01T11:31:00+00:00", with ".ffffff" only when the fraction is not zero."""
    # One to_char with the microseconds, taken out again when they are nought.
    text = func.replace(func.to_char(column, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'")),
                        literal_column("'.000000+'"), literal_column("'+'"))
    return type_coerce(text, String).label(name or column.key)


def cell_sql(column, name: str | None = None):
    """PostgreSQL's text of ``column`` as csv_cell() writes its value: text neutralised (an
    apostrophe before a formula's first character) and quoted when it holds a comma, a
    quote or a line break; numbers as their text (the Decimal's); times as iso_text();
    NULL as ""."""
    name = name or column.key
    kind = _affinity(column)
    empty = literal_column("''")
    if issubclass(kind, DateTime):
        return type_coerce(func.coalesce(iso_text(column), empty), String).label(name)
    if issubclass(kind, (Numeric, Integer)):
        return _text_or_empty(column).label(name)
    if not issubclass(kind, String) or issubclass(kind, JSON):
        raise TypeError(f"{name}: only text, numbers and times are written by the database")
    text = cast(column, Text)
    starts = func.left(text, 1).in_([literal_column(_sql_text(c)) for c in FORMULA_PREFIXES])
    safe = case((starts, literal_column("''''").op("||")(text)), else_=text)
    quote = literal_column(_sql_text('"'))
    quoted = case((safe.regexp_match(literal_column(_sql_text(f"[{_QUOTE_CHARS}]"))),
                   quote.op("||")(func.replace(safe, quote, literal_column(_sql_text('""')))).op("||")(quote)),
                  else_=safe)
    # Nearly every cell is written as it is: its first character and what is quoted are
    # tested before any of the above (the cheapest test at a million rows: half a regular
    # expression's time).
    special = or_(func.ascii(text).in_([literal_column(str(ord(c))) for c in FORMULA_PREFIXES]),
                  *(func.strpos(text, literal_column(_sql_text(c))) > 0 for c in _QUOTE_CHARS))
    return type_coerce(func.coalesce(case((special, quoted), else_=text), empty), String).label(name)


def _sql_text(value: str) -> str:
    """A PostgreSQL string constant of ``value``: E'…', control characters escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t").replace("\r", "\\r") \
        .replace("\n", "\\n")
    return f"E'{escaped}'"


def _raw_text(column):
    """A column a written export reads in Python (a lookup's key)."""
    return _text_or_empty(column).label(column.key)


def _text_or_empty(column):
    """The column's text, NULL as ""."""
    return type_coerce(func.coalesce(cast(column, Text), literal_column("''")), String)


def _copy_column(column):
    """The column as the COPY reads it: times as their ISO text (a time in Python costs
    more than the rest of its row)."""
    return iso_text(column, column.key) if issubclass(_affinity(column), DateTime) else column


_BOOLEANS = {"t": True, "f": False, "": None}


def _json_value(text: str):
    return json.loads(text) if text else None


def copy_batches(connection, stmt, batch_size: int) -> Iterator[list[list]]:
    """The rows of ``stmt`` through PostgreSQL's ``COPY (SELECT ...) TO STDOUT`` in CSV on
    ``connection`` (a SQLAlchemy connection in its transaction), batch by batch, each row
    a list of text cells ("" for NULL). The server sends one message per row (libpq's
    contract for COPY TO), so a batch is whole rows, parsed by the csv module in one pass.
    Number cells that start with "-" come back as Decimal, so a negative amount is written
    as a number, not neutralised as a formula; boolean and JSON cells come back as Python
    values. Closing the generator (the client went away) cancels the COPY on the server."""
    numeric, converted = [], []
    for at, column in enumerate(stmt.selected_columns):
        kind = _affinity(column)
        if issubclass(kind, (Numeric, Integer)):
            numeric.append(at)
        elif issubclass(kind, Boolean):
            converted.append((at, _BOOLEANS.__getitem__))
        elif issubclass(kind, JSON):
            converted.append((at, _json_value))
    with closing(_copied(connection, stmt, batch_size, "(FORMAT csv)")) as batches:
        for blocks in batches:
            yield _parsed(blocks, numeric, converted)


def _copied(connection, stmt, batch_size: int, options: str = "") -> Iterator[list]:
    """The messages of ``COPY (stmt) TO STDOUT options`` (one per row), ``batch_size`` of
    them at a time; closing the generator cancels the COPY."""
    compiled, params = _compiled(connection, stmt)
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY ({compiled.string}) TO STDOUT {options}", params) as copy:
        blocks: list = []
        for block in copy:
            blocks.append(block)
            if len(blocks) == batch_size:
                yield blocks
                blocks = []
        if blocks:
            yield blocks


def _parsed(blocks: list, numeric: list[int], converted: list) -> list[list]:
    data = b"".join(blocks)
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    if numeric and b",-" in data:  # rarely: a negative amount somewhere in the batch
        for row in rows:
            for at in numeric:
                if row[at][:1] == "-":
                    row[at] = Decimal(row[at])
    for at, convert in converted:
        for row in rows:
            row[at] = convert(row[at])
    return rows


def _compiled(connection, stmt):
    """``stmt`` compiled for ``connection``, and the values its execution would send (bind
    processors applied: times converted as the column's type stores them)."""
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    processors = compiled._bind_processors
    return compiled, {name: (processors[name](value) if name in processors else value)
                      for name, value in compiled.construct_params().items()}


def copy_text_batches(connection, stmt, batch_size: int) -> Iterator[list[list[str]]]:
    """copy_batches() for a statement whose columns are all text and never NULL (a written
    export's): PostgreSQL's text format, each row split at its tabs. The format writes a
    tab, a line break or a backslash inside a value as an escape starting with a
    backslash, so a batch without any backslash (nearly every one) is split as it is."""
    with closing(_copied(connection, stmt, batch_size)) as batches:
        for blocks in batches:
            yield _split(blocks)


# The escapes of COPY's text format that PostgreSQL writes (never octal or hex ones).
_COPY_ESCAPE = re.compile(r"\\(.)")
_COPY_ESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _split(blocks: list) -> list[list[str]]:
    text = b"".join(blocks).decode()
    lines = text.split("\n")
    lines.pop()  # what follows the last row's line break
    if "\\" not in text:
        return list(map(str.split, lines, repeat("\t")))
    return [[_COPY_ESCAPE.sub(_unescaped, cell) for cell in line.split("\t")] for line in lines]


def _unescaped(match) -> str:
    return _COPY_ESCAPED.get(match[1], match[1])


def _select_batches(connection, stmt, batch_size: int) -> Iterator[list]:
    """The rows of ``stmt`` as a plain streamed select (no COPY: SQLite), times as ISO text
    as the COPY writes them."""
    times = [at for at, column in enumerate(stmt.selected_columns) if issubclass(_affinity(column), DateTime)]
    result = connection.execute(stmt.execution_options(yield_per=batch_size))
    for batch in result.partitions(batch_size):
        rows = [list(row) for row in batch]
        for at in times:
            for row in rows:
                if row[at] is not None:
                    row[at] = row[at].astimezone(timezone.utc).isoformat()
        yield rows


def _written_here(batches: Iterator[list], raw: int, written: tuple) -> Iterator[list[list[str]]]:
    """A written export's batches where the database can't write them (SQLite): the rows
    of a plain select made what copy_text_batches() reads from PostgreSQL."""
    sizes = [len(item) if isinstance(item, tuple) else 0 for item in written]  # 0: a column on its own
    for batch in batches:
        rows = []
        for row in batch:
            cells = [("" if cell is None else str(cell)) for cell in row[:raw]]
            at = raw
            for size in sizes:
                cells.append(",".join(map(csv_cell, row[at:at + size])) if size else csv_cell(row[at]))
                at += size or 1
            rows.append(cells)
        yield rows


def iso(value) -> str | None:
    """A looked-up time as the export writes it (None stays None)."""
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def entity_cells(columns: tuple, decorate: Callable, export_row: Callable) -> Callable:
    """A CopyExport's ``cells`` for a list whose lookups are its own decorate(): each batch
    of rows stands in for its entities (attributes named as the columns' keys), decorated
    and written by the list's export_row as the row-by-row path does, its lookups once per
    batch on the session. Only for lists whose export_row passes the columns' values
    through (times are the ISO text already). What a batch's lookups loaded leaves the
    session with it."""
    keys = [column.key for column in columns]

    def cells(batch, found, lookups, prepared) -> list[list]:
        rows = [export_row(row, lookups)
                for row in decorate([SimpleNamespace(**dict(zip(keys, row))) for row in batch], lookups)]
        db.session.expunge_all()
        return rows
    return cells


def time_of(cell) -> datetime | None:
    """A time cell of a batch (its ISO text) as the datetime it was, for a cell worked out
    from it in Python (a state that depends on now)."""
    return datetime.fromisoformat(cell) if cell else None


def int_of(cell) -> int | None:
    """A whole-number cell of a batch (PostgreSQL's text, or the driver's int) as an int."""
    return None if cell is None or cell == "" else int(cell)


def one_by_key(rows) -> dict:
    """{first column: its row} (the last read, when a key has several)."""
    return dict(zip(map(itemgetter(0), rows), rows))


def each_and_several(rows) -> tuple[dict, dict]:
    """A fold: ({first column: its row (the last read)}, {first column: [its rows]} of the
    keys that have several). Most keys have one row, and the cells read those in bulk."""
    each = one_by_key(rows)
    if len(each) == len(rows):
        return each, {}
    return each, {key: mine for key, mine in by_key(rows).items() if len(mine) > 1}


def newest_by(when_at: int, id_at: int) -> Callable[[list], dict]:
    """A fold: {first column: its newest row by (when, id)}, a missing time oldest."""
    def fold(rows) -> dict:
        found = one_by_key(rows)
        if len(found) == len(rows):  # one row per key (most keys): each is its newest
            return found
        found = {}
        for row in rows:
            known = found.get(row[0])
            if known is None or _newer(row, known, when_at, id_at):
                found[row[0]] = row
        return found
    return fold


def _newer(row, known, when_at: int, id_at: int) -> bool:
    when, then = row[when_at], known[when_at]
    if when is None or then is None:
        return (when is not None, row[id_at]) > (then is not None, known[id_at])
    return (when, row[id_at]) > (then, known[id_at])


def compared(column):
    """A looked-up time that is only compared (which row is newest): read as the driver
    gives it, without the conversion to an aware UTC time per row."""
    return type_coerce(column, DateTime())


def newest(rows, when_at: int, id_at: int):
    """The newest of ``rows`` by (when, id), a missing time oldest."""
    if len(rows) == 1:
        return rows[0]
    return max(rows, key=lambda row: (1, row[when_at], row[id_at]) if row[when_at] is not None else (0, 0, row[id_at]))


class _SideLookups:
    """The other databases' lookups of each batch. On PostgreSQL each database gets one
    worker thread holding one connection for the whole export, so a batch's lookups run
    at once, and while Python writes one batch the next one's are already running (submit
    the next batch before collecting the current one). Elsewhere they run in turn on the
    session. A database that fails is noted in ``lookups`` and left out from then on, as
    Lookups.run does."""

    def __init__(self, sides: dict, lookups, prepared=None):
        self.sides = sides
        self.lookups = lookups
        self.prepared = prepared
        self.engines = {side.bind: db.engines[side.bind] for side in sides.values()}
        self.threaded = all(e.dialect.name == "postgresql" for e in self.engines.values())
        self.workers: dict = {}
        self.connections: dict = {}
        self.kept: dict = {name: {} for name, side in sides.items() if side.kept}  # name -> {key: rows}
        self.absent: dict = {name: set() for name in self.kept}  # name -> {key found nowhere}: asked once
        self.known: dict = {}  # name -> the keys the batch submitted last found kept

    def submit(self, batch: list) -> dict:
        """{name: (keys found kept, keys asked, rows or a future of them)} of a batch's lookups."""
        pending, asked = {}, {}
        for name, side in self.sides.items():
            keys = asked.get(side.keys)
            if keys is None:  # lookups by the same keys (an order's payment, shipment…) share them
                keys = asked[side.keys] = set(filter(None, side.keys(batch)))
            kept = self.kept.get(name)
            known = None
            # The keys go sorted: PostgreSQL sorts an array's keys before probing an index
            # with them, and a sorted array costs it one pass instead of a sort by the
            # collation's comparisons (7% of a payment lookup's CPU at 3,000 keys).
            if kept is not None:
                # Set operations, not a loop per key: a batch asks about thousands.
                known = self.known[name] = keys & kept.keys()
                keys = sorted(keys - known - self.absent[name])
            elif side.known is not None:
                keys = sorted(keys.difference(side.known(self.prepared)))
            else:
                keys = sorted(keys)
            rows = None
            if keys and not self.lookups.down(side.bind):
                dialect = self.engines[side.bind].dialect.name
                stmt = side.statement(keys, lambda column, values, dialect=dialect: one_of(column, values, dialect))
                if self.threaded:
                    rows = self._worker(side.bind).submit(self._rows, side.bind, stmt)
                else:
                    rows = self.lookups.run(side.bind, _session_rows(side.bind, stmt), [])
            pending[name] = (known, keys, rows)
        return pending

    def collect(self, pending: dict) -> dict:
        """{name: {key: [rows]}} of a batch (for a kept lookup, every row it keeps: the
        batch's keys among them)."""
        found = {}
        for name, (known, keys, rows) in pending.items():
            side = self.sides[name]
            if self.threaded and rows is not None:
                rows = self._result(side.bind, rows)
            folded = side.fold(rows or [])
            kept = self.kept.get(name)
            if kept is not None and not self.lookups.down(side.bind):
                absent = self.absent[name]
                if len(kept) + len(absent) + len(keys) > KEPT:
                    # Only what this batch and the next one (submitted already) found kept.
                    kept = self.kept[name] = {key: kept[key] for key in known | self.known[name] if key in kept}
                    absent.clear()
                # The rows answer only the keys asked (a Side's first column is the one its
                # statement filters on), so they are kept as they are; the keys that found
                # none are remembered and not asked again.
                kept.update(folded)
                if len(folded) < len(keys):
                    absent.update(key for key in keys if key not in folded)
            found[name] = folded if kept is None else kept
        return found

    def _result(self, bind: str, future) -> list:
        if self.lookups.down(bind):
            return []
        try:
            return future.result()
        except DBAPIError as exc:
            if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
                raise
            self.lookups.unavailable.add(bind)
            return []

    def _worker(self, bind: str) -> ThreadPoolExecutor:
        if bind not in self.workers:
            self.workers[bind] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"export-{bind}")
        return self.workers[bind]

    def _rows(self, bind: str, stmt) -> list:
        connection = self.connections.get(bind)
        if connection is None:
            # In autocommit: each lookup is one statement, so no BEGIN and ROLLBACK around
            # it (two round trips a batch and database), and no transaction is left open
            # between batches (behind PgBouncer the server connection goes back meanwhile).
            connection = self.connections[bind] = self.engines[bind].connect().execution_options(
                isolation_level="AUTOCOMMIT")
        return _plain_rows(connection, stmt)

    def close(self) -> None:
        """Stop the threads (a lookup under way finishes, none queued starts) and give
        their connections back to the pools."""
        for worker in self.workers.values():
            worker.shutdown(wait=True, cancel_futures=True)
        for connection in self.connections.values():
            connection.close()


def _read_ahead(batches: Iterator[list]) -> Iterator[list]:
    """``batches``, each next one already being read (on a worker thread, the only user of
    the cursor meanwhile) while the caller writes the current one."""
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-read") as reader:
            coming = reader.submit(next, batches, None)
            while (batch := coming.result()) is not None:
                coming = reader.submit(next, batches, None)
                yield batch
    finally:
        # The read under way has finished (the executor waited for it): closing the rows
        # now cancels their COPY. Left open, a download closed part-way kept the server
        # streaming into a connection nobody read, and the transaction's rollback then
        # waited for it for ever once the server's output outgrew the socket's buffers.
        batches.close()


def _session_rows(bind: str, stmt) -> Callable[[], list]:
    """A lookup for Lookups.run: the plain rows of ``stmt`` on the session's connection to
    ``bind`` (a failure to reach it raises DatabaseUnavailable)."""
    def load():
        with database(bind):
            return _plain_rows(db.session.connection(bind_arguments={"bind": db.engines[bind]}), stmt)
    return load


def _plain_rows(connection, stmt) -> list:
    check_read(stmt)
    return connection.execute(stmt).all()


def session_rows(lookups, bind: str, stmt) -> list:
    """The plain rows of ``stmt`` on ``bind`` through ``lookups`` ([] when it is down):
    what a CopyExport's ``prepare`` reads."""
    return lookups.run(bind, _session_rows(bind, stmt), [])


def one_by_one(blocks: Iterator[list]) -> Iterator:
    """The rows of ``blocks`` (lists of rows), one by one; closing this closes ``blocks``
    (a download closed part-way stops their reads)."""
    with closing(blocks):
        for block in blocks:
            yield from block


def copy_export(spec: CopyExport, home: str, stmt, down: set, batch_size: int | None = None) -> Iterator[list]:
    """The CSV rows of copy_blocks(), one by one."""
    return one_by_one(copy_blocks(spec, home, stmt, down, batch_size))


def copy_blocks(spec: CopyExport, home: str, stmt, down: set, batch_size: int | None = None) -> Iterator[list]:
    """The CSV rows of the list's ordered select ``stmt`` on ``home`` through ``spec``
    (see above), a list of them per batch, each batch's lookups under way while the one
    before is written."""
    batch_size = batch_size or spec.batch()
    lookups = Lookups(down, detach=False)
    prepared = spec.prepare(lookups) if spec.prepare else None
    # What the request's session holds (auth_db since sign-in, whatever ``prepare`` read)
    # goes back now: the lookup threads below take their own connection to those
    # databases, so the download holds one connection per database it reads.
    db.session.close()
    side = _SideLookups(spec.sides, lookups, prepared)
    try:
        # A connection of its own, not the session's: whatever else the request does with
        # the session (its commits and rollbacks end every bind's transaction) must not end
        # the transaction the server-side cursor lives in.
        with database(home), fewer_collections(), db.engines[home].connect() as connection, connection.begin():
            postgres = connection.dialect.name == "postgresql"
            columns = (*spec.columns, *written_columns(spec.written))
            if postgres:
                # The download may take minutes: lift the screens' statement timeout for it.
                connection.execute(sql("SET LOCAL statement_timeout = 0"))
                # Compiling the streamed query to machine code costs more than it saves here.
                connection.execute(sql("SET LOCAL jit = off"))
                # Times written by the server in UTC, whatever the database's own zone.
                connection.execute(sql("SET LOCAL TimeZone = 'UTC'"))
                columns = (tuple(map(_raw_text, spec.columns)) + written_sql(spec.written)
                           if spec.written else tuple(map(_copy_column, columns)))
            read = stmt.with_only_columns(*columns)
            check_read(read)
            if postgres:
                batches = (copy_text_batches if spec.written else copy_batches)(connection, read, batch_size)
            else:
                batches = _select_batches(connection, read, batch_size)
                if spec.written:
                    batches = _written_here(batches, len(spec.columns), spec.written)
            previous = None  # (batch, its lookups under way)
            # closing(): a download closed part-way stops the read-ahead thread here.
            with closing(_read_ahead(batches) if postgres and side.threaded else batches) as reading:
                for batch in reading:
                    current = (batch, side.submit(batch))
                    if previous is not None:
                        yield spec.cells(previous[0], side.collect(previous[1]), lookups, prepared)
                    previous = current
            if previous is not None:
                yield spec.cells(previous[0], side.collect(previous[1]), lookups, prepared)
    finally:
        side.close()
