"""Refunds: money back to the customer, written across databases that share no transaction.

A refund is, in payment_db, a ``payment_refunds`` row, a ``payment_transactions`` REFUND
row and a ``payment_audit_logs`` row, written together with its idempotency key in ONE
transaction while the payment row is locked (``SELECT … FOR UPDATE`` on PostgreSQL), so
two staff members, a double click or a retried request can never refund more than the
payment captured, nor the same request twice.

That money step is the durable intent. The rest happens afterwards, each step an
idempotent write in its own database's transaction:

- ``audit``: the security_audit_logs row (auth_db), under an id chosen up front;
- ``order``: when the payment is fully refunded, the order's payment_status and status
  become refunded, with history (order_db);
- ``return``: for a return's refund, the return_refunds row (under an id chosen up front)
  and the return moved to processed (return_db);
- ``notify``: the customer's email (notification_db), under an id chosen up front.

Which steps are still to do is kept in ``payment_refunds.metadata_["steps"]`` (written
with the refund, so it survives a crash). A step that fails leaves the refund "needs
attention" on the screens; ``retry_refund`` runs the steps still pending and never one
that is done. A step is marked done only after its own commit, and each step checks
whether its write already happened, so even a crash between the two repeats nothing.

Deferred refunds: a provider that does not complete the refund at once (STRIPE and
PAYPAL, executed later by the payment service) leaves it pending. The money is held back
from the refundable amount at once, but the steps that depend on the money being back
(``order``, ``return``, ``notify``) are recorded as "waiting". ``sync_refund`` (the
Refresh status button, and ``flask console sync-refunds`` for a cron) asks the provider
where the refund is. The first time it is final, one payment_db transaction records the
answer (the REFUND transaction's status, a payment audit log, the payment refunded when
fully refunded) and turns the waiting steps into pending ones (completed) or cancels them
(failed: nothing was refunded, the amount is refundable again), plus an ``outcome`` step
for the audit log; then the pending steps run as above, so each happens exactly once.

Links: ``payment_refunds.metadata_`` holds ``return_request_id`` and ``return_refund_id``;
the return_refunds row is created under that id, so each side finds the other by key.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from console import audit
from console.extensions import db
from console.lookups import DatabaseUnavailable, database
from console.models.auth import SecurityAuditLog
from console.models.notification import Notification
from console.models.order import Order
from console.models.payment import (AUDIT_EVENT_TYPES as EVENT, PAYMENT_STATUSES, REFUND_STATUSES, REFUND_STEPS,
                                    REFUND_OPEN_STATUSES, TRANSACTION_STATUSES, TRANSACTION_TYPES, Payment,
                                    PaymentAuditLog, PaymentIdempotencyKey, PaymentRefund, PaymentTransaction,
                                    refund_awaits_provider)
from console.models.returns import ReturnItem, ReturnRefund, ReturnRequest
from console.models.types import CENTS, new_id, utcnow
from console.workflows import WorkflowError, locked
from console.workflows import return_states
from console.drift import require_writes
from console.workflows.notify import QUEUED_EMAIL, first_name, queue, refund_variables
from console.workflows.orders import record_status_change, status_change_writes
from console.workflows.refund_providers import ProviderDeclined, provider_for

# Refunds that hold money back from the refundable amount.
STATUSES = REFUND_STATUSES
COUNTED = (STATUSES.PENDING, STATUSES.PROCESSING, STATUSES.COMPLETED)
# Still with the provider; and the answers it can end with.
OPEN = REFUND_OPEN_STATUSES
FINAL = (STATUSES.COMPLETED, STATUSES.FAILED)
# Payments whose money was taken (refunded came after).
CAPTURED = (PAYMENT_STATUSES.SUCCEEDED, PAYMENT_STATUSES.REFUNDED)
STEP_ORDER = REFUND_STEPS
STEP_LABELS = {"audit": "audit log (auth_db)", "outcome": "audit log of the provider's answer (auth_db)",
               "order": "order status (order_db)",
               "return": "return record (return_db)", "notify": "customer email (notification_db)"}
KEY_LIFETIME = timedelta(days=30)
MAX_KEY_LENGTH = 100


def parse_amount(raw, currency: str | None = None) -> Decimal:
    """A positive amount, parsed as strictly as the forms' MoneyField (no commas,
    exponents, signs, NaN…), or a 422 saying what to type."""
    from console.forms import parse_money

    try:
        amount = parse_money(raw, currency)
    except ValueError as exc:
        raise WorkflowError(str(exc), 422) from None
    if amount <= 0:
        raise WorkflowError("The refund amount must be more than zero.", 422)
    return amount


# --- what can be refunded ---------------------------------------------------------------

def captured_amount(payment: Payment) -> Decimal:
    """What the payment captured: its SUCCEEDED CHARGE transactions or, when the payment
    service recorded none, the payment's amount once it succeeded (refunded came after)."""
    return captured_from(payment, db.session.scalars(select(PaymentTransaction).where(
        PaymentTransaction.payment_id == payment.id)))


