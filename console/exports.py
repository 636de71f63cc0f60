"""Streamed CSV exports: constant memory, dated file names, formula cells neutralised."""
from __future__ import annotations

import csv
import gc
import io
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from datetime import datetime, timezone
from decimal import Decimal

from flask import Response, current_app, request, stream_with_context

from console.extensions import db

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


# In written CSV text: a cell (at a line start or after a comma, perhaps quoted) that
# starts like a formula. It also finds harmless text (a negative number, a quoted comma
# followed by "="); those blocks just take the careful way.
_FORMULA_CELL = re.compile(r'[,\n]"?[=+\-@\t\r\n]')
_FORMULA_FIRST_CELL = re.compile(r'"?[=+\-@\t\r\n]')  # the block's first cell, at its start


def csv_lines(header: list[str], rows: Iterable[Iterable], *, plain_cells: bool = False) -> Iterator[str]:
    """The CSV text of ``header`` and ``rows``, in chunks of about CHUNK_CHARS.

    Cells go through neutralise(). With ``plain_cells`` (an export's fast path) the rows
    hold only text, numbers and None, written as they are: each block of rows is written,
    and only a block whose text shows a cell starting like a formula is written again with
    its text cells neutralised, so the check costs one regular-expression pass per block.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield "\ufeff" + buffer.getvalue()  # BOM: spreadsheet programs then read UTF-8 correctly
    buffer.seek(0)
    buffer.truncate()
    rows = iter(rows)
    try:
        while True:
            # Rows in slices through writerows: the loop over them runs in C.
            block = list(islice(rows, ROWS_PER_WRITE))
            if not block:
                break
            if plain_cells:
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


def csv_response(stem: str, header: list[str], rows: Iterable[Iterable], *, plain_cells: bool = False) -> Response:
    """A streamed download named ``<stem>-YYYY-MM-DD.csv``; ``rows`` may be a generator."""
    drop_stalled_client(request.environ, current_app.config["EXPORT_SEND_TIMEOUT"])
    filename = f"{stem}-{datetime.now(timezone.utc):%Y-%m-%d}.csv"
    response = Response(stream_with_context(csv_lines(header, rows, plain_cells=plain_cells)),
                        mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


_collector_lock = threading.Lock()
_collector_users = 0
_collector_threshold: tuple | None = None


@contextmanager
def fewer_collections(first_generation: int = 20_000) -> Iterator[None]:
    """Python's cyclic garbage collector run less often while a long export streams.
    With its default threshold it walks the rows a batch holds every 700 allocations,
    a quarter of a fast export's time; the rows are freed by reference counting as
    always (an export makes no cycles), so the collector has nothing to find there.
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
