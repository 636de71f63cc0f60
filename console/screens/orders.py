"""Orders: the filtered list, its CSV export, and the order page with its timeline.

Orders live in order_db; everything else a row or the page shows (customer, payment,
shipment, returns, coupon, notifications) lives in other databases and is joined here
in Python through the reference registry, one IN query per table per page (or per
export batch), so a page costs the same number of queries at any size.

Each of those other databases may be down: its lookups then yield nothing, the bind
key goes into ``unavailable``, and the screen says "<name> data unavailable" in the
columns and panels it feeds while the rest renders.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

from sqlalchemy import String, cast, func, or_, select

from console.extensions import db
from console.filters import (MAX_MATCHES, FilterError, QueryFilters, choice, customer_ids, customer_text,
                             date_range, text, where_equal, within_days)
from console.lookups import Lookups, Missing, chunks, database, fetch_in, referrers, resolve
from console.models.auth import User
from console.models.discount import Coupon, CouponUsage
from console.models.notification import Notification
from console.drift import NotInSchema
from console.models.order import Order, OrderItem, OrderNote, OrderShippingAddress, OrderStatusHistory
from console.models.shipping import Carrier
from console.models.user import UserProfile
from console.screens.lists import UNAVAILABLE, ListScreen, Sort, unless_down
from console.timeline import TimelineEntry
from console.workflows.orders import ORDER_STATUSES, cancellation_of, unfinished_steps

PAYMENT_STATUSES = ("pending", "paid", "failed", "refunded")
CLOSED_RETURN_STATUSES = ("rejected", "closed")
# Notifications about one order: the newest this many (a customer's mailbox is unbounded).
NOTIFICATION_LIMIT = 50
# How a notification's status reads on the timeline.
EMAIL_STATES = {"PENDING": "queued", "SENT": "sent", "DELIVERED": "delivered", "FAILED": "failed to send",
                "BOUNCED": "bounced"}
# Databases an order row or page reads besides order_db.
SIDE_BINDS = ("auth", "user", "payment", "shipping", "return")
MONEY_TEXT = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
CURRENCY_TEXT = re.compile(r"^[A-Za-z]{3}$")


# --- filters ---------------------------------------------------------------------------

@dataclass
class OrderFilters(QueryFilters):
    q: str = ""  # order number (prefix) or order id
    status: str = ""
    payment_status: str = ""
    created_from: date | None = None
    created_to: date | None = None
    total_min: Decimal | None = None
    total_max: Decimal | None = None
    currency: str = ""
    customer: str = ""  # email or name
    sku: str = ""
    coupon: str = ""

    FIELDS = ("q", "status", "payment_status", "created_from", "created_to", "total_min", "total_max",
              "currency", "customer", "sku", "coupon")

    @classmethod
    def parse(cls, args) -> tuple["OrderFilters", list[str]]:
        """Filters from a query string, plus a message for each value that can't be used."""
        errors: list[str] = []
        f = cls(q=text(args, "q", errors), customer=customer_text(args, errors),
                sku=text(args, "sku", errors), coupon=text(args, "coupon", errors))
        f.status = choice(args, "status", ORDER_STATUSES, "Status", errors)
        f.payment_status = choice(args, "payment_status", PAYMENT_STATUSES, "Payment status", errors)
        f.created_from, f.created_to = date_range(args, ("created_from", "Created from"),
                                                  ("created_to", "Created to"), errors)
        f.total_min = _amount(args, "total_min", "Total from", errors)
        f.total_max = _amount(args, "total_max", "Total to", errors)
        if f.total_min is not None and f.total_max is not None and f.total_min > f.total_max:
            errors.append("“Total from” is more than “Total to”.")
        currency = (args.get("currency") or "").strip()
        if currency and not CURRENCY_TEXT.match(currency):
            errors.append(f"Currency “{currency}” is not a three-letter code such as USD or EUR.")
        else:
            f.currency = currency.upper()
        return f, errors


def _amount(args, name, label, errors) -> Decimal | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if not MONEY_TEXT.match(value):
        errors.append(f"{label} “{value}” is not an amount such as 25 or 25.50.")
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern already rules this out
        errors.append(f"{label} “{value}” is not an amount.")
        return None


