"""Prices with their history, status and visibility, review and question moderation,
and back-in-stock alerts notified once."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from console.demo.builders import ensure_email_templates, make_customer, make_product, make_variant
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.notification import EmailTemplate, Notification
from console.models.product import (Product, ProductPriceHistory, ProductQuestion, ProductReview, ProductStockAlert,
                                    ProductVariant)
from console.models.types import utcnow
from console.workflows import WorkflowError, catalog, stock_alerts
from console.workflows.inventory import adjust_stock
from tests.returns_helpers import staff_actor
from tests.test_refunds_concurrency import run_together


def audit_of(action):
    return list(db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action == action)))


@pytest.fixture
def product(ctx):
    item = make_product("LAMP-1", "Desk lamp", "40.00", stock=5, reserved=2)
    db.session.commit()
    return item


@pytest.fixture
def marketing(ctx):
    return staff_actor("marketing")


# --- prices ------------------------------------------------------------------------------

def test_price_change_writes_history_with_the_staff_member(marketing, product):
    catalog.change_price(marketing, product.id, price=Decimal("35.00"), compare_at_price=Decimal("40.00"),
                         reason="Spring sale")
    db.session.expire_all()
    row = db.session.get(Product, product.id)
    assert (row.price, row.compare_at_price) == (Decimal("35.00"), Decimal("40.00"))
    entry = db.session.scalar(select(ProductPriceHistory))
    assert (entry.price, entry.compare_at_price, entry.changed_by, entry.reason) == (
        Decimal("35.00"), Decimal("40.00"), marketing.id, "Spring sale")
    assert audit_of("product.price_changed")[0].metadata_["before"]["price"] == "40.00"


@pytest.mark.parametrize("price,compare,message", [
    ("0", None, "above zero"), ("-1", None, "above zero"), ("30", "30", "must be above the price"),
    ("30", "20", "must be above the price"), ("40.00", None, "nothing changed"),
])
def test_price_refusals(marketing, product, price, compare, message):
    with pytest.raises(WorkflowError) as refused:
        catalog.change_price(marketing, product.id, price=Decimal(price),
                             compare_at_price=Decimal(compare) if compare else None, reason="r")
    assert message in refused.value.message
    assert db.session.scalar(select(ProductPriceHistory)) is None


def test_price_needs_a_reason_and_a_variant_gets_its_own_price(marketing, product):
    with pytest.raises(WorkflowError):
        catalog.change_price(marketing, product.id, price=Decimal("30"), reason="  ")
    variant = make_variant(product, "Brass", {"finish": "brass"}, stock=0)
    db.session.commit()
    catalog.change_price(marketing, product.id, price=Decimal("45.00"), reason="Brass costs more",
                         variant_id=variant.id)
    db.session.expire_all()
    assert db.session.get(ProductVariant, variant.id).price == Decimal("45.00")
    assert db.session.get(Product, product.id).price == Decimal("40.00")
    assert "variant LAMP-1-BRASS" in db.session.scalar(select(ProductPriceHistory)).reason


# --- status and visibility ---------------------------------------------------------------

def test_status_moves_one_step_at_a_time_and_archiving_reserved_stock_asks_first(marketing, product):
    with pytest.raises(WorkflowError) as refused:
        catalog.change_status(marketing, product.id, "active", reason="go")
    assert "already active" in refused.value.message
    with pytest.raises(catalog.NeedsConfirmation) as warned:
        catalog.change_status(marketing, product.id, "archived", reason="discontinued")
    assert "2 units of LAMP-1 are reserved" in warned.value.message
    assert db.session.get(Product, product.id).status == "active"
    catalog.change_status(marketing, product.id, "archived", reason="discontinued", confirmed=True)
    with pytest.raises(WorkflowError) as refused:
        catalog.change_status(marketing, product.id, "draft", reason="rework")
    assert "not straight to draft" in refused.value.message
    catalog.change_status(marketing, product.id, "active", reason="back by demand")
    catalog.change_status(marketing, product.id, "draft", reason="rework")
    assert [(r.metadata_["before"]["status"], r.metadata_["after"]["status"], r.metadata_["reason"])
            for r in sorted(audit_of("product.status_changed"), key=lambda r: r.created_at)] == [
        ("active", "archived", "discontinued"), ("archived", "active", "back by demand"), ("active", "draft", "rework")]


def test_visibility_toggles_with_a_reason(marketing, product):
    catalog.set_visibility(marketing, product.id, False, reason="photos pending")
    assert db.session.get(Product, product.id).is_visible is False
    with pytest.raises(WorkflowError):
        catalog.set_visibility(marketing, product.id, False, reason="again")
    with pytest.raises(WorkflowError) as refused:
        catalog.set_visibility(marketing, product.id, True, reason="")
    assert refused.value.status == 422


# --- reviews and questions -----------------------------------------------------------------

def test_reviews_are_approved_or_rejected_once(marketing, product):
    user, _ = make_customer("reviewer@example.com", "Rae", "View")
    reviews = [ProductReview(product_id=product.id, user_id=user.id, rating=n, title=f"t{n}", comment="c",
                             is_verified_purchase=True, is_approved=False) for n in (1, 4, 5)]
    db.session.add_all(reviews)
    db.session.commit()
    ids = [r.id for r in reviews]
    done = catalog.moderate_reviews(marketing, ids[1:], "approve")
    assert sorted(done.done) == sorted(ids[1:]) and done.skipped == 0
    rejected = catalog.moderate_reviews(marketing, ids, "reject")  # the approved two are skipped
    assert rejected.done == [ids[0]] and rejected.skipped == 2
    db.session.expire_all()
    assert db.session.get(ProductReview, ids[0]) is None
    assert audit_of("review.rejected")[0].metadata_["before"]["title"] == "t1"
    with pytest.raises(WorkflowError):
        catalog.moderate_reviews(marketing, [], "approve")
    with pytest.raises(WorkflowError):
        catalog.moderate_reviews(marketing, ids, "maybe")


def test_questions_are_answered_in_place_by_the_staff_member(marketing, product):
    question = ProductQuestion(product_id=product.id, question="Is the bulb included?", is_approved=False)
    db.session.add(question)
    db.session.commit()
    catalog.answer_question(marketing, question.id, "Yes, an LED bulb.")
    db.session.expire_all()
    row = db.session.get(ProductQuestion, question.id)
    assert (row.answer, row.answered_by, row.is_approved) == ("Yes, an LED bulb.", marketing.id, True)
    with pytest.raises(WorkflowError) as refused:
        catalog.answer_question(marketing, question.id, "Again")
    assert "answered meanwhile" in refused.value.message
    with pytest.raises(WorkflowError):
        catalog.answer_question(marketing, question.id, "\x00")


# --- back-in-stock alerts ------------------------------------------------------------------

def sold_out_with_waiting(count=3):
    ensure_email_templates()
    item = make_product("KETTLE", "Kettle", "30.00", stock=0)
    customers = [make_customer(f"waiting{n}@example.com", f"Wai{n}", "Ting")[0] for n in range(count)]
    for user in customers:
        db.session.add(ProductStockAlert(product_id=item.id, user_id=user.id, email=user.email, notified=False,
                                         expires_at=utcnow() + timedelta(days=30)))
    expired = make_customer("late@example.com", "Late", "Comer")[0]
    db.session.add(ProductStockAlert(product_id=item.id, user_id=expired.id, email=expired.email, notified=False,
                                     expires_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    return item


def test_notify_refused_until_stock_is_back_then_queues_each_customer_once(ctx):
    item = sold_out_with_waiting()
    warehouse = staff_actor("warehouse")
    with pytest.raises(WorkflowError) as refused:
        stock_alerts.notify_waiting(warehouse, item.id)
    assert "nothing available" in refused.value.message
    change = adjust_stock(warehouse, item.id, mode="add", quantity="4", reason="received")
    assert change.was_sold_out
    done = stock_alerts.notify_waiting(warehouse, item.id)
    assert done.queued == 3
    with pytest.raises(WorkflowError) as again:
        stock_alerts.notify_waiting(warehouse, item.id)
    assert "notified already" in again.value.message
    messages = list(db.session.scalars(select(Notification)))
    assert len(messages) == 3 and len({m.user_id for m in messages}) == 3
    assert all(m.subject == "Kettle is back in stock" and m.status == "PENDING" for m in messages)
    assert all(a.notified for a in db.session.scalars(select(ProductStockAlert)) if a.expires_at > utcnow())


@pytest.mark.postgres_only
def test_six_clicks_at_once_queue_each_customer_once(app):
    with app.app_context():
        item = sold_out_with_waiting(5)
        warehouse = staff_actor("warehouse")
        adjust_stock(warehouse, item.id, mode="add", quantity="2", reason="received")
        product_id = item.id
        db.session.remove()
    try:
        done, refused = run_together(app, lambda i: stock_alerts.notify_waiting(warehouse, product_id), threads=6)
        with app.app_context():
            assert [d.queued for d in done] == [5] and len(refused) == 5
            assert all("notified already" in exc.message for exc in refused)
            assert len(list(db.session.scalars(select(Notification)))) == 5
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def test_notify_without_its_email_template_marks_nobody_notified(ctx):
    item = sold_out_with_waiting()
    warehouse = staff_actor("warehouse")
    adjust_stock(warehouse, item.id, mode="add", quantity="4", reason="received")
    template = db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == "back_in_stock"))
    template.is_active = False
    db.session.commit()
    with pytest.raises(WorkflowError) as refused:
        stock_alerts.notify_waiting(warehouse, item.id)
    assert "template" in refused.value.message
    db.session.expire_all()
    assert not any(a.notified for a in db.session.scalars(select(ProductStockAlert)))
    assert list(db.session.scalars(select(Notification))) == []
