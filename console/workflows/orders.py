"""Order status changes, cancellation, shipping and notes.

The order lifecycle is declared once (TRANSITIONS). Plain status changes write
order_db only; cancel and mark_shipped also write product_db, payment_db,
shipping_db and notification_db, following DESIGN.md's rules for writing across
databases: the durable intent first, then each further step as its own locked,
idempotent transaction, with a marker saying which steps are done.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from console import audit
from console.drift import require_writes
from console.extensions import db
from console.lookups import DatabaseUnavailable, chunks, database
from console.models.order import ORDER_STATUSES, Order, OrderItem, OrderNote, OrderShippingAddress, OrderStatusHistory
from console.models.payment import (AUDIT_EVENT_TYPES, PAYMENT_STATUSES, TRANSACTION_STATUSES, TRANSACTION_TYPES,
                                    Payment, PaymentAuditLog, PaymentTransaction)
from console.models.shipping import Carrier, Shipment, ShipmentTracking, ShippingMethod
from console.models.types import CENTS, new_id, utcnow
from console.workflows import WorkflowError, locked
from console.workflows import notify
from console.workflows.inventory import STOCK_WRITES, StockError, change_stock


# status -> the statuses it may move to. "refunded" is absent on purpose: only the
# refunds workflow sets it, through record_status_change.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("confirmed", "cancelled"),
    "confirmed": ("processing", "shipped", "cancelled"),
    "processing": ("shipped", "cancelled"),
    "shipped": ("delivered",),
    "delivered": (),
    "cancelled": (),
    "refunded": (),
}
CANCELLABLE = tuple(status for status, targets in TRANSITIONS.items() if "cancelled" in targets)

# Statuses that touch other databases and so have their own function.
DEDICATED = {
    "cancelled": "Use “Cancel order”: it also releases stock, voids the payment and tells the customer.",
    "shipped": "Use “Mark shipped”: it creates the shipment with its carrier and tracking number.",
    "refunded": "An order becomes refunded when a refund is issued from the refunds screen.",
}

# The order column stamped when an order first reaches a status.
STATUS_TIMESTAMPS = {"shipped": "shipped_at", "delivered": "delivered_at", "cancelled": "cancelled_at"}

# Labels of the buttons that move an order along (statuses without a dedicated function).
ACTION_LABELS = {"confirmed": "Confirm", "processing": "Start processing", "delivered": "Mark delivered"}

SERVICE_TYPES = ("standard", "express", "overnight")
TRACKING_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{4,39}$")
MAX_REASON = 500
MAX_NOTE = 2000

# Cancellation steps after the status change, in order, with what each one means.
CANCEL_STEPS = {
    "stock_released": "reserved stock released",
    "payment_voided": "pending payment voided",
    "notified": "customer notified",
}


def next_statuses(status: str | None) -> tuple[str, ...]:
    """The statuses a staff member may move an order to with a plain status change."""
    return tuple(s for s in TRANSITIONS.get(status or "", ()) if s not in DEDICATED)


def can_ship(status: str | None) -> bool:
    return "shipped" in TRANSITIONS.get(status or "", ())


def _refuse(message: str, status: int = 409) -> WorkflowError:
    # Release any row lock taken so far and drop unflushed changes: a refusal writes nothing.
    db.session.rollback()
    return WorkflowError(message, status)


def _reason(reason: str | None, *, required: bool = False, what: str = "a reason") -> str:
    text = (reason or "").strip()
    if required and not text:
        raise _refuse(f"Give {what}: it is kept in the order's history.", 422)
    if len(text) > MAX_REASON:
        raise _refuse(f"Keep the reason under {MAX_REASON} characters.", 422)
    return text


def lock_order(order_id: str) -> Order:
    """The order, re-read and locked for this transaction (SELECT … FOR UPDATE on
    PostgreSQL; SQLite has one writer at a time anyway). WorkflowError 404 when absent."""
    order = locked(select(Order).where(Order.id == order_id))
    if order is None:
        raise _refuse(f"There is no order with id {order_id}.", 404)
    return order


def status_change_writes(new_status: str) -> tuple:
    """What record_status_change() to ``new_status`` writes, for a workflow's up-front
    drift check (console/drift.py)."""
    stamp = (STATUS_TIMESTAMPS[new_status],) if new_status in STATUS_TIMESTAMPS else ()
    return ((Order, "status", "updated_at", *stamp), (OrderStatusHistory,), audit.AUDIT_ROW)


def record_status_change(actor, order: Order, new_status: str, reason: str | None) -> OrderStatusHistory | None:
    """Set ``order.status`` with its history row (changed_by = the actor) and audit row.

    Shared by every workflow that changes an order's status (the refunds workflow uses
    it to set "refunded"). It locks the order row; the caller checks that the change is
    allowed on the locked row and commits. Returns None, writing nothing, when the order
    already has that status.
    """
    # Write the caller's pending changes first: re-reading the locked row must not drop them.
    db.session.flush()
    order = lock_order(order.id)
    return set_status(actor, order, new_status, reason)


def set_status(actor, order: Order, new_status: str, reason: str | None) -> OrderStatusHistory | None:
    """record_status_change on an order the caller has already locked (a batch locks
    its orders in one statement)."""
    previous = order.status
    if previous == new_status:
        return None
    now = utcnow()
    order.status = new_status
    order.updated_at = now
    stamp = STATUS_TIMESTAMPS.get(new_status)
    if stamp and getattr(order, stamp) is None:
        setattr(order, stamp, now)
    history = OrderStatusHistory(order_id=order.id, status=new_status, previous_status=previous,
                                 changed_by=actor.id, reason=reason or None, created_at=now)
    db.session.add(history)
    audit.record(actor, f"order.{new_status}", "order", order.id,
                 before={"status": previous}, after={"status": new_status},
                 order_number=order.order_number, reason=reason)
    return history


def transition(actor, order_id: str, new_status: str, reason: str | None = None) -> Order:
    """Move an order along the declared lifecycle (confirm, start processing, deliver)."""
    if new_status not in ORDER_STATUSES:
        raise _refuse(f"“{new_status}” is not an order status.", 422)
    if new_status in DEDICATED:
        raise _refuse(DEDICATED[new_status], 422)
    reason = _reason(reason)
    with database("order"):
        order = lock_order(order_id)
        if new_status not in TRANSITIONS.get(order.status or "", ()):
            allowed = ", ".join(TRANSITIONS.get(order.status or "", ())) or "nothing (it is final)"
            raise _refuse(f"Order {order.order_number} is {order.status}; it cannot become {new_status}. "
                          f"From {order.status} it can become: {allowed}.")
        record_status_change(actor, order, new_status, reason or f"Marked {new_status}")
        db.session.commit()
    return order


# --- cancel -------------------------------------------------------------------------

@dataclass
class CancelOutcome:
    order_number: str
    started: bool  # True when this call cancelled the order; False when it finished an earlier cancel
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    payment_outcome: str = ""

    @property
    def complete(self) -> bool:
        return not self.failed

    @property
    def message(self) -> str:
        head = (f"Order {self.order_number} cancelled" if self.started
                else f"Finished cancelling order {self.order_number}" if self.complete
                else f"Order {self.order_number} is still not fully cancelled")
        done = ", ".join(CANCEL_STEPS[step] for step in self.done)
        text = head + (f": {done}." if done else ".")
        if self.payment_outcome and "payment_voided" in self.done:
            text += f" Payment: {self.payment_outcome}."
        if self.failed:
            text += " Not done yet: " + "; ".join(f"{CANCEL_STEPS[s]} ({why})" for s, why in self.failed.items())
            text += ". Press “Finish cancellation” (or cancel again) to complete it once the database is back."
        return text


def cancellation_of(order: Order) -> dict | None:
    """The cancellation marker kept in orders.metadata, or None if the console never cancelled it."""
    marker = (order.metadata_ or {}).get("cancellation")
    return marker if isinstance(marker, dict) else None


def unfinished_steps(order: Order) -> list[str]:
    marker = cancellation_of(order)
    if order.status != "cancelled" or marker is None:
        return []
    return [step for step in CANCEL_STEPS if not marker.get(step)]


# Every step of a cancellation, checked before the first (console/drift.py): a database
# that can't take a later step refuses the cancellation instead of leaving it half done.
CANCEL_WRITES = (
    *status_change_writes("cancelled"), (Order, "metadata_"), *STOCK_WRITES,
    (Payment, "status", "updated_at"), (PaymentTransaction,), (PaymentAuditLog,), notify.QUEUED_EMAIL,
)


def _mark(order: Order, **changes) -> None:
    # JSON columns do not notice in-place changes: assign a new dict.
    metadata = dict(order.metadata_ or {})
    metadata["cancellation"] = {**(metadata.get("cancellation") or {}), **changes}
    order.metadata_ = metadata


def cancel(actor, order_id: str, reason: str | None) -> CancelOutcome:
    """Cancel an order, or finish a cancellation that stopped part-way.

    1. order_db: status cancelled, cancelled_at, history, and the marker
       {"stock_released": false, "payment_voided": false, "notified": false} (the durable intent);
    2. product_db: release each item's reserved stock;
    3. payment_db: void a pending payment (cancelled + a VOID transaction + payment audit log);
    4. notification_db: queue the "order_cancelled" email.
    Each of 2–4 is its own transaction that also flips its marker flag, with the order row
    locked, so running cancel again does only the steps still marked undone.
    """
    require_writes(*CANCEL_WRITES)
    with database("order"):
        order = lock_order(order_id)
        if order.status in CANCELLABLE:
            reason = _reason(reason, required=True, what="a reason for cancelling")
            _mark(order, reason=reason, requested_by=actor.id, requested_at=utcnow().isoformat(),
                  **{step: False for step in CANCEL_STEPS})
            record_status_change(actor, order, "cancelled", reason)
            db.session.commit()
            outcome = CancelOutcome(order.order_number, started=True)
        elif order.status == "cancelled":
            marker = cancellation_of(order)
            if marker is None:
                raise _refuse(f"Order {order.order_number} was already cancelled outside the console; "
                              "there are no cancellation steps to finish here.")
            if not unfinished_steps(order):
                raise _refuse(f"Order {order.order_number} is already cancelled and every step "
                              "(stock, payment, customer email) is done. Nothing to do.")
            outcome = CancelOutcome(order.order_number, started=False)
        else:
            raise _refuse(f"Order {order.order_number} is {order.status}; only pending, confirmed or "
                          "processing orders can be cancelled. Use a return or a refund instead.")

    for step, run in (("stock_released", _release_stock), ("payment_voided", _void_payment),
                      ("notified", _notify_cancelled)):
        try:
            result = run(actor, order_id)
        except DatabaseUnavailable as exc:
            db.session.rollback()
            outcome.failed[step] = f"{exc.bind_key}_db unavailable"
        except (StockError, WorkflowError) as exc:
            db.session.rollback()
            outcome.failed[step] = str(exc)
        else:
            if result is not None:
                outcome.done.append(step)
                if step == "payment_voided":
                    outcome.payment_outcome = result
    return outcome


def _locked_unless_done(order_id: str, step: str) -> Order | None:
    order = lock_order(order_id)
    return None if (cancellation_of(order) or {}).get(step) else order


def _release_stock(actor, order_id: str) -> str | None:
    with database("order"):
        order = _locked_unless_done(order_id, "stock_released")
        if order is None:
            return None
        items = list(db.session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)))
    # One product_db transaction for all lines; products locked in id order so two
    # cancellations sharing products cannot deadlock.
    with database("product"):
        for item in sorted(items, key=lambda i: i.product_id or ""):
            if item.product_id and item.quantity:
                change_stock(actor, item.product_id, reserved=-item.quantity, variant_id=item.variant_id,
                             reason=f"order {order.order_number} cancelled", reference=order.order_number,
                             commit=False, kind="cancel", order_id=order.id, order_number=order.order_number)
        _mark(order, stock_released=True)
        audit.record(actor, "order.cancel_step", "order", order.id, step="stock_released",
                     order_number=order.order_number)
        db.session.commit()
    return "released"


def _void_payment(actor, order_id: str) -> str | None:
    with database("order"):
        order = _locked_unless_done(order_id, "payment_voided")
        if order is None:
            return None
    with database("payment"):
        payments = list(db.session.scalars(
            select(Payment).where(or_(Payment.order_id == order.id, Payment.id == order.payment_method_id))
            .order_by(Payment.created_at, Payment.id).with_for_update()))
        now = utcnow()
        voided = []
        for payment in payments:
            if payment.status != PAYMENT_STATUSES.PENDING:
                continue
            payment.status = PAYMENT_STATUSES.CANCELLED
            payment.updated_at = now
            db.session.add(PaymentTransaction(
                payment_id=payment.id, transaction_type=TRANSACTION_TYPES.VOID, status=TRANSACTION_STATUSES.SUCCEEDED,
                amount=payment.amount,
                currency=payment.currency,
                provider_response={"source": "console", "staff_id": actor.id, "reason": "order cancelled"},
                processed_at=now, created_at=now))
            db.session.add(PaymentAuditLog(
                event_type=AUDIT_EVENT_TYPES.PAYMENT_VOIDED, user_id=actor.id, payment_id=payment.id, order_id=order.id,
                amount=payment.amount, currency=payment.currency, ip_address=getattr(actor, "ip", None),
                success=True, timestamp=now))
            audit.record(actor, "payment.voided", "payment", payment.id, before={"status": PAYMENT_STATUSES.PENDING},
                         after={"status": payment.status}, order_id=order.id, amount=payment.amount)
            voided.append(payment)
        if voided:
            result = "voided " + ", ".join(f"{p.amount} {p.currency}" for p in voided)
        elif any(p.status in (PAYMENT_STATUSES.SUCCEEDED, PAYMENT_STATUSES.PROCESSING) for p in payments):
            result = "already captured, nothing to void; issue a refund from the refunds screen"
        else:
            result = "no pending payment to void"
        _mark(order, payment_voided=True, payment_outcome=result)
        audit.record(actor, "order.cancel_step", "order", order.id, step="payment_voided",
                     order_number=order.order_number, outcome=result)
        db.session.commit()
    return result


def _notify_cancelled(actor, order_id: str) -> str | None:
    with database("order"):
        order = db.session.get(Order, order_id)
        user_id = order.user_id if order else None
    # Read the greeting before locking: a failed read rolls the session back.
    first_name = notify.first_name(user_id)
    with database("order"):
        order = _locked_unless_done(order_id, "notified")
        if order is None:
            return None
    with database("notification"):
        if order.user_id:
            marker = cancellation_of(order) or {}
            notify.queue(order.user_id, "order_cancelled",
                         notify.order_variables(order, first_name, reason=marker.get("reason", "")),
                         key=f"order_cancelled:{order.id}")
        _mark(order, notified=True)
        audit.record(actor, "order.cancel_step", "order", order.id, step="notified",
                     order_number=order.order_number)
        db.session.commit()
    return "queued"


# --- mark shipped --------------------------------------------------------------------

# Where parcels leave from: a shipment's origin address (the field names of the services' addresses).
SHIPS_FROM = {"name": "Warehouse", "address_line1": "100 Warehouse Road", "city": "Springfield",
              "postal_code": "12345", "country": "US"}
# A shipment's weight when staff typed none: the column is NOT NULL, and 0 kg adds nothing
# to the cost.
UNWEIGHED = Decimal("0.00")


def _ship_input_problem(tracking: str, service_type: str, weight: Decimal | None = None) -> str:
    """What is wrong with a shipment's typed values ("" when nothing)."""
    if not TRACKING_NUMBER.match(tracking):
        return "Enter the carrier's tracking number: 5 to 40 letters, digits or dashes."
    if service_type not in SERVICE_TYPES:
        return f"Choose a service: {', '.join(SERVICE_TYPES)}."
    if weight is not None and weight <= 0:
        return "The weight must be more than zero kg (or leave it empty)."
    return ""