def captured_from(payment: Payment, transactions) -> Decimal:
    """captured_amount() from transactions already read (the order page has them)."""
    charges = [t.amount or Decimal("0") for t in transactions if t.payment_id == payment.id
               and t.transaction_type == TRANSACTION_TYPES.CHARGE and t.status == TRANSACTION_STATUSES.SUCCEEDED]
    if charges:
        return sum(charges, Decimal("0"))
    if payment.status in CAPTURED:
        return payment.amount or Decimal("0")
    return Decimal("0")


def refundable_from(payment: Payment, transactions, refunds) -> Decimal:
    """refundable_amount() from the payment's transactions and refunds already read."""
    refunded = sum((r.amount or Decimal("0") for r in refunds if r.payment_id == payment.id and r.status in COUNTED),
                   Decimal("0"))
    return max(Decimal("0"), captured_from(payment, transactions) - refunded).quantize(CENTS)


def refunded_amount(payment_id: str, statuses=COUNTED) -> Decimal:
    amounts = db.session.scalars(select(PaymentRefund.amount).where(
        PaymentRefund.payment_id == payment_id, PaymentRefund.status.in_(statuses)))
    return sum(amounts, Decimal("0"))


def refundable_amount(payment: Payment) -> Decimal:
    return max(Decimal("0"), captured_amount(payment) - refunded_amount(payment.id)).quantize(CENTS)


def is_fully_refunded(payment: Payment) -> bool:
    """Money actually returned covers the capture. A deferred (pending) refund does not
    count until the payment service completes it."""
    captured = captured_amount(payment)
    return captured > 0 and refunded_amount(payment.id, (STATUSES.COMPLETED,)) >= captured


def payment_for_order(order: Order) -> Payment | None:
    """The order's payment: orders.payment_method_id holds payments.id (the entity block);
    otherwise the newest captured payment whose order_id is the order's."""
    payment = db.session.get(Payment, order.payment_method_id) if order.payment_method_id else None
    if payment is not None and payment.order_id in (None, order.id):
        return payment
    return db.session.scalar(select(Payment).where(Payment.order_id == order.id).order_by(
        (Payment.status.in_(CAPTURED)).desc(), Payment.created_at.desc()).limit(1))


def completed_refunds(order_ids) -> dict[str, Decimal]:
    """{order id: sum of its completed refunds} for the orders among ``order_ids`` that
    have one: one grouped query (on indexed order_id) per 1,000 orders."""
    ids = list(dict.fromkeys(i for i in order_ids if i))
    refunded: dict[str, Decimal] = {}
    with database("payment"):
        for start in range(0, len(ids), 1000):
            refunded.update(db.session.execute(
                select(PaymentRefund.order_id, func.sum(PaymentRefund.amount))
                .where(PaymentRefund.order_id.in_(ids[start:start + 1000]), PaymentRefund.status == STATUSES.COMPLETED)
                .group_by(PaymentRefund.order_id)).all())
    return refunded


def progress_from(refunded: Decimal | None, payments) -> tuple[Decimal, Decimal] | None:
    """refund_progress() of one order from its completed refunds' sum and its payments
    already read (a list or page that has them asks payment_db nothing more)."""
    if not refunded:
        return None
    captured = sum((p.amount or Decimal("0") for p in payments if p.status in CAPTURED),
                   Decimal("0"))
    return refunded, captured


