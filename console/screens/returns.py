"""Returns screens: the filtered list, its CSV export, the return page, the order panel.

Returns live in return_db; the order, the customer, the order items, the products as
they are now, the payment refunds and the emails live elsewhere and are joined in
Python through the reference registry, one IN query per table per page (or export
batch). A database that is down empties only what it feeds (``unavailable``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from console.exports import CopyExport, Side
from console.extensions import db
from console.filters import (QueryFilters, choice, customer_ids, customer_text, date_range, order_ids_numbered, text,
                             where_equal, within_days)
from console.lookups import Lookups, Missing, database, resolve, target_or_missing
from console.models.auth import User
from console.models.notification import Notification
from console.models.order import Order, OrderItem
from console.models.returns import (ReturnAuthorization, ReturnItem, ReturnRefund, ReturnRequest,
                                    ReturnStatusHistory, ReturnTracking)
from console.models.user import UserProfile
from console.screens.lists import ListScreen, Sort
from console.timeline import TimelineEntry
from console.workflows import refunds as refund_flow
from console.workflows import returns as flow


# --- filters ---------------------------------------------------------------------------

@dataclass
class ReturnFilters(QueryFilters):
    status: str = ""
    reason: str = ""
    refund_method: str = ""
    requested_from: date | None = None
    requested_to: date | None = None
    order: str = ""  # order number (exact, any case)
    customer: str = ""  # email or name, any part
    rma: str = ""  # RMA number or its start, any case

    FIELDS = ("status", "reason", "refund_method", "requested_from", "requested_to", "order", "customer", "rma")

    @classmethod
    def parse(cls, args) -> tuple["ReturnFilters", list[str]]:
        """Filters from a query string, plus a message for each value that can't be used."""
        errors: list[str] = []
        f = cls()
        f.status = choice(args, "status", flow.STATUSES, "Status", errors)
        f.reason = choice(args, "reason", flow.REASONS, "Reason", errors)
        f.refund_method = choice(args, "refund_method", flow.REFUND_METHODS, "Refund method", errors)
        f.requested_from, f.requested_to = date_range(args, ("requested_from", "Requested from"),
                                                      ("requested_to", "Requested to"), errors)
        f.order = text(args, "order", errors)
        f.customer = customer_text(args, errors)
        f.rma = text(args, "rma", errors)
        return f, errors


def returns_query(filters: ReturnFilters, lookups: Lookups | None = None):
    """The select of returns matching ``filters``. The order and customer filters are
    first turned into ids in order_db / auth_db and user_db (DatabaseUnavailable names
    the one that is down; FilterError when a filter is too broad)."""
    stmt = select(ReturnRequest)
    stmt = where_equal(stmt, (ReturnRequest.status, filters.status), (ReturnRequest.return_reason, filters.reason),
                       (ReturnRequest.refund_method, filters.refund_method))
    stmt = within_days(stmt, ReturnRequest.requested_at, filters.requested_from, filters.requested_to)
    if filters.order:
        stmt = stmt.where(ReturnRequest.order_id.in_(order_ids_numbered(filters.order)))
    if filters.customer:
        stmt = stmt.where(ReturnRequest.user_id.in_(customer_ids(filters.customer)))
    if filters.rma:
        stmt = stmt.where(ReturnRequest.rma_number.istartswith(filters.rma, autoescape=True))
    return stmt


# --- list rows -----------------------------------------------------------------------------

@dataclass
class ReturnRow:
    request: ReturnRequest
    order: Order | Missing | None
    customer: User | Missing | None
    units: int | None


def decorate(requests: list[ReturnRequest], lookups: Lookups) -> list[ReturnRow]:
    """Order, customer and item count for a batch of returns: one query per table."""
    ids = [r.id for r in requests]

    def units_per_return():
        if not ids:
            return {}
        with database("return"):
            return dict(db.session.execute(
                select(ReturnItem.return_request_id, func.sum(ReturnItem.quantity))
                .where(ReturnItem.return_request_id.in_(ids)).group_by(ReturnItem.return_request_id)).all())

    units = lookups.run("return", units_per_return, {})
    orders = lookups.run("order", lambda: resolve("return.return_requests.order_id", [r.order_id for r in requests]), {})
    users = lookups.run("auth", lambda: resolve("return.return_requests.user_id", [r.user_id for r in requests]), {})
    return [ReturnRow(r,
                      None if lookups.down("order") else target_or_missing(orders, r.order_id),
                      None if lookups.down("auth") else target_or_missing(users, r.user_id),
                      None if lookups.down("return") else int(units.get(r.id) or 0))
            for r in requests]


