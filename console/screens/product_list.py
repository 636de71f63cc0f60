"""The products list: every product with its stock, filtered by SKU or name, status,
stock level, category (with its children) and price, sorted by what is available
(lowest first: the warehouse's view), SKU, name, price, last update, or units sold in
the last 30 days (a ranking from order_db), and exported as CSV.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, or_, select

from console.exports import STREAM_BATCH, CopyExport, Side, int_of
from console.extensions import db
from console.forms import parse_money
from console.filters import QueryFilters, choice, text, where_equal
from console.health import check_bind
from console.lookups import DatabaseUnavailable, Lookups, database
from console.models.product import PRODUCT_STATUSES, Category, Product, ProductCategory, ProductInventory, ProductVariant
from console.models.order import OrderItem
from console.models.types import utcnow
from console.screens.keyset import Page, _segments, capped_count, decode_cursor, encode_cursor
from console.screens.lists import ExportPlan, ListResult, ListScreen, Ordering, Sort, unless_down
from console.screens.products import sold_statement, units_sold
from console.workflows import inventory as stock

STATUSES = PRODUCT_STATUSES
STOCK_LEVELS = stock.STOCK_LEVELS
SOLD_DAYS = 30


@dataclass
class ProductFilters(QueryFilters):
    q: str = ""  # SKU (its start) or name (its start)
    status: str = ""
    stock: str = ""  # in | low | out, by what is available
    category: str = ""  # a category id: it and its children
    price_min: Decimal | None = None
    price_max: Decimal | None = None

    FIELDS = ("q", "status", "stock", "category", "price_min", "price_max")

    @classmethod
    def parse(cls, args) -> tuple["ProductFilters", list[str]]:
        errors: list[str] = []
        f = cls(q=text(args, "q", errors), category=text(args, "category", errors))
        f.status = choice(args, "status", STATUSES, "Status", errors)
        f.stock = choice(args, "stock", STOCK_LEVELS, "Stock", errors)
        f.price_min = _price(args, "price_min", "Price from", errors)
        f.price_max = _price(args, "price_max", "Price to", errors)
        if f.price_min is not None and f.price_max is not None and f.price_min > f.price_max:
            errors.append("“Price from” is more than “Price to”: swap them.")
        return f, errors


def _price(args, name: str, label: str, errors: list[str]) -> Decimal | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        return parse_money(value)
    except ValueError as exc:
        errors.append(f"{label}: {exc}")
        return None


def category_choices() -> list[tuple[str, str]]:
    """(id, "Parent › Child") of every active category, for the filter; empty when
    product_db is down (the list then says so itself)."""
    try:
        with database("product"):
            rows = db.session.execute(select(Category.id, Category.name, Category.parent_id)
                                      .where(Category.is_active.is_not(False))).all()
    except DatabaseUnavailable:
        return []
    names = {cid: name for cid, name, _ in rows}
    labelled = [(cid, (names.get(parent) + " › " if parent in names else "") + (name or cid)) for cid, name, parent in rows]
    return sorted(labelled, key=lambda pair: pair[1])


def category_family(category_id: str) -> list[str]:
    """The category and every category below it (the categories table is small)."""
    children: dict[str | None, list[str]] = {}
    for cid, parent in db.session.execute(select(Category.id, Category.parent_id)):
        children.setdefault(parent, []).append(cid)
    family, todo = [], [category_id]
    while todo:
        current = todo.pop()
        if current in family:
            continue
        family.append(current)
        todo.extend(children.get(current, []))
    return family


def products_statement(filters: ProductFilters, lookups: Lookups | None = None, *, inner: bool = False):
    """Products with their inventory row (a select of both), filtered, not ordered."""
    stmt = select(Product, ProductInventory).join(ProductInventory, ProductInventory.product_id == Product.id,
                                                  isouter=not inner)
    if filters.q:
        term = filters.q
        stmt = stmt.where(or_(Product.sku.startswith(term.upper(), autoescape=True),
                              Product.sku.startswith(term, autoescape=True),
                              func.lower(Product.name).startswith(term.lower(), autoescape=True),
                              Product.id == term))
    stmt = where_equal(stmt, (Product.status, filters.status))
    if filters.stock:
        above, at_most = stock.stock_level_bounds(filters.stock)
        if above is not None:
            stmt = stmt.where(ProductInventory.available_quantity > above)
        if at_most is not None:
            stmt = stmt.where(ProductInventory.available_quantity <= at_most)
    if filters.category:
        stmt = stmt.where(Product.id.in_(select(ProductCategory.product_id).where(
            ProductCategory.category_id.in_(category_family(filters.category)))))
    if filters.price_min is not None:
        stmt = stmt.where(Product.price >= filters.price_min)
    if filters.price_max is not None:
        stmt = stmt.where(Product.price <= filters.price_max)
    return stmt


@dataclass
class ProductRow:
    product: Product
    inventory: ProductInventory | None
    category: str = ""
    variants: int = 0
    sold: int | None = None  # units in the last 30 days; None when order_db is down


def decorate(pairs: list, lookups: Lookups, sold: dict | None = None) -> list[ProductRow]:
    """Categories and variant counts (product_db) and units sold (order_db, one grouped
    query) for a page of (product, inventory) pairs."""
    ids = [p.id for p, _ in pairs]

    def catalog_side():
        names = {}
        for pid, name in db.session.execute(
                select(ProductCategory.product_id, Category.name).join(Category, Category.id == ProductCategory.category_id)
                .where(ProductCategory.product_id.in_(ids)).order_by(Category.level.desc(), Category.name)):
            names.setdefault(pid, name)  # the deepest category first
        counts = dict(db.session.execute(select(ProductVariant.product_id, func.count()).where(
            ProductVariant.product_id.in_(ids)).group_by(ProductVariant.product_id)).all())
        return names, counts

    names, counts = lookups.run("product", lambda: _in_database("product", catalog_side), ({}, {})) if ids else ({}, {})
    if sold is None:
        sold = lookups.run("order", lambda: units_sold(ids, SOLD_DAYS), None) if ids else {}
    return [ProductRow(p, inv, names.get(p.id, ""), counts.get(p.id, 0),
                       None if sold is None else sold.get(p.id, 0)) for p, inv in pairs]


def _in_database(bind_key: str, load):
    with database(bind_key):
        return load()


def _column_sort_value(sort_key: str):
    """How to read the sort value and id of a (product, inventory) row for a cursor."""
    if sort_key == "available":
        return lambda row: (row[1].available_quantity if row[1] is not None else None, row[0].id)
    attr = {"sku": "sku", "name": "name", "price": "price", "updated": "updated_at"}[sort_key]
    return lambda row: (getattr(row[0], attr), row[0].id)


class ProductListScreen(ListScreen):
    """The products list: a ListScreen whose rows join two tables (the sort by available
    reads product_inventory) and whose "units sold" sort ranks by order_db's figures."""

    def load(self, filters, ordering: Ordering, *, size: int, after: str | None = None,
             before: str | None = None) -> ListResult:
        lookups = Lookups()
        if ordering.sort.key == "sold":
            page, sold = self._load_by_sold(filters, ordering, size, after, before, lookups)
        else:
            with database(self.home):
                page = self._load_by_column(filters, ordering, size, after, before)
            sold = None
        rows = decorate(page.rows, lookups, sold)
        return ListResult(page, rows, lookups.unavailable, ordering, self.args(filters, ordering))

    def _load_by_column(self, filters, ordering: Ordering, size, after, before) -> Page:
        key = ordering.sort.key
        inner = key == "available"
        stmt = products_statement(filters, inner=inner)
        # By available: (available, product_inventory.product_id), one index on product_inventory.
        id_column = ProductInventory.product_id if inner else Product.id
        forward = not before
        cursor = decode_cursor(before or after, key)
        rows: list = []
        for condition, order in _segments(ordering.sort.column, id_column, ordering.descending, cursor, forward):
            if len(rows) > size:
                break
            rows.extend(db.session.execute(stmt.where(condition).order_by(*order).limit(size + 1 - len(rows))).all())
        page = _page(rows, size, cursor, forward, key, _column_sort_value(key))
        page.total, page.total_capped = capped_count(stmt.with_only_columns(Product.id))
        return page

    def _load_by_sold(self, filters, ordering: Ordering, size, after, before, lookups: Lookups):
        """Ranked by units sold in the last 30 days: the ranking comes from one grouped
        query on order_db; products in it are read from product_db (with the filters)
        a chunk at a time, then the products that sold nothing, by id."""
        with database("order"):
            ranking = sales_ranking(SOLD_DAYS)
        forward = not before
        cursor = decode_cursor(before or after, "sold")
        # Reading towards more sales when the list is ascending and moving forward, or
        # descending and moving back.
        towards_more = ordering.descending != forward
        sold = {pid: units for units, pid in ranking}

        def ranked(wanted: int) -> list:
            found: list = []
            for chunk in _ranked_chunks(ranking, cursor, towards_more):
                rows = {p.id: (p, inv) for p, inv in db.session.execute(
                    products_statement(filters).where(Product.id.in_(chunk)))}
                found.extend(rows[pid] for pid in chunk if pid in rows)
                if len(found) >= wanted:
                    break
            return found[:wanted]

        with database(self.home):
            # Most sold first: the ranking, then the unsold; fewest first: the other way round.
            first, second = (_unsold, ranked) if towards_more else (ranked, _unsold)
            rows = first(filters, sold, cursor, towards_more, size + 1) if first is _unsold else first(size + 1)
            if len(rows) <= size:
                wanted = size + 1 - len(rows)
                rows += second(filters, sold, cursor, towards_more, wanted) if second is _unsold else second(wanted)
            page = _page(rows, size, cursor, forward, "sold", lambda row: (sold.get(row[0].id, 0), row[0].id))
            page.total, page.total_capped = capped_count(products_statement(filters).with_only_columns(Product.id))
        return page, sold

    # The export: every product in the list's order (by available: an outer join, so
    # products without an inventory record come last).
    def export_plan(self, filters, ordering: Ordering) -> ExportPlan:
        if not check_bind(self.home, db.engines[self.home], with_details=False).up:
            raise DatabaseUnavailable(self.home)
        down = {key for key in self.export_binds if not check_bind(key, db.engines[key], with_details=False).up}
        # Units sold come from another database: that export is in SKU order.
        sort = ordering.sort.column if ordering.sort.key != "sold" else Product.sku
        stmt = products_statement(filters)
        direction = sort.desc() if ordering.descending else sort.asc()
        stmt = stmt.order_by(direction.nulls_last(), Product.id.desc() if ordering.descending else Product.id.asc())
        return ExportPlan(stmt, down)

    def export_blocks(self, plan: ExportPlan, batch_size: int | None = None):
        if self.export_fast is not None:
            yield from super().export_blocks(plan, batch_size)
            return
        # Row by row: (product, inventory) pairs, decorated as a page is.
        batch_size = batch_size or STREAM_BATCH
        lookups = Lookups(plan.down, detach=False)
        result = db.session.execute(plan.stmt.execution_options(yield_per=batch_size))
        for batch in result.partitions(batch_size):
            yield [_export_row(row, lookups) for row in decorate([tuple(r) for r in batch], lookups)]


