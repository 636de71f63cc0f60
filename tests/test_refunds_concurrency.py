"""Staff acting at the same moment on PostgreSQL, with real connections: refunds never
exceed the payment, one key refunds once, returned quantities and restocking hold."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.extensions import db
from console.models.payment import Payment, PaymentIdempotencyKey, PaymentRefund, PaymentTransaction
from console.models.product import ProductInventory
from console.models.returns import ReturnItem, ReturnRequest
from console.workflows import WorkflowError, refunds, returns
from tests.returns_helpers import paid_order

pytestmark = pytest.mark.postgres_only

THREADS = 20


def run_together(app, action, threads: int = THREADS) -> tuple[list, list]:
    """Run ``action(i)`` in ``threads`` threads, each with its own app context (so its own
    session and connections), released at the same instant by a barrier."""
    barrier = threading.Barrier(threads)
    results, refusals, crashes = [], [], []
    lock = threading.Lock()

    def worker(i):
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                outcome = action(i)
                with lock:
                    results.append(outcome)
            except WorkflowError as exc:
                with lock:
                    refusals.append(exc)
            except Exception as exc:  # noqa: BLE001 - reported below, the test must fail on it
                with lock:
                    crashes.append(exc)
            finally:
                db.session.remove()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    assert not crashes, crashes
    return results, refusals


@pytest.fixture(autouse=True)
def close_idle_connections(app):
    """Twenty threads grow every pool they touch; close those connections afterwards so
    the rest of the run (and other runs on the same server) keep theirs."""
    yield
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def paid(app):
    with app.app_context():
        data = paid_order()
        data.payment_id, data.order_id, data.amount = data.payment.id, data.order.id, data.payment.amount
        data.mug_id, data.mug_product_id = data.items[0].id, data.items[0].product_id
        db.session.remove()
    return data


def test_twenty_concurrent_refunds_of_thirty_percent_accept_exactly_three(app, paid):
    share = (paid.amount * Decimal("0.30")).quantize(Decimal("0.01"))
    accepted, refused = run_together(app, lambda i: refunds.issue_refund(
        paid.actor, paid.payment_id, share, key=f"concurrent-{i}", reason="thirty percent"))
    assert len(accepted) == 3 and len(refused) == THREADS - 3
    assert all(exc.status == 422 and "refundable amount is" in exc.message for exc in refused)
    with app.app_context():
        rows = list(db.session.scalars(select(PaymentRefund).where(PaymentRefund.payment_id == paid.payment_id)))
        assert len(rows) == 3 and sum(r.amount for r in rows) == share * 3 <= paid.amount
        assert db.session.scalar(select(func.count()).select_from(PaymentTransaction).where(
            PaymentTransaction.transaction_type == "REFUND")) == 3
        assert db.session.scalar(select(func.count()).select_from(PaymentIdempotencyKey)) == 3
        assert refunds.refundable_amount(db.session.get(Payment, paid.payment_id)) == paid.amount - share * 3


def test_the_same_request_sent_twenty_times_at_once_refunds_once(app, paid):
    def click(i):
        outcome = refunds.issue_refund(paid.actor, paid.payment_id, "10.00", key="one-click", reason="double click")
        return outcome.created, outcome.refund.id

    results, refused = run_together(app, click)
    assert not refused and len(results) == THREADS
    assert sum(created for created, _ in results) == 1
    assert len({refund_id for _, refund_id in results}) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentRefund)) == 1
        assert db.session.scalar(select(func.count()).select_from(PaymentTransaction).where(
            PaymentTransaction.transaction_type == "REFUND")) == 1


def test_concurrent_returns_never_take_more_than_was_ordered(app, paid):
    mug_id = paid.mug_id  # 2 ordered
    created, refused = run_together(app, lambda i: returns.create_return(
        paid.actor, paid.order_id, [(mug_id, 1)], "changed_mind").id, threads=8)
    assert len(created) == 2 and len(refused) == 6
    with app.app_context():
        assert db.session.scalar(select(func.sum(ReturnItem.quantity))) == 2


def test_concurrent_receives_restock_once(app, paid):
    with app.app_context():
        request = returns.create_return(paid.actor, paid.order_id, [(paid.mug_id, 2)], "changed_mind")
        returns.approve(paid.actor, request.id)
        item_id = db.session.scalar(select(ReturnItem.id))
        request_id = request.id
        db.session.remove()
    received, refused = run_together(
        app, lambda i: len(returns.receive(paid.actor, request_id, {item_id: "new"}).restocked), threads=6)
    assert len(received) + len(refused) == 6 and all(exc.status == 409 for exc in refused)
    assert sum(received) == 1
    with app.app_context():
        inventory = db.session.scalar(select(ProductInventory).where(
            ProductInventory.product_id == paid.mug_product_id))
        assert inventory.quantity == 12
        assert db.session.get(ReturnRequest, request_id).metadata_["restock"] == {item_id: "done"}