def coupon_order_ids(code: str) -> list[str]:
    """Ids of orders that used the coupon with this code (any case), via discount_db coupon_usage."""
    with database("discount"):
        coupon_ids = list(db.session.scalars(select(Coupon.id).where(func.upper(Coupon.code) == code.upper())))
        if not coupon_ids:
            return []
        order_ids = list(db.session.scalars(
            select(CouponUsage.order_id).where(CouponUsage.coupon_id.in_(coupon_ids)).limit(MAX_MATCHES + 1)))
    if len(order_ids) > MAX_MATCHES:
        raise FilterError(f"Coupon {code} was used on more than {MAX_MATCHES:,} orders. "
                          "Add another filter such as the customer or the SKU instead.")
    return [i for i in order_ids if i]


def orders_query(filters: OrderFilters, lookups: Lookups | None = None):
    """The select of orders matching ``filters`` (not yet ordered or limited).

    Customer and coupon filters are first resolved to ids in their own databases
    (raising DatabaseUnavailable naming them, or FilterError when too broad).
    """
    stmt = select(Order)
    if filters.q:
        stmt = stmt.where(or_(Order.order_number.istartswith(filters.q, autoescape=True), Order.id == filters.q))
    stmt = where_equal(stmt, (Order.status, filters.status), (Order.payment_status, filters.payment_status),
                       (Order.currency, filters.currency))
    stmt = within_days(stmt, Order.created_at, filters.created_from, filters.created_to)
    if filters.total_min is not None:
        stmt = stmt.where(Order.total_amount >= filters.total_min)
    if filters.total_max is not None:
        stmt = stmt.where(Order.total_amount <= filters.total_max)
    if filters.customer:
        stmt = stmt.where(Order.user_id.in_(customer_ids(filters.customer)))
    if filters.sku:
        stmt = stmt.where(Order.id.in_(
            select(OrderItem.order_id).where(func.upper(OrderItem.product_sku) == filters.sku.upper())))
    if filters.coupon:
        stmt = stmt.where(Order.id.in_(coupon_order_ids(filters.coupon)))
    return stmt


# --- list rows -----------------------------------------------------------------------------

@dataclass
class OrderRow:
    order: Order
    units: int | None  # items ordered (sum of quantities)
    account: User | Missing | None  # the auth user; Missing when the id points nowhere
    profile: UserProfile | None
    payment: object | None
    shipment: object | None
    carrier: object | None
    open_return: object | None

    @property
    def name(self) -> str:
        if self.profile is None:
            return ""
        return " ".join(p for p in (self.profile.first_name, self.profile.last_name) if p)

    @property
    def email(self) -> str:
        if isinstance(self.account, User):
            return self.account.email or ""
        return self.profile.email if self.profile is not None and self.profile.email else ""


def item_units(order_ids: list[str]) -> dict[str, int]:
    """{order id: units ordered}: one grouped query on order_db per 1,000 orders."""
    units: dict[str, int] = {}
    with database("order"):
        for chunk in chunks(order_ids):
            units.update(db.session.execute(
                select(OrderItem.order_id, func.coalesce(func.sum(OrderItem.quantity), 0))
                .where(OrderItem.order_id.in_(chunk)).group_by(OrderItem.order_id)).all())
    return units


def main_payment(order: Order, payments: list):
    """The order's payment: the one orders.payment_method_id names, else the newest."""
    for payment in payments:
        if payment.id == order.payment_method_id:
            return payment
    return max(payments, key=lambda p: (p.created_at or datetime.min.replace(tzinfo=timezone.utc), p.id),
               default=None)


def _newest(rows: list, attr: str = "created_at"):
    return max(rows, key=lambda r: (getattr(r, attr) or datetime.min.replace(tzinfo=timezone.utc), r.id),
               default=None)