def _page(rows: list, size: int, cursor, forward: bool, sort_key: str, value_of) -> Page:
    """A Page from the rows read in reading order (size + 1 at most), as keyset_page makes one."""
    more = len(rows) > size
    rows = rows[:size]
    if not forward:
        rows.reverse()

    def mark(row):
        value, row_id = value_of(row)
        return encode_cursor(sort_key, value, row_id)

    page = Page(rows=[tuple(r) for r in rows], size=size)
    if rows:
        page.next_cursor = mark(rows[-1]) if (more if forward else True) else None
        page.previous_cursor = mark(rows[0]) if ((cursor is not None) if forward else more) else None
    return page


_rankings: dict[tuple, tuple[float, list]] = {}


def sales_ranking(days: int = SOLD_DAYS, now: datetime | None = None) -> list[tuple[int, str]]:
    """(units, product id) of every product sold in the last ``days``, most sold first
    (ties by id, descending): one grouped query on order_items, kept for
    ``SALES_RANKING_SECONDS`` (a minute) so paging through the ranking reads it once."""
    keep = current_app.config.get("SALES_RANKING_SECONDS", 60)
    key = (str(db.engines["order"].url), days)
    cached = _rankings.get(key)
    if now is None and keep and cached and time.monotonic() - cached[0] < keep:
        return cached[1]
    since = (now or utcnow()) - timedelta(days=days)
    rows = db.session.execute(sold_statement(since)).all()
    ranking = sorted(((int(units or 0), pid) for pid, units in rows if units), reverse=True)
    if now is None and keep:
        _rankings[key] = (time.monotonic(), ranking)
    return ranking


