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
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from console import audit
from console.drift import require_writes
from console.extensions import db
from console.lookups import DatabaseUnavailable, database
from console.models.order import ORDER_STATUSES, Order, OrderItem, OrderNote, OrderShippingAddress, OrderStatusHistory
from console.models.payment import Payment, PaymentAuditLog, PaymentTransaction
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
    3. payment_db: void a PENDING payment (CANCELLED + a VOID transaction + payment audit log);
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
            if payment.status != "PENDING":
                continue
            payment.status = "CANCELLED"
            payment.updated_at = now
            db.session.add(PaymentTransaction(
                payment_id=payment.id, transaction_type="VOID", status="SUCCEEDED", amount=payment.amount,
                currency=payment.currency,
                provider_response={"source": "console", "staff_id": actor.id, "reason": "order cancelled"},
                processed_at=now, created_at=now))
            db.session.add(PaymentAuditLog(
                event_type="PAYMENT_VOIDED", user_id=actor.id, payment_id=payment.id, order_id=order.id,
                amount=payment.amount, currency=payment.currency, ip_address=getattr(actor, "ip", None),
                success=True, timestamp=now))
            audit.record(actor, "payment.voided", "payment", payment.id, before={"status": "PENDING"},
                         after={"status": "CANCELLED"}, order_id=order.id, amount=payment.amount)
            voided.append(payment)
        if voided:
            result = "voided " + ", ".join(f"{p.amount} {p.currency}" for p in voided)
        elif any(p.status in ("SUCCEEDED", "PROCESSING") for p in payments):
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

def mark_shipped(actor, order_id: str, carrier_code: str, service_type: str, tracking_number: str,
                 reason: str | None = None, *, weight: Decimal | None = None) -> Shipment:
    """Create the shipment in shipping_db (with its first tracking event) and set the
    order shipped with its tracking number and shipped date, in one commit.

    A retry after a failure between the two databases finds the shipment already made
    for this order under the same tracking number and reuses it.
    """
    tracking = (tracking_number or "").strip()
    if not TRACKING_NUMBER.match(tracking):
        raise _refuse("Enter the carrier's tracking number: 5 to 40 letters, digits or dashes.", 422)
    if service_type not in SERVICE_TYPES:
        raise _refuse(f"Choose a service: {', '.join(SERVICE_TYPES)}.", 422)
    if weight is not None and weight <= 0:
        raise _refuse("The weight must be more than zero kg (or leave it empty).", 422)
    reason = _reason(reason)

    with database("order"):
        order = db.session.get(Order, order_id)
        if order is None:
            raise _refuse(f"There is no order with id {order_id}.", 404)
        address = db.session.scalar(select(OrderShippingAddress).where(OrderShippingAddress.order_id == order_id))
        user_id = order.user_id
        destination = None if address is None else {
            "first_name": address.first_name, "last_name": address.last_name,
            "address_line1": address.address_line1, "city": address.city,
            "postal_code": address.postal_code, "country": address.country}
    first_name = notify.first_name(user_id)
    with database("shipping"):
        carrier = db.session.scalar(select(Carrier).where(Carrier.code == (carrier_code or "").strip()))
        if carrier is None or not carrier.is_active:
            raise _refuse(f"“{carrier_code}” is not an active carrier. Pick one from the list.", 422)
        method = db.session.scalar(
            select(ShippingMethod).where(ShippingMethod.carrier == carrier.code,
                                         ShippingMethod.service_type == service_type,
                                         ShippingMethod.is_active.is_(True))
            .order_by(ShippingMethod.name, ShippingMethod.id).limit(1))
        existing = db.session.scalar(select(Shipment).where(Shipment.tracking_number == tracking))
        carrier_name, carrier_id = carrier.name, carrier.id
    if existing is not None and existing.order_id != order_id:
        raise _refuse(f"Tracking number {tracking} is already used by another shipment. "
                      "Check the number on the label.")

    with database("order"):
        order = lock_order(order_id)
        if order.status == "shipped":
            raise _refuse(f"Order {order.order_number} is already shipped"
                          + (f" (tracking {order.tracking_number})." if order.tracking_number else "."))
        if not can_ship(order.status):
            raise _refuse(f"Order {order.order_number} is {order.status}; only confirmed or processing "
                          "orders can be marked shipped.")
    # A database that lacks a column written below refuses now, before the shipment is made.
    # (orders.estimated_delivery_date is set only when the database has it.)
    require_writes(*status_change_writes("shipped"), (Order, "tracking_number"),
                   (Shipment, "order_id", "carrier_id", "method_id", "tracking_number", "status", "weight", "cost",
                    "destination_address", "shipped_at", "estimated_delivery_date", "carrier_response",
                    "created_at", "updated_at"),
                   (ShipmentTracking,), notify.QUEUED_EMAIL)
    now = utcnow()
    eta = now + timedelta(days=method.estimated_days) if method and method.estimated_days else None
    shipment = existing
    if shipment is None:
        cost = None
        if method is not None and method.base_price is not None:
            cost = method.base_price + (method.price_per_kg or Decimal("0")) * (weight or Decimal("0"))
            cost = cost.quantize(CENTS)
        # The id is set here because the tracking event and audit row name it before the flush.
        shipment = Shipment(id=new_id(), order_id=order_id, carrier_id=carrier_id,
                            method_id=method.id if method else None, tracking_number=tracking,
                            status="in_transit", weight=weight, cost=cost, destination_address=destination,
                            shipped_at=now, estimated_delivery_date=eta, carrier_response={},
                            created_at=now, updated_at=now)
        db.session.add(shipment)
        db.session.add(ShipmentTracking(
            shipment_id=shipment.id, status="in_transit", timestamp=now, created_at=now,
            description=f"Handed to {carrier_name} ({service_type}), tracking {tracking}.", carrier_data={}))
        audit.record(actor, "shipment.created", "shipment", shipment.id,
                     after={"order_id": order_id, "carrier": carrier_code, "service_type": service_type,
                            "tracking_number": tracking, "weight": weight, "cost": cost})
    try:
        with database("shipping"):
            db.session.flush()
    except IntegrityError:
        raise _refuse(f"Tracking number {tracking} is already used by another shipment. "
                      "Check the number on the label.") from None

    with database("order"):
        order = lock_order(order_id)
        record_status_change(actor, order, "shipped", reason or f"Shipped with {carrier_name}, tracking {tracking}")
        order.tracking_number = tracking
        order.shipped_at = shipment.shipped_at or now
        if eta and order.estimated_delivery_date is None:
            order.estimated_delivery_date = eta
        if order.user_id:
            notify.queue(order.user_id, "order_shipped",
                         notify.order_variables(order, first_name, carrier=carrier_name, tracking_number=tracking),
                         key=f"order_shipped:{order.id}")
        db.session.commit()
    return shipment


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