def _destination(address: OrderShippingAddress | None) -> dict | None:
    return None if address is None else {
        "first_name": address.first_name, "last_name": address.last_name,
        "address_line1": address.address_line1, "city": address.city,
        "postal_code": address.postal_code, "country": address.country}


def _shipping_method(carrier_code: str, service_type: str):
    return select(ShippingMethod).where(ShippingMethod.carrier == carrier_code,
                                        ShippingMethod.service_type == service_type,
                                        ShippingMethod.is_active.is_(True)) \
        .order_by(ShippingMethod.name, ShippingMethod.id).limit(1)


def _not_shippable(order: Order) -> str:
    """Why this (locked) order can't be marked shipped now, "" when it can."""
    if order.status == "shipped":
        return (f"Order {order.order_number} is already shipped"
                + (f" (tracking {order.tracking_number})." if order.tracking_number else "."))
    if not can_ship(order.status):
        return (f"Order {order.order_number} is {order.status}; only confirmed or processing "
                "orders can be marked shipped.")
    return ""


def _require_shipping_columns() -> None:
    # A database that lacks a column written below refuses now, before the shipment is made.
    # (orders.estimated_delivery_date is set only when the database has it.)
    require_writes(*status_change_writes("shipped"), (Order, "tracking_number"),
                   (Shipment, "order_id", "carrier_id", "method_id", "tracking_number", "status", "weight", "cost",
                    "origin_address", "destination_address", "shipped_at", "estimated_delivery_date",
                    "carrier_response", "created_at", "updated_at"),
                   (ShipmentTracking,), notify.QUEUED_EMAIL)


