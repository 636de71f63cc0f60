"""Returns (RMAs): the return_requests state machine of return_db.

    pending -> approved | rejected
    approved -> in_transit -> received -> processed -> closed
    approved -> received          (the parcel arrived without tracking events)

Each step sets its timestamp column, writes return_status_history (previous status,
new status, changed_by = the staff member, notes) and a security audit row, and queues
the customer's email. A step the current state does not allow is refused (409).

Stock: items received new or used go back to stock in product_db exactly once. Receive
first records, per item, a durable marker in ``return_requests.metadata_["restock"]``
("pending"), committed with the status change; each item's stock change then commits
together with its marker turning "done", with the return row locked, so a second
submission, a retry after a failure or two staff at once restock nothing twice. Items
received damaged or defective are not restocked.

Refund amounts: each returned item refunds what the customer paid for it: its price
x quantity, minus its share of the order's discount, plus its share of the order's tax
(``paid_per_line``: shares proportional to the line, rounded to the cent with the
remainder on the last line). Returns taking part of a line take their units' part of
it, rounded so that all of a line's units together refund exactly the line
(``allowance``). So a full return refunds exactly the items, tax and discount of the
payment; the shipping charge may be added (``shipping_offer``) when the whole order
comes back or the reason is the shop's fault, once per order. The amount is worked out
when the return is created and kept in ``return_items.refund_amount``. By default each
received item refunds it whatever its condition: a defective item is often the very
reason for the return, and whether it can be resold is the shop's risk, not the
customer's. Staff may lower an item's amount (e.g. damaged by the customer), never
raise it.
"""
from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select, text

from console import audit
from console.extensions import db
from console.lookups import DatabaseUnavailable, database
from console.models.order import Order, OrderItem
from console.models.returns import (ReturnAuthorization, ReturnItem, ReturnRefund, ReturnRequest,
                                    ReturnStatusHistory, ReturnTracking)
from console.models.types import CENTS, utcnow
from console.workflows import WorkflowError, locked
from console.drift import require_writes
from console.workflows.inventory import STOCK_WRITES, StockError, change_stock
from console.workflows import refunds
from console.workflows.notify import first_name, queue, return_variables
from console.workflows.orders import SHIPS_FROM
from console.workflows.return_states import (STATUSES, TEMPLATES, TIMESTAMPS, TRANSITIONS, VERBS, allowed,  # noqa: F401
                                             label, move, move_writes)

REASONS = ("defective", "wrong_item", "not_as_described", "changed_mind", "other")
REFUND_METHODS = ("original_payment", "store_credit", "exchange")
CONDITIONS = ("new", "used", "damaged", "defective")
RESTOCKABLE = ("new", "used")
# The condition an item is stated to be in when its return is requested (the return
# service requires one per item), when the customer stated none: what the reason implies.
# The warehouse records the condition it finds on receipt.
STATED_CONDITION = {"defective": "defective"}
STATED_CONDITION_OTHERWISE = "used"
RETURNABLE_ORDER_STATUSES = ("shipped", "delivered")
# return_authorizations.return_address: the field names of the services' addresses.
DEFAULT_RETURN_ADDRESS = {**SHIPS_FROM, "name": "Returns department"}
ADDRESS_FIELDS = ("name", "address_line1", "city", "postal_code", "country")
# Reasons that are the shop's doing: the customer also gets the shipping charge back.
SHOP_FAULT_REASONS = ("defective", "wrong_item", "not_as_described")
REQUIRED_ADDRESS_FIELDS = ("address_line1", "city", "postal_code", "country")


def find_return(key: str) -> ReturnRequest | None:
    """A return by id or by RMA number."""
    request = db.session.get(ReturnRequest, key)
    if request is None:
        request = db.session.scalar(select(ReturnRequest).where(ReturnRequest.rma_number == key.strip().upper()))
    return request


def _locked_return(return_id: str) -> ReturnRequest:
    request = locked(select(ReturnRequest).where(ReturnRequest.id == return_id))
    if request is None:
        raise WorkflowError("That return does not exist.", 404)
    return request