def refund_progress(order_ids) -> dict[str, tuple[Decimal, Decimal]]:
    """{order id: (completed refunds, captured amount)} for the orders among ``order_ids``
    that have a completed refund: two grouped queries (on indexed order_id) per 1,000
    orders. Screens derive "partially refunded (49.00 of 57.92)" from it; the stored
    payment status keeps the diagram's values. Empty when payment_db is down (the
    payment status is then shown as stored)."""
    captured: dict[str, Decimal] = {}
    try:
        refunded = completed_refunds(order_ids)
        with database("payment"):
            with_refunds = list(refunded)
            for start in range(0, len(with_refunds), 1000):
                captured.update(db.session.execute(
                    select(Payment.order_id, func.sum(Payment.amount))
                    .where(Payment.order_id.in_(with_refunds[start:start + 1000]),
                           Payment.status.in_(CAPTURED))
                    .group_by(Payment.order_id)).all())
    except DatabaseUnavailable:
        return {}
    return {order_id: (amount or Decimal("0"), captured.get(order_id) or Decimal("0"))
            for order_id, amount in refunded.items()}


# --- needs attention -------------------------------------------------------------------

def pending_steps(refund: PaymentRefund) -> list[str]:
    steps = (refund.metadata_ or {}).get("steps") or {}
    return [name for name in STEP_ORDER if steps.get(name) == "pending"]


def needs_attention(refund: PaymentRefund) -> bool:
    """A step recorded as pending: it failed part-way and Retry finishes it. This holds
    for a failed refund too, whose outcome (audit) step may itself have failed."""
    return bool(pending_steps(refund))


def waiting_steps(refund: PaymentRefund) -> list[str]:
    steps = (refund.metadata_ or {}).get("steps") or {}
    return [name for name in STEP_ORDER if steps.get(name) == "waiting"]


def awaits_provider(refund: PaymentRefund) -> bool:
    """Still with the provider, or answered and not yet followed here: Refresh status."""
    return refund.status in OPEN or bool(waiting_steps(refund))


def last_error(refund: PaymentRefund) -> dict | None:
    return (refund.metadata_ or {}).get("last_error")


def refunds_of_return(return_request: ReturnRequest) -> list[PaymentRefund]:
    """The payment refunds issued for a return (found through the order, linked by id)."""
    if not return_request.order_id:
        return []
    rows = db.session.scalars(select(PaymentRefund).where(PaymentRefund.order_id == return_request.order_id)
                              .order_by(PaymentRefund.created_at))
    return [r for r in rows if (r.metadata_ or {}).get("return_request_id") == return_request.id]


# --- issuing -----------------------------------------------------------------------------

@dataclass
class StepsOutcome:
    """What a refund action left behind: the refund, and the step that failed, if any."""

    refund: PaymentRefund
    failed_step: str | None = field(default=None, kw_only=True)
    error: str | None = field(default=None, kw_only=True)

    @property
    def needs_attention(self) -> bool:
        return self.failed_step is not None


@dataclass
class RefundOutcome(StepsOutcome):
    created: bool  # False: the key was used before and this is that first refund

    @property
    def message(self) -> str:
        r = self.refund
        text = (f"Refund of {r.amount} {r.currency} recorded ({r.status})." if self.created else
                f"This refund was already recorded: {r.amount} {r.currency} ({r.status}); nothing was refunded twice.")
        if self.created and waiting_steps(r):
            text += (f" {(r.metadata_ or {}).get('provider') or 'The provider'} completes it through the payment service; "
                     f"the {', '.join(STEP_LABELS[s] for s in waiting_steps(r))} follow once it has (Refresh status).")
        if self.failed_step:
            text += (f" The money step is done, but the {STEP_LABELS[self.failed_step]} could not be updated "
                     f"({self.error}). It is marked “needs attention”: use Retry once the database is back.")
        return text


def refund_order(actor, order_id: str, amount, *, key: str, reason: str) -> RefundOutcome:
    """A goodwill or partial refund from the order page, without a return."""
    reason = (reason or "").strip()
    if not reason:
        raise WorkflowError("Give a reason for the refund (the customer and finance will see it).", 422)
    with database("order"):
        order = db.session.get(Order, order_id)
    if order is None:
        raise WorkflowError("That order does not exist.", 404)
    with database("payment"):
        payment = payment_for_order(order)
    if payment is None:
        raise WorkflowError(f"Order {order.order_number} has no payment to refund.", 409)
    return issue_refund(actor, payment.id, amount, key=key, reason=reason,
                        link={"kind": "goodwill", "order_number": order.order_number})