def _label(value) -> str:
    if value is None:
        return "unavailable"
    if isinstance(value, Missing):
        return str(value)
    return ""


def _export_row(row: ReturnRow, lookups: Lookups) -> list:
    r = row.request
    return [r.rma_number, r.status, row.order.order_number if isinstance(row.order, Order) else _label(row.order),
            row.customer.email if isinstance(row.customer, User) else _label(row.customer),
            r.return_reason, r.refund_method, row.units, r.refund_amount, r.currency, r.requested_at,
            r.approved_at, r.rejected_at, r.received_at, r.processed_at, r.closed_at, r.return_notes,
            r.id, r.order_id]


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as _export_row ---

_RETURNS, _ITEMS, _ORDERS, _USERS = (ReturnRequest.__table__.c, ReturnItem.__table__.c, Order.__table__.c,
                                     User.__table__.c)
_EXPORT_COLUMNS = (
    *(_RETURNS[name] for name in ("rma_number", "status", "return_reason", "refund_method")),
    select(func.coalesce(func.sum(_ITEMS.quantity), 0)).where(_ITEMS.return_request_id == _RETURNS.id)
    .scalar_subquery().label("units"),
    *(_RETURNS[name] for name in ("refund_amount", "currency", "requested_at", "approved_at", "rejected_at",
                                  "received_at", "processed_at", "closed_at", "return_notes", "id", "order_id",
                                  "user_id")))
_EXPORT_SIDES = {
    "orders": Side("order", lambda batch: [row[15] for row in batch], lambda ids, among: select(
        _ORDERS.id, _ORDERS.order_number).where(among(_ORDERS.id, ids))),
    "customers": Side("auth", lambda batch: [row[16] for row in batch], lambda ids, among: select(
        _USERS.id, _USERS.email).where(among(_USERS.id, ids)), kept=True),
}


def _looked_up(found: dict, key, down: bool) -> str | None:
    """The looked-up cell as _label() words what is not there."""
    if down or not key:
        return "unavailable"
    row = found.get(key)
    return row[0][1] if row else str(Missing(key))


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    orders, customers = found["orders"], found["customers"]
    order_down, auth_down = lookups.down("order"), lookups.down("auth")
    return [[*r[:2], _looked_up(orders, r[15], order_down), _looked_up(customers, r[16], auth_down), *r[2:16]]
            for r in batch]


RETURNS = ListScreen(
    name="returns", noun="returns", home="return", endpoint="list_returns", export_endpoint="export_returns",
    filters=ReturnFilters, statement=returns_query, id_column=ReturnRequest.id,
    sorts=(Sort("created", ReturnRequest.created_at, "Created"),
           Sort("requested", ReturnRequest.requested_at, "Requested"),
           Sort("rma", ReturnRequest.rma_number, "RMA", descending=False),
           Sort("refund", ReturnRequest.refund_amount, "Refund", numeric=True),
           Sort("status", ReturnRequest.status, "Status", descending=False)),
    default_sort="-created", decorate=decorate,
    export_header=("rma_number", "status", "order_number", "customer_email", "reason", "refund_method", "units",
                   "refund_amount", "currency", "requested_at", "approved_at", "rejected_at", "received_at",
                   "processed_at", "closed_at", "notes", "return_id", "order_id"),
    export_row=_export_row, export_binds=("order", "auth"),
    export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells, _EXPORT_SIDES),
)


# --- the return page -------------------------------------------------------------------------

@dataclass
class ItemView:
    item: ReturnItem
    ordered: OrderItem | Missing | None  # None: order_db unavailable
    product: object | None  # Product, Missing, or None (product_db unavailable / no id)
    restock: str | None  # pending | done | not_restocked | None (not restocked by design)


@dataclass
class RefundView:
    refund: object  # PaymentRefund
    needs_attention: bool
    pending: list[str]
    error: dict | None


