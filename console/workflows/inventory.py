"""Stock and catalog changes in product_db, each in one locked transaction.

The stock of a product lives in three places the shop reads, kept in step by every
change here:

- ``product_inventory``: quantity (on hand), reserved_quantity (held by open orders)
  and available_quantity (= on hand - reserved), its location, last restocked;
- ``products.stock_quantity`` / ``stock_status``: the product's on-hand quantity, and
  whether the shop may sell it (``stock_status()``, from what is available);
- ``product_variants.stock_quantity`` / ``stock_status``: each variant's own on-hand
  quantity; a product's variants add up to its on-hand quantity.

"Low stock" is the console's own view of what is available, not a value the shop
stores: ``stock_level()`` says it for a number, ``stock_level_bounds()`` for a query,
and every screen (the badge, the products filter, the dashboard, the export) uses them.

Every change locks the inventory, product and variant rows (``FOR UPDATE`` on
PostgreSQL, in product id order so two changes sharing products cannot deadlock),
refuses a result below zero or below what is reserved, writes the three stores and one
``inventory.changed`` row per product in the audit trail (the stock history: who, when,
why, before -> after, and the order or return behind it), then commits. Many products
at once (a bulk update) cost a few statements per thousand rows, not one per row.

Callers that change stock as one step of a larger action (order cancel, return
receive) keep their own durable marker so a repeated action changes it once; these
functions only make each single change correct under concurrency.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from console import audit
from console.extensions import db
from console.forms import parse_whole_number
from console.lookups import chunks, database
from console.models.product import STOCK_STATUSES, Product, ProductInventory, ProductVariant
from console.models.types import utcnow
from console.workflows import WorkflowError

LOW_STOCK = 5
HISTORY_ACTION = "inventory.changed"

# Why staff change stock by hand: code -> label. Changes made by workflows (an order
# cancelled, a return received) record their own sentence instead.
REASONS = {
    "correction": "Correction",
    "cycle_count": "Cycle count",
    "received": "Received",
    "damaged": "Damaged",
    "theft_or_loss": "Theft or loss",
    "promotion_or_donation": "Promotion or donation",
    "return_restock": "Return restock",
}
MODES = ("add", "remove", "set")
MAX_QUANTITY = 1_000_000  # more than any shelf holds: a typo, not a count
MAX_NOTE = 500
MAX_LOCATION = 64


class StockError(WorkflowError):
    """A change that would take stock below zero or below what is reserved, or stock
    that does not exist."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message, status)


def stock_status(available: int, current: str | None = None) -> str:
    """The shop's stockStatus (STOCK_STATUSES) for ``available`` units (a variant: its own
    units). Backorder is the shop's choice for a product; the console keeps it while
    nothing is available."""
    if available > 0:
        return STOCK_STATUSES.IN_STOCK
    return STOCK_STATUSES.BACKORDER if current == STOCK_STATUSES.BACKORDER else STOCK_STATUSES.OUT_OF_STOCK


# The console's stock levels and how a badge reads them.
STOCK_LEVELS = ("in", "low", "out")
STOCK_LEVEL_LABELS = {"in": "in stock", "low": "low stock", "out": "out of stock"}


def low_stock_threshold() -> int:
    """Available at or below this is low stock (``CONSOLE_LOW_STOCK``, default 5)."""
    return int(current_app.config.get("LOW_STOCK_THRESHOLD", LOW_STOCK))


def stock_level_bounds(level: str) -> tuple[int | None, int | None]:
    """(above, at most) available units of a level: "out" is none available, "low" at
    most the threshold (none available included: the warehouse's low-stock view is
    what needs restocking), "in" more than the threshold."""
    threshold = low_stock_threshold()
    return {"in": (threshold, None), "low": (None, threshold), "out": (None, 0)}[level]


def stock_level(available: int | None) -> str | None:
    """The badge of ``available`` units: "out", "low" or "in" (None without a figure).
    The narrowest level that holds it, so a badge inside the low view reads low or out."""
    if available is None:
        return None
    for level in ("out", "low", "in"):
        above, at_most = stock_level_bounds(level)
        if (above is None or available > above) and (at_most is None or available <= at_most):
            return level
    return None


def clean_text(value, what: str, limit: int, *, required: bool = False) -> str | None:
    """Free text from staff: trimmed, at most ``limit`` characters, no NUL or other
    control characters (line breaks aside); None when empty and not required."""
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise WorkflowError(f"Type {what} as text.", 422)
    if not text:
        if required:
            raise WorkflowError(f"Give {what}.", 422)
        return None
    if len(text) > limit:
        raise WorkflowError(f"Keep {what} to {limit} characters (it has {len(text):,}).", 422)
    if any(ord(c) < 32 and c not in "\n\r\t" or ord(c) == 127 for c in text):
        raise WorkflowError(f"{what.capitalize()} contains control characters; type plain text.", 422)
    return text


# --- the locked stock of a set of products -------------------------------------------------

