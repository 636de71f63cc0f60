"""The product screens' reading side: the product page (details, variants, the stock
card, adjustment and price history, open orders reserving it, returns of it, reviews
and questions, waiting back-in-stock alerts, sales) and the figures the list adds to
each page of products (units sold, from order_db).

Each database is read once per page; one that is down empties only its panels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_

from console.extensions import db
from console.screens.keyset import BadCursor, decode_cursor, encode_cursor  # noqa: F401 - BadCursor for the views
from console.lookups import DatabaseUnavailable, Lookups, database, fetch_in
from console.models.auth import SecurityAuditLog, User
from console.models.order import Order, OrderItem
from console.models.product import (Category, Product, ProductCategory, ProductImage, ProductInventory,
                                    ProductPriceHistory, ProductQuestion, ProductReview, ProductTag,
                                    ProductVariant)
from console.models.returns import ReturnItem, ReturnRequest
from console.models.types import json_text, utcnow
from console.workflows import inventory as stock
from console.workflows import catalog, stock_alerts

OPEN_ORDER_STATUSES = ("pending", "confirmed", "processing")
PRODUCT_ACTIONS = ("inventory.changed", "product.price_changed", "product.status_changed",
                   "product.visibility_changed", "product.stock_alerts_notified")
HISTORY_ROWS = 50
PANEL_ROWS = 20


def find_product(key: str) -> Product | None:
    """The product whose id or SKU is ``key`` (SKU in any case)."""
    key = (key or "").strip()
    if not key or len(key) > 200 or not key.isprintable():
        return None  # no id or SKU holds control characters (and PostgreSQL refuses NUL)
    with database("product"):
        found = db.session.scalar(select(Product).where(Product.id == key)) or \
            db.session.scalar(select(Product).where(Product.sku == key)) or \
            db.session.scalar(select(Product).where(func.upper(Product.sku) == key.upper()).limit(1))
    return found


def sold_statement(since: datetime):
    """(product id, units) on order lines since ``since``, cancelled orders aside, grouped
    by product: add a product filter. The lines come from one index
    (order_items (product_id, created_at) with the quantity), the cancelled orders of the
    window are one small hashed set, so no line is joined to its order one by one."""
    cancelled = select(Order.id).where(Order.status == "cancelled", Order.created_at >= since - timedelta(days=1))
    return (select(OrderItem.product_id, func.sum(OrderItem.quantity))
            .where(OrderItem.created_at >= since, OrderItem.product_id.is_not(None),
                   OrderItem.order_id.not_in(cancelled))
            .group_by(OrderItem.product_id))


def units_sold(product_ids, days: int = 30, now: datetime | None = None) -> dict[str, int]:
    """Units of each product on orders placed in the last ``days`` (cancelled orders
    aside): one grouped query on order_items for a page of products."""
    ids = [p for p in dict.fromkeys(product_ids) if p]
    if not ids:
        return {}
    since = (now or utcnow()) - timedelta(days=days)
    with database("order"):
        rows = db.session.execute(sold_statement(since).where(OrderItem.product_id.in_(ids))).all()
    return {pid: int(total or 0) for pid, total in rows}


# --- history -------------------------------------------------------------------------------

@dataclass
class HistoryEntry:
    log: SecurityAuditLog
    staff: object  # User, Missing or None

    @property
    def meta(self) -> dict:
        return self.log.metadata_ if isinstance(self.log.metadata_, dict) else {}

    @property
    def before(self) -> dict:
        return self.meta.get("before") or {}

    @property
    def after(self) -> dict:
        return self.meta.get("after") or {}

    @property
    def reason(self) -> str:
        reason = self.meta.get("reason") or ""
        return stock.REASONS.get(reason, reason)

    @property
    def kind(self) -> str:
        return self.meta.get("kind") or ""

    @property
    def delta(self) -> int | None:
        return self.meta.get("delta")


def stock_history(product_id: str | None = None, staff_id: str | None = None,
                  limit: int = HISTORY_ROWS) -> list[HistoryEntry]:
    """Stock changes, newest first, of one product or by one staff member (each read
    from its own index of the audit trail)."""
    log = SecurityAuditLog
    stmt = select(log).where(log.action == stock.HISTORY_ACTION)
    if product_id:
        stmt = stmt.where(json_text(log.metadata_, "entity_id") == product_id)
    if staff_id:
        stmt = stmt.where(log.user_id == staff_id)
    with database("auth"):
        rows = list(db.session.scalars(stmt.order_by(log.created_at.desc(), log.id.desc()).limit(limit)))
        staff = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_({r.user_id for r in rows if r.user_id})))}
    return [HistoryEntry(r, staff.get(r.user_id)) for r in rows]


# --- the product page ------------------------------------------------------------------------

@dataclass
class Reservation:
    order: Order
    quantity: int


@dataclass
class ProductPage:
    product: Product
    inventory: ProductInventory | None = None
    variants: list[ProductVariant] = field(default_factory=list)
    categories: list[tuple[Category, Category | None]] = field(default_factory=list)  # (category, its parent)
    tags: list[str] = field(default_factory=list)
    images: list[ProductImage] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    prices: list[ProductPriceHistory] = field(default_factory=list)
    price_staff: dict = field(default_factory=dict)
    reservations: list[Reservation] = field(default_factory=list)
    returns: list[tuple[ReturnItem, ReturnRequest | None]] = field(default_factory=list)
    reviews: list[ProductReview] = field(default_factory=list)
    questions: list[ProductQuestion] = field(default_factory=list)
    alerts: stock_alerts.Readiness | None = None
    sales: dict[int, int] = field(default_factory=dict)  # days -> units
    reserved_units: int = 0
    unavailable: set[str] = field(default_factory=set)

    @property
    def available(self) -> int:
        return (self.inventory.available_quantity or 0) if self.inventory else 0

    @property
    def has_variants(self) -> bool:
        return bool(self.variants)


def _catalog(page: ProductPage) -> None:
    pid = page.product.id
    page.inventory = db.session.scalar(select(ProductInventory).where(ProductInventory.product_id == pid))
    page.variants = list(db.session.scalars(select(ProductVariant).where(ProductVariant.product_id == pid)
                                            .order_by(ProductVariant.sku)))
    categories = list(db.session.scalars(select(Category).join(ProductCategory, ProductCategory.category_id == Category.id)
                                         .where(ProductCategory.product_id == pid).order_by(Category.level, Category.name)))
    parents = {c.id: c for c in db.session.scalars(select(Category).where(
        Category.id.in_({c.parent_id for c in categories if c.parent_id})))}
    page.categories = [(c, parents.get(c.parent_id)) for c in categories]
    page.tags = sorted(t for t in db.session.scalars(select(ProductTag.tag).where(ProductTag.product_id == pid)) if t)
    page.images = list(db.session.scalars(select(ProductImage).where(ProductImage.product_id == pid)
                                          .order_by(ProductImage.sort_order, ProductImage.id)))
    page.prices = list(db.session.scalars(select(ProductPriceHistory).where(ProductPriceHistory.product_id == pid)
                                          .order_by(ProductPriceHistory.created_at.desc()).limit(PANEL_ROWS)))
    page.reviews = list(db.session.scalars(select(ProductReview).where(ProductReview.product_id == pid)
                                           .order_by(ProductReview.created_at.desc()).limit(PANEL_ROWS)))
    page.questions = list(db.session.scalars(select(ProductQuestion).where(ProductQuestion.product_id == pid)
                                             .order_by(ProductQuestion.created_at.desc()).limit(PANEL_ROWS)))
    page.alerts = stock_alerts.readiness(pid)


def _orders(page: ProductPage, now: datetime) -> None:
    pid = page.product.id
    rows = db.session.execute(
        select(Order, OrderItem.quantity).join(OrderItem, OrderItem.order_id == Order.id)
        .where(OrderItem.product_id == pid, Order.status.in_(OPEN_ORDER_STATUSES))
        .order_by(Order.created_at).limit(PANEL_ROWS)).all()
    page.reservations = [Reservation(order, quantity or 0) for order, quantity in rows]
    for days in (30, 90):
        page.sales[days] = units_sold([pid], days, now).get(pid, 0)


def _returns(page: ProductPage) -> None:
    rows = db.session.execute(
        select(ReturnItem, ReturnRequest).outerjoin(ReturnRequest, ReturnRequest.id == ReturnItem.return_request_id)
        .where(ReturnItem.product_id == page.product.id)
        .order_by(ReturnRequest.created_at.desc()).limit(PANEL_ROWS)).all()
    page.returns = [(item, request) for item, request in rows]


def product_page(product: Product, now: datetime | None = None) -> ProductPage:
    now = now or utcnow()
    page = ProductPage(product)
    lookups = Lookups(detach=False)

    def run(bind_key: str, load) -> None:
        def guarded():
            with database(bind_key):
                load()
        lookups.run(bind_key, guarded, None)

    run("product", lambda: _catalog(page))
    run("order", lambda: _orders(page, now))
    run("return", lambda: _returns(page))

    def staff_and_history():
        page.history = stock_history(product.id)
        ids = {p.changed_by for p in page.prices if p.changed_by}
        page.price_staff = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    run("auth", staff_and_history)
    page.unavailable = set(lookups.unavailable)
    return page


def customers_of(user_ids) -> dict[str, User]:
    """Auth users by id for review and question authors (empty when auth_db is down)."""
    try:
        return {u.id: u for u in fetch_in("auth", "users", "id", user_ids)}
    except DatabaseUnavailable:
        return {}


# --- the moderation queue --------------------------------------------------------------------

QUEUE_ROWS = 50


@dataclass
class ModerationQueue:
    reviews: list[ProductReview]
    questions: list[ProductQuestion]
    products: dict[str, Product]
    reviews_next: str | None
    questions_next: str | None


def _oldest_first(model, waiting, cursor: str | None):
    stmt = select(model).where(waiting)
    decoded = decode_cursor(cursor, "created")
    if decoded is not None:
        stmt = stmt.where(tuple_(model.created_at, model.id) > tuple_(*decoded))
    rows = list(db.session.scalars(stmt.order_by(model.created_at, model.id).limit(QUEUE_ROWS + 1)))
    last = rows[QUEUE_ROWS - 1] if len(rows) > QUEUE_ROWS else None
    following = encode_cursor("created", last.created_at, last.id) if last is not None else None
    return rows[:QUEUE_ROWS], following


def moderation_queue(reviews_after: str | None = None, questions_after: str | None = None) -> ModerationQueue:
    """Reviews waiting for approval and questions waiting for an answer, oldest first,
    a page of each (each read from its own partial index)."""
    with database("product"):
        reviews, reviews_next = _oldest_first(ProductReview, catalog.review_waiting(), reviews_after)
        questions, questions_next = _oldest_first(ProductQuestion, catalog.question_waiting(), questions_after)
        ids = {r.product_id for r in reviews} | {q.product_id for q in questions}
        products = {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(ids)))} if ids else {}
    return ModerationQueue(reviews, questions, products, reviews_next, questions_next)
