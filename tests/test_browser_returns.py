"""In Chromium: a return from the order page to closed, with stock and payment checked."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from console.extensions import db
from console.models.payment import Payment, PaymentRefund
from console.models.product import Product, ProductInventory
from console.workflows.refunds import refundable_amount
from tests.conftest import browser_login
from tests.returns_helpers import paid_order

pytestmark = pytest.mark.browser


def test_support_takes_a_return_from_order_page_to_closed(app, auth, page):
    auth.create("support")
    with app.app_context():
        data = paid_order(stock=10)
        number, payment_id = data.order.order_number, data.payment.id
        mug, plate = data.items
        mug_product, plate_product = mug.product_id, plate.product_id

    browser_login(page, "support@staff.test")
    page.goto(f"/orders/{number}")
    page.click("#create-return-link")
    page.fill(f"#qty-{mug.id}", "1")
    page.fill(f"#qty-{plate.id}", "1")
    page.select_option("#return-reason", "not_as_described")
    page.click("#create-return")
    page.wait_for_selector("#rma-number")
    assert "pending" in page.inner_text("#return-status")

    page.fill("#approve-instructions", "Write the RMA number on the box.")
    page.click("#approve")
    page.wait_for_selector("#receive-form")
    assert "approved" in page.inner_text("#return-status")
    assert "Write the RMA number on the box." in page.inner_text("#authorization")

    assert page.locator("#receive-form select").count() == 2
    page.locator("#receive-form div", has_text="Blue mug").locator("select").select_option("new")
    page.locator("#receive-form div", has_text="Red plate").locator("select").select_option("damaged")
    page.click("#receive")
    page.wait_for_selector("#process-form")
    assert "1 item line(s) back in stock" in page.inner_text("#flashes")

    page.click("#process")
    assert f"Refund 37.80 USD to MOCK for return" in page.inner_text("#confirm-message")
    page.click("#confirm-yes")
    page.wait_for_selector("#close-form")
    assert "Refund of 37.80 USD recorded (completed)" in page.inner_text("#flashes")
    assert "processed" in page.inner_text("#return-status")

    page.click("#close")
    page.wait_for_selector("#no-actions")
    assert "closed" in page.inner_text("#return-status")
    assert "26.60" in page.inner_text("#refundable")  # 64.40 paid, 37.80 refunded with the tax

    with app.app_context():
        def stock(product_id):
            product = db.session.get(Product, product_id)
            inventory = db.session.scalar(select(ProductInventory).where(ProductInventory.product_id == product_id))
            return product.stock_quantity, inventory.quantity, inventory.available_quantity

        assert stock(mug_product) == (11, 11, 11)  # received new: back in stock
        assert stock(plate_product) == (10, 10, 10)  # received damaged: not restocked
        [refund] = db.session.scalars(select(PaymentRefund).where(PaymentRefund.payment_id == payment_id))
        assert (refund.amount, refund.status) == (Decimal("37.80"), "completed")
        assert refundable_amount(db.session.get(Payment, payment_id)) == Decimal("26.60")
