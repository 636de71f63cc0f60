"""Deferred refunds (STRIPE, PAYPAL): recorded pending, executed by the payment service,
then followed by sync_refund / `console sync-refunds`: the waiting steps run exactly once
when the service marks the refund completed; a failed one releases its amount."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.notification import Notification
from console.models.order import Order, OrderStatusHistory
from console.models.payment import Payment, PaymentAuditLog, PaymentRefund, PaymentTransaction, refund_steps_pending
from console.models.returns import ReturnItem, ReturnRefund, ReturnRequest
from console.models.types import utcnow
from console.workflows import WorkflowError
from console.workflows import refunds, returns
from console.workflows.refund_providers import ProviderResult, register
from tests.returns_helpers import paid_order

pytestmark = pytest.mark.usefixtures("ctx")

TOTAL = Decimal("64.40")


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def fresh(model, row_id):
    return db.session.get(model, row_id, populate_existing=True)


def service_marks(refund_id, status, provider_refund_id="re_service_1"):
    """What the payment service writes when it has executed (or failed) the refund."""
    refund = fresh(PaymentRefund, refund_id)
    refund.status = status
    refund.provider_refund_id = provider_refund_id if status == "completed" else None
    refund.processed_at = utcnow()
    db.session.commit()


def refund_transaction(refund_id):
    [row] = [t for t in db.session.scalars(select(PaymentTransaction).where(
        PaymentTransaction.transaction_type == "REFUND")) if t.provider_response.get("refund_id") == refund_id]
    return row


def audit_actions(refund_id):
    return sorted(row.action for row in db.session.scalars(select(SecurityAuditLog))
                  if (row.metadata_ or {}).get("entity_id") == refund_id)


def test_full_stripe_refund_waits_then_completes_once():
    data = paid_order(provider="STRIPE")
    outcome = refunds.refund_order(data.actor, data.order.id, "64.40", key="s-full", reason="Back to the card")
    refund = outcome.refund
    assert refund.status == "pending" and not outcome.needs_attention
    assert refund.metadata_["steps"] == {"audit": "done", "order": "waiting", "notify": "waiting"}
    assert refunds.awaits_provider(refund) and not refunds.needs_attention(refund)
    assert "Refresh status" in outcome.message
    # Nothing that needs the money back has happened yet.
    order = fresh(Order, data.order.id)
    assert (order.status, order.payment_status) == ("delivered", "paid")
    assert fresh(Payment, data.payment.id).status == "succeeded" and count(Notification) == 0
    assert refunds.refundable_amount(fresh(Payment, data.payment.id)) == 0

    still = refunds.sync_refund(data.actor, refund.id)
    assert not still.settled and still.state == "still_pending" and "still pending at STRIPE" in still.message
    assert fresh(Order, data.order.id).status == "delivered" and count(Notification) == 0
    assert refund.id in refunds.refunds_to_sync()

    service_marks(refund.id, "completed")
    done = refunds.sync_refund(data.actor, refund.id)
    assert done.settled and done.state == "completed" and not done.needs_attention
    assert fresh(Payment, data.payment.id).status == "refunded"
    order = fresh(Order, data.order.id)
    assert (order.status, order.payment_status) == ("refunded", "refunded")
    [change] = db.session.scalars(select(OrderStatusHistory).where(OrderStatusHistory.status == "refunded"))
    assert change.changed_by == data.actor.id and change.previous_status == "delivered"
    txn = refund_transaction(refund.id)
    assert (txn.status, txn.provider_transaction_id) == ("SUCCEEDED", "re_service_1") and txn.processed_at
    [mail] = db.session.scalars(select(Notification))
    assert mail.metadata_["template"] == "refund_issued" and "64.40 USD" in mail.body
    assert [log.event_type for log in db.session.scalars(select(PaymentAuditLog).order_by(PaymentAuditLog.timestamp))] \
        == ["REFUND_INITIATED", "REFUND_COMPLETED"]
    assert audit_actions(refund.id) == ["refund.completed", "refund.issued"]
    refund = fresh(PaymentRefund, refund.id)
    assert refunds.pending_steps(refund) == [] and refunds.waiting_steps(refund) == []
    assert not refunds.awaits_provider(refund) and refunds.refunds_to_sync() == []

    # Repeating the sync changes nothing and writes nothing twice.
    with pytest.raises(WorkflowError) as again:
        refunds.sync_refund(data.actor, refund.id)
    assert again.value.status == 409 and "already completed" in again.value.message
    assert count(Notification) == 1 and count(PaymentAuditLog) == 2
    assert count(OrderStatusHistory, OrderStatusHistory.status == "refunded") == 1
    assert len(audit_actions(refund.id)) == 2


def test_a_failed_refund_frees_its_amount_and_cancels_the_waiting_steps():
    data = paid_order(provider="PAYPAL")
    outcome = refunds.refund_order(data.actor, data.order.id, "40.00", key="p-1", reason="Damaged")
    assert refunds.refundable_amount(fresh(Payment, data.payment.id)) == TOTAL - Decimal("40.00")
    service_marks(outcome.refund.id, "failed")
    synced = refunds.sync_refund(data.actor, outcome.refund.id)
    assert synced.settled and synced.state == "failed" and "refundable again" in synced.message
    refund = fresh(PaymentRefund, outcome.refund.id)
    assert refund.metadata_["steps"] == {"audit": "done", "outcome": "done", "order": "cancelled", "notify": "cancelled"}
    assert not refunds.needs_attention(refund) and not refunds.awaits_provider(refund)
    assert refunds.refundable_amount(fresh(Payment, data.payment.id)) == TOTAL
    assert refund_transaction(refund.id).status == "FAILED"
    assert fresh(Payment, data.payment.id).status == "succeeded" and fresh(Order, data.order.id).status == "delivered"
    assert count(Notification) == 0
    failed_log = db.session.scalar(select(PaymentAuditLog).where(PaymentAuditLog.event_type == "REFUND_FAILED"))
    assert failed_log.success is False and failed_log.amount == Decimal("40.00")
    assert audit_actions(refund.id) == ["refund.failed", "refund.issued"]
    # The freed amount can be refunded again.
    again = refunds.refund_order(data.actor, data.order.id, "64.40", key="p-2", reason="Second try")
    assert again.refund.status == "pending"


def received_return(data):
    mug, plate = data.items
    request = returns.create_return(data.actor, data.order.id, [(mug.id, 2), (plate.id, 1)], "defective")
    returns.approve(data.actor, request.id)
    items = {i.order_item_id: i.id for i in db.session.scalars(select(ReturnItem))}
    returns.receive(data.actor, request.id, {items[mug.id]: "new", items[plate.id]: "used"})
    return request


def test_a_return_refund_processes_the_return_when_the_service_completes_it():
    data = paid_order(provider="STRIPE")
    request = received_return(data)
    outcome = returns.process(data.actor, request.id)
    assert outcome.refund.status == "pending" and outcome.refund.amount == Decimal("59.40")
    assert fresh(ReturnRequest, request.id).status == "received" and count(ReturnRefund) == 0
    # Processing again refunds nothing more.
    assert returns.process(data.actor, request.id).refund.id == outcome.refund.id and count(PaymentRefund) == 1

    service_marks(outcome.refund.id, "completed")
    refunds.sync_refund(data.actor, outcome.refund.id)
    request = fresh(ReturnRequest, request.id)
    assert request.status == "processed" and request.refund_amount == Decimal("59.40")
    [record] = db.session.scalars(select(ReturnRefund))
    assert (record.status, record.amount, record.payment_id) == ("completed", Decimal("59.40"), data.payment.id)
    assert count(Notification, Notification.metadata_["template"].as_string() == "return_processed") == 1
    # Partly refunded: the order keeps its status.
    assert fresh(Order, data.order.id).payment_status == "paid"


def test_a_failed_return_refund_leaves_the_return_to_process_again():
    data = paid_order(provider="STRIPE")
    request = received_return(data)
    first = returns.process(data.actor, request.id)
    service_marks(first.refund.id, "failed")
    synced = refunds.sync_refund(data.actor, first.refund.id)
    assert "process it again" in synced.message
    assert fresh(ReturnRequest, request.id).status == "received" and count(ReturnRefund) == 0

    second = returns.process(data.actor, request.id)
    assert second.created and second.refund.id != first.refund.id and second.refund.status == "pending"
    assert returns.process(data.actor, request.id).refund.id == second.refund.id  # a double click: once
    assert count(PaymentRefund) == 2
    service_marks(second.refund.id, "completed", "re_service_2")
    refunds.sync_refund(data.actor, second.refund.id)
    assert fresh(ReturnRequest, request.id).status == "processed"
    [record] = db.session.scalars(select(ReturnRefund))
    assert record.id == fresh(PaymentRefund, second.refund.id).metadata_["return_refund_id"]
    from console.integrity import check_all

    assert [report.ref.name for report in check_all() if not report.ok] == []


def test_a_later_step_failing_after_completion_needs_attention_and_retry_finishes(monkeypatch):
    data = paid_order(provider="STRIPE")
    outcome = refunds.refund_order(data.actor, data.order.id, "64.40", key="s-att", reason="Full")
    service_marks(outcome.refund.id, "completed")
    monkeypatch.setitem(refunds.STEPS, "notify", lambda actor, refund: (_ for _ in ()).throw(RuntimeError("smtp")))
    synced = refunds.sync_refund(data.actor, outcome.refund.id)
    assert synced.needs_attention and synced.failed_step == "notify" and "Retry" in synced.message
    assert refunds.needs_attention(synced.refund) and fresh(Order, data.order.id).status == "refunded"
    monkeypatch.undo()
    refunds.retry_refund(data.actor, outcome.refund.id)
    assert count(Notification) == 1 and count(OrderStatusHistory, OrderStatusHistory.status == "refunded") == 1
    assert count(PaymentAuditLog, PaymentAuditLog.event_type == "REFUND_COMPLETED") == 1


def test_a_failed_refund_whose_outcome_record_fails_needs_attention_until_retried(monkeypatch):
    data = paid_order(provider="PAYPAL")
    outcome = refunds.refund_order(data.actor, data.order.id, "40.00", key="p-att", reason="Damaged")
    service_marks(outcome.refund.id, "failed")
    monkeypatch.setitem(refunds.STEPS, "outcome", lambda actor, refund: (_ for _ in ()).throw(RuntimeError("auth_db")))
    synced = refunds.sync_refund(data.actor, outcome.refund.id)
    assert synced.failed_step == "outcome"
    refund = fresh(PaymentRefund, outcome.refund.id)
    assert refund.status == "failed" and refunds.needs_attention(refund)
    assert db.session.scalar(select(PaymentRefund.id).where(refund_steps_pending())) == refund.id
    monkeypatch.undo()
    refunds.retry_refund(data.actor, outcome.refund.id)
    assert not refunds.needs_attention(fresh(PaymentRefund, outcome.refund.id))
    actions = audit_actions(outcome.refund.id)
    assert sorted(actions) == ["refund.failed", "refund.issued", "refund.retried"]  # each once


def test_a_direct_client_answer_is_written_on_the_row():
    class Direct:
        def submit_refund(self, payment, amount, key):
            return ProviderResult("processing", "ext_9", {})

        def refund_status(self, refund):
            return ProviderResult("completed", "ext_9")

    register("DIRECT", Direct())
    data = paid_order()
    data.payment.payment_provider = "DIRECT"
    db.session.commit()
    outcome = refunds.refund_order(data.actor, data.order.id, "5.00", key="d-1", reason="x")
    assert outcome.refund.status == "processing"
    synced = refunds.sync_refund(data.actor, outcome.refund.id)
    refund = synced.refund
    assert synced.settled and refund.status == "completed" and refund.provider_refund_id == "ext_9"
    assert refund.processed_at is not None and count(Notification) == 1


def test_a_mock_refund_has_nothing_to_refresh():
    data = paid_order()
    outcome = refunds.refund_order(data.actor, data.order.id, "5.00", key="m-1", reason="x")
    assert not refunds.awaits_provider(outcome.refund)
    with pytest.raises(WorkflowError) as refused:
        refunds.sync_refund(data.actor, outcome.refund.id)
    assert refused.value.status == 409
    with pytest.raises(WorkflowError) as missing:
        refunds.sync_refund(data.actor, "no-such-refund")
    assert missing.value.status == 404


def test_sync_refunds_command_follows_every_waiting_refund(app):
    first, second, third = (paid_order(provider="STRIPE") for _ in range(3))
    done = refunds.refund_order(first.actor, first.order.id, "64.40", key="c-1", reason="x").refund.id
    failed = refunds.refund_order(second.actor, second.order.id, "10.00", key="c-2", reason="x").refund.id
    waiting = refunds.refund_order(third.actor, third.order.id, "10.00", key="c-3", reason="x").refund.id
    service_marks(done, "completed")
    service_marks(failed, "failed")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["console", "sync-refunds"])
    assert result.exit_code == 0, result.output
    assert "Checked 3 refunds: 1 completed, 1 failed, 1 still pending." in result.output
    assert fresh(Order, first.order.id).status == "refunded"
    # In the name of the staff member who issued the refund.
    [change] = db.session.scalars(select(OrderStatusHistory).where(OrderStatusHistory.status == "refunded"))
    assert change.changed_by == first.actor.id
    assert refunds.refundable_amount(fresh(Payment, second.payment.id)) == TOTAL
    assert refunds.refunds_to_sync() == [waiting]
    result = runner.invoke(args=["console", "sync-refunds"])
    assert "Checked 1 refund: 1 still pending." in result.output
    assert count(PaymentAuditLog, PaymentAuditLog.event_type.in_(("REFUND_COMPLETED", "REFUND_FAILED"))) == 2


@pytest.mark.postgres_only
def test_the_follow_up_job_reads_the_waiting_refunds_through_their_partial_index(app):
    """`console sync-refunds` asks for the refunds still with their provider through the
    partial index of those alone: never every refund ever issued."""
    from tests.screens.test_search import index_scans, plans, statements_of

    data = paid_order(provider="STRIPE")
    waiting = refunds.refund_order(data.actor, data.order.id, "10.00", key="ix-1", reason="x").refund.id
    found = []
    statements = statements_of(app, lambda: found.extend(refunds.refunds_to_sync()))
    assert found == [waiting]
    [plan] = [p for p in plans(statements) if " on refunds" in p]
    assert "Seq Scan" not in plan and "ix_refunds_awaiting_provider_created_at_id" in index_scans(plan), plan