@dataclass
class ReturnPage:
    request: ReturnRequest
    items: list[ItemView]
    authorization: ReturnAuthorization | None
    tracking: list[ReturnTracking]
    history: list[ReturnStatusHistory]
    return_refunds: list[ReturnRefund]
    payment_refunds: list[RefundView]
    order: Order | Missing | None
    payment: object | None
    refundable: Decimal | None
    refund_progress: tuple | None  # (completed refunds, captured) of the order: its payment badges
    customer: User | Missing | None
    profile: UserProfile | None
    staff: dict
    timeline: list[TimelineEntry]
    unavailable: set[str] = field(default_factory=set)

    @property
    def restock_pending(self) -> bool:
        return any(view.restock == "pending" for view in self.items)

    @property
    def needs_attention(self) -> bool:
        return any(view.needs_attention for view in self.payment_refunds) or self.refund_failed

    @property
    def refund_recorded(self) -> bool:
        """A payment refund that is done or on its way (a failed one returned nothing)."""
        return any(view.refund.status != refund_flow.STATUSES.FAILED for view in self.payment_refunds)

    @property
    def refund_failed(self) -> bool:
        """The return's payment refund failed at the provider and none replaced it yet."""
        return self.request.status == "received" and bool(self.payment_refunds) and not self.refund_recorded

    @property
    def customer_name(self) -> str:
        return self.profile.full_name if self.profile is not None else ""

    def who(self, user_id: str | None) -> str:
        if not user_id:
            return "—"
        if user_id == self.request.user_id:
            return "customer"
        if user_id == "system":  # what the return service writes for its own steps
            return "return service"
        user = self.staff.get(user_id)
        if user is not None:
            return user.email
        return str(Missing(user_id))

    def can(self, new_status: str) -> bool:
        return flow.allowed(self.request.status, new_status)

    @property
    def max_amounts(self) -> dict[str, Decimal]:
        return flow.full_amounts([view.item for view in self.items])

    @property
    def shipping_offer(self) -> Decimal | None:
        """The shipping charge processing may add (flow.shipping_offer), when the order is known."""
        if not isinstance(self.order, Order) or self.request.refund_method == "exchange":
            return None
        return flow.shipping_offer(self.request, self.order)


def usual_return_address() -> dict:
    """The address the last authorization used (the warehouse the shop returns to), so
    the approve form starts from it; the workflow's default when there is none yet."""
    with database("return"):
        last = db.session.scalar(select(ReturnAuthorization.return_address)
                                 .where(ReturnAuthorization.return_address.is_not(None))
                                 .order_by(ReturnAuthorization.created_at.desc()).limit(1))
    if isinstance(last, dict) and last.get("address_line1"):
        return {k: last.get(k, "") for k in flow.ADDRESS_FIELDS}
    return dict(flow.DEFAULT_RETURN_ADDRESS)


def find(key: str) -> ReturnRequest | None:
    with database("return"):
        return flow.find_return(key)


def return_page(request: ReturnRequest) -> ReturnPage:
    """Everything about one return. return_db must answer; every other database may be
    down, and then only the parts it feeds are left empty."""
    with database("return"):
        items = list(db.session.scalars(select(ReturnItem).where(ReturnItem.return_request_id == request.id)
                                        .order_by(ReturnItem.created_at, ReturnItem.id)))
        authorization = db.session.scalar(select(ReturnAuthorization).where(
            ReturnAuthorization.return_request_id == request.id))
        tracking = list(db.session.scalars(select(ReturnTracking).where(
            ReturnTracking.authorization_id == authorization.id).order_by(ReturnTracking.timestamp))) if authorization else []
        history = list(db.session.scalars(select(ReturnStatusHistory).where(
            ReturnStatusHistory.return_request_id == request.id).order_by(ReturnStatusHistory.created_at,
                                                                          ReturnStatusHistory.id)))
        return_refunds = list(db.session.scalars(select(ReturnRefund).where(
            ReturnRefund.return_request_id == request.id).order_by(ReturnRefund.created_at)))
    db.session.expunge_all()
    lookups = Lookups()

    def load(bind_key: str, fn, default):
        # Lookups turns DatabaseUnavailable into "unavailable"; database() raises it.
        def guarded():
            with database(bind_key):
                return fn()
        return lookups.run(bind_key, guarded, default)

    ordered = load("order", lambda: resolve("return.return_items.order_item_id", [i.order_item_id for i in items]), {})
    products = load("product", lambda: resolve("return.return_items.product_id", [i.product_id for i in items]), {})
    order = load("order", lambda: db.session.get(Order, request.order_id) if request.order_id else None, None)
    profile = load("user", lambda: db.session.scalar(
        select(UserProfile).where(UserProfile.user_id == request.user_id)) if request.user_id else None, None)

    def payment_side():
        payment = refund_flow.payment_for_order(order) if isinstance(order, Order) else None
        refundable = refund_flow.refundable_amount(payment) if payment is not None else None
        progress = refund_flow.refund_progress([order.id]).get(order.id) if isinstance(order, Order) else None
        return payment, refundable, progress, refund_flow.refunds_of_return(request)

    payment, refundable, progress, payment_refunds = load("payment", payment_side, (None, None, None, []))
    # Staff who changed the status or issued a refund, and the customer: one auth_db query.
    staff_ids = ([h.changed_by for h in history] + [request.user_id]
                 + [(r.metadata_ or {}).get("staff_id") for r in payment_refunds])
    staff = load("auth", lambda: resolve("return.return_status_history.changed_by", staff_ids), {})
    notifications = load("notification", lambda: _emails_about(request, payment_refunds), [])

    markers = flow.restock_markers(request)
    item_views = [ItemView(item,
                           None if lookups.down("order") else target_or_missing(ordered, item.order_item_id),
                           None if lookups.down("product") else target_or_missing(products, item.product_id),
                           markers.get(item.id))
                  for item in items]
    refund_views = [RefundView(r, refund_flow.needs_attention(r), refund_flow.pending_steps(r), refund_flow.last_error(r))
                    for r in payment_refunds]
    page = ReturnPage(
        request=request, items=item_views, authorization=authorization, tracking=tracking, history=history,
        return_refunds=return_refunds, payment_refunds=refund_views,
        order=None if lookups.down("order") else target_or_missing({request.order_id: order} if order else {}, request.order_id),
        payment=payment, refundable=refundable, refund_progress=progress,
        customer=None if lookups.down("auth") else target_or_missing(staff, request.user_id),
        profile=profile, staff=staff, timeline=[], unavailable=lookups.unavailable)
    page.timeline = _timeline(page, notifications)
    return page