def refund_writes(link: dict | None) -> tuple:
    """What the money step and every later step of a refund write, checked before the
    money moves (console/drift.py): a database that can't take a later step refuses the
    refund instead of leaving it needing attention."""
    writes = ((PaymentRefund,), (PaymentIdempotencyKey,), (PaymentTransaction,), (PaymentAuditLog,),
              (Payment, "status"), audit.AUDIT_ROW, (Order, "payment_status"), *status_change_writes("refunded"),
              QUEUED_EMAIL)
    if (link or {}).get("return_request_id"):
        writes += ((ReturnRefund,), (ReturnItem, "refund_amount"), (ReturnRequest, "refund_amount", "metadata_"),
                   *return_states.move_writes("processed"))
    return writes


def issue_refund(actor, payment_id: str, amount, *, key: str, reason: str, link: dict | None = None) -> RefundOutcome:
    """Refund ``amount`` of a payment once per ``key``, then run the further steps.

    ``link`` goes into the refund's metadata: ``kind`` ("goodwill" or "return"), and for a
    return its ``return_request_id``, ``rma_number`` and per-item ``items`` amounts.
    """
    amount = parse_amount(amount)
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise WorkflowError("The refund form is missing its request key. Reload the page and try again.", 400)
    require_writes(*refund_writes(link))
    with database("payment"):
        refund, created = _money_step(actor, payment_id, amount, key, reason, link or {})
    if not created:
        return RefundOutcome(refund, created=False)
    # The money has moved: from here on nothing may raise, or the caller would report
    # a refund that happened as one that did not.
    snapshot = refund  # a detached copy (_money_step)
    failed, error = _run_steps(actor, snapshot.id)
    try:
        return RefundOutcome(_reload(snapshot.id), created=True, failed_step=failed, error=error)
    except DatabaseUnavailable as exc:
        return RefundOutcome(snapshot, created=True, failed_step=failed or STEP_ORDER[0],
                             error=error or f"{exc.bind_key}_db is unavailable")


def retry_refund(actor, refund_id: str) -> RefundOutcome:
    """Run the steps of a refund that are still pending; never one that is done."""
    with database("payment"):
        refund = db.session.get(PaymentRefund, refund_id)
        if refund is None:
            raise WorkflowError("That refund does not exist.", 404)
        if not needs_attention(refund):
            raise WorkflowError("This refund has nothing left to complete.", 409)
        steps = pending_steps(refund)
    audit.record(actor, "refund.retried", "payment_refund", refund_id, pending=steps)
    with database("auth"):
        db.session.commit()
    failed, error = _run_steps(actor, refund_id)
    return RefundOutcome(_reload(refund_id), created=True, failed_step=failed, error=error)


def complete_refund(actor, refund_id: str) -> RefundOutcome:
    """Like retry_refund, but quiet when there is nothing to do (used by returns.process)."""
    failed, error = _run_steps(actor, refund_id)
    return RefundOutcome(_reload(refund_id), created=False, failed_step=failed, error=error)


def _snapshot(refund: PaymentRefund) -> PaymentRefund:
    """A detached copy of a just-committed refund, readable when payment_db is not."""
    return PaymentRefund(**{column.key: getattr(refund, column.key) for column in PaymentRefund.__mapper__.column_attrs})


def _reload(refund_id: str) -> PaymentRefund:
    with database("payment"):
        return db.session.get(PaymentRefund, refund_id, populate_existing=True)


def _refund_with_key(payment_id: str, key: str) -> PaymentRefund | None:
    # A payment has few refunds: finding the key among them is cheaper than a JSON index.
    for refund in db.session.scalars(select(PaymentRefund).where(PaymentRefund.payment_id == payment_id)):
        if (refund.metadata_ or {}).get("idempotency_key") == key:
            return refund
    return None


def _earlier_result(payment_id: str, key: str) -> PaymentRefund:
    used = db.session.scalar(select(PaymentIdempotencyKey).where(PaymentIdempotencyKey.key == key))
    refund = _refund_with_key(used.payment_id, key) if used is not None else None
    if refund is None or used.payment_id != payment_id:
        raise WorkflowError("This refund form was already used for another payment. Reload the page and try again.", 409)
    return refund


