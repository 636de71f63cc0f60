"""The order state machine, cancellation (safe to repeat), mark shipped and notes."""
from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from console.demo.builders import ensure_shipping_options, make_customer, make_order, make_product
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.notification import Notification
from console.models.order import Order, OrderNote, OrderStatusHistory
from console.models.payment import Payment, PaymentAuditLog, PaymentTransaction
from console.models.product import ProductInventory
from console.models.shipping import Shipment, ShipmentTracking
from console.models.types import random_tail, utcnow
from console.workflows import WorkflowError
from console.workflows import orders
from tests.returns_helpers import staff_actor
from tests.second_app import app_with_unreachable

STATUSES = orders.ORDER_STATUSES


def order_with_stock(status: str = "pending", *, quantities=(2, 1), reserved: bool = True):
    """An order whose lines hold reserved stock (as an open order does), with its payment."""
    tag = random_tail(6).upper()
    customer, _ = make_customer(f"casey-{tag.lower()}@example.com", "Casey", "Jones")
    products = [make_product(f"SKU-{tag}-{n}", f"Thing {n}", "10.00", stock=10, reserved=qty if reserved else 0)
                for n, qty in enumerate(quantities)]
    bundle = make_order(customer, [(p, qty) for p, qty in zip(products, quantities)], status=status,
                        created_at=utcnow() - timedelta(days=20))
    db.session.commit()
    return bundle, products


def reload(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def history_of(order_id):
    db.session.expire_all()
    return list(db.session.scalars(select(OrderStatusHistory).where(OrderStatusHistory.order_id == order_id)
                                   .order_by(OrderStatusHistory.created_at, OrderStatusHistory.id)))


def audit_rows(action, entity_id=None):
    rows = db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action == action))
    return [r for r in rows if entity_id is None or (r.metadata_ or {}).get("entity_id") == entity_id]


def reserved_of(product):
    """(on hand, reserved, available) of a product or product id."""
    db.session.expire_all()
    product_id = getattr(product, "id", product)
    inventory = db.session.scalar(select(ProductInventory).where(ProductInventory.product_id == product_id))
    return inventory.quantity, inventory.reserved_quantity, inventory.available_quantity


# --- transitions -------------------------------------------------------------------------

ALLOWED = [("pending", "confirmed"), ("confirmed", "processing"), ("shipped", "delivered")]


@pytest.mark.parametrize("start,target", ALLOWED)
def test_allowed_transition_writes_status_history_and_audit(ctx, start, target):
    bundle, _ = order_with_stock(start)
    actor = staff_actor()
    orders.transition(actor, bundle.order.id, target, "customer called")
    order = reload(Order, bundle.order.id)
    assert order.status == target
    last = history_of(order.id)[-1]
    assert (last.previous_status, last.status, last.changed_by, last.reason) == (start, target, actor.id,
                                                                                  "customer called")
    [row] = audit_rows(f"order.{target}", order.id)
    assert row.user_id == actor.id
    assert row.metadata_["before"] == {"status": start} and row.metadata_["after"] == {"status": target}
    if target == "delivered":
        assert order.delivered_at is not None


@pytest.mark.parametrize("start", STATUSES)
def test_refused_transitions_change_nothing(ctx, start):
    bundle, _ = order_with_stock(start)
    before = len(history_of(bundle.order.id))
    refused_targets = [t for t in ("pending", "confirmed", "processing", "delivered") if (start, t) not in ALLOWED]
    for target in refused_targets:
        with pytest.raises(WorkflowError) as refused:
            orders.transition(staff_actor(), bundle.order.id, target, "")
        assert refused.value.status == 409
        assert f"cannot become {target}" in refused.value.message
    assert reload(Order, bundle.order.id).status == start
    assert len(history_of(bundle.order.id)) == before
    assert not any(audit_rows(f"order.{t}") for t in refused_targets)


@pytest.mark.parametrize("target", ["cancelled", "shipped", "refunded", "lost"])
def test_statuses_with_their_own_workflow_are_refused_as_bad_input(ctx, target):
    bundle, _ = order_with_stock("confirmed")
    with pytest.raises(WorkflowError) as refused:
        orders.transition(staff_actor(), bundle.order.id, target)
    assert refused.value.status == 422
    assert reload(Order, bundle.order.id).status == "confirmed"


def test_unknown_order_is_404(ctx):
    with pytest.raises(WorkflowError) as refused:
        orders.transition(staff_actor(), "no-such-order", "confirmed")
    assert refused.value.status == 404


