"""seed-demo: every kind of record in every status, totals that agree across the
databases, the same data for the same seed, and a guard against mixing demo data
into a database that already has users."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.demo.seed import (
    DEMO_STAFF_PASSWORD, ORDER_STATUSES, RETURN_STATUSES, delete_all_rows, seed_demo, total_steps,
)
from console.email_templates import BY_NAME as SHIPPED_TEMPLATES
from console.extensions import db
from console.models.auth import Device, LoginHistory, Role, User, UserRole, UserSession
from console.models.cart import Cart, CartItem
from console.models.discount import Coupon, CouponUsage, Promotion, PromotionRule, PromotionUsage
from console.models.notification import EmailTemplate, Notification, NotificationLog
from console.models.order import Order, OrderItem, OrderNote, OrderShippingAddress, OrderStatusHistory
from console.models.payment import Payment, PaymentMethod, PaymentRefund, PaymentTransaction
from console.models.product import (
    Category, Product, ProductImage, ProductInventory, ProductQuestion, ProductReview, ProductTag, ProductVariant,
)
from console.models.returns import ReturnAuthorization, ReturnItem, ReturnRefund, ReturnRequest, ReturnStatusHistory
from console.models.shipping import Carrier, Shipment, ShipmentTracking, ShippingMethod, ShippingRate, ShippingZone
from console.models.user import UserAddress, UserPaymentMethod, UserProfile
from console.permissions import STAFF_ROLES
from console.workflows import refunds
from console.workflows.inventory import LOW_STOCK
from console.workflows.signin import password_matches
from tests.second_app import UNOPENABLE_SQLITE, app_with_unreachable


@pytest.fixture
def seeded(ctx):
    return seed_demo(customers=12, orders=40, seed=5)


def all_of(model):
    return db.session.scalars(select(model)).all()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_every_status_and_kind_of_record(seeded):
    assert {o.status for o in all_of(Order)} == set(ORDER_STATUSES)
    assert {r.status for r in all_of(ReturnRequest)} == set(RETURN_STATUSES)
    assert {p.payment_provider for p in all_of(Payment)} == {"MOCK", "STRIPE", "PAYPAL"}
    assert {n for (n,) in db.session.execute(select(EmailTemplate.name))} >= set(SHIPPED_TEMPLATES)
    for model in (UserProfile, UserAddress, UserPaymentMethod, PaymentMethod, Device, UserSession, LoginHistory,
                  Category, ProductVariant, ProductImage, ProductTag, ProductReview, ProductQuestion, Cart, CartItem,
                  OrderNote, Carrier, ShippingZone, ShippingMethod, ShippingRate, ShipmentTracking, ReturnItem,
                  ReturnAuthorization, ReturnStatusHistory, Promotion, PromotionRule, PromotionUsage, NotificationLog):
        assert count(model) > 0, model.__tablename__
    assert count(UserProfile) == 12 and count(Order) == 40
    # some stock is low and some sold out; stock statuses are the product service's own
    products = all_of(Product)
    assert {p.stock_status for p in products} == {"in_stock", "out_of_stock"}
    assert any(0 < p.stock_quantity <= LOW_STOCK for p in products)
    # some e-mails failed, and every e-mail that left the queue has its provider log
    notifications = all_of(Notification)
    assert any(n.status == "FAILED" for n in notifications)
    logged = {log.notification_id: log for log in all_of(NotificationLog)}
    assert {n.id for n in notifications if n.status != "PENDING"} == set(logged)
    assert all(logged[n.id].error for n in notifications if n.status == "FAILED")
    # carts carry only coupon codes that exist
    codes = {c.code for c in all_of(Coupon)}
    cart_codes = {c.coupon_code for c in all_of(Cart) if c.coupon_code}
    assert cart_codes and cart_codes <= codes


def test_one_staff_login_per_role_and_customers_cannot_sign_in(seeded):
    roles = dict(db.session.execute(select(UserRole.user_id, Role.name).join(Role, Role.id == UserRole.role_id)).all())
    staff = {u.email: u for u in all_of(User) if roles[u.id] != "customer"}
    assert set(staff) == {f"{role}@example.com" for role in STAFF_ROLES}
    for email, user in staff.items():
        assert roles[user.id] == email.split("@")[0]
        assert password_matches(DEMO_STAFF_PASSWORD, user.password_hash)
    customers = [u for u in all_of(User) if roles[u.id] == "customer"]
    assert len(customers) == 12
    assert len({u.password_hash for u in customers}) == 1  # hashed once
    assert not password_matches(DEMO_STAFF_PASSWORD, customers[0].password_hash)


def test_totals_agree_across_databases(seeded):
    orders = {o.id: o for o in all_of(Order)}
    items = defaultdict(list)
    for item in all_of(OrderItem):
        items[item.order_id].append(item)
        assert item.total_price == item.unit_price * item.quantity
    payments = {p.order_id: p for p in all_of(Payment)}
    for order in orders.values():
        assert order.subtotal == sum(i.total_price for i in items[order.id])
        assert order.total_amount == order.subtotal + order.tax_amount + order.shipping_amount - order.discount_amount
        payment = payments[order.id]
        assert payment.amount == order.total_amount
        assert order.payment_method_id == payment.id
    assert count(OrderShippingAddress) == len(orders)

    refunds = defaultdict(list)
    for refund in all_of(PaymentRefund):
        refunds[refund.payment_id].append(refund)
    refund_transactions = defaultdict(Decimal)
    for tx in all_of(PaymentTransaction):
        if tx.transaction_type == "REFUND" and tx.status != "FAILED":
            refund_transactions[tx.payment_id] += tx.amount
    partial = full = 0
    for payment in payments.values():
        refunded = sum((r.amount for r in refunds[payment.id] if r.status != "failed"), Decimal(0))
        assert refunded <= payment.amount
        assert refund_transactions[payment.id] == refunded
        order = orders[payment.order_id]
        if refunded == payment.amount:
            full += 1
            assert payment.status == "refunded" and order.payment_status == "refunded" and order.status == "refunded"
        elif refunded:
            partial += 1
            assert payment.status == "succeeded" and order.payment_status == "paid"
    assert full and partial
    assert all(payments[o.id].status == "refunded" for o in orders.values() if o.status == "refunded")

    usage = Counter(u.coupon_id for u in all_of(CouponUsage))
    for coupon in all_of(Coupon):
        assert coupon.usage_count == usage[coupon.id]
        assert coupon.usage_limit is None or coupon.usage_count <= coupon.usage_limit
    assert sum(usage.values()) > 0
    for row in all_of(CouponUsage) + all_of(PromotionUsage):
        assert row.discount_amount == orders[row.order_id].discount_amount > 0

    for cart in all_of(Cart):
        cart_items = [i for i in all_of(CartItem) if i.cart_id == cart.id]
        assert cart.subtotal == sum(i.total_price for i in cart_items)
        assert cart.total_amount == cart.subtotal + cart.tax_amount + cart.shipping_amount - cart.discount_amount


def test_shipments_and_stock_follow_the_orders(seeded):
    shipments = {s.order_id: s for s in all_of(Shipment)}
    for order in all_of(Order):
        if order.status in ("shipped", "delivered", "refunded"):
            assert shipments[order.id].tracking_number == order.tracking_number
            assert (shipments[order.id].status == "delivered") == (order.status != "shipped")
        else:
            assert order.id not in shipments and order.tracking_number is None
    history = defaultdict(list)
    for row in all_of(OrderStatusHistory):
        history[row.order_id].append(row)
    for order in all_of(Order):
        rows = sorted(history[order.id], key=lambda r: r.created_at)
        assert rows[0].status == "pending" and rows[-1].status == order.status
    open_quantity = Counter()
    statuses = {o.id: o.status for o in all_of(Order)}
    for item in all_of(OrderItem):
        if statuses[item.order_id] in ("pending", "confirmed", "processing"):
            open_quantity[item.product_id] += item.quantity
    products = {p.id: p for p in all_of(Product)}
    for row in all_of(ProductInventory):
        assert row.reserved_quantity == open_quantity[row.product_id]
        assert row.available_quantity == row.quantity - row.reserved_quantity >= 0
        assert products[row.product_id].stock_quantity == row.quantity


def test_returns_come_from_real_order_items(seeded):
    order_items = {i.id: i for i in all_of(OrderItem)}
    requests = {r.id: r for r in all_of(ReturnRequest)}
    for item in all_of(ReturnItem):
        ordered = order_items[item.order_item_id]
        assert ordered.order_id == requests[item.return_request_id].order_id
        assert 0 < item.quantity <= ordered.quantity
        assert item.product_id == ordered.product_id
    rmas = [r.rma_number for r in requests.values()]
    assert len(set(rmas)) == len(rmas)
    assert all(re.fullmatch(r"RMA-\d{8}-[0-9A-F]{6}", rma) for rma in rmas)
    authorizations = {a.return_request_id: a for a in all_of(ReturnAuthorization)}
    return_refunds = {r.return_request_id: r for r in all_of(ReturnRefund)}
    payment_refunds = {(r.metadata_ or {}).get("return_request_id"): r for r in all_of(PaymentRefund)}
    payments = {p.order_id: p for p in all_of(Payment)}
    for request in requests.values():
        if request.status in ("pending", "rejected"):
            assert request.id not in authorizations
        else:
            assert authorizations[request.id].rma_number == request.rma_number
        if request.status in ("processed", "closed"):
            refund = return_refunds[request.id]
            assert refund.amount == request.refund_amount
            assert refund.payment_id == payments[request.order_id].id
            assert payment_refunds[request.id].amount == refund.amount
            assert payment_refunds[request.id].payment_id == refund.payment_id
        else:
            assert request.id not in return_refunds


def test_refunds_in_every_state_made_by_the_workflow(seeded):
    """Pending STRIPE and PAYPAL refunds, one processing, one completed by the payment
    service and not yet followed, one failed, one needing attention: the refunds screen's
    tabs and the dashboard have something to show, with the steps the workflow records."""
    made = [r for r in all_of(PaymentRefund) if (r.metadata_ or {}).get("steps")]
    providers = {r.id: r.metadata_["provider"] for r in made}
    assert {providers[r.id] for r in made if r.status == "pending"} == {"STRIPE", "PAYPAL"}
    assert any(r.status == "processing" for r in made)
    [followed_later] = [r for r in made if r.status == "completed" and refunds.awaits_provider(r)]
    assert refunds.waiting_steps(followed_later) == ["order", "notify"]
    for refund in made:
        if refund.status in ("pending", "processing"):
            assert refunds.awaits_provider(refund) and not refunds.needs_attention(refund)
            assert "waiting" in refund.metadata_["steps"].values()
    [failed] = [r for r in made if r.status == "failed"]
    assert failed.metadata_["steps"]["order"] == "cancelled" and not refunds.awaits_provider(failed)
    assert [t.status for t in all_of(PaymentTransaction) if (t.provider_response or {}).get("refund_id") == failed.id] \
        == ["FAILED"]
    payment = db.session.get(Payment, failed.payment_id)
    assert refunds.refundable_amount(payment) == refunds.captured_amount(payment)  # the failed amount is free again
    [stuck] = [r for r in made if refunds.needs_attention(r)]
    assert stuck.status == "completed" and refunds.last_error(stuck)["message"].endswith("_db is unavailable")
    # A received return refunded through STRIPE or PAYPAL waits for it before it moves on.
    returned = [r for r in made if r.metadata_.get("return_request_id") and r.status == "pending"]
    assert returned and db.session.get(ReturnRequest, returned[0].metadata_["return_request_id"]).status == "received"
    statuses = {r.status for r in all_of(PaymentRefund)}
    assert statuses == {"pending", "processing", "completed", "failed"}
    from console.integrity import check_all

    assert [report.ref.name for report in check_all() if not report.ok] == []


def snapshot() -> dict:
    return {
        "orders": sorted((o.id, o.order_number, o.status, o.total_amount, o.created_at) for o in all_of(Order)),
        "payments": sorted((p.id, p.amount, p.status) for p in all_of(Payment)),
        "refunds": sorted((r.id, r.amount, r.status, r.created_at) for r in all_of(PaymentRefund)),
        "returns": sorted((r.rma_number, r.status, r.refund_amount) for r in all_of(ReturnRequest)),
        "users": sorted((u.id, u.email) for u in all_of(User)),
    }


def test_same_seed_same_data(ctx):
    seed_demo(customers=5, orders=15, seed=11)
    first = snapshot()
    delete_all_rows()
    seed_demo(customers=5, orders=15, seed=11)
    assert snapshot() == first
    delete_all_rows()
    seed_demo(customers=5, orders=15, seed=12)
    assert snapshot()["orders"] != first["orders"]


def test_seed_demo_command_guards_existing_data(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["console", "seed-demo", "--customers", "4", "--orders", "12", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "12 orders" in result.output and "admin@example.com" in result.output

    result = runner.invoke(args=["console", "seed-demo", "--customers", "4", "--orders", "12"])
    assert result.exit_code == 1
    assert "already has users" in result.output and "--reset" in result.output

    result = runner.invoke(args=["console", "seed-demo", "--if-empty"])
    assert result.exit_code == 0
    assert "demo data not loaded" in result.output

    result = runner.invoke(args=["console", "seed-demo", "--reset", "--customers", "3", "--orders", "9"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert count(UserProfile) == 3 and count(Order) == 9
        assert count(User) == 3 + len(STAFF_ROLES)


def test_seed_demo_refuses_when_a_database_is_unreachable(app, database_urls):
    with app_with_unreachable(database_urls, "shipping", UNOPENABLE_SQLITE) as broken:
        result = broken.test_cli_runner().invoke(args=["console", "seed-demo"])
    assert result.exit_code == 1
    assert "shipping_db is unreachable" in result.output
    with app.app_context():
        assert count(User) == 0  # nothing was written anywhere


def test_now_option_dates_the_data(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["console", "seed-demo", "--customers", "3", "--orders", "8", "--now", "2030-05-17"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        latest = db.session.scalar(select(func.max(Order.created_at)))
        assert latest.date().isoformat() in ("2030-05-16", "2030-05-17")
        assert latest.tzinfo is not None
    result = runner.invoke(args=["console", "seed-demo", "--reset", "--now", "yesterday"])
    assert result.exit_code == 2 and "--now" in result.output


def test_human_numbers_never_repeat():
    """Order, RMA and tracking numbers come from counters walked through spread(): a
    hundred thousand orders placed on the same day still get distinct numbers."""
    from datetime import datetime, timezone

    from console.demo.builders import HumanNumbers, spread

    numbers = HumanNumbers()
    day = datetime(2026, 11, 1, tzinfo=timezone.utc)
    orders = [numbers.order(day) for _ in range(100_000)]
    assert len(set(orders)) == len(orders)
    assert all(re.fullmatch(r"ORD-20261101-[0-9A-F]{6}", n) for n in orders[:1000])
    parcels = [numbers.tracking("ups") for _ in range(100_000)]
    assert len(set(parcels)) == len(parcels)
    assert sorted(spread(n, 4096, HumanNumbers.ORDER_STEP) for n in range(4096)) == list(range(4096))
    with pytest.raises(ValueError):
        spread(4096, 4096, HumanNumbers.ORDER_STEP)


def test_large_seed_goes_in_bulk_batches_and_stays_coherent(ctx, monkeypatch):
    """Past the rich part, customers and orders are written in batches (one commit each):
    numbers stay unique, every reference resolves, totals and stock still agree."""
    from console.demo import bulk, seed
    from console.integrity import check_all

    monkeypatch.setattr(seed, "RICH_CUSTOMERS", 6)
    monkeypatch.setattr(seed, "RICH_ORDERS", 30)
    monkeypatch.setattr(bulk, "BATCH_ORDERS", 70)
    monkeypatch.setattr(bulk, "BATCH_CUSTOMERS", 9)
    steps = []
    summary = seed_demo(customers=40, orders=700, seed=3, progress=steps.append)
    assert summary["orders"] == 700 and summary["customers"] == 40
    assert count(Order) == 700 and count(UserProfile) == 40 and count(User) == 40 + len(STAFF_ROLES)
    assert sum(steps) <= total_steps(40, 700) and sum(steps) >= 700 + 40  # the bar moves per batch

    orders = all_of(Order)
    numbers = [o.order_number for o in orders]
    assert len(set(numbers)) == 700
    assert all(re.fullmatch(r"ORD-\d{8}-[0-9A-F]{6}", n) for n in numbers)
    tracking = [s.tracking_number for s in all_of(Shipment)]
    assert len(set(tracking)) == len(tracking) > 300
    rmas = [r.rma_number for r in all_of(ReturnRequest)]
    assert len(set(rmas)) == len(rmas) > 20
    assert [report.ref.name for report in check_all() if not report.ok] == []
    # Bulk orders are written in the order they were placed, as the services write them:
    # their ids (a shared head and a counting tail) grow with the time they were placed.
    head = Counter(o.id[:13] for o in orders).most_common(1)[0][0]
    placed = [o.created_at for o in sorted((o for o in orders if o.id.startswith(head)), key=lambda o: o.id)]
    assert len(placed) == 700 - 30 and placed == sorted(placed)

    items = defaultdict(list)
    for item in all_of(OrderItem):
        items[item.order_id].append(item)
    payments = {p.order_id: p for p in all_of(Payment)}
    refunded = defaultdict(Decimal)
    for refund in all_of(PaymentRefund):
        refunded[refund.payment_id] += refund.amount if refund.status != "failed" else 0
    history = defaultdict(list)
    for row in all_of(OrderStatusHistory):
        history[row.order_id].append(row)
    for order in orders:
        assert order.subtotal == sum(i.total_price for i in items[order.id])
        assert order.total_amount == order.subtotal + order.tax_amount + order.shipping_amount - order.discount_amount
        payment = payments[order.id]
        assert payment.amount == order.total_amount and order.payment_method_id == payment.id
        assert refunded[payment.id] <= payment.amount
        rows = sorted(history[order.id], key=lambda r: r.created_at)
        assert rows[0].status == "pending" and rows[-1].status == order.status
    open_quantity = Counter()
    for order in orders:
        if order.status in ("pending", "confirmed", "processing"):
            for item in items[order.id]:
                open_quantity[item.product_id] += item.quantity
    for row in all_of(ProductInventory):
        assert row.reserved_quantity == open_quantity[row.product_id]
        assert row.available_quantity == row.quantity - row.reserved_quantity >= 0


# Time columns that name a moment planned ahead, not when something happened: a window's
# start or end, an expiry, an estimate. Every other time column of every model is a
# record of the past, so no demo row may have it after --now.
PLANNED = {"starts_at", "ends_at", "expires_at", "estimated_delivery", "estimated_delivery_date",
           "valid_until", "scheduled_at", "locked_until", "next_retry_at", "retry_after", "trial_ends_at"}


def test_no_demo_row_is_dated_after_now(app):
    from sqlalchemy import Date, DateTime

    from console.lookups import database
    from console.models import MODULES, models_of

    now = "2026-03-14T09:30"
    result = app.test_cli_runner().invoke(args=["console", "seed-demo", "--reset", "--customers", "14",
                                                "--orders", "60", "--seed", "4", "--now", now])
    assert result.exit_code == 0, result.output
    cutoff = datetime.fromisoformat(now).replace(tzinfo=timezone.utc)
    future, checked = [], []
    with app.app_context():
        for bind in MODULES:
            with database(bind):
                for model in models_of(bind):
                    for column in model.__table__.columns:
                        kind = getattr(column.type, "impl", column.type)
                        if not isinstance(kind, (DateTime, Date)) or column.key in PLANNED:
                            continue
                        checked.append(column)
                        bound = cutoff if isinstance(kind, DateTime) else cutoff.date()
                        latest = db.session.scalar(select(func.max(column)).select_from(model))
                        if isinstance(latest, datetime) and latest.tzinfo is None:
                            latest = latest.replace(tzinfo=timezone.utc)
                        if latest is not None and latest > bound:
                            future.append(f"{model.__table__.name}.{column.name}: {latest}")
    assert len(checked) > 100  # every model's time columns were read
    assert not future, "demo rows dated after --now: " + "; ".join(future)
