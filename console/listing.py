"""Keyset (seek) pagination and capped counts for every list screen.

Lists are ordered newest first by (sort column, id). The cursor is the last row's
(sort value, id), encoded opaquely in the query string, so a page link can be
bookmarked and no query ever uses OFFSET. Counts are capped so a list never runs
an unbounded COUNT(*) on a large table.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from console.extensions import db

COUNT_CAP = 10_000
MAX_PAGE_SIZE = 500
# The "per page" choices a list offers (any other size in the address still works).
PAGE_SIZES = (10, 25, 50, 100, 200)


class BadCursor(ValueError):
    pass


def encode_cursor(sort_value, row_id: str) -> str:
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
    raw = json.dumps([value, row_id], default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, sort_is_datetime: bool = True):
    """(sort value, id) from a cursor, or None; BadCursor when it was tampered with."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, row_id = json.loads(raw)
        if sort_is_datetime:
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("cursor time without zone")
        return value, str(row_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise BadCursor("This page link is not valid any more. Start again from the first page.") from exc


def page_size(raw, default: int = 50) -> int:
    try:
        size = int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default
    return max(1, min(size, MAX_PAGE_SIZE))


@dataclass
class Page:
    rows: list
    size: int
    next_cursor: str | None
    total: int | None = None
    total_capped: bool = False

    @property
    def total_label(self) -> str:
        if self.total is None:
            return ""
        return f"more than {COUNT_CAP:,}" if self.total_capped else f"{self.total:,}"


def seek(stmt, sort_column, id_column, cursor, size: int):
    """Apply newest-first ordering and the cursor condition to ``stmt``."""
    if cursor is not None:
        value, row_id = cursor
        stmt = stmt.where(or_(sort_column < value, and_(sort_column == value, id_column < row_id)))
    return stmt.order_by(sort_column.desc(), id_column.desc()).limit(size + 1)


def capped_count(stmt, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """Count the rows ``stmt`` would return, stopping at ``cap``."""
    limited = stmt.order_by(None).limit(cap + 1).subquery()
    total = db.session.scalar(select(func.count()).select_from(limited))
    return min(total, cap), total > cap


def keyset_page(stmt, sort_column, id_column, cursor: str | None, size: int, *,
                count: bool = True, sort_attr: str | None = None, id_attr: str = "id") -> Page:
    """One page of mapped rows from ``stmt`` (a select of one entity), newest first."""
    decoded = decode_cursor(cursor, sort_is_datetime=True)
    rows = list(db.session.scalars(seek(stmt, sort_column, id_column, decoded, size)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, sort_attr or sort_column.key), getattr(last, id_attr))
    total, capped = capped_count(stmt) if count else (None, False)
    return Page(rows=rows, size=size, next_cursor=next_cursor, total=total, total_capped=capped)