def test_state_machine_declares_the_lifecycle():
    assert orders.next_statuses("pending") == ("confirmed",)
    assert orders.next_statuses("processing") == ()
    assert orders.CANCELLABLE == ("pending", "confirmed", "processing")
    assert orders.can_ship("confirmed") and orders.can_ship("processing") and not orders.can_ship("pending")
    assert all("refunded" not in targets for targets in orders.TRANSITIONS.values())


def test_record_status_change_is_reusable_and_writes_once(ctx):
    bundle, _ = order_with_stock("delivered")
    actor = staff_actor("finance")
    order = reload(Order, bundle.order.id)
    order.payment_status = "refunded"  # a caller's own pending change survives the lock
    history = orders.record_status_change(actor, order, "refunded", "refund issued")
    db.session.commit()
    assert history.changed_by == actor.id and history.previous_status == "delivered"
    assert orders.record_status_change(actor, reload(Order, order.id), "refunded", "again") is None
    db.session.commit()
    order = reload(Order, order.id)
    assert (order.status, order.payment_status) == ("refunded", "refunded")
    assert [h.status for h in history_of(order.id)].count("refunded") == 1


# --- cancel ------------------------------------------------------------------------------

def test_cancel_pending_order_releases_stock_voids_payment_and_notifies(ctx):
    bundle, products = order_with_stock("pending", quantities=(2, 1))
    actor = staff_actor()
    outcome = orders.cancel(actor, bundle.order.id, "customer changed their mind")
    assert outcome.started and outcome.complete
    assert outcome.done == ["stock_released", "payment_voided", "notified"]

    order = reload(Order, bundle.order.id)
    assert order.status == "cancelled" and order.cancelled_at is not None
    marker = order.metadata_["cancellation"]
    assert marker["stock_released"] and marker["payment_voided"] and marker["notified"]
    assert marker["reason"] == "customer changed their mind"
    last = history_of(order.id)[-1]
    assert (last.previous_status, last.status, last.changed_by) == ("pending", "cancelled", actor.id)

    assert reserved_of(products[0]) == (10, 0, 10)
    assert reserved_of(products[1]) == (10, 0, 10)

    payment = reload(Payment, bundle.payment.id)
    assert payment.status == "cancelled"
    voids = list(db.session.scalars(select(PaymentTransaction).where(
        PaymentTransaction.payment_id == payment.id, PaymentTransaction.transaction_type == "VOID")))
    assert len(voids) == 1 and voids[0].amount == payment.amount and voids[0].status == "SUCCEEDED"
    [log] = db.session.scalars(select(PaymentAuditLog).where(PaymentAuditLog.payment_id == payment.id))
    assert (log.event_type, log.user_id, log.order_id, log.success) == ("PAYMENT_VOIDED", actor.id, order.id, True)

    [mail] = db.session.scalars(select(Notification).where(Notification.user_id == order.user_id))
    assert mail.metadata_["key"] == f"order_cancelled:{order.id}"
    assert order.order_number in mail.subject and "customer changed their mind" in mail.body
    assert mail.status == "PENDING"

    assert len(audit_rows("order.cancelled", order.id)) == 1
    assert len(audit_rows("inventory.changed")) == 2
    assert len(audit_rows("payment.voided", payment.id)) == 1


def test_cancel_again_is_a_no_op_with_a_clear_message(ctx):
    bundle, products = order_with_stock("confirmed", quantities=(3,))
    actor = staff_actor()
    orders.cancel(actor, bundle.order.id, "duplicate order")
    with pytest.raises(WorkflowError) as refused:
        orders.cancel(actor, bundle.order.id, "duplicate order")
    assert refused.value.status == 409 and "Nothing to do" in refused.value.message
    assert reserved_of(products[0]) == (10, 0, 10)
    assert len(audit_rows("inventory.changed")) == 1
    assert len(history_of(bundle.order.id)) == 3  # pending, confirmed, cancelled
    assert db.session.query(Notification).count() == 1


def test_cancel_with_captured_payment_leaves_it_for_a_refund(ctx):
    bundle, _ = order_with_stock("processing")
    outcome = orders.cancel(staff_actor(), bundle.order.id, "out of stock at the warehouse")
    assert outcome.complete and "refund" in outcome.payment_outcome
    assert reload(Payment, bundle.payment.id).status == "succeeded"
    assert db.session.query(PaymentTransaction).filter_by(transaction_type="VOID").count() == 0


