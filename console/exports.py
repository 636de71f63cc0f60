"""Streamed CSV exports: constant memory, dated file names, formula cells neutralised."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from decimal import Decimal

from flask import Response, stream_with_context

from console.extensions import db

# A cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
STREAM_BATCH = 500


_FORMULA_START = frozenset(FORMULA_PREFIXES)
# Bytes gathered before a chunk goes to the client: one write per row would make the
# server, not the query, the slow part of a million-row export.
CHUNK_CHARS = 1 << 16


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


def csv_lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV text of ``header`` and ``rows``, in chunks of about CHUNK_CHARS."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield "\ufeff" + buffer.getvalue()  # BOM: spreadsheet programs then read UTF-8 correctly
    buffer.seek(0)
    buffer.truncate()
    write = writer.writerow
    for row in rows:
        write([neutralise(cell) for cell in row])
        if buffer.tell() >= CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def csv_response(stem: str, header: list[str], rows: Iterable[Iterable]) -> Response:
    """A streamed download named ``<stem>-YYYY-MM-DD.csv``; ``rows`` may be a generator."""
    filename = f"{stem}-{datetime.now(timezone.utc):%Y-%m-%d}.csv"
    response = Response(stream_with_context(csv_lines(header, rows)), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def stream_batches(stmt, batch_size: int = STREAM_BATCH) -> Iterator[list]:
    """Mapped rows of ``stmt`` in batches, through a server-side cursor (yield_per), so a
    million rows never sit in memory; callers resolve references once per batch."""
    result = db.session.scalars(stmt.execution_options(yield_per=batch_size))
    for partition in result.partitions(batch_size):
        yield list(partition)