RANK_CHUNK = 200


def _ranked_chunks(ranking: list[tuple[int, str]], cursor, towards_more: bool):
    """Product ids of the ranking past ``cursor`` in reading order, a chunk at a time.
    Going towards fewer sales (most sold first), the ranking comes before the unsold."""
    if towards_more:
        if cursor is not None and cursor[0] not in (None, 0):
            ordered = [pid for units, pid in reversed(ranking) if (units, pid) > (cursor[0], cursor[1])]
        else:
            ordered = [pid for _, pid in reversed(ranking)]
    else:
        if cursor is not None and cursor[0] in (None, 0):
            return  # past the ranking already, among the unsold
        ordered = [pid for units, pid in ranking if cursor is None or (units, pid) < (cursor[0], cursor[1])]
    for start in range(0, len(ordered), RANK_CHUNK):
        yield ordered[start:start + RANK_CHUNK]


def _unsold(filters, sold: dict, cursor, towards_more: bool, wanted: int) -> list:
    """Products that sold nothing, by id (descending when going towards fewer sales),
    skipping the ranked ones, past the cursor."""
    if towards_more and cursor is not None and cursor[0] not in (None, 0):
        return []  # the unsold come before every ranked product in this direction
    found: list = []
    bound = cursor[1] if cursor is not None and cursor[0] in (None, 0) else None
    while len(found) < wanted:
        stmt = products_statement(filters)
        if bound is not None:
            stmt = stmt.where(Product.id > bound if towards_more else Product.id < bound)
        batch = db.session.execute(stmt.order_by(Product.id.asc() if towards_more else Product.id.desc())
                                   .limit(max(wanted * 2, 100))).all()
        if not batch:
            break
        found.extend(row for row in batch if row[0].id not in sold)
        bound = batch[-1][0].id
    return found[:wanted]