def _emails_about(request: ReturnRequest, payment_refunds: list) -> list[Notification]:
    """The customer's emails about this return: keyed by the return, or by its refunds."""
    if not request.user_id:
        return []
    keys = {f"refund:{r.id}" for r in payment_refunds}
    prefix = f"return:{request.id}:"
    rows = db.session.scalars(select(Notification).where(Notification.user_id == request.user_id)
                              .order_by(Notification.created_at.desc()).limit(200))
    return [n for n in rows if str((n.metadata_ or {}).get("key", "")).startswith(prefix)
            or (n.metadata_ or {}).get("key") in keys]


def _timeline(page: ReturnPage, notifications: list[Notification]) -> list[TimelineEntry]:
    """One list, newest first, from return_db, payment_db and notification_db."""
    entries = []
    for h in page.history:
        title = f"Status {flow.label(h.status)}" if h.previous_status else "Return requested"
        entries.append(TimelineEntry(h.created_at, "return", title, h.notes or "", page.who(h.changed_by)))
    for t in page.tracking:
        detail = " · ".join(p for p in (t.location, t.description) if p)
        entries.append(TimelineEntry(t.timestamp, "return", f"Parcel: {t.status}", detail, "carrier"))
    for view in page.payment_refunds:
        r = view.refund
        state = "needs attention" if view.needs_attention else r.status.lower()
        entries.append(TimelineEntry(r.created_at, "payment", f"Refund {r.amount} {r.currency} ({state})",
                                     r.reason or "", page.who((r.metadata_ or {}).get("staff_id"))))
    for rr in page.return_refunds:
        entries.append(TimelineEntry(rr.created_at, "return", f"Return refund recorded: {rr.amount} {rr.currency}",
                                     f"{flow.label(rr.refund_method)}, {rr.status}", ""))
    for n in notifications:
        entries.append(TimelineEntry(n.created_at, "notification", f"Email: {n.subject or (n.metadata_ or {}).get('template')}",
                                     (n.status or "").lower(), "customer"))
    return sorted(entries, key=lambda e: (e.at is not None, e.at), reverse=True)


# --- the panel on the order page, and the create form ---------------------------------------

@dataclass
class OrderReturns:
    returns: list[ReturnRequest]
    returnable: dict[str, int]  # order item id -> quantity that can still be returned
    unavailable: str | None = None

    @property
    def can_create(self) -> bool:
        return any(self.returnable.values())


@dataclass
class NewReturnForm:
    order: Order
    items: list[OrderItem]
    returnable: dict[str, int]
    already: dict[str, int]


def new_return_form(order_key: str) -> NewReturnForm | None:
    """The order (by id or number) and, per item, what can still be returned."""
    with database("order"):
        order = db.session.get(Order, order_key) or db.session.scalar(
            select(Order).where(func.upper(Order.order_number) == order_key.upper()))
        if order is None:
            return None
        items = list(db.session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)
                                        .order_by(OrderItem.created_at, OrderItem.id)))
    with database("return"):
        already = flow.returned_quantities(order.id)
    returnable = {i.id: max(0, (i.quantity or 0) - already.get(i.id, 0)) for i in items}
    return NewReturnForm(order, items, returnable, already)