def _eta(method, now):
    return now + timedelta(days=method.estimated_days) if method and method.estimated_days else None


def _new_shipment(actor, order_id: str, carrier, method, service_type: str, tracking: str,
                  weight: Decimal | None, destination: dict | None, now) -> Shipment:
    """The shipment with its first tracking event and audit row, added to the session."""
    weight = UNWEIGHED if weight is None else weight
    # Without a shipping method there is no rate to cost the parcel by: 0.00 (the column is NOT NULL).
    cost = Decimal("0")
    if method is not None and method.base_price is not None:
        cost = method.base_price + (method.price_per_kg or Decimal("0")) * weight
    cost = cost.quantize(CENTS)
    # The id is set here because the tracking event and audit row name it before the flush.
    shipment = Shipment(id=new_id(), order_id=order_id, carrier_id=carrier.id,
                        method_id=method.id if method else None, tracking_number=tracking,
                        status="in_transit", weight=weight, cost=cost, origin_address=SHIPS_FROM,
                        destination_address=destination or {},
                        shipped_at=now, estimated_delivery_date=_eta(method, now), carrier_response={},
                        created_at=now, updated_at=now)
    db.session.add(shipment)
    db.session.add(ShipmentTracking(
        shipment_id=shipment.id, status="in_transit", timestamp=now, created_at=now,
        description=f"Handed to {carrier.name} ({service_type}), tracking {tracking}.", carrier_data={}))
    audit.record(actor, "shipment.created", "shipment", shipment.id,
                 after={"order_id": order_id, "carrier": carrier.code, "service_type": service_type,
                        "tracking_number": tracking, "weight": weight, "cost": cost})
    return shipment


