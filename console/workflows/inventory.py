"""Stock changes in product_db, one locked transaction each.

product_inventory holds quantity (on hand), reserved_quantity (held by open orders)
and available_quantity (= quantity - reserved). The product's own stock_quantity and
stock_status (and the variant's, when the line names one) are kept in step, because
the shop reads those. Stock never goes below zero.

Callers (order cancel, return receive) decide *whether* to change stock and keep
their own durable marker so a repeated action changes it once; these functions
only make each single change correct under concurrency.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from console import audit
from console.extensions import db
from console.models.product import Product, ProductInventory, ProductVariant
from console.models.types import utcnow
from console.workflows import locked

LOW_STOCK = 5


class StockError(ValueError):
    """A change that would take stock below zero, or stock that does not exist."""


@dataclass
class StockChange:
    product_id: str
    quantity: int
    reserved: int
    available: int


def stock_status(quantity: int) -> str:
    if quantity <= 0:
        return "out_of_stock"
    return "low_stock" if quantity <= LOW_STOCK else "in_stock"


def change_stock(actor, product_id: str, *, on_hand: int = 0, reserved: int = 0,
                 variant_id: str | None = None, reason: str, reference: str | None = None,
                 commit: bool = True) -> StockChange:
    """Add ``on_hand`` to the quantity and ``reserved`` to the reservation (negative
    values remove), with the inventory and product rows locked."""
    inventory = locked(select(ProductInventory).where(ProductInventory.product_id == product_id))
    product = locked(select(Product).where(Product.id == product_id))
    if inventory is None or product is None:
        raise StockError(f"product {product_id} has no inventory record")
    before = {"quantity": inventory.quantity, "reserved": inventory.reserved_quantity,
              "available": inventory.available_quantity}
    quantity = (inventory.quantity or 0) + on_hand
    held = (inventory.reserved_quantity or 0) + reserved
    if quantity < 0 or held < 0 or held > quantity:
        db.session.rollback()
        raise StockError(f"{product.sku}: that would leave {quantity} on hand and {held} reserved")
    inventory.quantity, inventory.reserved_quantity = quantity, held
    inventory.available_quantity = quantity - held
    if on_hand > 0:
        inventory.last_restocked_at = utcnow()
    product.stock_quantity = quantity
    product.stock_status = stock_status(quantity)
    if variant_id and on_hand:
        variant = locked(select(ProductVariant).where(ProductVariant.id == variant_id))
        if variant is not None:
            variant.stock_quantity = max(0, (variant.stock_quantity or 0) + on_hand)
            variant.stock_status = stock_status(variant.stock_quantity)
    after = {"quantity": quantity, "reserved": held, "available": quantity - held}
    audit.record(actor, "inventory.changed", "product", product_id, before=before, after=after,
                 reason=reason, reference=reference)
    if commit:
        db.session.commit()
    return StockChange(product_id, quantity, held, quantity - held)