def _money_step(actor, payment_id: str, amount: Decimal, key: str, reason: str, link: dict):
    """payment_db, one transaction: key + refund + REFUND transaction + payment audit log."""
    try:
        payment = locked(select(Payment).where(Payment.id == payment_id))
        if payment is None:
            raise WorkflowError("That payment does not exist.", 404)
        if db.session.scalar(select(PaymentIdempotencyKey.id).where(PaymentIdempotencyKey.key == key)):
            refund = _earlier_result(payment_id, key)
            db.session.commit()
            return refund, False
        currency = payment.currency or ""
        refundable = refundable_amount(payment)
        if amount > refundable:
            raise WorkflowError(f"A refund of {amount} {currency} is more than this payment can refund: "
                                f"the refundable amount is {refundable} {currency}.", 422)
        provider = provider_for(payment)
        if provider is None:
            raise WorkflowError(f"No refund client is set up for the payment provider {payment.payment_provider!r}.", 422)
        try:
            result = provider.submit_refund(payment, amount, key)
        except ProviderDeclined as exc:
            raise WorkflowError(f"The payment provider declined the refund: {exc}", 422) from None
        now = utcnow()
        later = "pending" if result.status == STATUSES.COMPLETED else "waiting"
        steps = {"audit": "pending", "order": later, "notify": later}
        if link.get("return_request_id"):
            steps["return"] = later
        refund = PaymentRefund(
            id=new_id(), payment_id=payment.id, order_id=payment.order_id, reason=reason, amount=amount,
            currency=currency, status=result.status, provider_refund_id=result.provider_refund_id,
            processed_at=now if result.status == STATUSES.COMPLETED else None, created_at=now,
            metadata_={
                **link, "idempotency_key": key, "provider": payment.payment_provider, "steps": steps,
                "staff_id": actor.id, "staff_ip": getattr(actor, "ip", None),
                # Ids chosen now, so each later step can tell whether it already happened.
                "audit_id": new_id(), "notification_id": new_id(),
                **({"return_refund_id": new_id()} if link.get("return_request_id") else {}),
            })
        db.session.add(refund)
        db.session.add(PaymentIdempotencyKey(key=key, payment_id=payment.id, user_id=actor.id,
                                             expires_at=now + KEY_LIFETIME, created_at=now))
        db.session.add(PaymentTransaction(
            payment_id=payment.id, transaction_type=TRANSACTION_TYPES.REFUND,
            status=TRANSACTION_STATUSES.SUCCEEDED if result.status == STATUSES.COMPLETED else TRANSACTION_STATUSES.PENDING,
            provider_transaction_id=result.provider_refund_id, amount=amount, currency=currency,
            provider_response={**result.response, "refund_id": refund.id},
            processed_at=refund.processed_at, created_at=now))
        # The payment service's own audit event types: completed at once, or initiated.
        event = EVENT.REFUND_COMPLETED if result.status == STATUSES.COMPLETED else EVENT.REFUND_INITIATED
        db.session.add(PaymentAuditLog(event_type=event, user_id=actor.id, payment_id=payment.id,
                                       order_id=payment.order_id, amount=amount, currency=currency,
                                       ip_address=getattr(actor, "ip", None), success=True, timestamp=now))
        db.session.flush()
        if payment.status != PAYMENT_STATUSES.REFUNDED and is_fully_refunded(payment):
            payment.status = PAYMENT_STATUSES.REFUNDED
        copy = _snapshot(refund)  # taken before the commit expires it
        db.session.commit()
        return copy, True
    except IntegrityError:
        # The same key, committed a moment ago for the same payment by a concurrent request.
        db.session.rollback()
        refund = _earlier_result(payment_id, key)
        db.session.commit()
        return refund, False
    except BaseException:
        db.session.rollback()
        raise


# --- following a deferred refund ----------------------------------------------------------

