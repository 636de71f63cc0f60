"""The return state machine, quantities, restocking once, and processing."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.notification import Notification
from console.models.order import Order
from console.models.payment import Payment, PaymentRefund
from console.models.product import Product, ProductInventory, ProductVariant
from console.models.returns import (ReturnAuthorization, ReturnItem, ReturnRefund, ReturnRequest,
                                    ReturnStatusHistory, ReturnTracking)
from console.workflows import WorkflowError
from console.workflows import returns
from tests.returns_helpers import LINES, paid_order

pytestmark = pytest.mark.usefixtures("ctx")


def new_return(data, quantities=None, **options):
    quantities = quantities or {data.items[0].id: 1}
    return returns.create_return(data.actor, data.order.id, list(quantities.items()),
                                 options.pop("reason", "changed_mind"), **options)


def history(request_id):
    return [(h.previous_status, h.status) for h in db.session.scalars(
        select(ReturnStatusHistory).where(ReturnStatusHistory.return_request_id == request_id)
        .order_by(ReturnStatusHistory.created_at, ReturnStatusHistory.id))]


def audit_actions(entity_id):
    # In the order they were written, except that two entries of one step (the tracking
    # recorded and the move it makes) may carry the same time: auth_db keeps times to the
    # millisecond, and entries within one are in no particular order. Those are sorted.
    rows = [row for row in db.session.scalars(select(SecurityAuditLog).order_by(SecurityAuditLog.created_at))
            if (row.metadata_ or {}).get("entity_id") == entity_id]
    return [row.action for row in sorted(rows, key=lambda row: (row.created_at, row.action))]


def stock_of(product_id):
    db.session.expire_all()
    product = db.session.get(Product, product_id)
    inventory = db.session.scalar(select(ProductInventory).where(ProductInventory.product_id == product_id))
    return product.stock_quantity, inventory.quantity, inventory.available_quantity


def test_create_writes_request_items_history_and_audit():
    data = paid_order()
    mug, plate = data.items
    request = new_return(data, {mug.id: 2, plate.id: 1}, notes="Box was open", refund_method="original_payment")
    db.session.expire_all()
    request = db.session.get(ReturnRequest, request.id)
    assert request.status == "pending"
    assert request.rma_number.startswith("RMA-") and len(request.rma_number) == len("RMA-20250101-ABCDEF")
    # Each item with its share of the order's 8% tax: 40.00 + 3.20 and 15.00 + 1.20.
    assert request.refund_amount == Decimal("59.40") and request.currency == "USD"
    assert request.user_id == data.customer.id and request.return_notes == "Box was open"
    items = {i.order_item_id: i for i in db.session.scalars(select(ReturnItem))}
    assert items[mug.id].quantity == 2 and items[mug.id].refund_amount == Decimal("43.20")
    assert items[mug.id].product_id == mug.product_id and items[mug.id].product_sku == mug.product_sku
    assert items[plate.id].unit_price == Decimal("15.00")
    assert history(request.id) == [(None, "pending")]
    assert audit_actions(request.id) == ["return.created"]


@pytest.mark.parametrize("status", ["pending", "confirmed", "processing", "cancelled"])
def test_create_refused_unless_shipped_or_delivered(status):
    data = paid_order(status=status)
    with pytest.raises(WorkflowError) as refused:
        new_return(data)
    assert refused.value.status == 409 and "only shipped or delivered" in refused.value.message
    assert db.session.scalar(select(func.count()).select_from(ReturnRequest)) == 0


def test_create_allowed_for_shipped_orders():
    assert new_return(paid_order(status="shipped")).status == "pending"


def test_quantity_beyond_ordered_refused_across_returns_and_freed_by_rejection():
    data = paid_order()
    mug = data.items[0]  # 2 ordered
    with pytest.raises(WorkflowError) as refused:
        new_return(data, {mug.id: 3})
    assert refused.value.status == 422 and "only 2 can still be returned" in refused.value.message
    first = new_return(data, {mug.id: 1})
    second = new_return(data, {mug.id: 1})
    with pytest.raises(WorkflowError) as refused:
        new_return(data, {mug.id: 1})
    assert "only 0 can still be returned" in refused.value.message and "2 already in other returns" in refused.value.message
    returns.reject(data.actor, second.id, "Outside the return window")
    third = new_return(data, {mug.id: 1})  # the rejected return no longer holds its quantity
    assert third.status == "pending" and first.status == "pending"
    assert returns.returnable_quantities(data.order.id, data.items) == {mug.id: 0, data.items[1].id: 1}


def test_create_refuses_bad_input():
    data = paid_order()
    for items, reason, message in (([], "changed_mind", "at least one item"),
                                   ([(data.items[0].id, 0)], "changed_mind", "at least one item"),
                                   ([("not-an-item", 1)], "changed_mind", "not part of order"),
                                   ([(data.items[0].id, -1)], "changed_mind", "negative"),
                                   ([(data.items[0].id, 1)], "bored", "Choose a reason")):
        with pytest.raises(WorkflowError) as refused:
            returns.create_return(data.actor, data.order.id, items, reason)
        assert refused.value.status == 422 and message in refused.value.message


def test_full_happy_path_sets_timestamps_history_audit_and_emails():
    data = paid_order()
    request = new_return(data, {data.items[0].id: 2})
    authorization = returns.approve(data.actor, request.id, instructions="Use the prepaid label", expires_in_days=14)
    assert authorization.rma_number == request.rma_number
    assert authorization.return_address["city"] == returns.DEFAULT_RETURN_ADDRESS["city"]
    returns.record_tracking(data.actor, request.id, "picked up", "Springfield", "Handed to the carrier",
                            tracking_number="1Z999AA10123456784")
    returns.record_tracking(data.actor, request.id, "delivered", "Warehouse")
    item = db.session.scalar(select(ReturnItem).where(ReturnItem.return_request_id == request.id))
    returns.receive(data.actor, request.id, {item.id: "new"})
    outcome = returns.process(data.actor, request.id)
    assert outcome.refund.status == "completed" and not outcome.needs_attention
    returns.close(data.actor, request.id)

    db.session.expire_all()
    request = db.session.get(ReturnRequest, request.id)
    assert request.status == "closed"
    for column in ("approved_at", "received_at", "processed_at", "closed_at"):
        assert getattr(request, column) is not None, column
    assert request.rejected_at is None
    assert history(request.id) == [(None, "pending"), ("pending", "approved"), ("approved", "in_transit"),
                                   ("in_transit", "received"), ("received", "processed"), ("processed", "closed")]
    assert all(h.changed_by == data.actor.id for h in db.session.scalars(select(ReturnStatusHistory)))
    actions = audit_actions(request.id)
    assert actions in (["return.created", "return.approved", "return.tracking_recorded", "return.in_transit",
                        "return.tracking_recorded", "return.received", "return.processed", "return.closed"],
                       # the first tracking and the move it made, written in the same millisecond
                       ["return.created", "return.approved", "return.in_transit", "return.tracking_recorded",
                        "return.tracking_recorded", "return.received", "return.processed", "return.closed"])
    assert db.session.scalar(select(func.count()).select_from(ReturnTracking)) == 2
    assert db.session.scalar(select(ReturnAuthorization.tracking_number)) == "1Z999AA10123456784"
    templates = sorted(n.metadata_["template"] for n in db.session.scalars(select(Notification)))
    assert templates == ["return_approved", "return_closed", "return_in_transit", "return_processed",
                         "return_received"]
    assert all(n.user_id == data.customer.id for n in db.session.scalars(select(Notification)))
    refund = db.session.scalar(select(ReturnRefund))
    assert refund.amount == Decimal("43.20") and refund.payment_id == data.payment.id


ALL = {"approve", "reject", "track", "receive", "process", "close"}
ALLOWED = {"pending": {"approve", "reject"}, "approved": {"track", "receive"}, "in_transit": {"track", "receive"},
           "received": {"process"}, "processed": {"close"}, "rejected": set(), "closed": set()}


def _reach(data, status):
    request = new_return(data, {data.items[1].id: 1})
    path = {"pending": [], "approved": ["approve"], "rejected": ["reject"], "in_transit": ["approve", "track"],
            "received": ["approve", "receive"], "processed": ["approve", "receive", "process"],
            "closed": ["approve", "receive", "process", "close"]}[status]
    for action in path:
        _act(data, request.id, action)
    assert db.session.get(ReturnRequest, request.id, populate_existing=True).status == status
    return request


def _act(data, return_id, action):
    item = db.session.scalar(select(ReturnItem).where(ReturnItem.return_request_id == return_id))
    if action == "approve":
        return returns.approve(data.actor, return_id)
    if action == "reject":
        return returns.reject(data.actor, return_id, "Not eligible")
    if action == "track":
        return returns.record_tracking(data.actor, return_id, "in transit")
    if action == "receive":
        return returns.receive(data.actor, return_id, {item.id: "used"})
    if action == "process":
        return returns.process(data.actor, return_id)
    return returns.close(data.actor, return_id)


@pytest.mark.parametrize("status", list(ALLOWED))
def test_every_transition_allowed_or_refused(status):
    for action in sorted(ALL):
        data = paid_order()
        request = _reach(data, status)
        if action in ALLOWED[status]:
            _act(data, request.id, action)
        else:
            before = history(request.id)
            with pytest.raises(WorkflowError) as refused:
                _act(data, request.id, action)
            assert refused.value.status == 409, (status, action)
            assert request.rma_number in refused.value.message
            assert history(request.id) == before  # nothing written


def test_approve_goes_straight_to_received_without_tracking():
    data = paid_order()
    request = _reach(data, "received")
    assert history(request.id)[-1] == ("approved", "received")


def test_reject_needs_a_reason_and_approve_a_full_address():
    data = paid_order()
    request = new_return(data)
    with pytest.raises(WorkflowError) as refused:
        returns.reject(data.actor, request.id, "  ")
    assert refused.value.status == 422
    with pytest.raises(WorkflowError) as refused:
        returns.approve(data.actor, request.id, {"address_line1": "1 Road", "city": "", "postal_code": "1",
                                                  "country": "US"})
    assert refused.value.status == 422 and "city" in refused.value.message
    assert db.session.get(ReturnRequest, request.id, populate_existing=True).status == "pending"
    returns.reject(data.actor, request.id, "Worn")
    request = db.session.get(ReturnRequest, request.id, populate_existing=True)
    assert request.status == "rejected" and request.rejected_at is not None
    rejected = db.session.scalar(select(Notification))
    assert rejected.metadata_["template"] == "return_rejected" and "Worn" in rejected.body


def test_receive_twice_restocks_once_and_skips_damaged():
    data = paid_order(stock=10)
    mug, plate = data.items
    request = new_return(data, {mug.id: 2, plate.id: 1})
    returns.approve(data.actor, request.id)
    items = {i.order_item_id: i.id for i in db.session.scalars(select(ReturnItem))}
    conditions = {items[mug.id]: "new", items[plate.id]: "damaged"}
    outcome = returns.receive(data.actor, request.id, conditions)
    assert outcome.restocked == [items[mug.id]] and not outcome.pending
    with pytest.raises(WorkflowError) as refused:
        returns.receive(data.actor, request.id, conditions)
    assert refused.value.status == 409 and "already received" in refused.value.message
    assert stock_of(mug.product_id) == (12, 12, 12)
    assert stock_of(plate.product_id) == (10, 10, 10)
    request = db.session.get(ReturnRequest, request.id, populate_existing=True)
    assert request.metadata_["restock"] == {items[mug.id]: "done"}
    conditions_now = {i.id: i.condition for i in db.session.scalars(select(ReturnItem))}
    assert conditions_now == {items[mug.id]: "new", items[plate.id]: "damaged"}


def test_receive_requires_a_condition_for_every_item():
    data = paid_order()
    request = new_return(data, {data.items[0].id: 1, data.items[1].id: 1})
    returns.approve(data.actor, request.id)
    first = db.session.scalars(select(ReturnItem)).first()
    with pytest.raises(WorkflowError) as refused:
        returns.receive(data.actor, request.id, {first.id: "new"})
    assert refused.value.status == 422
    with pytest.raises(WorkflowError):
        returns.receive(data.actor, request.id, {first.id: "shiny"})
    assert db.session.get(ReturnRequest, request.id, populate_existing=True).status == "approved"


def test_receive_keeps_the_variant_in_step():
    from console.demo.builders import make_variant

    data = paid_order(stock=10)
    product = db.session.get(Product, data.items[0].product_id)
    variant = make_variant(product, "Large", {"size": "L"}, stock=4)
    data.items[0].variant_id = variant.id
    db.session.commit()
    request = new_return(data, {data.items[0].id: 2})
    returns.approve(data.actor, request.id)
    item = db.session.scalar(select(ReturnItem))
    assert item.variant_id == variant.id
    returns.receive(data.actor, request.id, {item.id: "used"})
    db.session.expire_all()
    assert db.session.get(ProductVariant, variant.id).stock_quantity == 6
    assert stock_of(product.id) == (12, 12, 12)


def test_restock_interrupted_by_product_db_completes_on_second_receive(monkeypatch):
    from console.lookups import DatabaseUnavailable

    data = paid_order(stock=10)
    mug, plate = data.items
    request = new_return(data, {mug.id: 1, plate.id: 1})
    returns.approve(data.actor, request.id)
    items = {i.order_item_id: i.id for i in db.session.scalars(select(ReturnItem))}
    real = returns.change_stock
    calls = []

    def product_db_down_for_the_plate(actor, product_id, **kw):
        calls.append(product_id)
        if product_id == plate.product_id:
            raise DatabaseUnavailable("product")
        return real(actor, product_id, **kw)

    monkeypatch.setattr(returns, "change_stock", product_db_down_for_the_plate)
    outcome = returns.receive(data.actor, request.id, {items[mug.id]: "new", items[plate.id]: "new"})
    assert outcome.error == "product_db is unavailable" and items[plate.id] in outcome.pending
    assert outcome.request.status == "received"
    assert stock_of(plate.product_id)[0] == 10
    monkeypatch.setattr(returns, "change_stock", real)
    again = returns.receive(data.actor, request.id, {})
    assert set(again.restocked) == set(outcome.pending) and not again.error
    assert stock_of(mug.product_id)[0] == 11 and stock_of(plate.product_id)[0] == 11
    with pytest.raises(WorkflowError):
        returns.receive(data.actor, request.id, {})


def test_process_lowers_but_never_raises_and_refunds_damaged_items_by_default():
    data = paid_order()
    mug, plate = data.items
    request = new_return(data, {mug.id: 2, plate.id: 1})
    returns.approve(data.actor, request.id)
    items = {i.order_item_id: i.id for i in db.session.scalars(select(ReturnItem))}
    returns.receive(data.actor, request.id, {items[mug.id]: "new", items[plate.id]: "damaged"})
    with pytest.raises(WorkflowError) as refused:
        returns.process(data.actor, request.id, {items[mug.id]: "43.21"})
    assert refused.value.status == 422 and "not raised" in refused.value.message
    assert db.session.scalar(select(func.count()).select_from(PaymentRefund)) == 0
    outcome = returns.process(data.actor, request.id, {items[plate.id]: "5.00"})
    assert outcome.refund.amount == Decimal("48.20")
    db.session.expire_all()
    amounts = {i.order_item_id: i.refund_amount for i in db.session.scalars(select(ReturnItem))}
    assert amounts == {mug.id: Decimal("43.20"), plate.id: Decimal("5.00")}
    request = db.session.get(ReturnRequest, request.id)
    assert request.status == "processed" and request.refund_amount == Decimal("48.20")
    rr = db.session.scalar(select(ReturnRefund))
    assert (rr.amount, rr.status, rr.payment_id) == (Decimal("48.20"), "completed", data.payment.id)
    assert outcome.refund.metadata_["return_refund_id"] == rr.id


def test_process_twice_refunds_once():
    data = paid_order()
    request = _reach(data, "received")
    returns.process(data.actor, request.id)
    with pytest.raises(WorkflowError) as refused:
        returns.process(data.actor, request.id)
    assert refused.value.status == 409
    assert db.session.scalar(select(func.count()).select_from(PaymentRefund)) == 1


def test_store_credit_and_exchange_move_no_money():
    data = paid_order()
    credit = new_return(data, {data.items[0].id: 1}, refund_method="store_credit")
    exchange = new_return(data, {data.items[1].id: 1}, refund_method="exchange")
    for request in (credit, exchange):
        returns.approve(data.actor, request.id)
        item = db.session.scalar(select(ReturnItem).where(ReturnItem.return_request_id == request.id))
        returns.receive(data.actor, request.id, {item.id: "new"})
        returns.process(data.actor, request.id)
    assert db.session.scalar(select(func.count()).select_from(PaymentRefund)) == 0
    refunds = list(db.session.scalars(select(ReturnRefund)))
    assert [(r.refund_method, r.amount, r.status) for r in refunds] == [("store_credit", Decimal("21.60"), "pending")]
    assert db.session.get(ReturnRequest, exchange.id).status == "processed"
    assert db.session.get(Payment, data.payment.id).status == "succeeded"
    assert db.session.get(Order, data.order.id).status == "delivered"


def test_find_return_by_id_or_rma_number():
    data = paid_order()
    request = new_return(data)
    assert returns.find_return(request.id).id == request.id
    assert returns.find_return(request.rma_number.lower()).id == request.id
    assert returns.find_return("RMA-NOPE") is None


# --- refunds include each item's tax share; shipping when the whole order comes back --------

def _received(data, quantities, reason="changed_mind"):
    request = new_return(data, quantities, reason=reason)
    returns.approve(data.actor, request.id)
    items = db.session.scalars(select(ReturnItem).where(ReturnItem.return_request_id == request.id))
    returns.receive(data.actor, request.id, {item.id: "new" for item in items})
    return request


# Three lines whose tax shares do not divide evenly: 8% of 10.01 x 3 + 19.99 + 0.33 x 7.
ODD_LINES = (("CUP-A", "Cup", "10.01", 3), ("BOWL-B", "Bowl", "19.99", 1), ("PIN-C", "Pin", "0.33", 7))


@pytest.mark.parametrize(("lines", "shipping", "discount"), [
    (None, "5.00", "0.00"), (ODD_LINES, "4.99", "0.00"), (ODD_LINES, "0.00", "3.33"), (ODD_LINES, "7.50", "1.00"),
])
def test_a_full_return_of_a_taxed_shipped_order_refunds_exactly_the_payment(lines, shipping, discount):
    data = paid_order(status="shipped", lines=lines or LINES, shipping=shipping, discount=discount)
    order = db.session.get(Order, data.order.id)
    assert order.tax_amount > 0 and data.payment.amount == order.total_amount
    request = _received(data, {item.id: item.quantity for item in data.items})
    assert returns.shipping_offer(request, order) == Decimal(shipping) or Decimal(shipping) == 0
    outcome = returns.process(data.actor, request.id, include_shipping=Decimal(shipping) > 0)
    assert outcome.refund.amount == data.payment.amount
    payment = db.session.get(Payment, data.payment.id, populate_existing=True)
    assert payment.status == "refunded"
    assert db.session.get(Order, order.id, populate_existing=True).payment_status == "refunded"


def test_returning_a_line_unit_by_unit_refunds_exactly_what_the_line_cost():
    data = paid_order(lines=ODD_LINES, shipping="4.99")
    cup, bowl, pin = data.items
    order = db.session.get(Order, data.order.id)
    paid = returns.paid_per_line(order, data.items)
    assert sum(paid.values()) == order.total_amount - order.shipping_amount
    refunded = Decimal("0")
    for _ in range(pin.quantity):
        request = _received(data, {pin.id: 1})
        refunded += returns.process(data.actor, request.id).refund.amount
    assert refunded == paid[pin.id]
    # Neither the pins (not the shop's fault, not the whole order) nor a later part may add the shipping.
    request = _received(data, {cup.id: 3})
    assert returns.shipping_offer(request, order) is None
    with pytest.raises(WorkflowError) as refused:
        returns.process(data.actor, request.id, include_shipping=True)
    assert refused.value.status == 422 and "whole order" in refused.value.message
    assert returns.process(data.actor, request.id).refund.amount == paid[cup.id]
    # The last return completes the order: it may add the shipping, and everything adds up to the payment.
    last = _received(data, {bowl.id: 1})
    assert returns.shipping_offer(last, order) == Decimal("4.99")
    returns.process(data.actor, last.id, include_shipping=True)
    total = sum(db.session.scalars(select(PaymentRefund.amount)), Decimal("0"))
    assert total == data.payment.amount


def test_shipping_is_offered_for_the_shops_fault_once_per_order():
    data = paid_order(shipping="6.00")
    mug, plate = data.items
    order = db.session.get(Order, data.order.id)
    first = _received(data, {plate.id: 1}, reason="wrong_item")
    assert returns.shipping_offer(first, order) == Decimal("6.00")
    outcome = returns.process(data.actor, first.id, include_shipping=True)
    assert outcome.refund.amount == Decimal("16.20") + Decimal("6.00")
    assert db.session.get(ReturnRequest, first.id, populate_existing=True).metadata_["shipping_refund"] == "6.00"
    second = _received(data, {mug.id: 2}, reason="defective")
    assert returns.shipping_offer(second, order) is None
    with pytest.raises(WorkflowError):
        returns.process(data.actor, second.id, include_shipping=True)
    assert returns.process(data.actor, second.id).refund.amount == Decimal("43.20")
    assert sum(db.session.scalars(select(PaymentRefund.amount)), Decimal("0")) == data.payment.amount


@pytest.mark.parametrize("typed", ["1,0", "1e2", "+1", "٣", "NaN", "1e309", "99999999999999999999999999999", "1.234"])
def test_process_refuses_amounts_that_are_not_plain_money(typed):
    data = paid_order()
    request = _received(data, {data.items[0].id: 1})
    item = db.session.scalar(select(ReturnItem).where(ReturnItem.return_request_id == request.id))
    with pytest.raises(WorkflowError) as refused:
        returns.process(data.actor, request.id, {item.id: typed})
    assert refused.value.status == 422
    assert "like 12.50" in refused.value.message or "two decimals" in refused.value.message
    assert db.session.scalar(select(func.count()).select_from(PaymentRefund)) == 0