def _set_shipped(actor, order: Order, shipment: Shipment, carrier_name: str, tracking: str, eta,
                 reason: str | None, now, first_name: str):
    """The (locked) order shipped with its tracking number: status, history, audit; returns
    the customer's email to queue as (user id, variables, key), or None."""
    set_status(actor, order, "shipped", reason or f"Shipped with {carrier_name}, tracking {tracking}")
    order.tracking_number = tracking
    order.shipped_at = shipment.shipped_at or now
    if eta and order.estimated_delivery_date is None:
        order.estimated_delivery_date = eta
    if not order.user_id:
        return None
    return (order.user_id, notify.order_variables(order, first_name, carrier=carrier_name, tracking_number=tracking),
            f"order_shipped:{order.id}")


def _tracking_taken(tracking: str) -> str:
    return f"Tracking number {tracking} is already used by another shipment. Check the number on the label."


def mark_shipped(actor, order_id: str, carrier_code: str, service_type: str, tracking_number: str,
                 reason: str | None = None, *, weight: Decimal | None = None) -> Shipment:
    """Create the shipment in shipping_db (with its first tracking event) and set the
    order shipped with its tracking number and shipped date, in one commit.

    A retry after a failure between the two databases finds the shipment already made
    for this order under the same tracking number and reuses it.
    """
    tracking = (tracking_number or "").strip()
    problem = _ship_input_problem(tracking, service_type, weight)
    if problem:
        raise _refuse(problem, 422)
    reason = _reason(reason)

    with database("order"):
        order = db.session.get(Order, order_id)
        if order is None:
            raise _refuse(f"There is no order with id {order_id}.", 404)
        address = db.session.scalar(select(OrderShippingAddress).where(OrderShippingAddress.order_id == order_id))
        user_id = order.user_id
        destination = _destination(address)
    first_name = notify.first_name(user_id)
    with database("shipping"):
        carrier = db.session.scalar(select(Carrier).where(Carrier.code == (carrier_code or "").strip()))
        if carrier is None or not carrier.is_active:
            raise _refuse(f"“{carrier_code}” is not an active carrier. Pick one from the list.", 422)
        method = db.session.scalar(_shipping_method(carrier.code, service_type))
        existing = db.session.scalar(select(Shipment).where(Shipment.tracking_number == tracking))
    if existing is not None and existing.order_id != order_id:
        raise _refuse(_tracking_taken(tracking))

    with database("order"):
        order = lock_order(order_id)
        refused = _not_shippable(order)
        if refused:
            raise _refuse(refused)
    _require_shipping_columns()
    now = utcnow()
    shipment = existing or _new_shipment(actor, order_id, carrier, method, service_type, tracking, weight,
                                         destination, now)
    try:
        with database("shipping"):
            db.session.flush()
    except IntegrityError:
        raise _refuse(_tracking_taken(tracking)) from None

    with database("order"):
        order = lock_order(order_id)
        email = _set_shipped(actor, order, shipment, carrier.name, tracking, _eta(method, now), reason, now,
                             first_name)
        if email:
            notify.queue(email[0], "order_shipped", email[1], key=email[2])
        db.session.commit()
    return shipment


