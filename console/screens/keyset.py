"""Keyset (seek) paging in both directions, and capped counts, for every list screen.

A list is ordered by one sort column and then by id, ascending or descending. A page
link carries a cursor: the (sort value, id) of the row the page starts after (Next) or
ends before (Previous), encoded opaquely and tied to the sort it was made for, so a link
can be bookmarked and no query ever uses OFFSET.

The seek compares row values, ``(sort, id) < (v, w)``, which a B-tree index on
``(sort, id)`` answers by seeking straight to (v, w): a page a million rows deep costs
what the first page costs. (The spelled-out ``sort < v OR (sort = v AND id < w)`` cannot
seek on PostgreSQL and walks back through every earlier row.) Every sortable column
therefore has an index on ``(column, id)`` declared with its model.

NULLs always come last, whichever the direction: rows with a value, in the sort's order,
then rows without one, by id in the same direction. A row-value comparison is never true
for a NULL, so the two runs are two index seeks joined by UNION ALL into one statement,
and a page costs the same number of statements at every depth, across the boundary too.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from sqlalchemy import bindparam, func, literal, select, tuple_, union_all
from sqlalchemy.orm import aliased
from sqlalchemy.sql import operators

from console.drift import NOT_IN_DATABASE, bind_is_clean, check_read, drifted_attributes, without_drifted
from console.extensions import db
from console.lookups import named, plain_rows

COUNT_CAP = 10_000
MAX_PAGE_SIZE = 500
# The "per page" choices a list offers (any other size in the address still works).
PAGE_SIZES = (10, 25, 50, 100, 200)
BAD_LINK = "This page link is not valid any more. Start again from the first page."
SEGMENT = "keyset_segment"
# The cursor's values are named parameters, so one statement serves every cursor.
CURSOR_VALUE, CURSOR_ID = "keyset_value", "keyset_id"
# Statements kept by reuse key (keyset_page's ``reuse``): a few per sort, direction and
# page size; sizes beyond these many are built per request.
REUSED_MAX = 512
_reused: dict = {}
# Unfiltered lists whose count went past the cap, until when that is taken as still so
# (capped_count).
CAPPED_KEPT_SECONDS = 60
_capped_until: dict = {}


class BadCursor(ValueError):
    pass


# --- cursors ---------------------------------------------------------------------------------

def _pack(value):
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    return value


def _unpack(value):
    if isinstance(value, dict) and len(value) == 1:
        (tag, raw), = value.items()
        if tag == "t" and isinstance(raw, str):
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                raise ValueError("cursor time without zone")
            return moment
        if tag == "d" and isinstance(raw, str):
            number = Decimal(raw)
            if not number.is_finite():
                raise ValueError("cursor number is not finite")
            return number
        raise ValueError("unknown cursor value")
    if value is None or isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    raise ValueError("unknown cursor value")


def encode_cursor(sort_key: str, sort_value, row_id: str) -> str:
    raw = json.dumps([sort_key, _pack(sort_value), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, sort_key: str):
    """(sort value, id) from a cursor made for ``sort_key``, or None when there is none;
    BadCursor when it was tampered with or belongs to another sort."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, value, row_id = json.loads(raw)
        if key != sort_key or not isinstance(row_id, str):
            raise ValueError("cursor of another sort")
        return _unpack(value), row_id
    except (ValueError, TypeError, InvalidOperation, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor(BAD_LINK) from exc


def page_size(raw, default: int = 50) -> int:
    try:
        size = int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default
    return max(1, min(size, MAX_PAGE_SIZE))


# --- pages ------------------------------------------------------------------------------------

@dataclass
class Page:
    rows: list
    size: int
    next_cursor: str | None = None  # rows after this page (Next)
    previous_cursor: str | None = None  # rows before this page (Previous)
    total: int | None = None
    total_capped: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def total_label(self) -> str:
        if self.total is None:
            return ""
        return f"more than {COUNT_CAP:,}" if self.total_capped else f"{self.total:,}"


def _built(reuse, build):
    """``build()``, or with a ``reuse`` key the statement it built the first time."""
    if reuse is None:
        return build()
    statement = _reused.get(reuse)
    if statement is None:
        statement = build()
        if len(_reused) < REUSED_MAX:
            _reused[reuse] = statement
    return statement


def capped_count(stmt, cap: int = COUNT_CAP, bind: str | None = None, reuse=None) -> tuple[int, bool]:
    """Count the rows ``stmt`` would return, stopping at ``cap`` (read without the ORM
    when ``bind`` names the database).

    With ``reuse`` (a list without filters), a count that went past the cap is not taken
    again for CAPPED_KEPT_SECONDS: walking the cap's rows was the largest single cost of
    the busiest page (the orders list, unfiltered), and a table that held more than the
    cap a minute ago still does. A count under the cap is taken on every request."""
    key = reuse and (*reuse, "count", cap)
    # Which database it was counted in is part of what is kept (one process may serve
    # several, as the tests' apps do).
    kept = key and bind and (str(db.engines[bind].url), *key)
    if kept and _capped_until.get(kept, 0.0) > time.monotonic():
        return cap, True
    counted = _built(key, lambda: select(func.count()).select_from(
        without_drifted(stmt).order_by(None).limit(cap + 1).subquery()))
    total = plain_rows(bind, counted)[0][0] if bind else db.session.scalar(counted)
    if kept and total > cap and len(_capped_until) < REUSED_MAX:
        _capped_until[kept] = time.monotonic() + CAPPED_KEPT_SECONDS
    return min(total, cap), total > cap


def _check_type(column, value):
    """A cursor value of the wrong type for the column would be a database error: refuse it."""
    if value is None:
        return
    try:
        expected = column.type.python_type
    except NotImplementedError:  # pragma: no cover - every sortable column has a plain type
        return
    if expected is float:
        expected = (int, float, Decimal)
    if expected is Decimal:
        expected = (int, Decimal)
    if not isinstance(value, expected):
        raise BadCursor(BAD_LINK)


def _segments(sort, id_column, descending: bool, cursor, forward: bool):
    """The runs a page reads, in reading order: each (condition, order_by).

    Reading forward follows the list's order; reading backward (Previous) reads the
    reverse order from the cursor, and the caller turns the rows round again."""
    down = descending if forward else not descending
    ordered = (sort.desc(), id_column.desc()) if down else (sort.asc(), id_column.asc())
    by_id = (id_column.desc(),) if down else (id_column.asc(),)
    valued, empty = (sort.is_not(None), ordered), (sort.is_(None), by_id)
    if cursor is None:
        return [valued, empty] if forward else [empty, valued]
    value, row_id = cursor
    marked_id = bindparam(CURSOR_ID, row_id, type_=id_column.type)
    if value is None:
        after_id = id_column < marked_id if down else id_column > marked_id
        run = (sort.is_(None) & after_id, by_id)
        return [run] if forward else [run, valued]
    key, mark = tuple_(sort, id_column), tuple_(bindparam(CURSOR_VALUE, value, type_=sort.type), marked_id)
    run = (key < mark if down else key > mark, ordered)
    return [run, empty] if forward else [run]


def _select(stmt, segments, limit: int, plain: bool = False):
    """The one statement that reads ``stmt`` (a select of one entity, or with ``plain``
    of labelled columns) over the runs, in reading order."""
    if len(segments) == 1:
        condition, order = segments[0]
        return stmt.where(condition).order_by(*order).limit(limit)
    entity = stmt.column_descriptions[0]["entity"]
    valued_order = max((order for _, order in segments), key=len)
    # A sort by a column the database lacks: NotInSchema naming it (the UNION below is
    # beyond the per-statement hook, and the subqueries leave the column out).
    check_read(select(*(clause.element for clause in valued_order)))
    stmt = without_drifted(stmt)  # the subqueries name their columns themselves
    parts = []
    for number, (condition, order) in enumerate(segments):
        part = stmt.add_columns(literal(number).label(SEGMENT)).where(condition).order_by(*order).limit(limit)
        parts.append(select(part.subquery()))
    joined = union_all(*parts).subquery()
    outer = select(*(c for c in joined.c if c.key != SEGMENT)) if plain else select(aliased(entity, joined))
    # Within the UNION the reading order is the run number, then the valued run's
    # (sort, id) order: the NULL run's rows all have the same sort value, so its
    # order by id holds too.
    translated = [_on(joined, clause) for clause in valued_order]
    return outer.order_by(joined.c[SEGMENT], *translated).limit(limit)


def page_statement(stmt, sort, id_column, *, sort_key: str, descending: bool, size: int,
                   after: str | None = None, before: str | None = None):
    """The select keyset_page() runs for that page (size + 1 rows: one more tells whether
    there is a next page), for looking at its plan."""
    cursor = decode_cursor(before or after, sort_key)
    return _select(stmt, _segments(sort, id_column, descending, cursor, not before), size + 1)


def _on(subquery, clause):
    """``column DESC`` of the base table as the same ordering on the subquery's column."""
    column = subquery.c[clause.element.key]
    return column.desc() if clause.modifier is operators.desc_op else column.asc()


def _plain_page(stmt, columns, segments, limit: int, bind: str, cursor_values: dict, reuse) -> list:
    """The page's rows as plain rows of ``columns`` (mapped attributes, read by their
    names): no ORM object per row. A column the database lacks is left out and reads
    NOT_IN_DATABASE, as in an entity load."""
    by_key = {column.key: column for column in columns}
    absent = drifted_attributes(by_key.values())
    kept = [column for key, column in by_key.items() if key not in absent]
    page = _built(reuse, lambda: _select(stmt.with_only_columns(*named(*kept)), segments, limit, plain=True))
    rows = plain_rows(bind, page, cursor_values)
    if absent:
        missing = dict.fromkeys(absent, NOT_IN_DATABASE)
        rows = [SimpleNamespace(**row._mapping, **missing) for row in rows]
    return rows


def keyset_page(stmt, sort, id_column, *, sort_key: str, descending: bool, size: int,
                after: str | None = None, before: str | None = None, count: bool = True,
                id_attr: str = "id", columns: tuple = (), bind: str | None = None, reuse: tuple | None = None) -> Page:
    """One page of mapped rows from ``stmt`` (a select of one entity, not yet ordered):
    the first page, the page after cursor ``after`` (Next) or the page before cursor
    ``before`` (Previous), ordered by ``sort`` then ``id_column``, NULLs last.
    With ``columns`` (attributes of the entity) and ``bind`` (its database) the rows
    are plain rows of those columns and the sort and id, read without the ORM; then
    ``reuse``, a key that stands for ``stmt`` (the same select whenever it is given: a
    list without filters), keeps the page's and the count's statements for the next
    request of the same sort, direction, size and kind of cursor (the cursor's values are
    parameters), unless the database has drifted columns.
    Raises BadCursor for a cursor that was tampered with or made for another sort."""
    forward = not before
    cursor = decode_cursor(before or after, sort_key)
    if cursor is not None:
        _check_type(sort, cursor[0])
    segments = _segments(sort, id_column, descending, cursor, forward)
    if columns:
        if reuse is not None and not bind_is_clean(bind):
            reuse = None
        shape = None if cursor is None else ("null" if cursor[0] is None else "value")
        cursor_values = {} if cursor is None else {CURSOR_VALUE: cursor[0], CURSOR_ID: cursor[1]}
        if shape == "null":
            del cursor_values[CURSOR_VALUE]
        rows = _plain_page(stmt, (*columns, sort, id_column), segments, size + 1, bind, cursor_values,
                           reuse and (*reuse, sort_key, descending, forward, shape, size))
    else:
        rows = list(db.session.scalars(_select(stmt, segments, size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    if not forward:
        rows.reverse()

    def mark(row):
        return encode_cursor(sort_key, getattr(row, sort.key), getattr(row, id_attr))

    page = Page(rows=rows, size=size)
    if rows:
        has_next = more if forward else True
        has_previous = cursor is not None if forward else more
        page.next_cursor = mark(rows[-1]) if has_next else None
        page.previous_cursor = mark(rows[0]) if has_previous else None
    elif not forward:
        page.next_cursor = None
    if count:
        page.total, page.total_capped = capped_count(stmt, bind=bind if columns else None,
                                                     reuse=reuse if columns else None)
    return page


def ordered(stmt, sort, id_column, descending: bool):
    """``stmt`` in the list's order with NULLs last (an export reads every row once).

    NULLS LAST only where the sort column can hold a NULL: PostgreSQL reads a column
    that can't in that order from its (sort, id) index only when no NULLS LAST is asked
    for, and otherwise sorts every row first. An export of every order in date order then
    waited 7 s at a million orders (the sort, spilled to disk) before its first row."""
    sorted_by = sort.desc() if descending else sort.asc()
    if getattr(sort.expression, "nullable", True):
        sorted_by = sorted_by.nulls_last()
    return stmt.order_by(sorted_by, id_column.desc() if descending else id_column.asc())
