"""Coupons screens: the coupon page (its settings, products shown by SKU and name, the
usage report across databases) and, below, the list.

The coupon lives in discount_db; its products and categories in product_db; its uses'
customers in auth_db and user_db and their orders in order_db (console.screens.usage).
A database other than discount_db being down empties only the parts it feeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import func, select

from console.charts import Chart
from console.exports import CopyExport, int_of, time_of
from console.extensions import db
from console.filters import QueryFilters, choice, date_range, text, where_equal, window_overlaps
from console.lookups import Lookups, database
from console.models.discount import Coupon
from console.models.types import utcnow
from console.screens.lists import ListScreen, Sort
from console.screens import usage
from console.workflows import coupons as flow
from console.workflows.discounts import CENTS, Chosen, chosen


@dataclass
class CouponPage:
    coupon: Coupon
    state: str
    usage_rows: int
    totals: usage.Totals
    chart: Chart | None
    uses: usage.UsesPage
    # Stored ids as SKUs/slugs and names; None when product_db is unavailable.
    products: list[Chosen] | None
    categories: list[Chosen] | None
    excluded: list[Chosen] | None
    unavailable: set[str] = field(default_factory=set)

    @property
    def count_differs(self) -> bool:
        """usage_count (what the discount service checks the limit against) is not the
        number of its usage rows: Recount sets it right."""
        return (self.coupon.usage_count or 0) != self.usage_rows

    @property
    def used(self) -> bool:
        return bool(self.usage_rows or self.coupon.usage_count)


def find(key: str) -> Coupon | None:
    return flow.find(key)


# Paths under /coupons that are not coupon codes.
RESERVED = {"new", "export.csv"}


def coupon_key(coupon) -> str:
    """What a coupon's address holds: its code, or its id when the code is empty or
    reads like another page's path."""
    code = coupon.code or ""
    return coupon.id if not code or code.lower() in RESERVED or "/" in code else code


def coupon_page(coupon: Coupon, *, cursor: str | None = None, size: int = 25) -> CouponPage:
    with database("discount"):
        rows = flow.usage_rows(coupon.id)
    totals = usage.totals("coupon", coupon.id)
    uses = usage.uses_page("coupon", coupon.id, cursor, size)
    lookups = Lookups(detach=False)
    products = lookups.run("product", lambda: chosen("products", coupon.applicable_products), None)
    categories = lookups.run("product", lambda: chosen("categories", coupon.applicable_categories), None)
    excluded = lookups.run("product", lambda: chosen("products", coupon.excluded_products), None)
    down = set(lookups.unavailable) | totals.unavailable | uses.unavailable
    return CouponPage(coupon, flow.state_of(coupon, utcnow()), rows, totals, usage.usage_chart(totals.days), uses,
                      products, categories, excluded, down)


GENERATED_SAMPLE = 20


def generated_batch(batch: str, prefix: str) -> tuple[int, list[str]]:
    """How many coupons one bulk generation wrote, and the first codes (by code). The
    prefix narrows the search through the upper(code) index; the batch id, kept in each
    coupon's metadata, picks that generation out."""
    if not batch or len(batch) > 64 or not batch.isprintable() or len(prefix) > 50 or not prefix.isprintable():
        return 0, []
    stmt = select(Coupon.code).where(flow.batch_condition(batch))
    if prefix:
        stmt = stmt.where(flow.code_prefix_condition(prefix))
    with database("discount"):
        count = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
        sample = list(db.session.scalars(stmt.order_by(Coupon.code).limit(GENERATED_SAMPLE)))
    return count, sample


def coupon_for_form(coupon_id: str) -> Coupon | None:
    with database("discount"):
        return db.session.get(Coupon, coupon_id)


# --- the list ----------------------------------------------------------------------------------

def plain_text(args, name: str, errors: list[str]) -> str:
    """A free-text filter that is plain text (control characters such as NUL refused)."""
    value = text(args, name, errors)
    if value and not value.isprintable():
        errors.append(f"The {name} filter contains a control character: type plain text.")
        return ""
    return value


SOURCES = ("generated", "all")
SOURCE_LABELS = {"": "left out", "generated": "only", "all": "included"}


