"""Demo data that reads true: orders come from customers who had joined, history names
the customer or the order service (never a staff member who did nothing), orders arrive
at a steady pace (no spike in the revenue chart), and every returned item states its
condition (the return service requires one with the request). Both the rich and the bulk part."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select

from console.demo.seed import DEMO_NOW, seed_demo
from console.extensions import db
from console.models.auth import User
from console.models.cart import Cart
from console.models.order import Order, OrderStatusHistory
from console.models.returns import ReturnItem, ReturnRequest
from console.models.user import UserWishlistItem
from console.workflows.returns import CONDITIONS
from console.permissions import STAFF_ROLES
from console.screens.dashboard import named_period, sales

RECEIVED = {"received", "processed", "closed"}


@pytest.fixture(params=["rich", "bulk"])
def seeded(request, ctx, monkeypatch):
    """The rich part alone (builders), or a few rich orders and the rest in bulk."""
    if request.param == "bulk":
        from console.demo import bulk, seed

        monkeypatch.setattr(seed, "RICH_CUSTOMERS", 8)
        monkeypatch.setattr(seed, "RICH_ORDERS", 30)
        monkeypatch.setattr(bulk, "BATCH_ORDERS", 400)
        seed_demo(customers=120, orders=2500, seed=4)
    else:
        seed_demo(customers=30, orders=160, seed=4)
    return request.param


def all_of(model):
    return db.session.scalars(select(model)).all()


def test_no_order_before_its_customer_joined(seeded):
    joined = {u.id: u.created_at for u in all_of(User)}
    orders = all_of(Order)
    assert orders and all(order.created_at >= joined[order.user_id] for order in orders)
    # the rest of a customer's traces too
    for row in all_of(Cart) + all_of(UserWishlistItem):
        if row.user_id:
            assert row.created_at >= joined[row.user_id]
    # and older customers still place most orders: some orders are months old
    assert min(order.created_at for order in orders) < DEMO_NOW - timedelta(days=120)


def test_history_names_the_customer_or_the_order_service(seeded):
    """The customer placed the order (and asked to cancel it); the order service took
    every other seeded step. Only the refunds workflow, run by a real staff member for
    the refunds screen's examples, names staff (when its refund completes an order)."""
    staff = set(db.session.scalars(select(User.id).where(User.email.in_(
        [f"{role}@example.com" for role in STAFF_ROLES]))))
    owner = {o.id: o.user_id for o in all_of(Order)}
    actors = Counter()
    for row in all_of(OrderStatusHistory):
        if row.status in ("pending", "cancelled"):
            assert row.changed_by == owner[row.order_id], (row.status, row.changed_by)
            actors["customer"] += 1
        elif row.changed_by in staff:
            assert row.status == "refunded"
        else:
            assert row.changed_by == "system", (row.status, row.changed_by)
            actors["order service"] += 1
    assert actors["customer"] and actors["order service"]


def test_order_page_says_customer_and_order_service(app, auth, client):
    with app.app_context():
        seed_demo(customers=6, orders=20, seed=2)
        number = db.session.scalar(select(Order.order_number).where(Order.status == "delivered").limit(1))
    auth.login("support")
    html = client.get(f"/orders/{number}").get_data(as_text=True)
    timeline = html[html.index('id="order-timeline"'):]
    # Each status change says who made it: the customer or the order service (staff
    # appear only where they acted: notes, return steps, refunds).
    steps = [entry for entry in timeline.split("<li")[1:] if ">Status " in entry]
    assert steps and all("by customer" in entry or "by order service" in entry for entry in steps)
    assert any("by customer" in entry for entry in steps) and any("by order service" in entry for entry in steps)


def test_revenue_is_spread_over_the_days(ctx, monkeypatch):
    """Orders come at a steady pace: no day of the dashboard's revenue chart towers over
    the others (a generator that dates open orders in the last days makes a spike)."""
    from console.demo import bulk, seed

    monkeypatch.setattr(seed, "RICH_CUSTOMERS", 8)
    monkeypatch.setattr(seed, "RICH_ORDERS", 30)
    seed_demo(customers=200, orders=7000, seed=9)
    [series] = sales(DEMO_NOW, named_period("30d", DEMO_NOW)).series
    full_days = series.days[:-1]  # today is half over
    counts = [d.orders for d in full_days]
    amounts = [d.amount for d in full_days]
    assert min(counts) > 0
    assert max(counts) <= 2 * statistics.median(counts), counts
    assert max(amounts) <= 2 * statistics.median(amounts), amounts
    # the last few days are ordinary days
    assert sum(counts[-4:]) / 4 <= 1.5 * statistics.mean(counts)
    # and statuses follow from age: open orders are the last day's, delivered ones older
    by_status = defaultdict(list)
    for order in all_of(Order):
        by_status[order.status].append(DEMO_NOW - order.created_at)
    assert max(by_status["processing"]) <= timedelta(days=1)
    assert max(by_status["shipped"]) <= timedelta(days=4)
    assert min(by_status["delivered"]) >= timedelta(days=4)
    assert len(by_status["delivered"]) > 0.7 * 7000


def test_every_returned_item_states_its_condition(seeded):
    requests = {r.id: r for r in all_of(ReturnRequest)}
    assert {r.status for r in requests.values()} & RECEIVED and {r.status for r in requests.values()} - RECEIVED
    for item in all_of(ReturnItem):
        assert item.condition in CONDITIONS, (requests[item.return_request_id].status, item.condition)