# --- shipping many orders at once ------------------------------------------------------

# Orders locked and shipped per transaction by ship_many.
SHIP_BATCH = 200
SHIPPED, SKIPPED, REFUSED = "shipped", "skip", "refused"


@dataclass
class ShipRequest:
    order_id: str
    carrier_code: str
    service_type: str
    tracking_number: str
    reason: str | None = None


def ship_many(actor, requests: list[ShipRequest], *, batch: int = SHIP_BATCH) -> dict[str, tuple[str, str]]:
    """Mark many orders shipped with the same outcome as ``mark_shipped`` for each
    (shipment and its first tracking event, order status, tracking number, history,
    audit rows, the customer's email), in transactions of ``batch`` orders.

    Returns {order id: (outcome, detail)}: ``shipped``; ``skip`` when the order is
    already shipped with this tracking number (a repeat, or another staff member's
    batch meanwhile); ``refused`` with the reason mark_shipped would give. One refused
    order does not stop the others.

    Each batch reads its orders, addresses, greetings and shipments in one query per
    database, then locks its orders in id order (SELECT … FOR UPDATE: two staff
    shipping the same orders wait for each other instead of deadlocking, and the
    second finds them shipped). Should shipping_db's unique tracking number refuse a
    batch (a number taken meanwhile), that batch is shipped again one order at a time
    through ``mark_shipped``, so each order gets its own answer.
    """
    outcomes: dict[str, tuple[str, str]] = {}
    wanted: list[ShipRequest] = []
    seen: set[str] = set()
    for request in requests:
        if request.order_id in seen:
            continue  # each order once: the first request for it counts
        seen.add(request.order_id)
        request.tracking_number = (request.tracking_number or "").strip()
        problem = _ship_input_problem(request.tracking_number, request.service_type) or (
            f"Keep the reason under {MAX_REASON} characters." if len(request.reason or "") > MAX_REASON else "")
        if problem:
            outcomes[request.order_id] = (REFUSED, problem)
        else:
            wanted.append(request)
    if not wanted:
        return outcomes
    _require_shipping_columns()
    with database("shipping"):
        codes = sorted({r.carrier_code for r in wanted})
        # Plain copies: each batch's commit expires the session's rows.
        carriers = {c.code: SimpleNamespace(id=c.id, code=c.code, name=c.name, is_active=c.is_active)
                    for c in db.session.scalars(select(Carrier).where(Carrier.code.in_(codes)))}
        methods = {}
        for code, service in {(r.carrier_code, r.service_type) for r in wanted}:
            method = db.session.scalar(_shipping_method(code, service))
            methods[(code, service)] = method and SimpleNamespace(
                id=method.id, base_price=method.base_price, price_per_kg=method.price_per_kg,
                estimated_days=method.estimated_days)
    for chunk in chunks(wanted, batch):
        outcomes.update(_ship_batch(actor, chunk, carriers, methods))
    return outcomes