@dataclass
class CouponFilters(QueryFilters):
    code: str = ""  # the code starts with this (any case): a bulk generation's prefix
    name: str = ""  # part of the name
    type: str = ""
    state: str = ""
    window_from: date | None = None  # the window overlaps these days
    window_to: date | None = None
    batch: str = ""  # one bulk generation (the link offered right after it)
    # Which coupons: made by hand (empty, the default: a batch of thousands of generated
    # codes would bury them; a code looked up is found wherever it came from),
    # "generated" codes, or "all".
    source: str = ""

    FIELDS = ("code", "name", "type", "state", "window_from", "window_to", "batch", "source")

    @classmethod
    def parse(cls, args) -> tuple["CouponFilters", list[str]]:
        errors: list[str] = []
        f = cls(code=plain_text(args, "code", errors), name=plain_text(args, "name", errors),
                batch=plain_text(args, "batch", errors))
        f.type = choice(args, "type", flow.TYPES, "Type", errors)
        f.state = choice(args, "state", flow.STATES, "State", errors)
        f.source = choice(args, "source", SOURCES, "Coupons", errors)
        f.window_from, f.window_to = date_range(args, ("window_from", "Window from"), ("window_to", "Window to"),
                                                errors)
        return f, errors


def coupons_statement(filters: CouponFilters, lookups: Lookups | None = None):
    stmt = select(Coupon)
    if filters.code:
        stmt = stmt.where(flow.code_prefix_condition(filters.code))
    if filters.name:
        stmt = stmt.where(func.lower(Coupon.name).contains(filters.name.lower(), autoescape=True))
    stmt = where_equal(stmt, (Coupon.type, filters.type))
    if filters.state:
        stmt = stmt.where(flow.state_condition(filters.state, utcnow()))
    stmt = window_overlaps(stmt, Coupon.starts_at, Coupon.ends_at, filters.window_from, filters.window_to)
    if filters.batch:  # one generation: its codes whatever the source
        stmt = stmt.where(flow.batch_condition(filters.batch))
    elif filters.source == "generated":
        stmt = stmt.where(flow.generated_condition())
    elif filters.source != "all" and not filters.code:
        stmt = stmt.where(flow.made_by_hand_condition())
    return stmt


@dataclass
class CouponRow:
    coupon: Coupon
    state: str
    discount_given: Decimal


def decorate(coupons: list[Coupon], lookups: Lookups) -> list[CouponRow]:
    now = utcnow()
    return [CouponRow(c, flow.state_of(c, now), Decimal(c.discount_given or 0).quantize(CENTS)) for c in coupons]


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as export_row ---

_COUPONS = Coupon.__table__.c
_EXPORT_COLUMNS = (*(_COUPONS[name] for name in (
    "code", "name", "type", "discount_value", "currency", "minimum_amount", "maximum_discount", "usage_count",
    "usage_limit", "usage_limit_per_user", "starts_at", "ends_at")), Coupon.discount_given.expression,
    _COUPONS.id, _COUPONS.is_active)


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    now = utcnow()
    rows = []
    for (code, name, kind, value, currency, minimum, maximum, used, limit, per_user, starts, ends, given, coupon_id,
         active) in batch:
        state = flow.state_of(SimpleNamespace(is_active=active, starts_at=time_of(starts), ends_at=time_of(ends),
                                              usage_count=int_of(used), usage_limit=int_of(limit)), now)
        rows.append([code, name, state, kind, value, currency, minimum, maximum, used, limit, per_user, starts, ends,
                     Decimal(given or 0).quantize(CENTS), coupon_id])
    return rows


COUPONS = ListScreen(
    name="coupons", noun="coupons", home="discount",
    filters=CouponFilters, statement=coupons_statement, id_column=Coupon.id,
    sorts=(Sort("created", Coupon.created_at, "Created"),
           Sort("code", Coupon.code, "Code", descending=False),
           Sort("usage", Coupon.usage_count, "Usage", numeric=True),
           Sort("ends", Coupon.ends_at, "Ends", descending=False),
           Sort("given", Coupon.discount_given, "Discount given", numeric=True)),
    default_sort="-created", decorate=decorate,
    export_header=("code", "name", "state", "type", "value", "currency", "minimum_amount", "maximum_discount",
                   "usage_count", "usage_limit", "usage_limit_per_user", "starts_at", "ends_at", "discount_given",
                   "coupon_id"),
    export_row=lambda row, lookups: [
        row.coupon.code, row.coupon.name, row.state, row.coupon.type, row.coupon.discount_value, row.coupon.currency,
        row.coupon.minimum_amount, row.coupon.maximum_discount, row.coupon.usage_count, row.coupon.usage_limit,
        row.coupon.usage_limit_per_user, row.coupon.starts_at, row.coupon.ends_at, row.discount_given,
        row.coupon.id],
    export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells))