def decorate(orders: list[Order], lookups: Lookups) -> list[OrderRow]:
    """Customer, item count, payment, shipment and open return for a batch of orders:
    one query per table whatever the batch size (up to the 1,000-id chunk)."""
    order_ids = [o.id for o in orders]
    user_ids = [o.user_id for o in orders]
    units = lookups.run("order", lambda: item_units(order_ids), None)
    accounts = lookups.run("auth", lambda: resolve("order.orders.user_id", user_ids), {})
    profiles = lookups.run("user", lambda: referrers("user.user_profiles.user_id", user_ids), {})
    payments = lookups.run("payment", lambda: referrers("payment.payments.order_id", order_ids), {})
    shipments = lookups.run("shipping", lambda: referrers("shipping.shipments.order_id", order_ids), {})
    carrier_ids = [s.carrier_id for group in shipments.values() for s in group]
    carriers = {c.id: c for c in lookups.run("shipping", lambda: fetch_in("shipping", "carriers", "id", carrier_ids),
                                             [])}
    returns = lookups.run("return", lambda: referrers("return.return_requests.order_id", order_ids), {})
    rows = []
    for order in orders:
        shipment = _newest(shipments.get(order.id, []))
        open_returns = [r for r in returns.get(order.id, []) if r.status not in CLOSED_RETURN_STATUSES]
        rows.append(OrderRow(
            order=order,
            units=None if units is None else units.get(order.id, 0),
            account=(None if lookups.down("auth") or not order.user_id
                     else accounts.get(order.user_id) or Missing(order.user_id)),
            profile=(profiles.get(order.user_id) or [None])[0],
            payment=main_payment(order, payments.get(order.id, [])),
            shipment=shipment,
            carrier=carriers.get(shipment.carrier_id) if shipment else None,
            open_return=_newest(open_returns),
        ))
    return rows


def _export_row(row: OrderRow, lookups: Lookups) -> list:
    o, payment, shipment = row.order, row.payment, row.shipment
    return [
        o.order_number, o.created_at, o.status, o.payment_status,
        unless_down(lookups, "user", row.name),
        UNAVAILABLE if lookups.down("auth") and lookups.down("user") else row.email,
        row.units, o.subtotal, o.tax_amount, o.shipping_amount, o.discount_amount, o.total_amount,
        o.currency,
        unless_down(lookups, "payment", payment.payment_provider if payment else ""),
        unless_down(lookups, "payment", payment.status if payment else ""),
        unless_down(lookups, "shipping", shipment.status if shipment else ""),
        unless_down(lookups, "shipping", row.carrier.name if row.carrier else ""),
        o.tracking_number,
        unless_down(lookups, "return", row.open_return.rma_number if row.open_return else ""),
        o.id,
    ]


# --- the list, declared -----------------------------------------------------------------------

ORDERS = ListScreen(
    name="orders", noun="orders", home="order",
    filters=OrderFilters, statement=orders_query, id_column=Order.id,
    sorts=(Sort("created", Order.created_at, "Date"),
           Sort("number", Order.order_number, "Order", descending=False),
           Sort("total", Order.total_amount, "Total", numeric=True),
           Sort("status", Order.status, "Status", descending=False)),
    default_sort="-created", decorate=decorate,
    export_header=(
        "order_number", "created_at", "status", "payment_status", "customer_name", "customer_email", "items",
        "subtotal", "tax", "shipping", "discount", "total", "currency", "payment_provider", "payment_state",
        "shipment_status", "carrier", "tracking_number", "open_return", "order_id",
    ),
    export_row=_export_row, export_binds=SIDE_BINDS,
)


# --- the order page ---------------------------------------------------------------------------

def find_order(key: str) -> Order | None:
    """The order whose id or order number is ``key``."""
    with database("order"):
        found = list(db.session.scalars(select(Order).where(or_(Order.id == key, Order.order_number == key)).limit(2)))
    # An id match wins over an order number that happens to look like an id.
    return next((o for o in found if o.id == key), found[0] if found else None)


@dataclass
class OrderPage:
    order: Order
    items: list
    address: OrderShippingAddress | None
    products: dict  # product id -> Product as it is now
    account: User | Missing | None
    profile: UserProfile | None
    payment: object | None
    payments: list
    coupons: list  # (coupon usage, coupon or Missing)
    shipments: list
    carriers: dict  # carrier id -> Carrier (all of them, for names and the ship form)
    returns: list
    timeline: list[TimelineEntry]
    unavailable: set[str] = field(default_factory=set)
    not_in_database: str = ""  # what the page leaves out because a table is missing

    @property
    def customer_name(self) -> str:
        if self.profile is None:
            return ""
        return " ".join(p for p in (self.profile.first_name, self.profile.last_name) if p)

    @property
    def customer_email(self) -> str:
        if isinstance(self.account, User):
            return self.account.email or ""
        return self.profile.email if self.profile is not None and self.profile.email else ""

    @property
    def cancellation(self) -> dict | None:
        return cancellation_of(self.order)

    @property
    def unfinished_cancel_steps(self) -> list[str]:
        return unfinished_steps(self.order)

    @property
    def active_carriers(self) -> list:
        return sorted((c for c in self.carriers.values() if c.is_active), key=lambda c: c.name or "")

    def product(self, item):
        """The product as it is now, Missing when it no longer exists, None when unknown."""
        if not item.product_id or "product" in self.unavailable:
            return None
        return self.products.get(item.product_id) or Missing(item.product_id)


