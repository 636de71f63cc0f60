"""In Chromium: the refund asks first in a dialog naming the amount, the provider and
the order; Cancel refunds nothing, Confirm refunds once. A 500 from an htmx request is
shown in the panel's place."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from console.extensions import db
from console.models.payment import PaymentRefund
from tests.conftest import browser_login
from tests.returns_helpers import paid_order

pytestmark = pytest.mark.browser


def refunds_of(app, payment_id):
    with app.app_context():
        return [(r.amount, r.status) for r in db.session.scalars(
            select(PaymentRefund).where(PaymentRefund.payment_id == payment_id))]


def test_refund_asks_first_cancel_refunds_nothing_confirm_refunds_once(app, auth, page, tmp_path):
    auth.create("support")
    with app.app_context():
        data = paid_order(provider="PAYPAL")
        number, payment_id = data.order.order_number, data.payment.id
    browser_login(page, "support@staff.test")
    page.goto(f"/orders/{number}")

    page.fill("#refund-amount", "49.00")
    page.fill("#refund-reason", "Late delivery")
    page.click("#issue-refund")
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert f"Refund 49.00 USD to PAYPAL for {number}?" in page.inner_text("#confirm-message")
    page.screenshot(path=str(tmp_path / "refund-dialog.png"))
    page.click("#confirm-no")
    dialog.wait_for(state="hidden")
    page.wait_for_timeout(300)  # give a wrongly sent request the time to land
    assert refunds_of(app, payment_id) == []

    page.keyboard.press("Escape")  # nothing open: nothing happens
    page.click("#issue-refund")
    dialog.wait_for(state="visible")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert refunds_of(app, payment_id) == []

    page.click("#issue-refund")
    dialog.wait_for(state="visible")
    page.click("#confirm-yes")
    page.wait_for_selector("#flashes .alert")
    assert "Refund of 49.00 USD recorded (pending)" in page.inner_text("#flashes")
    assert refunds_of(app, payment_id) == [(Decimal("49.00"), "pending")]


def test_a_refused_amount_is_explained_next_to_the_field(app, auth, page):
    auth.create("support")
    with app.app_context():
        data = paid_order()
        number, payment_id = data.order.order_number, data.payment.id
    browser_login(page, "support@staff.test")
    page.goto(f"/orders/{number}")
    page.fill("#refund-amount", "1,0")
    page.fill("#refund-reason", "Goodwill")
    page.click("#issue-refund")
    assert "Refund 1,0 USD to MOCK" in page.inner_text("#confirm-message")
    page.click("#confirm-yes")
    page.wait_for_selector("#refund-amount-error")
    assert "Use no commas" in page.inner_text("#refund-amount-error")
    assert page.get_attribute("#refund-amount", "aria-invalid") == "true"
    assert refunds_of(app, payment_id) == []


def test_a_server_error_in_an_htmx_action_is_shown_in_its_place(app, auth, page, monkeypatch):
    from console.workflows import refunds as flow

    auth.create("support")
    with app.app_context():
        data = paid_order()
        number = data.order.order_number

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(flow, "refund_order", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # as in production: the error page
    browser_login(page, "support@staff.test")
    page.goto(f"/orders/{number}")
    page.fill("#refund-amount", "5.00")
    page.fill("#refund-reason", "Goodwill")
    page.click("#issue-refund")
    page.click("#confirm-yes")
    page.wait_for_selector("#error-message")
    assert "Something went wrong" in page.inner_text("#error-message")
    assert page.locator("#refund-form").count() == 0  # the panel's place shows the error instead
