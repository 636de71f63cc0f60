"""Refunds screens: the list by status (with "needs attention"), its export, and the
refund panel of the order page.

Refunds live in payment_db; the order (order_db) and the return they belong to
(return_db) are joined per page, one IN query per table. "Needs attention" is derived
from the steps each refund recorded as still pending (see console.workflows.refunds).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import select

from console.exports import CopyExport, Side
from console.extensions import db
from console.filters import QueryFilters, choice, date_range, order_ids_numbered, text, within_days
from console.lookups import (DatabaseUnavailable, Lookups, Missing, database, fetch_in, referrers, resolve,
                             target_or_missing)
from console.models.order import Order
from console.models.payment import Payment, PaymentRefund, refund_needs_attention
from console.models.returns import ReturnRequest
from console.models.types import new_id
from console.screens.keyset import capped_count
from console.screens.lists import ListScreen, Sort
from console.workflows import refund_providers
from console.workflows import refunds as flow

STATUS_FILTERS = (*flow.STATUSES, "needs_attention")


@dataclass
class RefundFilters(QueryFilters):
    status: str = ""
    provider: str = ""
    created_from: date | None = None
    created_to: date | None = None
    order: str = ""  # order number, exact, any case

    FIELDS = ("status", "provider", "created_from", "created_to", "order")

    @classmethod
    def parse(cls, args) -> tuple["RefundFilters", list[str]]:
        errors: list[str] = []
        f = cls()
        f.status = choice(args, "status", STATUS_FILTERS, "Status", errors)
        f.provider = choice(args, "provider", refund_providers.names(), "Provider", errors)
        f.created_from, f.created_to = date_range(args, ("created_from", "Created from"),
                                                  ("created_to", "Created to"), errors)
        f.order = text(args, "order", errors)
        return f, errors


def refunds_query(filters: RefundFilters, lookups: Lookups | None = None):
    stmt = select(PaymentRefund)
    if filters.status == "needs_attention":
        stmt = stmt.where(refund_needs_attention())
    elif filters.status:
        stmt = stmt.where(PaymentRefund.status == filters.status)
    if filters.provider:
        stmt = stmt.where(PaymentRefund.payment_id.in_(
            select(Payment.id).where(Payment.payment_provider == filters.provider)))
    stmt = within_days(stmt, PaymentRefund.created_at, filters.created_from, filters.created_to)
    if filters.order:
        stmt = stmt.where(PaymentRefund.order_id.in_(order_ids_numbered(filters.order)))
    return stmt


@dataclass
class RefundRow:
    refund: PaymentRefund
    payment: Payment | Missing | None
    order: Order | Missing | None  # None: order_db unavailable, or no order id
    return_request: ReturnRequest | Missing | None  # None: not a return's refund, or return_db unavailable
    needs_attention: bool
    pending: list[str]
    error: dict | None

    @property
    def kind(self) -> str:
        return "return" if (self.refund.metadata_ or {}).get("return_request_id") else "goodwill"


def _return_id(refund: PaymentRefund) -> str | None:
    return (refund.metadata_ or {}).get("return_request_id")


def decorate(rows: list[PaymentRefund], lookups: Lookups) -> list[RefundRow]:
    payments = {p.id: p for p in lookups.run("payment", lambda: fetch_in(
        "payment", "payments", "id", [r.payment_id for r in rows]), [])}
    orders = lookups.run("order", lambda: resolve("payment.refunds.order_id", [r.order_id for r in rows]), {})
    # A refund's return is one of its order's returns: looked up by the orders (always
    # some on a page), so every page asks return_db the same one question.
    by_order = lookups.run("return", lambda: referrers("return.return_requests.order_id",
                                                       [r.order_id for r in rows]), {})
    returns = {ret.id: ret for group in by_order.values() for ret in group}
    return [RefundRow(
        refund=r,
        payment=target_or_missing(payments, r.payment_id),
        order=None if lookups.down("order") else target_or_missing(orders, r.order_id),
        return_request=None if lookups.down("return") else target_or_missing(returns, _return_id(r)),
        needs_attention=flow.needs_attention(r), pending=flow.pending_steps(r), error=flow.last_error(r))
        for r in rows]


def _export_row(row: RefundRow, lookups: Lookups) -> list:
    r, order, ret = row.refund, row.order, row.return_request
    return [r.created_at, r.status, "yes" if row.needs_attention else "no", " ".join(row.pending),
            r.amount, r.currency, row.payment.payment_provider if isinstance(row.payment, Payment) else "",
            r.provider_refund_id,
            order.order_number if isinstance(order, Order) else ("unavailable" if lookups.down("order") else str(order or "")),
            ret.rma_number if isinstance(ret, ReturnRequest) else str(ret or ""),
            r.reason, r.processed_at, r.id, r.payment_id, r.order_id]


def _attention(filters: RefundFilters) -> dict:
    # Refunds needing attention (a capped count) across all filters, for the status pill.
    return {"attention": capped_count(select(PaymentRefund.id).where(refund_needs_attention()), cap=1000)}


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as _export_row ---

_REFUNDS, _PAYMENTS, _ORDERS, _RETURNS = (PaymentRefund.__table__.c, Payment.__table__.c, Order.__table__.c,
                                          ReturnRequest.__table__.c)
_EXPORT_COLUMNS = (
    *(_REFUNDS[name] for name in ("created_at", "status", "amount", "currency", "provider_refund_id", "reason",
                                  "processed_at", "id", "payment_id", "order_id", "metadata_")),
    # The payment lives in the same database: its provider comes with the refund.
    select(_PAYMENTS.payment_provider).where(_PAYMENTS.id == _REFUNDS.payment_id).scalar_subquery().label("provider"))


def _by_order(batch) -> list:
    return [row[9] for row in batch]


_EXPORT_SIDES = {
    "orders": Side("order", _by_order, lambda ids, among: select(_ORDERS.id, _ORDERS.order_number)
                   .where(among(_ORDERS.id, ids))),
    # As the list reads them: the returns of the batch's orders, found by id.
    "returns": Side("return", _by_order, lambda ids, among: select(_RETURNS.id, _RETURNS.rma_number)
                    .where(among(_RETURNS.order_id, ids))),
}


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    orders, returns = found["orders"], found["returns"]
    order_down, return_down = lookups.down("order"), lookups.down("return")
    rows = []
    for created, status, amount, currency, provider_refund_id, reason, processed, refund_id, payment_id, order_id, \
            metadata, provider in batch:
        pending = flow.pending_steps(SimpleNamespace(metadata_=metadata))
        order = orders.get(order_id)
        ret = None if return_down else returns.get((metadata or {}).get("return_request_id"))
        # What is not found reads as _export_row words it: empty (a Missing is falsy there).
        rows.append([
            created, status, "yes" if pending else "no", " ".join(pending), amount, currency, provider or "",
            provider_refund_id, "unavailable" if order_down else order[0][1] if order else "",
            ret[0][1] if ret else "", reason, processed, refund_id, payment_id, order_id])
    return rows


REFUNDS = ListScreen(
    name="refunds", noun="refunds", home="payment", export_endpoint="export_refunds",
    filters=RefundFilters, statement=refunds_query, id_column=PaymentRefund.id,
    sorts=(Sort("created", PaymentRefund.created_at, "Created"),
           Sort("amount", PaymentRefund.amount, "Amount", numeric=True),
           Sort("status", PaymentRefund.status, "Status", descending=False)),
    default_sort="-created", decorate=decorate, extras=_attention,
    export_header=("created_at", "status", "needs_attention", "pending_steps", "amount", "currency", "provider",
                   "provider_refund_id", "order_number", "rma_number", "reason", "processed_at", "refund_id",
                   "payment_id", "order_id"),
    export_row=_export_row, export_binds=("order", "return"),
    export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells, _EXPORT_SIDES),
)


# --- the order page's refund panel -----------------------------------------------------------

def order_by_id(order_id: str) -> Order | None:
    with database("order"):
        return db.session.get(Order, order_id)


@dataclass
class OrderRefunds:
    payment: Payment | None
    refunds: list[RefundRow]
    captured: Decimal | None
    refundable: Decimal | None
    key: str  # a fresh idempotency key for this rendering of the refund form
    unavailable: str | None = None


def order_refunds(order, payment=None, loaded=None) -> OrderRefunds:
    """The order's payment, its refunds and what can still be refunded. ``loaded`` is the
    order page (console.screens.orders.OrderPage), whose refunds and transactions were
    read already: then this reads nothing."""
    key = new_id()
    if not isinstance(order, Order):
        return OrderRefunds(None, [], None, None, key)
    if loaded is not None and isinstance(payment, Payment) and "payment" not in loaded.unavailable:
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        rows = sorted((r for r in loaded.refunds if r.order_id == order.id),
                      key=lambda r: r.created_at or epoch, reverse=True)
        captured = flow.captured_from(payment, loaded.transactions)
        refunded = sum((r.amount or 0 for r in loaded.refunds
                        if r.payment_id == payment.id and r.status in flow.COUNTED), Decimal("0"))
        refundable = max(Decimal("0"), captured - refunded).quantize(flow.CENTS)
        return OrderRefunds(payment, [RefundRow(r, payment, order, None, flow.needs_attention(r),
                                                flow.pending_steps(r), flow.last_error(r)) for r in rows],
                            captured, refundable, key)
    try:
        with database("payment"):
            if not isinstance(payment, Payment):
                payment = flow.payment_for_order(order)
            rows = list(db.session.scalars(select(PaymentRefund).where(PaymentRefund.order_id == order.id)
                                           .order_by(PaymentRefund.created_at.desc())))
            captured = flow.captured_amount(payment) if payment is not None else None
            refundable = flow.refundable_amount(payment) if payment is not None else None
    except DatabaseUnavailable as exc:
        return OrderRefunds(None, [], None, None, key, exc.bind_key)
    return OrderRefunds(payment, [RefundRow(r, payment, order, None, flow.needs_attention(r), flow.pending_steps(r),
                                            flow.last_error(r)) for r in rows], captured, refundable, key)
