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
from functools import lru_cache, partial
from itertools import repeat
from operator import itemgetter
from dataclasses import dataclass, field
from types import SimpleNamespace
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

from sqlalchemy import Boolean, String, cast, func, literal, or_, select, union_all

from console.exports import (CopyExport, Side, compared, csv_cell, each_and_several, newest, newest_by,
                             one_by_key, session_rows)
from console.extensions import db
from console.filters import (MAX_MATCHES, FilterError, QueryFilters, choice, quoted, customer_ids, customer_text,
                             date_range, text, where_equal, within_days)
from console.lookups import (Lookups, Missing, Prebuilt, chunks, database, fetch_in, ids_parameter, named,
                             plain_rows, referrers, resolve)
from console.models.auth import User
from console.models.discount import Coupon, CouponUsage
from console.models.notification import NOTIFICATION_STATUSES, Notification
from console.drift import missing_table
from console.models.order import ORDER_STATUSES, Order, OrderItem, OrderNote, OrderShippingAddress, OrderStatusHistory
from console.models.payment import REFUND_STATUSES, Payment, PaymentRefund, PaymentTransaction
from console.models.returns import ReturnRequest, ReturnStatusHistory, return_is_open
from console.models.shipping import Carrier, Shipment, ShipmentTracking
from console.models.types import new_id
from console.models.user import UserProfile, full_name
from console.screens.lists import UNAVAILABLE, ListScreen, Sort, unless_down
from console.screens.refunds import OrderRefunds, RefundRow
from console.screens.returns import OrderReturns
from console.timeline import TimelineEntry
from console.workflows import refunds as refund_flow
from console.workflows import returns as return_flow
from console.workflows.orders import cancellation_of, unfinished_steps

PAYMENT_STATUSES = ("pending", "paid", "failed", "refunded")
# Notifications about one order: the newest this many (a customer's mailbox is unbounded).
NOTIFICATION_LIMIT = 50
# How a notification's status reads on the timeline.
EMAIL_STATES = {NOTIFICATION_STATUSES.PENDING: "queued", NOTIFICATION_STATUSES.SENT: "sent",
                NOTIFICATION_STATUSES.DELIVERED: "delivered", NOTIFICATION_STATUSES.FAILED: "failed to send",
                NOTIFICATION_STATUSES.BOUNCED: "bounced"}
# Databases an order row or page reads besides order_db.
SIDE_BINDS = ("auth", "user", "payment", "shipping", "return")
_OLDEST = datetime.min.replace(tzinfo=timezone.utc)
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
            errors.append(f"Currency {quoted(currency)} is not a three-letter code such as USD or EUR.")
        else:
            f.currency = currency.upper()
        return f, errors


def _amount(args, name, label, errors) -> Decimal | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if not MONEY_TEXT.match(value):
        errors.append(f"{label} {quoted(value)} is not an amount such as 25 or 25.50.")
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern already rules this out
        errors.append(f"{label} {quoted(value)} is not an amount.")
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


def sku_order_ids(sku: str):
    """The orders holding an item of ``sku`` (any case): their ids when they are few, read
    through the SKU's index, else a subquery. Few orders are then read by their ids; for
    a SKU on many, walking the orders in the list's order finds a page of them soon. (As
    a subquery alone, a SKU on no order had every order walked to find none.)"""
    matching = select(OrderItem.order_id).where(func.upper(OrderItem.product_sku) == sku.upper())
    with database("order"):
        ids = list(db.session.scalars(matching.limit(MAX_MATCHES + 1)))
    return matching if len(ids) > MAX_MATCHES else list(dict.fromkeys(ids))


def orders_query(filters: OrderFilters, lookups: Lookups | None = None):
    """The select of orders matching ``filters`` (not yet ordered or limited).

    Customer and coupon filters are first resolved to ids in their own databases
    (raising DatabaseUnavailable naming them, or FilterError when too broad).
    """
    stmt = select(Order)
    if filters.q:
        # The number's start as typed, in capitals or in small letters: each a walk of the
        # varchar_pattern_ops index (lower(order_number) would have no index to use).
        variants = dict.fromkeys((filters.q, filters.q.upper(), filters.q.lower()))
        stmt = stmt.where(or_(*(Order.order_number.startswith(v, autoescape=True) for v in variants),
                              Order.id == filters.q))
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
        stmt = stmt.where(Order.id.in_(sku_order_ids(filters.sku)))
    if filters.coupon:
        stmt = stmt.where(Order.id.in_(coupon_order_ids(filters.coupon)))
    return stmt