@pytest.mark.parametrize("status", ["shipped", "delivered", "refunded"])
def test_cancel_refused_once_shipped(ctx, status):
    bundle, products = order_with_stock(status, reserved=False)
    with pytest.raises(WorkflowError) as refused:
        orders.cancel(staff_actor(), bundle.order.id, "too late")
    assert refused.value.status == 409
    assert reload(Order, bundle.order.id).status == status


def test_cancel_needs_a_reason(ctx):
    bundle, products = order_with_stock("pending")
    with pytest.raises(WorkflowError) as refused:
        orders.cancel(staff_actor(), bundle.order.id, "   ")
    assert refused.value.status == 422
    assert reload(Order, bundle.order.id).status == "pending"
    assert reserved_of(products[0]) == (10, 2, 8)


@pytest.mark.parametrize("down,step", [("payment", "payment_voided"), ("product", "stock_released"),
                                        ("notification", "notified")])
def test_cancel_interrupted_by_a_database_then_retried_does_each_step_once(app, database_urls, down, step):
    with app.app_context():
        bundle, products = order_with_stock("pending", quantities=(2,))
        order_id, payment_id, product = bundle.order.id, bundle.payment.id, products[0].id
        actor = staff_actor()

    with app_with_unreachable(database_urls, down) as broken, broken.app_context():
        outcome = orders.cancel(actor, order_id, "customer asked")
        db.session.remove()
    assert outcome.started and list(outcome.failed) == [step]
    assert f"{down}_db unavailable" in outcome.message and "again" in outcome.message

    with app.app_context():
        order = reload(Order, order_id)
        assert order.status == "cancelled"
        assert orders.unfinished_steps(order) == [step]
        # The other steps went ahead.
        assert reserved_of(product) == ((10, 2, 8) if step == "stock_released" else (10, 0, 10))

        retry = orders.cancel(actor, order_id, "")
        assert not retry.started and retry.complete and retry.done == [step]
        order = reload(Order, order_id)
        assert orders.unfinished_steps(order) == []
        assert reserved_of(product) == (10, 0, 10)
        assert len(audit_rows("inventory.changed")) == 1
        assert reload(Payment, payment_id).status == "cancelled"
        assert db.session.query(PaymentTransaction).filter_by(transaction_type="VOID").count() == 1
        assert db.session.query(Notification).count() == 1
        assert len(audit_rows("order.cancelled", order_id)) == 1
        db.session.remove()


def test_cancel_when_stock_is_short_leaves_that_step_to_retry(ctx):
    bundle, products = order_with_stock("pending", quantities=(2,), reserved=False)
    outcome = orders.cancel(staff_actor(), bundle.order.id, "fraud check failed")
    assert list(outcome.failed) == ["stock_released"]
    assert reserved_of(products[0]) == (10, 0, 10)  # nothing went below zero
    assert outcome.done == ["payment_voided", "notified"]


@pytest.mark.postgres_only
def test_concurrent_cancels_release_stock_once(app):
    with app.app_context():
        bundle, products = order_with_stock("pending", quantities=(4,))
        order_id, product = bundle.order.id, products[0].id
        actor = staff_actor()
    results, barrier = [], threading.Barrier(3)

    def run():
        with app.app_context():
            barrier.wait()
            try:
                results.append(orders.cancel(actor, order_id, "double click"))
            except WorkflowError as exc:
                results.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with app.app_context():
        assert reserved_of(product) == (10, 0, 10)
        assert len(audit_rows("inventory.changed")) == 1
        assert len(audit_rows("order.cancelled", order_id)) == 1
        assert db.session.query(PaymentTransaction).filter_by(transaction_type="VOID").count() == 1
        db.session.remove()
    assert sum(1 for r in results if isinstance(r, orders.CancelOutcome) and r.started) == 1


# --- mark shipped ---------------------------------------------------------------------------

@pytest.fixture
def carriers(ctx):
    options = ensure_shipping_options()
    db.session.commit()
    return options