def _ship_batch(actor, chunk: list[ShipRequest], carriers: dict, methods: dict) -> dict[str, tuple[str, str]]:
    outcomes: dict[str, tuple[str, str]] = {}
    ids = sorted({r.order_id for r in chunk})
    with database("order"):
        addresses = {a.order_id: a for a in db.session.scalars(
            select(OrderShippingAddress).where(OrderShippingAddress.order_id.in_(ids)))}
        user_ids = list(db.session.scalars(select(Order.user_id).where(Order.id.in_(ids))))
    names = notify.first_names(user_ids)
    with database("shipping"):
        taken = {s.tracking_number: s for s in db.session.scalars(
            select(Shipment).where(Shipment.tracking_number.in_([r.tracking_number for r in chunk])))}
    with database("order"):
        found = {o.id: o for o in db.session.scalars(
            select(Order).where(Order.id.in_(ids)).order_by(Order.id).with_for_update()
            .execution_options(populate_existing=True))}
    now = utcnow()
    ready = []
    for request in chunk:
        order, tracking = found.get(request.order_id), request.tracking_number
        carrier = carriers.get(request.carrier_code)
        existing = taken.get(tracking)
        if order is None:
            outcomes[request.order_id] = (REFUSED, f"There is no order with id {request.order_id}.")

        elif order.status in ("shipped", "delivered") and order.tracking_number == tracking:
            outcomes[order.id] = (SKIPPED, f"{order.status} with tracking {tracking}")
        elif carrier is None or not carrier.is_active:
            outcomes[order.id] = (REFUSED, f"“{request.carrier_code}” is not an active carrier. Pick one from the list.")
        elif existing is not None and existing.order_id != order.id:
            outcomes[order.id] = (REFUSED, _tracking_taken(tracking))
        elif _not_shippable(order):
            outcomes[order.id] = (REFUSED, _not_shippable(order))
        else:
            method = methods.get((carrier.code, request.service_type))
            shipment = existing or _new_shipment(actor, order.id, carrier, method, request.service_type, tracking,
                                                 None, _destination(addresses.get(order.id)), now)
            taken[tracking] = shipment
            ready.append((request, order, carrier, method, shipment))
    try:
        with database("shipping"):
            db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return _ship_one_by_one(actor, chunk)
    emails = []
    with database("order"):
        for request, order, carrier, method, shipment in ready:
            email = _set_shipped(actor, order, shipment, carrier.name, request.tracking_number, _eta(method, now),
                                 request.reason, now, names.get(order.user_id, ""))
            if email:
                emails.append(email)
            outcomes[order.id] = (SHIPPED, "")
        with database("notification"):
            notify.queue_many("order_shipped", emails)
        db.session.commit()
    return outcomes