def _export_row(row: ProductRow, lookups: Lookups) -> list:
    p, inv = row.product, row.inventory
    return [p.sku, p.name, p.status, "yes" if p.is_visible else "no", p.price, p.compare_at_price,
            inv.quantity if inv else None, inv.reserved_quantity if inv else None,
            inv.available_quantity if inv else None, stock.stock_level(inv.available_quantity if inv else None),
            p.stock_status, inv.location if inv else None, row.category,
            row.variants, unless_down(lookups, "order", row.sold), p.updated_at, p.id]


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as _export_row ---

_PRODUCTS, _INVENTORY, _LINKS, _CATEGORIES, _VARIANTS = (
    Product.__table__.c, ProductInventory.__table__.c, ProductCategory.__table__.c, Category.__table__.c,
    ProductVariant.__table__.c)
_EXPORT_COLUMNS = (
    *(_PRODUCTS[name] for name in ("sku", "name", "status", "is_visible", "price", "compare_at_price")),
    *(_INVENTORY[name] for name in ("quantity", "reserved_quantity", "available_quantity")),
    _PRODUCTS.stock_status, _INVENTORY.location, _PRODUCTS.updated_at, _PRODUCTS.id)


def _by_product(batch) -> list:
    return [row[12] for row in batch]


_EXPORT_SIDES = {
    # The deepest category first, as decorate() names it.
    "categories": Side("product", _by_product, lambda ids, among: select(_LINKS.product_id, _CATEGORIES.name)
                       .join(Category.__table__, _CATEGORIES.id == _LINKS.category_id)
                       .where(among(_LINKS.product_id, ids)).order_by(_CATEGORIES.level.desc(), _CATEGORIES.name)),
    "variants": Side("product", _by_product, lambda ids, among: select(_VARIANTS.product_id, func.count())
                     .where(among(_VARIANTS.product_id, ids)).group_by(_VARIANTS.product_id)),
    "sold": Side("order", _by_product, lambda ids, among: sold_statement(utcnow() - timedelta(days=SOLD_DAYS))
                 .where(among(OrderItem.__table__.c.product_id, ids))),
}


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    categories, variants, sold = found["categories"], found["variants"], found["sold"]
    sold_down = lookups.down("order")
    rows = []
    for sku, name, status, visible, price, compare_at, on_hand, reserved, available, stock_status, location, \
            updated, product_id in batch:
        category, count, units = categories.get(product_id), variants.get(product_id), sold.get(product_id)
        rows.append([sku, name, status, "yes" if visible else "no", price, compare_at, on_hand, reserved, available,
                     stock.stock_level(int_of(available)), stock_status, location, category[0][1] if category else "",
                     count[0][1] if count else 0, "unavailable" if sold_down else int(units[0][1] or 0) if units else 0,
                     updated, product_id])
    return rows


PRODUCTS = ProductListScreen(
    name="products", noun="products", home="product",
    filters=ProductFilters, statement=products_statement, id_column=Product.id,
    sorts=(Sort("available", ProductInventory.available_quantity, "Available", descending=False, numeric=True),
           Sort("sku", Product.sku, "SKU", descending=False),
           Sort("name", Product.name, "Name", descending=False),
           Sort("price", Product.price, "Price", numeric=True),
           Sort("updated", Product.updated_at, "Updated"),
           Sort("sold", Product.purchase_count, f"Sold {SOLD_DAYS} d", numeric=True)),
    default_sort="available", decorate=decorate,
    export_header=("sku", "name", "status", "visible", "price", "compare_at_price", "on_hand", "reserved",
                   "available", "stock", "stock_status", "location", "category", "variants", f"units_sold_{SOLD_DAYS}d",
                   "updated_at", "product_id"),
    export_row=_export_row, export_binds=("order",),
    export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells, _EXPORT_SIDES),
)