# --- list rows -----------------------------------------------------------------------------

def customer_email(account, profile) -> str:
    """The auth account's email, else the profile's copy of it, else ""."""
    if account is not None and not isinstance(account, Missing) and account.email:
        return account.email
    return profile.email if profile is not None and profile.email else ""


@dataclass
class OrderRow:
    order: Order
    units: int | None  # items ordered (sum of quantities)
    account: object | None  # the auth user (id, email); Missing when the id points nowhere
    profile: object | None  # (user_id, first_name, last_name, email)
    payment: object | None  # (id, order_id, created_at, status, payment_provider, amount, refunded)
    shipment: object | None  # (order_id, id, created_at, status, carrier_id, carrier_name)
    carrier: object | None  # .name of the shipment's carrier, None when unknown
    open_return: object | None  # (order_id, id, created_at, status, rma_number)
    progress: tuple | None = None  # (completed refunds, captured) when partly refunded: the payment badge

    @property
    def name(self) -> str:
        if self.profile is None:
            return ""
        return full_name(self.profile.first_name, self.profile.last_name)

    @property
    def email(self) -> str:
        return customer_email(self.account, self.profile)


_UNITS = Prebuilt(lambda dialect: select(OrderItem.order_id, func.coalesce(func.sum(OrderItem.quantity), 0))
                  .where(ids_parameter(OrderItem.order_id, dialect)).group_by(OrderItem.order_id))


def item_units(order_ids: list[str]) -> dict[str, int]:
    """{order id: units ordered}: one grouped query on order_db per 1,000 orders."""
    units: dict[str, int] = {}
    with database("order"):
        for chunk in chunks(order_ids):
            units.update(plain_rows("order", _UNITS("order"), {"ids": chunk}))
    return units


def main_payment(order: Order, payments: list):
    """The order's payment: the one orders.payment_method_id names, else the newest."""
    if len(payments) < 2:  # nearly every order: nothing to choose
        return payments[0] if payments else None
    for payment in payments:
        if payment.id == order.payment_method_id:
            return payment
    return _newest(payments)


def _newest(rows: list, attr: str = "created_at"):
    if len(rows) < 2:
        return rows[0] if rows else None
    return max(rows, key=lambda r: (getattr(r, attr) or _OLDEST, r.id),
               default=None)


def _rows_by(bind: str, stmt, values: list) -> dict[str, list]:
    """{first column: [rows]} of ``stmt`` (a Prebuilt: plain rows, no ORM objects) for
    ``values`` of its ``ids`` parameter, one statement per 1,000 values."""
    grouped: dict[str, list] = {}
    wanted = list(dict.fromkeys(v for v in values if v))
    with database(bind):
        for chunk in chunks(wanted):
            for row in plain_rows(bind, stmt(bind), {"ids": chunk}):
                grouped.setdefault(row[0], []).append(row)
    return grouped


# A list page's lookups: only the columns its cells need, as rows read by attribute name
# (mapped attributes, so a drifted column is refused as for an entity). Each database is
# read once: the payments come with their order's completed refunds, the shipments with
# their carrier's name. Built once per process, the ids a parameter.
_ROW_LOOKUPS = {
    "accounts": ("auth", Prebuilt(lambda dialect: select(*named(User.id, User.email))
                                  .where(ids_parameter(User.id, dialect)))),
    "profiles": ("user", Prebuilt(lambda dialect: select(*named(
        UserProfile.user_id, UserProfile.first_name, UserProfile.last_name, UserProfile.email))
        .where(ids_parameter(UserProfile.user_id, dialect)))),
    "payments": ("payment", Prebuilt(lambda dialect: select(
        *named(Payment.order_id, Payment.id, Payment.created_at, Payment.status, Payment.payment_provider,
               Payment.amount),
        select(func.sum(PaymentRefund.amount)).where(PaymentRefund.order_id == Payment.order_id,
                                                     PaymentRefund.status == REFUND_STATUSES.COMPLETED)
        .scalar_subquery().label("refunded")).where(ids_parameter(Payment.order_id, dialect)))),
    "shipments": ("shipping", Prebuilt(lambda dialect: select(
        *named(Shipment.order_id, Shipment.id, Shipment.created_at, Shipment.status, Shipment.carrier_id),
        Carrier.name.label("carrier_name"))
        .outerjoin(Carrier, Carrier.id == Shipment.carrier_id).where(ids_parameter(Shipment.order_id, dialect)))),
    "returns": ("return", Prebuilt(lambda dialect: select(*named(
        ReturnRequest.order_id, ReturnRequest.id, ReturnRequest.created_at, ReturnRequest.status,
        ReturnRequest.rma_number))
        .where(ids_parameter(ReturnRequest.order_id, dialect), return_is_open()))),
}