def _ship_one_by_one(actor, chunk: list[ShipRequest]) -> dict[str, tuple[str, str]]:
    outcomes = {}
    for request in chunk:
        try:
            mark_shipped(actor, request.order_id, request.carrier_code, request.service_type,
                         request.tracking_number, request.reason)
        except WorkflowError as exc:
            db.session.rollback()
            outcomes[request.order_id] = _after_refusal(request, exc.message)
        else:
            outcomes[request.order_id] = (SHIPPED, "")
    return outcomes


def _after_refusal(request: ShipRequest, message: str) -> tuple[str, str]:
    """A refusal by mark_shipped: when someone else shipped this order with this
    tracking number meanwhile, the order is a skip, not a failure."""
    with database("order"):
        order = db.session.get(Order, request.order_id)
        shipped = order is not None and order.status == "shipped" and order.tracking_number == request.tracking_number
        db.session.rollback()
    if shipped:
        return SKIPPED, f"shipped with tracking {request.tracking_number} meanwhile"
    return REFUSED, message


# --- notes ---------------------------------------------------------------------------

def add_note(actor, order_id: str, text: str | None, is_internal: bool = True) -> OrderNote:
    """An internal (staff only) or customer-visible note on the order."""
    text = (text or "").strip()
    if not text:
        raise _refuse("Write the note first.", 422)
    if len(text) > MAX_NOTE:
        raise _refuse(f"Keep notes under {MAX_NOTE} characters.", 422)
    with database("order"):
        order = db.session.get(Order, order_id)
        if order is None:
            raise _refuse(f"There is no order with id {order_id}.", 404)
        note = OrderNote(order_id=order.id, note=text, created_by=actor.id, is_internal=bool(is_internal),
                         created_at=utcnow())
        db.session.add(note)
        db.session.flush()
        audit.record(actor, "order.note_added", "order", order.id, after={"note_id": note.id,
                     "is_internal": bool(is_internal), "note": text[:200]}, order_number=order.order_number)
        db.session.commit()
    return note