@dataclass
class SyncOutcome(StepsOutcome):
    settled: bool  # this sync recorded the provider's final answer

    @property
    def state(self) -> str:
        """One word for the tally of ``sync-refunds``."""
        if self.failed_step:
            return "needs_attention"
        if self.refund.status in OPEN:
            return "still_" + self.refund.status
        return self.refund.status if self.settled else "completed_steps"

    @property
    def message(self) -> str:
        r = self.refund
        meta = r.metadata_ or {}
        amount, provider = f"{r.amount} {r.currency}", meta.get("provider") or "the provider"
        if r.status in OPEN:
            text = (f"The refund of {amount} is still {r.status} at {provider}: the payment service has not "
                    "finished it yet. Nothing changed; refresh again later.")
        elif r.status == STATUSES.FAILED:
            text = f"The refund of {amount} failed at {provider}: no money was returned, and {amount} is refundable again."
            if meta.get("return_request_id"):
                text += " The return still needs its refund: process it again."
        else:
            text = f"The refund of {amount} is completed: every remaining step is done, nothing was done twice."
        if self.failed_step:
            text += (f" But the {STEP_LABELS[self.failed_step]} could not be updated ({self.error}). It is marked "
                     "“needs attention”: use Retry once the database is back.")
        return text


def sync_refund(actor, refund_id: str) -> SyncOutcome:
    """Follow a refund its provider executes: ask the provider where it is, record a final
    answer once, then run the steps that were waiting for it (and any still pending)."""
    with database("payment"):
        refund = db.session.get(PaymentRefund, refund_id, populate_existing=True)
        if refund is None:
            raise WorkflowError("That refund does not exist.", 404)
        if not awaits_provider(refund) and not pending_steps(refund):
            raise WorkflowError(f"This refund is already {refund.status or 'recorded'}: there is nothing "
                                "to refresh.", 409)
        answer = None
        if refund.status in OPEN:
            payment = db.session.get(Payment, refund.payment_id)
            provider = provider_for(payment) if payment is not None else None
            if provider is None:
                raise WorkflowError("No refund client is set up for this payment's provider, so its refunds "
                                    "cannot be followed.", 422)
            # Asked without holding a lock: a real client makes a network call here.
            answer = provider.refund_status(refund)
        settled = _settle(actor, refund_id, answer)
    failed, error = _run_steps(actor, refund_id)
    return SyncOutcome(_reload(refund_id), settled, failed_step=failed, error=error)


def _refund_transactions(refund: PaymentRefund) -> list[PaymentTransaction]:
    """The REFUND transaction written with this refund (its provider_response names it)."""
    rows = db.session.scalars(select(PaymentTransaction).where(
        PaymentTransaction.payment_id == refund.payment_id, PaymentTransaction.transaction_type == TRANSACTION_TYPES.REFUND))
    return [t for t in rows if (t.provider_response or {}).get("refund_id") == refund.id]


def _settle(actor, refund_id: str, answer) -> bool:
    """payment_db, one transaction with the payment and refund rows locked: take the
    provider's answer and, the first time the refund is final, record it and release the
    waiting steps. True when this call recorded the final answer."""
    try:
        payment_id = db.session.scalar(select(PaymentRefund.payment_id).where(PaymentRefund.id == refund_id))
        payment = locked(select(Payment).where(Payment.id == payment_id))
        refund = locked(select(PaymentRefund).where(PaymentRefund.id == refund_id))
        now = utcnow()
        if answer is not None and refund.status in OPEN and answer.status != refund.status:
            # A direct client answered something new; the payment service writes the row itself.
            refund.status = answer.status
            refund.provider_refund_id = refund.provider_refund_id or answer.provider_refund_id
        meta = dict(refund.metadata_ or {})
        steps = dict(meta.get("steps") or {})
        waiting = [name for name, state in steps.items() if state == "waiting"]
        if refund.status not in FINAL or not waiting:
            db.session.commit()
            return False
        completed = refund.status == STATUSES.COMPLETED
        refund.processed_at = refund.processed_at or now
        for transaction in _refund_transactions(refund):
            if transaction.status == TRANSACTION_STATUSES.PENDING:
                transaction.status = TRANSACTION_STATUSES.SUCCEEDED if completed else TRANSACTION_STATUSES.FAILED
                transaction.processed_at = refund.processed_at
                transaction.provider_transaction_id = transaction.provider_transaction_id or refund.provider_refund_id
        for name in waiting:
            steps[name] = "pending" if completed else "cancelled"
        steps["outcome"] = "pending"
        meta.update(steps=steps, outcome_audit_id=new_id(),
                    settled={"status": refund.status, "at": now.isoformat(), "by": actor.id})
        refund.metadata_ = meta
        db.session.add(PaymentAuditLog(
            event_type=EVENT.REFUND_COMPLETED if completed else EVENT.REFUND_FAILED, user_id=actor.id, payment_id=refund.payment_id,
            order_id=refund.order_id, amount=refund.amount, currency=refund.currency,
            ip_address=getattr(actor, "ip", None), success=completed,
            error=None if completed else "the provider did not refund", timestamp=now))
        db.session.flush()
        if completed and payment is not None and payment.status != PAYMENT_STATUSES.REFUNDED and is_fully_refunded(payment):
            payment.status = PAYMENT_STATUSES.REFUNDED
        db.session.commit()
        return True
    except BaseException:
        db.session.rollback()
        raise


