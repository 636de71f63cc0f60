"""Query-string filters shared by the list screens (orders, returns, refunds).

A list's filters are a dataclass built from ``request.args``: each value that can't be
used adds a message to ``errors`` (shown above the table with a 400) instead of being
applied. The filters go back into links and the CSV export through ``as_args()``.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select

from console.extensions import db
from console.forms import control_character
from console.localtime import start_of_day
from console.lookups import database
from console.models.auth import User
from console.models.order import Order
from console.models.user import UserProfile, full_name_expression

# A customer filter turns into a list of ids for an IN query; past this many the filter
# is too broad to be useful and the staff member is asked to narrow it.
MAX_MATCHES = 1000
# Longest free-text filter value: longer is a pasted mistake, not a search.
MAX_TEXT = 200


class FilterError(ValueError):
    """A filter that can't be applied as given; the message tells the staff member why."""


class QueryFilters:
    """Base of a list's filters dataclass; FIELDS names its query-string values in order."""

    FIELDS: tuple[str, ...] = ()

    def as_args(self) -> dict[str, str]:
        """The non-empty filters as query-string values (for links and the export)."""
        values = {}
        for name in self.FIELDS:
            value = getattr(self, name)
            if value not in (None, ""):
                values[name] = value.isoformat() if isinstance(value, date) else str(value)
        return values

    def without(self, name: str) -> dict[str, str]:
        return {k: v for k, v in self.as_args().items() if k != name}

    @property
    def filtered(self) -> bool:
        """Whether any filter is set (named so that no filter field can hide it)."""
        return bool(self.as_args())


def like_escape(term: str) -> str:
    """``term`` with LIKE's wildcards escaped (use with ``escape="\\"``)."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def quoted(value: str, limit: int = 40) -> str:
    """A refused value as a message repeats it: the start of it, on one line."""
    shown = "".join(ch if ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in value[:limit])
    return f"“{shown}…”" if len(value) > limit else f"“{shown}”"


def choice(args, name, allowed, label, errors) -> str:
    value = (args.get(name) or "").strip()
    if value and value not in allowed:
        errors.append(f"{label} {quoted(value)} is not one of: {', '.join(allowed)}.")
        return ""
    return value


def text(args, name, errors) -> str:
    value = (args.get(name) or "").strip()
    if len(value) > MAX_TEXT:
        errors.append(f"The {name} filter is too long ({MAX_TEXT} characters at most).")
        return ""
    if control_character(value) is not None:
        # PostgreSQL refuses NUL in a parameter; no id, number or name holds a control character.
        errors.append(f"The {name} filter contains a control character; type plain text.")
        return ""
    return value


# "Contains" is answered through trigram indexes (console/models/user.py, auth.py), and a
# trigram is three characters: a shorter part of a name or email has none to look up, so
# PostgreSQL read every customer to find it (80 ms at 100,000 customers, for a pair of
# letters few names hold).
CONTAINED_MIN = 3


def contained_text(args, name: str, what: str, errors) -> str:
    """A filter matched anywhere inside ``what`` through trigram indexes: CONTAINED_MIN
    characters at least."""
    value = text(args, name, errors)
    if value and len(value.strip()) < CONTAINED_MIN:
        errors.append(f"Type at least {CONTAINED_MIN} characters of {what}.")
    return value


def customer_text(args, errors) -> str:
    """The customer filter: part of an email or name."""
    return contained_text(args, "customer", "the customer's email or name", errors)


def day(args, name, label, errors) -> date | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"{label} {quoted(value)} is not a date (use YYYY-MM-DD).")
        return None


def date_range(args, first: tuple[str, str], last: tuple[str, str], errors) -> tuple[date | None, date | None]:
    """Two dates from (name, label) pairs, refused when the first is after the last."""
    start, end = day(args, *first, errors), day(args, *last, errors)
    if start and end and start > end:
        errors.append(f"“{first[1]}” is after “{last[1]}”: swap the dates.")
    return start, end


def start_of(value: date) -> datetime:
    """When the store-local day ``value`` begins, in UTC (CONSOLE_TIMEZONE)."""
    return start_of_day(value)


def within_days(stmt, column, first: date | None, last: date | None):
    """``stmt`` limited to rows whose ``column`` falls on ``first`` … ``last``: whole days
    in the store's zone, turned into UTC bounds (so an index on ``column`` serves it)."""
    if first:
        stmt = stmt.where(column >= start_of(first))
    if last:
        stmt = stmt.where(column < start_of(last + timedelta(days=1)))
    return stmt


def window_overlaps(stmt, starts, ends, first: date | None, last: date | None):
    """``stmt`` limited to rows whose window (``starts`` … ``ends``, either open when
    empty) overlaps the days ``first`` … ``last``: a coupon's or promotion's window."""
    if last:
        stmt = stmt.where(or_(starts.is_(None), starts < start_of(last + timedelta(days=1))))
    if first:
        stmt = stmt.where(or_(ends.is_(None), ends >= start_of(first)))
    return stmt


def where_equal(stmt, *pairs):
    """``stmt`` limited, for each ``(column, value)`` whose value was given, to rows
    where ``column`` equals it: the plain choice filters of a list."""
    for column, value in pairs:
        if value:
            stmt = stmt.where(column == value)
    return stmt


def customer_ids(term: str) -> list[str]:
    """Auth user ids whose email (auth_db, or the profile copy) or name (user_db) contains ``term``."""
    term = term.lower()
    ids: dict[str, None] = {}
    with database("auth"):
        ids.update(dict.fromkeys(db.session.scalars(
            select(User.id).where(func.lower(User.email).contains(term, autoescape=True)).limit(MAX_MATCHES + 1))))
    with database("user"):
        ids.update(dict.fromkeys(db.session.scalars(
            select(UserProfile.user_id).where(or_(
                full_name_expression().contains(term, autoescape=True),
                func.lower(UserProfile.email).contains(term, autoescape=True)))
            .limit(MAX_MATCHES + 1))))
    ids.pop(None, None)
    if len(ids) > MAX_MATCHES:
        raise FilterError(f"“{term}” matches more than {MAX_MATCHES:,} customers. "
                          "Type more of the email or name.")
    return list(ids)


def order_ids_numbered(number: str) -> list[str]:
    """Ids of orders numbered ``number`` (any case); the value itself when none is, so an
    order id typed into the filter matches too."""
    with database("order"):
        ids = list(db.session.scalars(select(Order.id).where(func.upper(Order.order_number) == number.upper())))
    return ids or [number]