# --- bulk status changes -----------------------------------------------------------------

# Orders one bulk action may change at once.
MAX_BULK = 1_000


@dataclass
class BulkOutcome:
    """Each order of a bulk action: (order id, order number, message) done or refused."""
    done: list[tuple[str, str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)


def bulk_transition(actor, order_ids: list[str], new_status: str, reason: str | None = None) -> BulkOutcome:
    """``transition`` for each order, one at a time, each in its own transaction with
    its own history and audit rows: one refused order does not stop the others."""
    if len(order_ids) > MAX_BULK:
        raise _refuse(f"Choose at most {MAX_BULK:,} orders at once ({len(order_ids):,} chosen).", 422)
    numbers: dict[str, str] = {}
    with database("order"):
        for chunk in chunks(order_ids):
            numbers.update(db.session.execute(select(Order.id, Order.order_number).where(Order.id.in_(chunk))).all())
        db.session.rollback()
    outcome = BulkOutcome()
    for order_id in dict.fromkeys(order_ids):
        number = numbers.get(order_id) or order_id
        try:
            transition(actor, order_id, new_status, reason)
        except WorkflowError as exc:
            outcome.refused.append((order_id, number, exc.message))
        except DatabaseUnavailable as exc:
            db.session.rollback()
            outcome.refused.append((order_id, number, f"{exc.bind_key}_db unavailable; nothing changed"))
        else:
            outcome.done.append((order_id, number, f"now {new_status}"))
    return outcome