def refunds_to_sync() -> list[str]:
    with database("payment"):
        return list(db.session.scalars(select(PaymentRefund.id).where(refund_awaits_provider())
                                       .order_by(PaymentRefund.created_at, PaymentRefund.id)))


def sync_open_refunds(actor=None) -> Counter:
    """sync_refund for every refund that waits for its provider (``console sync-refunds``).

    Without an actor (a cron job), each refund is followed in the name of the staff member
    who issued it: the steps are the rest of their refund, and their id is a real user."""
    tally: Counter = Counter()
    for refund_id in refunds_to_sync():
        try:
            outcome = sync_refund(actor or _issuer(_reload(refund_id)), refund_id)
        except WorkflowError:
            tally["refused"] += 1
            continue
        tally[outcome.state] += 1
    return tally


# --- the further steps -------------------------------------------------------------------

def _run_steps(actor, refund_id: str) -> tuple[str | None, str | None]:
    """Run the pending steps in order; stop at the first failure and record it."""
    for name in STEP_ORDER:
        try:
            with database("payment"):
                refund = db.session.get(PaymentRefund, refund_id, populate_existing=True)
                if (refund.metadata_ or {}).get("steps", {}).get(name) != "pending":
                    continue
            try:
                STEPS[name](actor, refund)
            except IntegrityError:
                # A concurrent retry wrote the same row (same id) first: run the step once
                # more, and it finds its write already there.
                db.session.rollback()
                STEPS[name](actor, _reload(refund_id))
            _mark_step(refund_id, name, done=True)
        except Exception as exc:  # noqa: BLE001 - any failure must leave a visible, retryable state
            db.session.rollback()
            current_app.logger.warning("refund %s: step %s failed: %s", refund_id, name, exc)
            message = _describe(exc)
            _mark_step(refund_id, name, done=False, error=message)
            return name, message
    return None, None


def _describe(exc: Exception) -> str:
    if isinstance(exc, DatabaseUnavailable):
        return f"{exc.bind_key}_db is unavailable"
    if isinstance(exc, WorkflowError):
        return exc.message
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")


def _mark_step(refund_id: str, name: str, *, done: bool, error: str | None = None) -> None:
    """Record a step's outcome on the refund row (locked), after the step's own commit."""
    try:
        with database("payment"):
            refund = locked(select(PaymentRefund).where(PaymentRefund.id == refund_id))
            meta = dict(refund.metadata_ or {})
            steps = dict(meta.get("steps") or {})
            if done:
                steps[name] = "done"
                if (meta.get("last_error") or {}).get("step") == name:
                    meta.pop("last_error")
            elif steps.get(name) == "pending":
                meta["last_error"] = {"step": name, "message": error, "at": utcnow().isoformat()}
            meta["steps"] = steps
            refund.metadata_ = meta
            db.session.commit()
    except Exception:  # noqa: BLE001 - payment_db down: the step stays pending and is retried
        db.session.rollback()
        if done:
            raise


def _issuer(refund: PaymentRefund):
    meta = refund.metadata_ or {}
    return SimpleNamespace(id=meta.get("staff_id"), ip=meta.get("staff_ip"))


def _step_audit(actor, refund: PaymentRefund) -> None:
    meta = refund.metadata_
    with database("auth"):
        if db.session.get(SecurityAuditLog, meta["audit_id"]) is None:
            row = audit.record(_issuer(refund), "refund.issued", "payment_refund", refund.id,
                               after={"amount": refund.amount, "currency": refund.currency, "status": refund.status},
                               payment_id=refund.payment_id, order_id=refund.order_id, reason=refund.reason,
                               return_request_id=meta.get("return_request_id"), idempotency_key=meta.get("idempotency_key"))
            row.id = meta["audit_id"]
        db.session.commit()