@pytest.mark.parametrize("start", ["processing", "confirmed"])
def test_mark_shipped_creates_shipment_and_updates_order(carriers, start):
    bundle, _ = order_with_stock(start, reserved=False)
    actor = staff_actor("warehouse")
    shipment = orders.mark_shipped(actor, bundle.order.id, "ups", "express", "1Z999AA10123456784",
                                   weight=Decimal("1.50"))

    shipment = reload(Shipment, shipment.id)
    assert shipment.order_id == bundle.order.id and shipment.carrier_id == carriers.carriers["ups"].id
    assert shipment.tracking_number == "1Z999AA10123456784" and shipment.status == "in_transit"
    assert shipment.shipped_at is not None and shipment.weight == Decimal("1.50")
    assert isinstance(shipment.cost, Decimal) and shipment.cost > 0
    assert shipment.destination_address["city"] == "Springfield"
    [event] = db.session.scalars(select(ShipmentTracking).where(ShipmentTracking.shipment_id == shipment.id))
    assert event.status == "in_transit" and "1Z999AA10123456784" in event.description

    order = reload(Order, bundle.order.id)
    assert order.status == "shipped" and order.tracking_number == "1Z999AA10123456784"
    assert order.shipped_at == shipment.shipped_at
    last = history_of(order.id)[-1]
    assert (last.previous_status, last.status, last.changed_by) == (start, "shipped", actor.id)
    assert len(audit_rows("order.shipped", order.id)) == 1
    assert len(audit_rows("shipment.created", shipment.id)) == 1
    [mail] = db.session.scalars(select(Notification).where(Notification.user_id == order.user_id))
    assert mail.metadata_["key"] == f"order_shipped:{order.id}" and "1Z999AA10123456784" in mail.body


@pytest.mark.parametrize("start", ["pending", "shipped", "delivered", "cancelled"])
def test_mark_shipped_refused_from_other_statuses(carriers, start):
    bundle, _ = order_with_stock(start, reserved=False)
    with pytest.raises(WorkflowError) as refused:
        orders.mark_shipped(staff_actor(), bundle.order.id, "ups", "standard", "TRACK-00001")
    assert refused.value.status == 409
    assert db.session.query(Shipment).filter_by(tracking_number="TRACK-00001").count() == 0
    assert reload(Order, bundle.order.id).status == start


def test_duplicate_tracking_number_is_refused(carriers):
    first, _ = order_with_stock("processing", reserved=False)
    second, _ = order_with_stock("processing", reserved=False)
    actor = staff_actor()
    orders.mark_shipped(actor, first.order.id, "dhl", "standard", "JD0146000012345")
    with pytest.raises(WorkflowError) as refused:
        orders.mark_shipped(actor, second.order.id, "dhl", "standard", "JD0146000012345")
    assert refused.value.status == 409 and "already used" in refused.value.message
    assert reload(Order, second.order.id).status == "processing"
    assert db.session.query(Shipment).count() == 1


@pytest.mark.parametrize("carrier,service,tracking", [
    ("ups", "standard", "x"), ("ups", "standard", "has spaces 123"), ("nope", "standard", "TRACK-12345"),
    ("ups", "teleport", "TRACK-12345")])
def test_mark_shipped_bad_input_is_422(carriers, carrier, service, tracking):
    bundle, _ = order_with_stock("processing", reserved=False)
    with pytest.raises(WorkflowError) as refused:
        orders.mark_shipped(staff_actor(), bundle.order.id, carrier, service, tracking)
    assert refused.value.status == 422
    assert db.session.query(Shipment).count() == 0


def test_mark_shipped_retry_reuses_the_shipment_already_made(carriers):
    """shipping_db committed but order_db did not: running it again finishes the order."""
    bundle, _ = order_with_stock("processing", reserved=False)
    db.session.add(Shipment(order_id=bundle.order.id, carrier_id=carriers.carriers["usps"].id,
                            tracking_number="9400100000000000000000", status="in_transit", weight=Decimal("1.20"),
                            cost=Decimal("5.60"), origin_address=orders.SHIPS_FROM, destination_address={},
                            shipped_at=utcnow()))
    db.session.commit()
    orders.mark_shipped(staff_actor(), bundle.order.id, "usps", "standard", "9400100000000000000000")
    assert db.session.query(Shipment).count() == 1
    assert reload(Order, bundle.order.id).status == "shipped"


# --- notes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("internal", [True, False])
def test_add_note(ctx, internal):
    bundle, _ = order_with_stock("pending", reserved=False)
    actor = staff_actor()
    note = orders.add_note(actor, bundle.order.id, "  Customer asked for gift wrap.  ", is_internal=internal)
    note = reload(OrderNote, note.id)
    assert (note.note, note.created_by, note.is_internal) == ("Customer asked for gift wrap.", actor.id, internal)
    [row] = audit_rows("order.note_added", bundle.order.id)
    assert row.metadata_["after"]["is_internal"] is internal


@pytest.mark.parametrize("text", ["", "   ", "x" * 2001])
def test_bad_note_is_refused(ctx, text):
    bundle, _ = order_with_stock("pending", reserved=False)
    with pytest.raises(WorkflowError) as refused:
        orders.add_note(staff_actor(), bundle.order.id, text)
    assert refused.value.status == 422
    assert db.session.query(OrderNote).count() == 0