@dataclass
class Stock:
    """One product's stock as read under lock; changed in memory, then saved."""

    product_id: str
    sku: str | None
    name: str | None
    inventory_id: str
    quantity: int
    reserved: int
    location: str | None
    variants: dict[str, list] = field(default_factory=dict)  # id -> [sku, stock quantity, stock status]
    status: str | None = None  # the product's stockStatus as read
    restocked: bool = False
    variants_changed: set[str] = field(default_factory=set)

    @property
    def available(self) -> int:
        return self.quantity - self.reserved

    def snapshot(self, variant_id: str | None = None) -> dict:
        values = {"quantity": self.quantity, "reserved": self.reserved, "available": self.available}
        if variant_id and variant_id in self.variants:
            values["variant_quantity"] = self.variants[variant_id][1]
        return values


def lock_stock(product_ids, *, lock: bool = True) -> dict[str, Stock]:
    """The inventory, product and variant rows of ``product_ids``, locked in product id
    order (one statement per table per thousand products; ``lock=False`` only reads,
    for a dry run). Products without an inventory record are absent."""
    ids = sorted({p for p in product_ids if p})
    found: dict[str, Stock] = {}

    def locked(stmt):
        return stmt.with_for_update() if lock else stmt

    for chunk in chunks(ids):
        for row in db.session.execute(locked(
                select(ProductInventory.id, ProductInventory.product_id, ProductInventory.quantity,
                       ProductInventory.reserved_quantity, ProductInventory.location)
                .where(ProductInventory.product_id.in_(chunk)).order_by(ProductInventory.product_id))):
            found[row.product_id] = Stock(row.product_id, None, None, row.id, row.quantity or 0,
                                          row.reserved_quantity or 0, row.location)
        for row in db.session.execute(locked(
                select(Product.id, Product.sku, Product.name, Product.stock_status)
                .where(Product.id.in_(chunk)).order_by(Product.id))):
            if row.id in found:
                found[row.id].sku, found[row.id].name, found[row.id].status = row.sku, row.name, row.stock_status
        for row in db.session.execute(locked(
                select(ProductVariant.id, ProductVariant.product_id, ProductVariant.sku,
                       ProductVariant.stock_quantity, ProductVariant.stock_status)
                .where(ProductVariant.product_id.in_(chunk)).order_by(ProductVariant.id))):
            if row.product_id in found:
                found[row.product_id].variants[row.id] = [row.sku, row.stock_quantity or 0, row.stock_status]
    return found


def move(stock: Stock, *, on_hand: int = 0, reserved: int = 0, variant_id: str | None = None,
         set_to: int | None = None, strict: bool = True) -> tuple[dict, dict]:
    """Apply one change to ``stock`` in memory: ``set_to`` (the counted quantity, of the
    variant when one is named) or ``on_hand``/``reserved`` added (negative removes).
    Returns (before, after); StockError when the result can't be. ``strict``: a product
    with variants needs the variant named for an on-hand change (staff changes); the
    workflows' own changes (a return restocked without a variant) pass False."""
    label = stock.sku or stock.product_id
    variant = stock.variants.get(variant_id) if variant_id else None
    if variant_id and variant is None and strict:
        raise StockError(f"{label} has no variant {variant_id}.", 422)
    if set_to is not None:
        on_hand = set_to - (variant[1] if variant is not None else stock.quantity)
    if strict and on_hand and stock.variants and variant is None:
        raise StockError(f"{label} has variants: change the stock of one of them "
                         f"({', '.join(sorted(v[0] or k for k, v in stock.variants.items())[:5])}).", 422)
    before = stock.snapshot(variant_id)
    quantity, held = stock.quantity + on_hand, stock.reserved + reserved
    if quantity < 0 or held < 0:
        raise StockError(f"{label}: that would leave {quantity} on hand, below zero. "
                         f"There are {stock.quantity} on hand.")
    if held > quantity:
        raise StockError(f"{label}: that would leave {quantity} on hand, below the {held} reserved by "
                         f"open orders. At most {max(stock.quantity - held, 0)} can be removed.")
    if variant is not None and on_hand:
        if variant[1] + on_hand < 0:
            raise StockError(f"{variant[0] or variant_id}: that would leave {variant[1] + on_hand} of this "
                             f"variant, below zero. There are {variant[1]}.")
        variant[1] += on_hand
        stock.variants_changed.add(variant_id)
    stock.quantity, stock.reserved = quantity, held
    if on_hand > 0:
        stock.restocked = True
    return before, stock.snapshot(variant_id)


# What save() and change_stock() write, for a workflow's up-front drift check (console/drift.py).
STOCK_WRITES = (
    (ProductInventory, "quantity", "reserved_quantity", "available_quantity", "location", "updated_at",
     "last_restocked_at"),
    (Product, "stock_quantity", "stock_status", "updated_at"),
    (ProductVariant, "stock_quantity", "stock_status", "updated_at"),
    audit.AUDIT_ROW,
)