def _order_rows(model, order_id: str, sort) -> list:
    with database("order"):
        return list(db.session.scalars(select(model).where(model.order_id == order_id).order_by(sort)))


def _notifications(order: Order) -> list:
    """Emails to the order's customer that name this order (by number in the subject, or by
    order id / number in the metadata key), newest first, bounded."""
    if not order.user_id:
        return []
    metadata_text = cast(Notification.metadata_, String)
    conditions = [metadata_text.contains(order.id, autoescape=True)]
    if order.order_number:
        conditions += [Notification.subject.contains(order.order_number, autoescape=True),
                       metadata_text.contains(order.order_number, autoescape=True)]
    with database("notification"):
        return list(db.session.scalars(
            select(Notification).where(Notification.user_id == order.user_id, or_(*conditions))
            .order_by(Notification.created_at.desc()).limit(NOTIFICATION_LIMIT)))


def _all_carriers() -> list:
    with database("shipping"):
        return list(db.session.scalars(select(Carrier).order_by(Carrier.name)))


def order_page(order: Order) -> OrderPage:
    """Everything about one order from every database, in a bounded number of queries."""
    lookups = Lookups()
    items = _order_rows(OrderItem, order.id, OrderItem.created_at)
    address = (_order_rows(OrderShippingAddress, order.id, OrderShippingAddress.created_at) or [None])[0]
    history = _order_rows(OrderStatusHistory, order.id, OrderStatusHistory.created_at)
    try:
        notes = _order_rows(OrderNote, order.id, OrderNote.created_at)
    except NotInSchema as exc:  # the notes table is not in order_db yet: the rest of the page stands
        notes, missing_notes = [], f"Notes are not shown: {exc.detail}."
    else:
        missing_notes = ""
    db.session.expunge_all()

    run = lookups.run

    def pointing_here(ref: str):
        """A lookup of the rows whose ``ref`` names this order."""
        return lambda: referrers(ref, [order.id]).get(order.id, [])

    def rows_of(bind: str, table: str, column: str, values: list):
        return lambda: fetch_in(bind, table, column, values)

    products = run("product", lambda: resolve("order.order_items.product_id", [i.product_id for i in items]), {})
    account = run("auth", lambda: resolve("order.orders.user_id", [order.user_id]).get(order.user_id), None)
    profile = run("user", lambda: next(iter(referrers("user.user_profiles.user_id", [order.user_id])
                                            .get(order.user_id, [])), None), None)
    usages = run("discount", pointing_here("discount.coupon_usage.order_id"), [])
    coupons = {c.id: c for c in run("discount", rows_of("discount", "coupons", "id", [u.coupon_id for u in usages]), [])}
    payments = run("payment", pointing_here("payment.payments.order_id"), [])
    transactions = run("payment", rows_of("payment", "payment_transactions", "payment_id", [p.id for p in payments]), [])
    refunds = run("payment", pointing_here("payment.payment_refunds.order_id"), [])
    shipments = run("shipping", pointing_here("shipping.shipments.order_id"), [])
    tracking = run("shipping", rows_of("shipping", "shipment_tracking", "shipment_id", [s.id for s in shipments]), [])
    carriers = {c.id: c for c in run("shipping", _all_carriers, [])}
    returns = run("return", pointing_here("return.return_requests.order_id"), [])
    return_history = run("return", rows_of("return", "return_status_history", "return_request_id",
                                           [r.id for r in returns]), [])
    notifications = run("notification", lambda: _notifications(order), [])

    # Every staff member named anywhere on the page, in one auth_db query.
    console_staff = {t.id: t.provider_response.get("staff_id") for t in transactions
                     if isinstance(t.provider_response, dict) and t.provider_response.get("source") == "console"}
    actor_ids = ({h.changed_by for h in history} | {n.created_by for n in notes}
                 | {h.changed_by for h in return_history} | set(console_staff.values()))
    actor_ids -= {None, "", "system", order.user_id}
    staff = {u.id: u for u in lookups.run("auth", lambda: fetch_in("auth", "users", "id", actor_ids), [])}

    def who(user_id: str | None) -> str:
        if not user_id or user_id == "system":
            return "system"
        if user_id == order.user_id:
            return "customer"
        if user_id in staff:
            return staff[user_id].email
        return "staff (auth data unavailable)" if lookups.down("auth") else str(Missing(user_id))

    carrier_name = {cid: c.name for cid, c in carriers.items()}
    rma_of = {r.id: r.rma_number for r in returns}
    timeline: list[TimelineEntry] = []
    for h in history:
        change = f"{h.previous_status} → {h.status}" if h.previous_status else h.status
        timeline.append(TimelineEntry(h.created_at, "order", f"Status {change}", h.reason or "", who(h.changed_by)))
    for n in notes:
        kind = "Internal note" if n.is_internal else "Note to customer"
        timeline.append(TimelineEntry(n.created_at, "order", kind, n.note or "", who(n.created_by)))
    provider = {p.id: p.payment_provider for p in payments}
    for t in transactions:
        # Transactions the console wrote (a void on cancel) name the staff member.
        by = (who(console_staff[t.id]) if t.id in console_staff
              else f"payment service ({provider.get(t.payment_id) or 'provider'})")
        timeline.append(TimelineEntry(
            t.processed_at or t.created_at, "payment",
            f"{(t.transaction_type or 'transaction').title()} {t.status or ''}".strip(),
            f"{t.amount} {t.currency or ''}".strip(), by))
    for r in refunds:
        timeline.append(TimelineEntry(r.created_at, "payment", f"Refund {r.status or ''}".strip(),
                                      f"{r.amount} {r.currency or ''} · {r.reason or 'no reason given'}",
                                      "payment service"))
    for s in shipments:
        timeline.append(TimelineEntry(s.shipped_at or s.created_at, "shipping", "Shipment created",
                                      f"{carrier_name.get(s.carrier_id, 'carrier')} · tracking {s.tracking_number}",
                                      "shipping service"))
    shipment_carrier = {s.id: carrier_name.get(s.carrier_id, "carrier") for s in shipments}
    for e in tracking:
        detail = " · ".join(p for p in (e.description, e.location) if p)
        timeline.append(TimelineEntry(e.timestamp or e.created_at, "shipping",
                                      f"Tracking: {(e.status or '').replace('_', ' ')}", detail,
                                      shipment_carrier.get(e.shipment_id, "carrier")))
    for r in returns:
        if not any(h.return_request_id == r.id for h in return_history):
            timeline.append(TimelineEntry(r.requested_at or r.created_at, "return", f"Return {r.rma_number} requested",
                                          r.return_reason or "", "customer"))
    for h in return_history:
        change = f"{h.previous_status} → {h.status}" if h.previous_status else f"requested ({h.status})"
        timeline.append(TimelineEntry(h.created_at, "return", f"Return {rma_of.get(h.return_request_id, '')} {change}",
                                      h.notes or "", who(h.changed_by)))
    for n in notifications:
        state = EMAIL_STATES.get(n.status or "", (n.status or "").lower())
        timeline.append(TimelineEntry(n.sent_at or n.created_at, "notification", f"Email {state}".strip(),
                                      n.subject or "", "notification service"))
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    timeline.sort(key=lambda e: e.at or oldest, reverse=True)

    return OrderPage(
        order=order, items=items, address=address, products=products,
        account=None if lookups.down("auth") or not order.user_id else account or Missing(order.user_id),
        profile=profile, payment=main_payment(order, payments), payments=payments,
        coupons=[(u, coupons.get(u.coupon_id) or Missing(u.coupon_id)) for u in usages],
        shipments=sorted(shipments, key=lambda s: s.created_at or oldest, reverse=True), carriers=carriers,
        returns=returns, timeline=timeline, unavailable=lookups.unavailable, not_in_database=missing_notes,
    )