def _step_outcome(actor, refund: PaymentRefund) -> None:
    """The audit row for the provider's final answer on a deferred refund."""
    meta = refund.metadata_
    settled = meta.get("settled") or {}
    with database("auth"):
        if db.session.get(SecurityAuditLog, meta["outcome_audit_id"]) is None:
            row = audit.record(actor, f"refund.{settled.get('status') or refund.status}", "payment_refund",
                               refund.id, after={"status": refund.status, "provider_refund_id": refund.provider_refund_id},
                               payment_id=refund.payment_id, order_id=refund.order_id, amount=refund.amount,
                               currency=refund.currency, return_request_id=meta.get("return_request_id"))
            row.id = meta["outcome_audit_id"]
        db.session.commit()


def _step_order(actor, refund: PaymentRefund) -> None:
    """When the payment is fully refunded, the order's payment status and status follow."""
    with database("payment"):
        payment = db.session.get(Payment, refund.payment_id)
        fully = payment is not None and payment.status == PAYMENT_STATUSES.REFUNDED
    if not fully or not refund.order_id:
        return
    with database("order"):
        order = locked(select(Order).where(Order.id == refund.order_id))
        if order is None:
            return  # a missing order is shown as such; there is nothing to update
        if order.payment_status != "refunded":
            audit.record(actor, "order.payment_status_changed", "order", order.id,
                         before={"payment_status": order.payment_status}, after={"payment_status": "refunded"},
                         refund_id=refund.id)
            order.payment_status = "refunded"
        if order.status != "refunded":
            record_status_change(actor, order, "refunded", f"payment fully refunded (refund {refund.id})")
        db.session.commit()


def _step_return(actor, refund: PaymentRefund) -> None:
    meta = refund.metadata_
    with database("return"):
        request = locked(select(ReturnRequest).where(ReturnRequest.id == meta["return_request_id"]))
        if request is None:
            return
        if db.session.get(ReturnRefund, meta["return_refund_id"]) is None:
            db.session.add(ReturnRefund(
                id=meta["return_refund_id"], return_request_id=request.id, payment_id=refund.payment_id,
                order_id=refund.order_id, user_id=request.user_id, refund_method="original_payment",
                amount=refund.amount, currency=refund.currency, status=refund.status,
                reason=f"payment refund {refund.id}", processed_at=refund.processed_at))
            amounts = meta.get("items") or {}
            for item in db.session.scalars(select(ReturnItem).where(ReturnItem.return_request_id == request.id)):
                if item.id in amounts:
                    item.refund_amount = Decimal(amounts[item.id])
            request.refund_amount = refund.amount
            if meta.get("shipping"):
                request.metadata_ = {**(request.metadata_ or {}), "shipping_refund": meta["shipping"]}
        if request.status == "received":
            return_states.move(actor, request, "processed", f"refunded {refund.amount} {refund.currency} to the original payment",
                         notify=False)
        db.session.commit()


def refund_template(refund: PaymentRefund) -> str:
    """The email a refund sends: return_processed for a return's refund, else refund_issued."""
    return "return_processed" if (refund.metadata_ or {}).get("return_request_id") else "refund_issued"


def _step_notify(actor, refund: PaymentRefund) -> None:
    meta = refund.metadata_
    with database("payment"):
        payment = db.session.get(Payment, refund.payment_id)
        user_id = payment.user_id if payment else None
    variables = refund_variables(refund, first_name(user_id))
    template = refund_template(refund)
    with database("notification"):
        if db.session.get(Notification, meta["notification_id"]) is None:
            notification = queue(user_id, template, variables, key=f"refund:{refund.id}")
            # A new one (an existing one already has its id); None: no template to send.
            if notification is not None and notification.id is None:
                notification.id = meta["notification_id"]
        db.session.commit()


# The step functions by name: the order in which they run is STEP_ORDER.
STEPS = {"audit": _step_audit, "outcome": _step_outcome, "order": _step_order, "return": _step_return,
         "notify": _step_notify}