def _items_of(return_id: str) -> list[ReturnItem]:
    return list(db.session.scalars(select(ReturnItem).where(ReturnItem.return_request_id == return_id)
                                   .order_by(ReturnItem.created_at, ReturnItem.id)))


def _mail_variables(request: ReturnRequest, **extra) -> dict:
    """What the customer's emails need. Read before any change (a failed read rolls the
    session back); a name that cannot be read leaves a generic greeting."""
    return return_variables(request, first_name(request.user_id), **extra)


def _commit(bind: str = "return") -> None:
    with database(bind):
        db.session.commit()


# --- what the customer paid for each item ------------------------------------------------

def _shares(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` split in proportion to ``weights``, each rounded to the cent, the
    remainder on the last one, so the shares add up to ``total`` exactly."""
    if not weights:
        return []
    base = sum(weights, Decimal("0"))
    if not total or not base:
        return [Decimal("0.00")] * (len(weights) - 1) + [Decimal(total or 0).quantize(CENTS)]
    shares = [(total * weight / base).quantize(CENTS) for weight in weights[:-1]]
    return shares + [Decimal(total).quantize(CENTS) - sum(shares, Decimal("0"))]


def _line_key(line: OrderItem):
    return (line.created_at.timestamp() if line.created_at else 0.0, line.id)


def paid_per_line(order: Order, lines: list[OrderItem]) -> dict[str, Decimal]:
    """Per order line, what the customer paid for it: price x quantity, minus its share
    of the order's discount, plus its share of the order's tax. Over all lines this adds
    up to the order's total without its shipping charge."""
    lines = sorted(lines, key=_line_key)
    gross = [((line.unit_price or Decimal("0")) * (line.quantity or 0)).quantize(CENTS) for line in lines]
    taxes = _shares(order.tax_amount or Decimal("0"), gross)
    discounts = _shares(order.discount_amount or Decimal("0"), gross)
    return {line.id: g + t - d for line, g, t, d in zip(lines, gross, taxes, discounts)}


def allowance(paid: Decimal, ordered: int, before: int, quantity: int) -> Decimal:
    """What ``quantity`` units of a line refund when ``before`` of its units were in earlier
    returns: the units' part of what was paid for the line, rounded so that returning
    every unit, in one return or several, refunds exactly ``paid``."""
    if not ordered:
        return Decimal("0.00")

    def up_to(units: int) -> Decimal:
        return (paid * min(units, ordered) / ordered).quantize(CENTS)

    return up_to(before + quantity) - up_to(before)


def shipping_offer(request: ReturnRequest, order: Order) -> Decimal | None:
    """The shipping charge this return may also refund, or None: only when the reason is
    the shop's fault or this return completes the whole order, and only once per order."""
    shipping = (order.shipping_amount or Decimal("0")).quantize(CENTS)
    if shipping <= 0 or request.status in ("rejected", "processed", "closed"):
        return None
    with database("return"):
        others = db.session.scalars(select(ReturnRequest.metadata_).where(
            ReturnRequest.order_id == order.id, ReturnRequest.id != request.id))
        if any(isinstance(meta, dict) and meta.get("shipping_refund") for meta in others):
            return None
        if request.return_reason in SHOP_FAULT_REASONS:
            return shipping
        returned = returned_quantities(order.id)
    with database("order"):
        lines = list(db.session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)))
    if lines and all(returned.get(line.id, 0) >= (line.quantity or 0) for line in lines):
        return shipping
    return None


# --- create ------------------------------------------------------------------------------

def returned_quantities(order_id: str, exclude_return_id: str | None = None) -> dict[str, int]:
    """Per order item, the quantity already in returns of the order that were not rejected."""
    stmt = (select(ReturnItem.order_item_id, func.sum(ReturnItem.quantity))
            .join(ReturnRequest, ReturnRequest.id == ReturnItem.return_request_id)
            .where(ReturnRequest.order_id == order_id, ReturnRequest.status != "rejected")
            .group_by(ReturnItem.order_item_id))
    if exclude_return_id:
        stmt = stmt.where(ReturnRequest.id != exclude_return_id)
    return {item_id: int(qty or 0) for item_id, qty in db.session.execute(stmt)}


def returnable_quantities(order_id: str, items: list[OrderItem]) -> dict[str, int]:
    return left_to_return(items, returned_quantities(order_id))


def left_to_return(items: list[OrderItem], already: dict[str, int]) -> dict[str, int]:
    """Per order item, what can still be returned given ``already`` (returned_quantities())."""
    return {item.id: max(0, (item.quantity or 0) - already.get(item.id, 0)) for item in items}


def returned_from(returns: list[ReturnRequest], return_items: list[ReturnItem]) -> dict[str, int]:
    """returned_quantities() from an order's returns and their items already read."""
    counted = {r.id for r in returns if r.status != "rejected"}
    already: dict[str, int] = defaultdict(int)
    for item in return_items:
        if item.return_request_id in counted and item.order_item_id:
            already[item.order_item_id] += int(item.quantity or 0)
    return dict(already)


def _serialise_returns_of(order_id: str) -> None:
    # Two staff creating returns for one order at once must not both take the same
    # quantity: on PostgreSQL a transaction-scoped advisory lock keyed by the order
    # makes them queue (return_db has no per-order row to lock). SQLite has one writer.
    bind = db.engines["return"]
    if bind.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                           {"key": f"returns-of-order:{order_id}"}, bind_arguments={"bind": bind})


def new_rma_number() -> str:
    for _ in range(5):
        number = f"RMA-{utcnow():%Y%m%d}-{secrets.token_hex(3).upper()}"
        if db.session.scalar(select(ReturnRequest.id).where(ReturnRequest.rma_number == number)) is None:
            return number
    raise WorkflowError("Could not allocate an RMA number; try again.", 409)


def create_return(actor, order_id: str, items, reason: str, notes: str = "",
                  refund_method: str = "original_payment", condition: str | None = None) -> ReturnRequest:
    """A staff-initiated return of ``items`` [(order_item_id, quantity)] of a shipped or
    delivered order; ``condition`` is the one the customer states for the items (without
    one, STATED_CONDITION)."""
    if reason not in REASONS:
        raise WorkflowError(f"Choose a reason: {', '.join(label(r) for r in REASONS)}.", 422)
    condition = condition or STATED_CONDITION.get(reason, STATED_CONDITION_OTHERWISE)
    if condition not in CONDITIONS:
        raise WorkflowError(f"Choose a condition: {', '.join(CONDITIONS)}.", 422)
    if refund_method not in REFUND_METHODS:
        raise WorkflowError(f"Choose a refund method: {', '.join(label(m) for m in REFUND_METHODS)}.", 422)
    wanted: dict[str, int] = defaultdict(int)
    for order_item_id, quantity in items:
        try:
            quantity = int(quantity)
        except (TypeError, ValueError):
            raise WorkflowError(f"“{quantity}” is not a quantity.", 422) from None
        if quantity < 0:
            raise WorkflowError("Quantities cannot be negative.", 422)
        if quantity:
            wanted[order_item_id] += quantity
    if not wanted:
        raise WorkflowError("Choose at least one item and the quantity to return.", 422)

    with database("order"):
        order = db.session.get(Order, order_id)
        if order is None:
            raise WorkflowError("That order does not exist.", 404)
        order_items = {i.id: i for i in db.session.scalars(select(OrderItem).where(OrderItem.order_id == order.id))}
    if order.status not in RETURNABLE_ORDER_STATUSES:
        raise WorkflowError(f"Order {order.order_number} is {order.status}: only shipped or delivered orders "
                            "can be returned.", 409)
    unknown = [item_id for item_id in wanted if item_id not in order_items]
    if unknown:
        raise WorkflowError(f"Item {unknown[0]} is not part of order {order.order_number}.", 422)

    with database("return"):
        try:
            _serialise_returns_of(order.id)
            already = returned_quantities(order.id)
            for item_id, quantity in wanted.items():
                line = order_items[item_id]
                left = (line.quantity or 0) - already.get(item_id, 0)
                if quantity > left:
                    raise WorkflowError(
                        f"{line.product_sku or line.product_name}: only {max(left, 0)} can still be returned "
                        f"(ordered {line.quantity}, {already.get(item_id, 0)} already in other returns).", 422)
            now = utcnow()
            currency = order.currency
            request = ReturnRequest(order_id=order.id, user_id=order.user_id, rma_number=new_rma_number(),
                                    status="pending", return_reason=reason, return_notes=(notes or "").strip() or None,
                                    refund_method=refund_method, currency=currency, requested_at=now,
                                    metadata_={"order_number": order.order_number, "created_by": actor.id},
                                    created_at=now, updated_at=now)
            db.session.add(request)
            db.session.flush()
            total = Decimal("0")
            paid = paid_per_line(order, list(order_items.values()))
            for item_id, quantity in wanted.items():
                line = order_items[item_id]
                amount = allowance(paid[item_id], line.quantity or 0, already.get(item_id, 0), quantity)
                total += amount
                db.session.add(ReturnItem(return_request_id=request.id, order_item_id=line.id,
                                          product_id=line.product_id, variant_id=line.variant_id,
                                          product_name=line.product_name, product_sku=line.product_sku,
                                          quantity=quantity, unit_price=line.unit_price, refund_amount=amount,
                                          return_reason=reason, condition=condition, created_at=now,
                                          updated_at=now))
            request.refund_amount = total
            db.session.add(ReturnStatusHistory(return_request_id=request.id, status="pending", previous_status=None,
                                               changed_by=actor.id, notes=f"created: {label(reason)}", created_at=now))
            audit.record(actor, "return.created", "return_request", request.id, after={"status": "pending"},
                         rma_number=request.rma_number, order_id=order.id, refund_amount=total,
                         items={k: v for k, v in wanted.items()})
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return request


# --- approve / reject --------------------------------------------------------------------

def approve(actor, return_id: str, return_address: dict | None = None, instructions: str = "",
            expires_in_days: int = 30) -> ReturnAuthorization:
    address = {k: (v or "").strip() for k, v in (return_address or DEFAULT_RETURN_ADDRESS).items() if k in ADDRESS_FIELDS}
    missing = [f for f in REQUIRED_ADDRESS_FIELDS if not address.get(f)]
    if missing:
        raise WorkflowError(f"The return address needs: {', '.join(label(f) for f in missing)}.", 422)
    try:
        days = int(expires_in_days)
    except (TypeError, ValueError):
        raise WorkflowError("The authorization lifetime must be a number of days.", 422) from None
    if not 1 <= days <= 365:
        raise WorkflowError("The authorization must expire in 1 to 365 days.", 422)
    instructions = (instructions or "").strip()
    with database("return"):
        variables = _mail_variables(find_return(return_id) or _missing(), instructions=instructions)
        try:
            request = _locked_return(return_id)
            now = utcnow()
            move(actor, request, "approved", instructions, variables=variables)
            authorization = ReturnAuthorization(return_request_id=request.id, rma_number=request.rma_number,
                                                return_address=address, return_instructions=instructions or None,
                                                expires_at=now + timedelta(days=days), created_at=now, updated_at=now)
            db.session.add(authorization)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return authorization


def reject(actor, return_id: str, reason: str) -> ReturnRequest:
    reason = (reason or "").strip()
    if not reason:
        raise WorkflowError("Give the reason for rejecting the return (the customer will read it).", 422)
    return _simple_move(actor, return_id, "rejected", reason, {"reason": reason})


def close(actor, return_id: str, notes: str = "") -> ReturnRequest:
    return _simple_move(actor, return_id, "closed", notes)


def _missing():
    raise WorkflowError("That return does not exist.", 404)


def _simple_move(actor, return_id: str, new_status: str, notes: str, extra: dict | None = None) -> ReturnRequest:
    with database("return"):
        variables = _mail_variables(find_return(return_id) or _missing(), **(extra or {}))
        try:
            request = _locked_return(return_id)
            move(actor, request, new_status, notes, variables=variables)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return request


# --- tracking ----------------------------------------------------------------------------

def record_tracking(actor, return_id: str, status: str, location: str = "", description: str = "",
                    tracking_number: str | None = None) -> ReturnTracking:
    """An event of the return parcel; the first one moves an approved return in transit."""
    status = (status or "").strip()
    if not status:
        raise WorkflowError("Give the tracking event's status (e.g. picked up, in transit, delivered).", 422)
    with database("return"):
        variables = _mail_variables(find_return(return_id) or _missing())
        try:
            request = _locked_return(return_id)
            if request.status not in ("approved", "in_transit"):
                raise WorkflowError(f"Return {request.rma_number} is {label(request.status)}: tracking is recorded "
                                    "only between approval and receipt.", 409)
            authorization = db.session.scalar(select(ReturnAuthorization).where(
                ReturnAuthorization.return_request_id == request.id))
            if authorization is None:
                raise WorkflowError(f"Return {request.rma_number} has no authorization to track.", 409)
            now = utcnow()
            event = ReturnTracking(authorization_id=authorization.id, status=status,
                                   location=(location or "").strip() or None,
                                   description=(description or "").strip() or None, timestamp=now,
                                   carrier_data={"recorded_by": actor.id}, created_at=now)
            db.session.add(event)
            if tracking_number and tracking_number.strip():
                authorization.tracking_number = tracking_number.strip()
            audit.record(actor, "return.tracking_recorded", "return_request", request.id,
                         status=status, location=location, tracking_number=authorization.tracking_number)
            if request.status == "approved":
                move(actor, request, "in_transit", f"tracking: {status}", variables=variables)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return event


# --- receive -----------------------------------------------------------------------------

@dataclass
class ReceiveOutcome:
    request: ReturnRequest
    restocked: list[str] = field(default_factory=list)  # return item ids restocked by this call
    pending: list[str] = field(default_factory=list)  # still to restock (a failure stopped us)
    error: str | None = None

    @property
    def message(self) -> str:
        text = f"Return {self.request.rma_number} received."
        if self.restocked:
            text += f" {len(self.restocked)} item line(s) back in stock."
        if self.error:
            text += (f" Restocking stopped: {self.error}. {len(self.pending)} line(s) still to restock: "
                     "submit Receive again to complete them (nothing is restocked twice).")
        return text


def restock_markers(request: ReturnRequest) -> dict[str, str]:
    return dict((request.metadata_ or {}).get("restock") or {})


def receive(actor, return_id: str, conditions: dict[str, str]) -> ReceiveOutcome:
    """Record each item's condition, mark the return received, and put items received
    new or used back in stock, once. A second call completes only what is pending."""
    require_writes((ReturnItem, "condition"), (ReturnRequest, "metadata_"), *move_writes("received"),
                   *STOCK_WRITES)
    with database("return"):
        variables = _mail_variables(find_return(return_id) or _missing())
        try:
            request = _locked_return(return_id)
            items = _items_of(request.id)
            if request.status in ("approved", "in_transit"):
                conditions = {k: (v or "").strip() for k, v in (conditions or {}).items()}
                unknown = [k for k in conditions if k not in {i.id for i in items}]
                if unknown:
                    raise WorkflowError("A condition was given for an item that is not in this return.", 422)
                for item in items:
                    if conditions.get(item.id) not in CONDITIONS:
                        raise WorkflowError(f"Choose the condition of {item.product_sku or item.product_name}: "
                                            f"{', '.join(CONDITIONS)}.", 422)
                for item in items:
                    item.condition = conditions[item.id]
                markers = {item.id: "pending" for item in items if item.condition in RESTOCKABLE and item.product_id}
                request.metadata_ = {**(request.metadata_ or {}), "restock": markers}
                summary = ", ".join(f"{i.product_sku or i.product_name} x{i.quantity}: {i.condition}" for i in items)
                move(actor, request, "received", summary, variables=variables)
                db.session.commit()
            elif "pending" not in restock_markers(request).values():
                if request.status in ("received", "processed", "closed"):
                    raise WorkflowError(f"Return {request.rma_number} was already received; its stock was "
                                        "restored once. Nothing to do.", 409)
                raise WorkflowError(f"Return {request.rma_number} is {label(request.status)}: it cannot be received now.", 409)
            else:
                db.session.commit()  # release the lock; only the pending restocks are left
        except BaseException:
            db.session.rollback()
            raise

    outcome = ReceiveOutcome(request)
    pending = [item_id for item_id, state in restock_markers(request).items() if state == "pending"]
    for index, item_id in enumerate(pending):
        try:
            if _restock(actor, request.id, item_id):
                outcome.restocked.append(item_id)
        except DatabaseUnavailable as exc:
            db.session.rollback()
            outcome.pending = pending[index:]
            outcome.error = f"{exc.bind_key}_db is unavailable"
            break
    with database("return"):
        outcome.request = db.session.get(ReturnRequest, request.id, populate_existing=True)
    return outcome


def _restock(actor, return_id: str, item_id: str) -> bool:
    """One item back in stock, committed together with its marker turning "done"; the
    return row stays locked meanwhile, so a concurrent receive waits and then skips it."""
    with database("return"):
        request = _locked_return(return_id)
        markers = restock_markers(request)
        if markers.get(item_id) != "pending":
            db.session.commit()
            return False
        item = db.session.get(ReturnItem, item_id)
    with database("product"):
        try:
            change_stock(actor, item.product_id, on_hand=item.quantity or 0, variant_id=item.variant_id,
                         reason="return received", reference=f"{request.rma_number}:{item.id}", commit=False,
                         kind="return", return_id=request.id, rma_number=request.rma_number)
            markers[item_id] = "done"
        except StockError as exc:
            # Adding stock fails only when the product has no inventory record any more:
            # retrying cannot help, so the line is marked and shown, not left pending.
            db.session.rollback()
            request = _locked_return(return_id)
            markers = restock_markers(request)
            markers[item_id] = "not_restocked"
            request.metadata_ = {**(request.metadata_ or {}), "restock": markers,
                                 "restock_errors": {**(request.metadata_ or {}).get("restock_errors", {}),
                                                    item_id: str(exc)}}
            audit.record(actor, "return.restock_failed", "return_request", return_id, item_id=item_id, error=str(exc))
            db.session.commit()
            return False
        request.metadata_ = {**(request.metadata_ or {}), "restock": markers}
        db.session.commit()
    return True


# --- process -----------------------------------------------------------------------------

def full_amounts(items: list[ReturnItem]) -> dict[str, Decimal]:
    """Per item, the most it may refund: what the return recorded for it when it was
    created (what the customer paid for those units, tax included: see the module's
    docstring), or unit price x quantity for a return that recorded none."""
    amounts = {}
    for item in items:
        full = ((item.unit_price or Decimal("0")) * (item.quantity or 0)).quantize(CENTS)
        amounts[item.id] = item.refund_amount if item.refund_amount is not None else full
    return amounts


def _checked_amounts(items: list[ReturnItem], amounts: dict | None, currency: str | None = None) -> dict[str, Decimal]:
    from console.forms import parse_money

    maximum = full_amounts(items)
    chosen = dict(maximum)
    for item_id, raw in (amounts or {}).items():
        if item_id not in maximum:
            raise WorkflowError("An amount was given for an item that is not in this return.", 422)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        try:
            value = parse_money(raw, currency)
        except ValueError as exc:
            item = next(i for i in items if i.id == item_id)
            raise WorkflowError(f"{item.product_sku or item.product_name}: {exc}", 422) from None
        if value > maximum[item_id]:
            item = next(i for i in items if i.id == item_id)
            raise WorkflowError(f"{item.product_sku or item.product_name}: the refund can be lowered but not raised "
                                f"(at most {maximum[item_id]}).", 422)
        chosen[item_id] = value
    return chosen


def process(actor, return_id: str, amounts: dict | None = None, include_shipping: bool = False):
    """Refund the received items (and, with ``include_shipping``, the shipping charge
    when ``shipping_offer`` allows it) and move the return to processed.

    original_payment: through the refunds workflow, with a key per return, so processing
    twice refunds once; store_credit: a return_refunds row for the user service to credit
    (the console keeps no store-credit ledger); exchange: no money moves.
    Returns the RefundOutcome of a payment refund, else the return.
    """
    with database("return"):
        request = find_return(return_id) or _missing()
        if request.status != "received":
            raise WorkflowError(f"Return {request.rma_number} is {label(request.status)}: only a received return "
                                "can be processed.", 409)
        items = _items_of(request.id)
        chosen = _checked_amounts(items, amounts, request.currency)
    total = sum(chosen.values(), Decimal("0"))
    method = request.refund_method or "original_payment"
    shipping = Decimal("0")
    order = None
    if include_shipping and method != "exchange":
        with database("order"):
            order = db.session.get(Order, request.order_id) if request.order_id else None
        offer = shipping_offer(request, order) if order is not None else None
        if offer is None:
            raise WorkflowError("The shipping charge is refunded only when the whole order comes back or the "
                                "reason is the shop's fault (defective, wrong item, not as described), and only "
                                "once per order.", 422)
        shipping = offer
        total += shipping

    if method == "original_payment" and total > 0:
        if order is None:
            with database("order"):
                order = db.session.get(Order, request.order_id) if request.order_id else None
        if order is None:
            raise WorkflowError(f"Return {request.rma_number}: its order cannot be found, so there is no payment "
                                "to refund.", 409)
        with database("payment"):
            payment = refunds.payment_for_order(order)
            # A refund the provider failed returned nothing: processing again issues a new
            # one, under a new key (still one per attempt, so a double click refunds once).
            failed = sum(1 for r in refunds.refunds_of_return(request) if r.status == refunds.STATUSES.FAILED)
        if payment is None:
            raise WorkflowError(f"Order {order.order_number} has no payment to refund.", 409)
        key = f"return:{request.id}" + (f":after-{failed}-failed" if failed else "")
        outcome = refunds.issue_refund(
            actor, payment.id, total, key=key, reason=f"Return {request.rma_number}",
            link={"kind": "return", "return_request_id": request.id, "rma_number": request.rma_number,
                  "order_number": order.order_number, "items": {k: str(v) for k, v in chosen.items()},
                  **({"shipping": str(shipping)} if shipping else {})})
        if not outcome.created and refunds.needs_attention(outcome.refund):
            outcome = refunds.complete_refund(actor, outcome.refund.id)
        return outcome

    with database("return"):
        variables = _mail_variables(request, amount=total)
        try:
            request = _locked_return(return_id)
            now = utcnow()
            for item in _items_of(request.id):
                item.refund_amount = chosen[item.id]
            request.refund_amount = total
            if shipping:
                request.metadata_ = {**(request.metadata_ or {}), "shipping_refund": str(shipping)}
            if method == "store_credit" and total > 0:
                db.session.add(ReturnRefund(return_request_id=request.id, order_id=request.order_id,
                                            user_id=request.user_id, refund_method="store_credit", amount=total,
                                            currency=request.currency, status="pending",
                                            reason=f"store credit for return {request.rma_number}", created_at=now))
                notes = f"store credit of {total} {request.currency} to be issued"
            elif method == "exchange":
                notes = "exchange: no refund"
            else:
                notes = "no refund: the amounts were lowered to zero"
            move(actor, request, "processed", notes, variables=variables)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return request
