"""Refunds: the refundable amount, full refunds flipping payment and order, providers,
idempotency keys, and failures part-way through the databases with Retry."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import create_engine, func, select

from console.extensions import db
from console.lookups import DatabaseUnavailable, resolve
from console.models.auth import SecurityAuditLog
from console.models.notification import Notification
from console.models.order import Order, OrderStatusHistory
from console.models.payment import (Payment, PaymentAuditLog, PaymentIdempotencyKey, PaymentRefund,
                                    PaymentTransaction, refund_steps_pending)
from console.models.returns import ReturnItem, ReturnRefund, ReturnRequest
from console.workflows import WorkflowError
from console.workflows import refunds, returns
from console.workflows.refund_providers import ProviderResult, register
from tests.returns_helpers import paid_order
from tests.second_app import UNOPENABLE_SQLITE, UNREACHABLE_POSTGRES

pytestmark = pytest.mark.usefixtures("ctx")

TOTAL = Decimal("64.40")  # 2 x 20.00 + 15.00, 8% tax, 5.00 shipping


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def refund_transactions(payment_id):
    return list(db.session.scalars(select(PaymentTransaction).where(
        PaymentTransaction.payment_id == payment_id, PaymentTransaction.transaction_type == "REFUND")))


def fresh(model, row_id):
    return db.session.get(model, row_id, populate_existing=True)


def test_partial_refund_writes_the_three_payment_rows_and_leaves_statuses():
    data = paid_order()
    assert data.payment.amount == TOTAL
    outcome = refunds.refund_order(data.actor, data.order.id, "10.00", key="k-partial", reason="Late delivery")
    refund = outcome.refund
    assert outcome.created and not outcome.needs_attention
    assert (refund.amount, refund.status, refund.currency) == (Decimal("10.00"), "completed", "USD")
    assert refund.provider_refund_id.startswith("mock_re_") and refund.order_id == data.order.id
    [txn] = refund_transactions(data.payment.id)
    assert (txn.amount, txn.status, txn.provider_transaction_id) == (Decimal("10.00"), "SUCCEEDED", refund.provider_refund_id)
    log = db.session.scalar(select(PaymentAuditLog))
    assert (log.event_type, log.amount, log.user_id, log.success) == ("REFUND_COMPLETED", Decimal("10.00"), data.actor.id, True)
    key = db.session.scalar(select(PaymentIdempotencyKey))
    assert (key.key, key.payment_id, key.user_id) == ("k-partial", data.payment.id, data.actor.id)
    assert refunds.refundable_amount(fresh(Payment, data.payment.id)) == TOTAL - Decimal("10.00")
    assert fresh(Payment, data.payment.id).status == "succeeded"
    order = fresh(Order, data.order.id)
    assert (order.status, order.payment_status) == ("delivered", "paid")
    assert refund.metadata_["steps"] == {"audit": "done", "order": "done", "notify": "done"}
    audit_row = db.session.get(SecurityAuditLog, refund.metadata_["audit_id"])
    assert audit_row.action == "refund.issued" and audit_row.user_id == data.actor.id
    [mail] = db.session.scalars(select(Notification))
    assert mail.metadata_["template"] == "refund_issued" and mail.user_id == data.customer.id
    assert "10.00 USD" in mail.body and data.order.order_number in mail.body


def test_refund_above_refundable_is_refused_with_the_amount():
    data = paid_order()
    refunds.refund_order(data.actor, data.order.id, "60.00", key="k1", reason="Damaged")
    with pytest.raises(WorkflowError) as refused:
        refunds.refund_order(data.actor, data.order.id, "4.41", key="k2", reason="More")
    assert refused.value.status == 422 and "refundable amount is 4.40 USD" in refused.value.message
    assert count(PaymentRefund) == 1 and count(PaymentIdempotencyKey) == 1 and len(refund_transactions(data.payment.id)) == 1
    refunds.refund_order(data.actor, data.order.id, "4.40", key="k3", reason="Rest")


def test_full_refund_flips_payment_and_order_with_history_and_audit():
    data = paid_order()
    refunds.refund_order(data.actor, data.order.id, "40.00", key="a", reason="First part")
    assert fresh(Order, data.order.id).status == "delivered"
    refunds.refund_order(data.actor, data.order.id, "24.40", key="b", reason="The rest")
    assert fresh(Payment, data.payment.id).status == "refunded"
    order = fresh(Order, data.order.id)
    assert (order.status, order.payment_status) == ("refunded", "refunded")
    [change] = db.session.scalars(select(OrderStatusHistory).where(OrderStatusHistory.status == "refunded"))
    assert change.previous_status == "delivered" and change.changed_by == data.actor.id
    actions = [row.action for row in db.session.scalars(select(SecurityAuditLog))]
    assert actions.count("refund.issued") == 2 and "order.refunded" in actions
    assert "order.payment_status_changed" in actions
    assert refunds.refundable_amount(fresh(Payment, data.payment.id)) == 0
    with pytest.raises(WorkflowError) as refused:
        refunds.refund_order(data.actor, data.order.id, "0.01", key="c", reason="Too much")
    assert "refundable amount is 0.00 USD" in refused.value.message


def test_deferred_provider_leaves_pending_and_counts_against_refundable():
    data = paid_order(provider="STRIPE")
    outcome = refunds.refund_order(data.actor, data.order.id, "64.40", key="s1", reason="Return to card")
    assert outcome.refund.status == "pending" and outcome.refund.provider_refund_id is None
    [txn] = refund_transactions(data.payment.id)
    assert txn.status == "PENDING"
    payment = fresh(Payment, data.payment.id)
    assert refunds.refundable_amount(payment) == 0
    # Money is not back yet: the payment and the order keep their status until it completes.
    assert payment.status == "succeeded" and fresh(Order, data.order.id).status == "delivered"
    with pytest.raises(WorkflowError) as refused:
        refunds.refund_order(data.actor, data.order.id, "1.00", key="s2", reason="Again")
    assert refused.value.status == 422


def test_failed_refunds_do_not_count():
    data = paid_order()
    outcome = refunds.refund_order(data.actor, data.order.id, "64.40", key="f1", reason="x")
    outcome.refund.status = "failed"
    db.session.commit()
    assert refunds.refundable_amount(fresh(Payment, data.payment.id)) == TOTAL


def test_same_key_refunds_once_and_returns_the_first_result():
    data = paid_order()
    first = refunds.refund_order(data.actor, data.order.id, "10.00", key="same", reason="Goodwill")
    again = refunds.refund_order(data.actor, data.order.id, "12.00", key="same", reason="Goodwill")
    assert not again.created and again.refund.id == first.refund.id and again.refund.amount == Decimal("10.00")
    assert "already recorded" in again.message
    assert count(PaymentRefund) == 1 and len(refund_transactions(data.payment.id)) == 1 and count(PaymentAuditLog) == 1
    other = paid_order()
    with pytest.raises(WorkflowError) as refused:
        refunds.refund_order(other.actor, other.order.id, "10.00", key="same", reason="Goodwill")
    assert refused.value.status == 409


def test_bad_input_is_refused_before_any_write():
    data = paid_order()
    for amount, reason, key, message in (("abc", "x", "k", "not an amount"), ("-1", "x", "k", "without a sign"), ("0", "x", "k", "more than zero"),
                                         ("1,0", "x", "k", "no commas"), ("1e309", "x", "k", "like 12.50"),
                                         ("1.234", "x", "k", "two decimals"), ("5", "  ", "k", "reason"),
                                         ("5", "x", "", "request key")):
        with pytest.raises(WorkflowError) as refused:
            refunds.refund_order(data.actor, data.order.id, amount, key=key, reason=reason)
        assert message in refused.value.message and 400 <= refused.value.status < 500
    assert count(PaymentRefund) == 0


def test_unpaid_payment_has_nothing_to_refund():
    data = paid_order(status="pending")
    with pytest.raises(WorkflowError) as refused:
        refunds.refund_order(data.actor, data.order.id, "1.00", key="u", reason="x")
    assert "refundable amount is 0.00 USD" in refused.value.message


def test_a_plugged_in_provider_is_used_by_name():
    class Recording:
        def __init__(self):
            self.calls = []

        def submit_refund(self, payment, amount, key):
            self.calls.append((payment.id, amount, key))
            return ProviderResult("processing", "ext_1", {"ok": True})

    provider = Recording()
    register("ACME", provider)
    data = paid_order()
    data.payment.payment_provider = "ACME"
    db.session.commit()
    outcome = refunds.refund_order(data.actor, data.order.id, "5.00", key="acme", reason="x")
    assert provider.calls == [(data.payment.id, Decimal("5.00"), "acme")]
    assert outcome.refund.status == "processing" and outcome.refund.provider_refund_id == "ext_1"


# --- failures part-way -------------------------------------------------------------------

def dead_engine():
    """An engine for the order bind whose server is not there (connection refused)."""
    return create_engine(UNREACHABLE_POSTGRES if db.engines["order"].dialect.name == "postgresql" else UNOPENABLE_SQLITE)


def test_order_db_down_after_the_money_step_needs_attention_then_retry_completes(monkeypatch):
    data = paid_order()
    payment_id, order_id = data.payment.id, data.order.id
    real = db.engines["order"]
    monkeypatch.setitem(db.engines, "order", dead_engine())
    outcome = refunds.issue_refund(data.actor, payment_id, "64.40", key="full", reason="Full refund",
                                   link={"kind": "goodwill", "order_number": data.order.order_number})
    assert outcome.created and outcome.needs_attention and outcome.failed_step == "order"
    assert "order_db is unavailable" in outcome.message and "Retry" in outcome.message
    refund = outcome.refund
    assert refund.status == "completed" and refunds.needs_attention(refund)
    assert refunds.pending_steps(refund) == ["order", "notify"]
    assert refunds.last_error(refund)["step"] == "order"
    assert [r.id for r in db.session.scalars(select(PaymentRefund).where(refund_steps_pending()))] == [refund.id]
    assert fresh(Payment, payment_id).status == "refunded"  # the money step is done
    assert count(Notification) == 0

    # Still down: Retry fails again, records it, and repeats nothing.
    again = refunds.retry_refund(data.actor, refund.id)
    assert again.failed_step == "order"

    monkeypatch.setitem(db.engines, "order", real)
    done = refunds.retry_refund(data.actor, refund.id)
    assert not done.needs_attention and refunds.pending_steps(done.refund) == []
    assert refunds.last_error(done.refund) is None
    with pytest.raises(WorkflowError) as refused:
        refunds.retry_refund(data.actor, refund.id)
    assert refused.value.status == 409

    order = fresh(Order, order_id)
    assert (order.status, order.payment_status) == ("refunded", "refunded")
    assert count(OrderStatusHistory, OrderStatusHistory.order_id == order_id, OrderStatusHistory.status == "refunded") == 1
    assert count(PaymentRefund) == 1 and len(refund_transactions(payment_id)) == 1 and count(PaymentAuditLog) == 1
    assert count(Notification) == 1
    assert count(SecurityAuditLog, SecurityAuditLog.action == "refund.issued") == 1
    assert count(SecurityAuditLog, SecurityAuditLog.action == "refund.retried") == 2
    assert db.session.scalar(select(PaymentRefund).where(refund_steps_pending())) is None


def received_return(data):
    mug, plate = data.items
    request = returns.create_return(data.actor, data.order.id, [(mug.id, 2), (plate.id, 1)], "defective")
    returns.approve(data.actor, request.id)
    items = {i.order_item_id: i.id for i in db.session.scalars(select(ReturnItem))}
    returns.receive(data.actor, request.id, {items[mug.id]: "new", items[plate.id]: "defective"})
    return request


def test_return_db_write_failing_after_payment_is_retried_without_repeating_a_step(monkeypatch):
    data = paid_order()
    request = received_return(data)
    calls = []

    def return_db_down(actor, refund):
        calls.append(refund.id)
        raise DatabaseUnavailable("return")

    monkeypatch.setitem(refunds.STEPS, "return", return_db_down)
    outcome = returns.process(data.actor, request.id)
    assert outcome.needs_attention and outcome.failed_step == "return" and calls == [outcome.refund.id]
    assert fresh(ReturnRequest, request.id).status == "received"
    [linked] = refunds.refunds_of_return(fresh(ReturnRequest, request.id))
    assert linked.id == outcome.refund.id and refunds.needs_attention(linked)
    assert count(ReturnRefund) == 0 and count(Notification, Notification.metadata_["template"].as_string() == "return_processed") == 0

    monkeypatch.undo()
    done = refunds.retry_refund(data.actor, outcome.refund.id)
    assert not done.needs_attention

    request = fresh(ReturnRequest, request.id)
    assert request.status == "processed" and request.refund_amount == Decimal("59.40")  # items and their tax
    assert count(PaymentRefund) == 1 and len(refund_transactions(data.payment.id)) == 1
    assert count(PaymentAuditLog) == 1 and count(ReturnRefund) == 1
    assert count(Notification, Notification.metadata_["template"].as_string() == "return_processed") == 1
    return_refund = db.session.scalar(select(ReturnRefund))
    payment_refund = fresh(PaymentRefund, outcome.refund.id)
    # Totals agree across payment_db and return_db, and the link holds both ways.
    assert return_refund.id == payment_refund.metadata_["return_refund_id"]
    assert return_refund.amount == payment_refund.amount == request.refund_amount
    assert sum(i.refund_amount for i in db.session.scalars(select(ReturnItem))) == payment_refund.amount
    assert refunds.refundable_amount(fresh(Payment, data.payment.id)) == TOTAL - Decimal("59.40")
    # check-refs stays clean, and every reference the refund wrote resolves.
    from console.integrity import check_all

    assert [report.ref.name for report in check_all() if not report.ok] == []
    for ref, rows, column in (("return.refunds.payment_id", [return_refund], "payment_id"),
                              ("return.refunds.order_id", [return_refund], "order_id"),
                              ("return.refunds.user_id", [return_refund], "user_id"),
                              ("payment.refunds.order_id", [payment_refund], "order_id"),
                              ("payment.audit_logs.payment_id", db.session.scalars(select(PaymentAuditLog)).all(), "payment_id"),
                              ("payment.idempotency_keys.payment_id", db.session.scalars(select(PaymentIdempotencyKey)).all(), "payment_id")):
        values = [getattr(row, column) for row in rows]
        assert set(resolve(ref, values)) == set(values), ref


def test_processing_again_after_a_failure_completes_instead_of_refunding_twice(monkeypatch):
    data = paid_order()
    request = received_return(data)
    monkeypatch.setitem(refunds.STEPS, "return", lambda actor, refund: (_ for _ in ()).throw(RuntimeError("boom")))
    first = returns.process(data.actor, request.id)
    assert first.failed_step == "return" and "RuntimeError: boom" in first.message
    monkeypatch.undo()
    second = returns.process(data.actor, request.id)
    assert second.refund.id == first.refund.id and not second.needs_attention
    assert count(PaymentRefund) == 1 and count(ReturnRefund) == 1
    assert fresh(ReturnRequest, request.id).status == "processed"


def test_a_step_that_already_happened_is_not_written_again():
    """A crash after a step's commit but before it was marked done: the retry finds the
    step's rows (chosen ids) and writes nothing new."""
    data = paid_order()
    request = received_return(data)
    outcome = returns.process(data.actor, request.id)
    refund = fresh(PaymentRefund, outcome.refund.id)
    meta = dict(refund.metadata_)
    meta["steps"] = {name: "pending" for name in meta["steps"]}
    refund.metadata_ = meta
    db.session.commit()
    refunds.retry_refund(data.actor, refund.id)
    assert count(ReturnRefund) == 1 and count(Notification, Notification.metadata_["template"].as_string() == "return_processed") == 1
    assert count(SecurityAuditLog, SecurityAuditLog.action == "refund.issued") == 1
    assert count(SecurityAuditLog, SecurityAuditLog.action == "return.processed") == 1
