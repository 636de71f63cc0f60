"""The printable documents of an order: the packing slip (what goes in the parcel and
where it goes) and the invoice (who sold what to whom, for how much, how it was paid
and what was refunded). The HTML pages and the PDFs (console/pdf.py) read the same
data from here.

Slips for many orders are read in one query per table per 1,000 orders.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from flask import current_app
from sqlalchemy import select

from console.extensions import db
from console.lookups import Lookups, chunks, database, referrers, resolve
from console.models.order import Order, OrderItem, OrderShippingAddress
from console.models.payment import PAYMENT_STATUSES, REFUND_STATUSES, PaymentRefund
from console.screens.orders import customer_email, main_payment

ZERO = Decimal("0.00")
_OLDEST = datetime.min.replace(tzinfo=timezone.utc)
# Orders in one batch of packing slips (one PDF).
MAX_SLIPS = 200
# Payment statuses whose amount was taken from the customer.
TAKEN = (PAYMENT_STATUSES.SUCCEEDED, PAYMENT_STATUSES.REFUNDED)


@dataclass(frozen=True)
class Seller:
    name: str
    address: tuple[str, ...]
    tax_id: str = ""


def seller() -> Seller:
    """The store as the configuration names it (STORE_NAME, STORE_ADDRESS lines split at "|")."""
    config = current_app.config
    lines = tuple(part.strip() for part in str(config.get("STORE_ADDRESS") or "").split("|") if part.strip())
    return Seller(str(config.get("STORE_NAME") or "Online Store"), lines, str(config.get("STORE_TAX_ID") or ""))


def line_total(item: OrderItem) -> Decimal:
    """The line's amount: its stored total, else unit price × quantity."""
    if item.total_price is not None:
        return item.total_price
    return (item.unit_price or ZERO) * (item.quantity or 0)


def address_lines(address: OrderShippingAddress | None) -> list[str]:
    if address is None:
        return []
    name = " ".join(p for p in (address.first_name, address.last_name) if p)
    place = " ".join(p for p in (address.postal_code, address.city) if p)
    return [line for line in (name, address.address_line1, place, address.country) if line]


@dataclass
class Slip:
    order: Order
    items: list[OrderItem]
    address: OrderShippingAddress | None

    @property
    def units(self) -> int:
        return sum(item.quantity or 0 for item in self.items)

    @property
    def ship_to(self) -> list[str]:
        return address_lines(self.address)


def packing_slips(order_ids: list[str]) -> list[Slip]:
    """The slips of these orders, in the order given (unknown ids left out): orders,
    items and addresses in one query each per 1,000 orders."""
    orders: dict[str, Order] = {}
    items: dict[str, list[OrderItem]] = {}
    addresses: dict[str, OrderShippingAddress] = {}
    with database("order"):
        for chunk in chunks(list(dict.fromkeys(order_ids))):
            orders.update((o.id, o) for o in db.session.scalars(select(Order).where(Order.id.in_(chunk))))
            for item in db.session.scalars(select(OrderItem).where(OrderItem.order_id.in_(chunk))
                                           .order_by(OrderItem.created_at, OrderItem.id)):
                items.setdefault(item.order_id, []).append(item)
            addresses.update((a.order_id, a) for a in db.session.scalars(
                select(OrderShippingAddress).where(OrderShippingAddress.order_id.in_(chunk))))
    return [Slip(orders[i], items.get(i, []), addresses.get(i)) for i in dict.fromkeys(order_ids) if i in orders]


@dataclass
class Invoice:
    seller: Seller
    order: Order
    items: list[OrderItem]
    address: OrderShippingAddress | None
    customer_name: str
    customer_email: str
    payment: object | None
    payments: list
    refunds: list  # payment_refunds of the order's payments, oldest first
    unavailable: set[str] = field(default_factory=set)

    @property
    def currency(self) -> str:
        return self.order.currency or ""

    @property
    def items_total(self) -> Decimal:
        return sum((line_total(i) for i in self.items), ZERO)

    @property
    def tax(self) -> Decimal:
        return self.order.tax_amount or ZERO

    @property
    def shipping(self) -> Decimal:
        return self.order.shipping_amount or ZERO

    @property
    def discount(self) -> Decimal:
        return self.order.discount_amount or ZERO

    @property
    def total(self) -> Decimal:
        """Items + tax + shipping − discount."""
        return self.items_total + self.tax + self.shipping - self.discount

    @property
    def total_differs(self) -> bool:
        """True when the order's stored total is not what its lines add up to."""
        return self.order.total_amount is not None and self.order.total_amount != self.total

    @property
    def paid(self) -> Decimal:
        return sum((p.amount or ZERO for p in self.payments if p.status in TAKEN), ZERO)

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount or ZERO for r in self.refunds if r.status == REFUND_STATUSES.COMPLETED), ZERO)

    @property
    def balance(self) -> Decimal:
        """What the customer has paid net of completed refunds."""
        return self.paid - self.refunded

    @property
    def bill_to(self) -> list[str]:
        lines = address_lines(self.address)
        if self.customer_name and (not lines or lines[0] != self.customer_name):
            lines.insert(0, self.customer_name)
        return lines


def invoice(order: Order) -> Invoice:
    """The invoice of one order: order_db for the lines and address, auth_db and user_db
    for the buyer, payment_db for the payments and refunds (each may be down: the
    invoice then says so)."""
    [slip] = packing_slips([order.id]) or [Slip(order, [], None)]
    lookups = Lookups()
    accounts = lookups.run("auth", lambda: resolve("order.orders.user_id", [order.user_id]), {})
    profiles = lookups.run("user", lambda: referrers("user.user_profiles.user_id", [order.user_id]), {})
    payments = lookups.run("payment", lambda: referrers("payment.payments.order_id", [order.id]), {}).get(order.id, [])
    payment_ids = [p.id for p in payments]
    refunds = lookups.run("payment", lambda: _refunds(payment_ids), [])
    profile = (profiles.get(order.user_id) or [None])[0]
    return Invoice(seller(), slip.order, slip.items, slip.address,
                   profile.full_name if profile is not None else "",
                   customer_email(accounts.get(order.user_id), profile),
                   main_payment(order, payments), sorted(payments, key=lambda p: (p.created_at or _OLDEST, p.id)),
                   refunds, lookups.unavailable)


def _refunds(payment_ids: list[str]) -> list:
    if not payment_ids:
        return []
    with database("payment"):
        return list(db.session.scalars(select(PaymentRefund).where(PaymentRefund.payment_id.in_(payment_ids))
                                       .order_by(PaymentRefund.created_at, PaymentRefund.id)))