def save(stocks: list[Stock], now: datetime | None = None) -> None:
    """Write the three stores of every stock in ``stocks`` (as changed by move()): one
    executemany per table, in the session's product_db transaction."""
    now = now or utcnow()
    if not stocks:
        return
    inventory = [{"id": s.inventory_id, "quantity": s.quantity, "reserved_quantity": s.reserved,
                  "available_quantity": s.available, "location": s.location, "updated_at": now}
                 for s in stocks]
    restocked = [{"id": s.inventory_id, "last_restocked_at": now} for s in stocks if s.restocked]
    products = [{"id": s.product_id, "stock_quantity": s.quantity,
                 "stock_status": stock_status(s.available, s.status), "updated_at": now} for s in stocks]
    variants = [{"id": vid, "stock_quantity": s.variants[vid][1],
                 "stock_status": stock_status(s.variants[vid][1], s.variants[vid][2]), "updated_at": now}
                for s in stocks for vid in sorted(s.variants_changed)]
    db.session.execute(update(ProductInventory), inventory)
    if restocked:
        db.session.execute(update(ProductInventory), restocked)
    db.session.execute(update(Product), products)
    if variants:
        db.session.execute(update(ProductVariant), variants)


def history_entry(stock: Stock, before: dict, after: dict, variant_id: str | None, **details) -> dict:
    """One ``inventory.changed`` audit row's fields for a product's stock change."""
    variant = stock.variants.get(variant_id) if variant_id else None
    extra = {"sku": stock.sku, "variant_id": variant_id, "variant_sku": variant[0] if variant else None,
             "delta": after["quantity"] - before["quantity"], **details}
    return {"entity": "product", "entity_id": stock.product_id, "before": before, "after": after,
            **{k: v for k, v in extra.items() if v is not None}}


# --- one product -------------------------------------------------------------------------

@dataclass
class StockChange:
    product_id: str
    quantity: int
    reserved: int
    available: int
    before: dict = field(default_factory=dict)
    sku: str | None = None
    variant_id: str | None = None

    @property
    def was_sold_out(self) -> bool:
        return self.before.get("available", 0) <= 0 < self.available


def change_stock(actor, product_id: str, *, on_hand: int = 0, reserved: int = 0,
                 variant_id: str | None = None, reason: str, reference: str | None = None,
                 commit: bool = True, set_to: int | None = None, strict: bool = False,
                 location: str | None = None, **details) -> StockChange:
    """Add ``on_hand`` to the quantity and ``reserved`` to the reservation (negative
    values remove), or set the counted quantity (``set_to``), with the rows locked.
    ``details`` (kind, note, order_number, rma_number, …) go into the history entry."""
    stock = lock_stock([product_id]).get(product_id)
    if stock is None:
        db.session.rollback()
        raise StockError(f"product {product_id} has no inventory record", 404)
    try:
        before, after = move(stock, on_hand=on_hand, reserved=reserved, variant_id=variant_id,
                             set_to=set_to, strict=strict)
    except StockError:
        db.session.rollback()
        raise
    if location:
        stock.location = location
    save([stock])
    audit.record(actor, HISTORY_ACTION, **history_entry(stock, before, after, variant_id, reason=reason,
                                                         reference=reference, location=location, **details))
    if commit:
        db.session.commit()
    return StockChange(product_id, stock.quantity, stock.reserved, stock.available, before, stock.sku, variant_id)


def parse_count(raw, what: str = "the quantity") -> int:
    """A whole number of units (ASCII digits only, at most MAX_QUANTITY), as the forms parse it."""
    try:
        return parse_whole_number(raw, 0, MAX_QUANTITY, what)
    except ValueError as exc:
        raise WorkflowError(str(exc), 422) from None


def adjust_stock(actor, product_id: str, *, mode: str, quantity, reason: str, note: str | None = None,
                 location: str | None = None, variant_id: str | None = None) -> StockChange:
    """Staff's stock adjustment: add or remove ``quantity`` units, or set the counted
    quantity, for a reason from REASONS. Refused (nothing written) when the result would
    be below zero or below what open orders reserve."""
    if mode not in MODES:
        raise WorkflowError("Choose add, remove or set.", 422)
    if reason not in REASONS:
        raise WorkflowError("Choose a reason from the list.", 422)
    count = parse_count(quantity)
    if mode != "set" and count == 0:
        raise WorkflowError(f"Type how many units to {mode} (1 or more).", 422)
    note = clean_text(note, "the note", MAX_NOTE)
    location = clean_text(location, "the location", MAX_LOCATION)
    variant_id = variant_id or None
    kwargs = {"set_to": count} if mode == "set" else {"on_hand": count if mode == "add" else -count}
    # A count that finds what the system held is still recorded: it says when stock was checked.
    with database("product"):
        return change_stock(actor, product_id, variant_id=variant_id, reason=reason, note=note, location=location,
                            strict=True, kind=mode, **kwargs)