def decorate(orders: list[Order], lookups: Lookups) -> list[OrderRow]:
    """Customer, item count, payment, shipment and open return for a batch of orders:
    one statement per database whatever the batch size (up to the 1,000-id chunk),
    plain rows of only the columns shown."""
    order_ids = [o.id for o in orders]
    user_ids = [o.user_id for o in orders]
    # One database after the other, on the request's own connections. Read at the same
    # time on connections of their own (as search does) a page came 0.6 ms sooner in
    # process, but each hand-over to a thread cost the workers CPU: 6% fewer pages a
    # second under load.
    units = lookups.run("order", lambda: item_units(order_ids), None)
    found = {}
    for name, (bind, stmt) in _ROW_LOOKUPS.items():
        ids = user_ids if name in ("accounts", "profiles") else order_ids
        found[name] = lookups.run(bind, lambda bind=bind, stmt=stmt, ids=ids: _rows_by(bind, stmt, ids), {})
    accounts, profiles = found["accounts"], found["profiles"]
    payments, shipments, returns = found["payments"], found["shipments"], found["returns"]
    rows = []
    none = ()
    for order in orders:
        shipment = _newest(shipments.get(order.id, none))
        mine = payments.get(order.id, none)
        rows.append(OrderRow(
            order=order,
            units=None if units is None else units.get(order.id, 0),
            account=(None if lookups.down("auth") or not order.user_id
                     else (accounts.get(order.user_id) or [None])[0] or Missing(order.user_id)),
            profile=(profiles.get(order.user_id) or [None])[0],
            payment=main_payment(order, mine),
            shipment=shipment,
            carrier=(SimpleNamespace(name=shipment.carrier_name)
                     if shipment is not None and shipment.carrier_name is not None else None),
            open_return=_newest(returns.get(order.id, none)),
            progress=refund_flow.progress_from(mine[0].refunded if mine else None, mine),
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


# --- the export through COPY -----------------------------------------------------------------
# The order_db part as plain text cells (console/exports.py, "the COPY path"), the units
# summed alongside; the other databases looked up once per batch with only the columns
# the cells need. Same header, same cells, same order as _export_row.

# Orders per batch: three batches are in flight at once (read, looked up, written). At a
# million orders 3,000 were as fast as 5,000 within the machine's noise, with a worker's
# peak 20 MB lower (the kept customers' cells take about 30 MB).
EXPORT_BATCH = 3000
_ORDERS, _ITEMS = Order.__table__.c, OrderItem.__table__.c
# What the lookups read of an order (its id, customer and chosen payment), then its cells
# as the file holds them, written by the database (CopyExport.written): of an order row,
# Python only splices in the other databases' cells. The units of each order come with
# it, from the same database: an index probe per row inside the streamed query instead
# of a grouped lookup per batch. Even for every order: a join of the items grouped in one
# pass cost PostgreSQL less in all, but its rows needed sorting before the first was
# sent (7 s at a million orders), while these stream in the list's order from its index.
_EXPORT_KEYS = (_ORDERS["id"], _ORDERS["user_id"], _ORDERS["payment_method_id"])


def _written(units) -> tuple:
    """The order's cells with ``units`` (an expression of its items' quantities), grouped
    as they sit in the file between the other databases' cells."""
    return (tuple(_ORDERS[name] for name in ("order_number", "created_at", "status", "payment_status")),
            (units.label("units"), *(_ORDERS[name] for name in ("subtotal", "tax_amount", "shipping_amount",
                                                                "discount_amount", "total_amount", "currency"))),
            _ORDERS["tracking_number"], _ORDERS["id"].label("order_id"))


_EXPORT_WRITTEN = _written(select(func.coalesce(func.sum(_ITEMS.quantity), 0))
                           .where(_ITEMS.order_id == _ORDERS.id).scalar_subquery())


# An order's id and its customer's, the keys of the batch's lookups (a row is a list of
# texts: _EXPORT_KEYS first).
_by_order = partial(map, itemgetter(0))
_by_customer = partial(map, itemgetter(1))


_USERS, _PROFILES = User.__table__.c, UserProfile.__table__.c
_PAYMENTS, _SHIPMENTS, _RETURNS = Payment.__table__.c, Shipment.__table__.c, ReturnRequest.__table__.c
# Customers whose cells (name and email) an export keeps once made: at 100,000 customers
# and a million orders each customer recurs in ten batches, and asking auth_db and user_db
# again each time was a fifth of the databases' work and of Python's. About 0.3 KB a
# customer (its id and its cells); beyond this many, a customer's cells are made per batch.
CUSTOMERS_KEPT = 100_000


def _customers_known(prepared) -> dict:
    return prepared.customers


# Only the columns the cells need; the times only compared (which is newest).
_EXPORT_SIDES = {
    "emails": Side("auth", _by_customer, lambda ids, among: select(_USERS.id, _USERS.email)
                   .where(among(_USERS.id, ids)), fold=dict, known=_customers_known),
    "profiles": Side("user", _by_customer, lambda ids, among: select(
        _PROFILES.user_id, _PROFILES.first_name, _PROFILES.last_name, _PROFILES.email)
        .where(among(_PROFILES.user_id, ids)), fold=one_by_key, known=_customers_known),
    "payments": Side("payment", _by_order, lambda ids, among: select(
        _PAYMENTS.order_id, _PAYMENTS.id, compared(_PAYMENTS.created_at), _PAYMENTS.payment_provider,
        _PAYMENTS.status)
        .where(among(_PAYMENTS.order_id, ids)), fold=each_and_several),
    "shipments": Side("shipping", _by_order, lambda ids, among: select(
        _SHIPMENTS.order_id, _SHIPMENTS.id, compared(_SHIPMENTS.created_at), _SHIPMENTS.status,
        _SHIPMENTS.carrier_id)
        .where(among(_SHIPMENTS.order_id, ids)), fold=newest_by(2, 1)),
    "returns": Side("return", _by_order, lambda ids, among: select(
        _RETURNS.order_id, _RETURNS.id, compared(_RETURNS.created_at), _RETURNS.rma_number)
        .where(among(_RETURNS.order_id, ids), return_is_open()),
        fold=newest_by(2, 1)),
}


def _prepared(lookups: Lookups) -> SimpleNamespace:
    """What an orders export reads once (the carriers' names) and keeps as it goes (its
    customers' cells; a shipment's two cells for each status and carrier met)."""
    carriers = Carrier.__table__.c
    names = dict(session_rows(lookups, "shipping", select(carriers.id, carriers.name)))
    return SimpleNamespace(customers={}, shipment_cells=lru_cache(maxsize=1024)(partial(_shipment_cells, names)))


def _shipment_cells(carriers: dict, status: str | None, carrier_id: str | None) -> str:
    """A shipment's status and carrier cells, side by side."""
    return f"{csv_cell(status)},{csv_cell(carriers.get(carrier_id, ''))}"


@lru_cache(maxsize=1024)
def _payment_cells(provider: str | None, status: str | None) -> str:
    """A payment's provider and state cells, side by side: a handful of pairs written
    thousands of times a batch."""
    return f"{csv_cell(provider)},{csv_cell(status)}"


def _customer_cells(batch_users, found, prepared, nobody: str) -> dict:
    """{user id: its name and email cells, side by side} of a batch's customers: those
    made in an earlier batch as kept, the new ones (found in this batch's lookups, or
    found nowhere) made now and kept while there is room."""
    kept = prepared.customers
    new = batch_users.difference(kept)
    if not new:
        return kept
    emails, profiles = found["emails"], found["profiles"]
    made = {}
    for user_id in new:
        email = emails.get(user_id)
        profile = profiles.get(user_id)
        if profile is not None:
            made[user_id] = f"{csv_cell(full_name(profile[1], profile[2]))},{csv_cell(email or profile[3] or '')}"
        elif email:
            made[user_id] = f"{nobody.partition(',')[0]},{csv_cell(email)}"
        else:
            made[user_id] = nobody
    if len(kept) + len(made) <= CUSTOMERS_KEPT:
        kept.update(made)
        return kept
    return {**{user_id: kept[user_id] for user_id in batch_users - new}, **made}


def _export_cells(batch, found, lookups: Lookups, prepared) -> list[tuple]:
    # Every cell that depends on another database is worked out, as the text the file
    # holds, once per customer, payment, shipment or return of the batch, not once per
    # row, and cells that sit side by side in the file come as one text (a customer's
    # name and email, a payment's provider and state, a shipment's status and carrier).
    # The rows are then built a column at a time (the batch transposed by zip, the
    # looked-up columns read by map with the dictionaries' get) and zipped back into rows:
    # every per-row step runs in C, where a Python expression per row cost a fifth of the
    # export's time.
    user_down, auth_down = lookups.down("user"), lookups.down("auth")
    nobody = f"{UNAVAILABLE if user_down else ''},{UNAVAILABLE if auth_down and user_down else ''}"
    # An order's own cells come in four texts (_written): its number to its payment
    # status, its units to its currency, its tracking number, its id.
    ids, user_ids, payment_ids, heads, amounts, tracking, order_ids = (
        zip(*batch) if batch else ((),) * (len(_EXPORT_KEYS) + len(_EXPORT_WRITTEN)))
    customers = _customer_cells(set(user_ids), found, prepared, nobody)
    payments, several = found["payments"]
    payment_cells = dict(zip(payments, map(_payment_cells, map(itemgetter(3), payments.values()),
                                           map(itemgetter(4), payments.values()))))
    if several:  # an order with several payments: the one it names, else the newest
        chosen = dict(zip(ids, payment_ids))
        for order_id, mine in several.items():
            payment = next((p for p in mine if p[1] == chosen.get(order_id)), None) or newest(mine, 2, 1)
            payment_cells[order_id] = _payment_cells(payment[3], payment[4])
    no_payment = UNAVAILABLE if lookups.down("payment") else ""
    shipments = found["shipments"]
    shipment_cells = dict(zip(shipments, map(prepared.shipment_cells, map(itemgetter(3), shipments.values()),
                                             map(itemgetter(4), shipments.values()))))
    no_shipment = UNAVAILABLE if lookups.down("shipping") else ""
    no_return = UNAVAILABLE if lookups.down("return") else ""
    returned = {order_id: csv_cell(row[3] or no_return) for order_id, row in found["returns"].items()}

    def looked_up(values: dict, keys, otherwise):
        return map(values.get, keys, repeat(otherwise))
    # The export's header order.
    return list(zip(heads, looked_up(customers, user_ids, nobody), amounts,
                    looked_up(payment_cells, ids, f"{no_payment},{no_payment}"),
                    looked_up(shipment_cells, ids, f"{no_shipment},{no_shipment}"),
                    tracking, looked_up(returned, ids, no_return), order_ids))


# --- the list, declared -----------------------------------------------------------------------

ORDERS = ListScreen(
    name="orders", noun="orders", home="order",
    filters=OrderFilters, statement=orders_query, id_column=Order.id,
    sorts=(Sort("created", Order.created_at, "Date"),
           Sort("number", Order.order_number, "Order", descending=False),
           Sort("total", Order.total_amount, "Total", numeric=True),
           Sort("status", Order.status, "Status", descending=False)),
    default_sort="-created", decorate=decorate,
    # What the table and decorate() read of an order.
    columns=(Order.id, Order.order_number, Order.created_at, Order.status, Order.user_id, Order.payment_method_id,
             Order.total_amount, Order.currency),
    export_header=(
        "order_number", "created_at", "status", "payment_status", "customer_name", "customer_email", "items",
        "subtotal", "tax", "shipping", "discount", "total", "currency", "payment_provider", "payment_state",
        "shipment_status", "carrier", "tracking_number", "open_return", "order_id",
    ),
    export_row=_export_row, export_binds=SIDE_BINDS,
    export_fast=CopyExport(_EXPORT_KEYS, _export_cells, _EXPORT_SIDES, prepare=_prepared,
                           batch=lambda: EXPORT_BATCH, written=_EXPORT_WRITTEN),
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
    refund_progress: tuple | None = None  # (completed refunds, captured): the payment badges
    refunds_panel: OrderRefunds | None = None  # what the refunds panel shows
    returns_panel: OrderReturns | None = None  # what the returns panel shows
    not_in_database: str = ""  # what the page leaves out because a table is missing

    @property
    def customer_name(self) -> str:
        return self.profile.full_name if self.profile is not None else ""

    @property
    def customer_email(self) -> str:
        return customer_email(self.account, self.profile)

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


def _joined(bind: str, stmt) -> list:
    """The rows of a joined select of entities on one database (outer-joined ones None)."""
    with database(bind):
        return db.session.execute(stmt).all()


def _distinct_rows(rows) -> list:
    """Each entity once, in first-seen order, the Nones of outer joins left out."""
    return list({row.id: row for row in rows if row is not None}.values())


def _history_and_notes(order_id: str, with_notes: bool = True) -> tuple[list, list]:
    """The order's status history and notes, oldest first, in one statement (the
    history alone while order_db lacks the notes table)."""
    # Labelled: the union's rows are read by these names, not the database's column names.
    history = select(literal("history").label("kind"), OrderStatusHistory.id.label("id"),
                     OrderStatusHistory.created_at.label("created_at"), OrderStatusHistory.status.label("status"),
                     OrderStatusHistory.previous_status.label("previous_status"),
                     OrderStatusHistory.reason.label("text"), OrderStatusHistory.changed_by.label("who"),
                     literal(None, Boolean).label("is_internal")).where(OrderStatusHistory.order_id == order_id)
    notes = select(literal("note").label("kind"), OrderNote.id, OrderNote.created_at, literal(None, String),
                   literal(None, String), OrderNote.note, OrderNote.created_by, OrderNote.is_internal) \
        .where(OrderNote.order_id == order_id)
    with database("order"):
        rows = db.session.execute((union_all(history, notes) if with_notes else history).order_by("created_at", "id"),
                                  bind_arguments={"bind": db.engines["order"]}).all()
    found = [SimpleNamespace(**row._mapping) for row in rows]
    for row in found:
        row.reason = row.changed_by = row.note = row.created_by = None
        if row.kind == "history":
            row.reason, row.changed_by = row.text, row.who
        else:
            row.note, row.created_by = row.text, row.who
    return [r for r in found if r.kind == "history"], [r for r in found if r.kind == "note"]


def order_page(order: Order) -> OrderPage:
    """Everything about one order from every database, in a bounded number of queries."""
    lookups = Lookups()
    items = _order_rows(OrderItem, order.id, OrderItem.created_at)
    address = (_order_rows(OrderShippingAddress, order.id, OrderShippingAddress.created_at) or [None])[0]
    missing_notes = missing_table(OrderNote)  # the rest of the page stands without it
    history, notes = _history_and_notes(order.id, with_notes=not missing_notes)
    missing_notes = f"Notes are not shown: {missing_notes}." if missing_notes else ""
    db.session.expunge_all()
    oldest = datetime.min.replace(tzinfo=timezone.utc)

    run = lookups.run
    # Each database is read once or twice: a row and the rows hanging off it come in one
    # joined statement (payments with transactions and refunds, shipments with tracking,
    # returns with their history, coupon usage with its coupon).
    products = run("product", lambda: resolve("order.order_items.product_id", [i.product_id for i in items]), {})
    profile = run("user", lambda: next(iter(referrers("user.user_profiles.user_id", [order.user_id])
                                            .get(order.user_id, [])), None), None)
    usages = run("discount", lambda: _joined("discount", select(CouponUsage, Coupon).outerjoin(
        Coupon, Coupon.id == CouponUsage.coupon_id).where(CouponUsage.order_id == order.id)), [])
    coupons = {coupon.id: coupon for _, coupon in usages if coupon is not None}
    usages = _distinct_rows(usage for usage, _ in usages)
    money = run("payment", lambda: _joined("payment", select(Payment, PaymentTransaction, PaymentRefund)
                                           .outerjoin(PaymentTransaction, PaymentTransaction.payment_id == Payment.id)
                                           .outerjoin(PaymentRefund, PaymentRefund.payment_id == Payment.id)
                                           .where(Payment.order_id == order.id)), [])
    payments = _distinct_rows(p for p, _, _ in money)
    transactions = sorted(_distinct_rows(t for _, t, _ in money), key=lambda t: (t.created_at or oldest, t.id))
    refunds = _distinct_rows(r for _, _, r in money)
    parcels = run("shipping", lambda: _joined("shipping", select(Shipment, ShipmentTracking).outerjoin(
        ShipmentTracking, ShipmentTracking.shipment_id == Shipment.id).where(Shipment.order_id == order.id)), [])
    shipments = _distinct_rows(s for s, _ in parcels)
    tracking = _distinct_rows(t for _, t in parcels)
    carriers = {c.id: c for c in run("shipping", _all_carriers, [])}
    asked = run("return", lambda: _joined("return", select(ReturnRequest, ReturnStatusHistory).outerjoin(
        ReturnStatusHistory, ReturnStatusHistory.return_request_id == ReturnRequest.id)
        .where(ReturnRequest.order_id == order.id)), [])
    returns = _distinct_rows(r for r, _ in asked)
    return_history = sorted(_distinct_rows(h for _, h in asked), key=lambda h: (h.created_at or oldest, h.id))
    return_items = run("return", lambda: fetch_in("return", "return_items", "return_request_id",
                                                  [r.id for r in returns]), [])
    notifications = run("notification", lambda: _notifications(order), [])

    # The customer's account and every staff member named on the page: one auth_db query.
    console_staff = {t.id: t.provider_response.get("staff_id") for t in transactions
                     if isinstance(t.provider_response, dict) and t.provider_response.get("source") == "console"}
    actor_ids = ({h.changed_by for h in history} | {n.created_by for n in notes}
                 | {h.changed_by for h in return_history} | set(console_staff.values()))
    actor_ids -= {None, "", "system", order.user_id}
    people = {u.id: u for u in lookups.run("auth", lambda: fetch_in("auth", "users", "id",
                                                                   actor_ids | {order.user_id}), [])}
    account = people.pop(order.user_id, None) if order.user_id else None
    staff = people

    def who(user_id: str | None, service: str = "order service") -> str:
        # "system" is what a service writes for its own steps: here the order service's,
        # or the return service's in a return's history.
        if not user_id or user_id == "system":
            return service
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
                                      h.notes or "", who(h.changed_by, "return service")))
    for n in notifications:
        state = EMAIL_STATES.get(n.status or "", (n.status or "").lower())
        timeline.append(TimelineEntry(n.sent_at or n.created_at, "notification", f"Email {state}".strip(),
                                      n.subject or "", "notification service"))
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    timeline.sort(key=lambda e: e.at or oldest, reverse=True)

    payment = main_payment(order, payments)
    return OrderPage(
        order=order, items=items, address=address, products=products,
        account=None if lookups.down("auth") or not order.user_id else account or Missing(order.user_id),
        profile=profile, payment=payment, payments=payments,
        coupons=[(u, coupons.get(u.coupon_id) or Missing(u.coupon_id)) for u in usages],
        shipments=sorted(shipments, key=lambda s: s.created_at or oldest, reverse=True), carriers=carriers,
        returns=returns, timeline=timeline, unavailable=lookups.unavailable, not_in_database=missing_notes,
        refund_progress=refund_flow.progress_from(
            sum((r.amount or Decimal("0") for r in refunds if r.status == REFUND_STATUSES.COMPLETED), Decimal("0")), payments),
        refunds_panel=_refunds_panel(order, payment, transactions, refunds, lookups),
        returns_panel=_returns_panel(items, returns, return_items, lookups),
    )


def _refunds_panel(order: Order, payment, transactions: list, refunds: list, lookups: Lookups) -> OrderRefunds:
    """The refunds panel from what the page read: no second visit to payment_db."""
    key = new_id()
    if lookups.down("payment"):
        return OrderRefunds(None, [], None, None, key, "payment")
    if payment is None:
        return OrderRefunds(None, [], None, None, key)
    rows = [RefundRow(r, payment, order, None, refund_flow.needs_attention(r), refund_flow.pending_steps(r),
                      refund_flow.last_error(r))
            for r in sorted(refunds, key=lambda r: (r.created_at or _OLDEST, r.id), reverse=True)]
    return OrderRefunds(payment, rows, refund_flow.captured_from(payment, transactions),
                        refund_flow.refundable_from(payment, transactions, refunds), key)


def _returns_panel(items: list, returns: list, return_items: list, lookups: Lookups) -> OrderReturns:
    """The returns panel from what the page read: no second visit to return_db."""
    if lookups.down("return"):
        return OrderReturns([], {}, "return")
    already = return_flow.returned_from(returns, return_items)
    ordered = sorted(returns, key=lambda r: (r.created_at or _OLDEST, r.id), reverse=True)
    return OrderReturns(ordered, return_flow.left_to_return(items, already))
