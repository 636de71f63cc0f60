"""The orders screens in Chromium: filter with htmx, open an order, ship it, export."""
from __future__ import annotations

import csv
from datetime import timedelta

import pytest

from console.demo.builders import ensure_shipping_options, make_customer, make_order, make_product
from console.extensions import db
from console.models.types import utcnow
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


@pytest.fixture
def shop(app, auth):
    auth.create("support")
    with app.app_context():
        ensure_shipping_options()
        ada, _ = make_customer("ada@example.com", "Ada", "Byron")
        lamp = make_product("LAMP-1", "Desk lamp", "40.00", stock=50, reserved=3)
        start = utcnow() - timedelta(days=3)
        made = {status: make_order(ada, [(lamp, 1)], status=status, created_at=start + timedelta(hours=n)).order
                for n, status in enumerate(("pending", "processing", "delivered", "confirmed"))}
        db.session.commit()
        return {status: order.order_number for status, order in made.items()}


def test_filter_open_ship_and_export(page, shop, tmp_path):
    browser_login(page, "support@staff.test")
    page.goto("/orders")
    assert page.locator("#orders tbody tr").count() == 4

    # Filtering swaps the table in place and keeps the URL bookmarkable.
    page.select_option("#f-status", "processing")
    page.wait_for_url("**/orders?*status=processing*")
    page.wait_for_function("document.querySelectorAll('#orders tbody tr').length === 1")
    assert page.locator("#order-filters").count() == 1  # the form was not reloaded
    page.click(f"text={shop['processing']}")
    page.wait_for_url(f"**/orders/{shop['processing']}")

    page.select_option("#ship-carrier", "ups")
    page.select_option("#ship-service", "express")
    page.fill("#ship-tracking", "1Z999AA10123456784")
    page.click("#mark-shipped")
    page.wait_for_selector("#action-message")
    assert "Marked shipped: tracking number 1Z999AA10123456784" in page.inner_text("#action-message")
    assert page.inner_text("#order-status").strip() == "shipped"
    timeline = page.inner_text("#order-timeline")
    assert "Shipment created" in timeline and "UPS · tracking 1Z999AA10123456784" in timeline
    assert "Status processing → shipped" in timeline and "support@staff.test" in timeline
    assert page.locator("#ship-form").count() == 0  # shipped orders can't be shipped again
    page.screenshot(path=str(tmp_path / "order-shipped.png"), full_page=True)

    page.goto("/orders?status=shipped")
    assert page.locator("#orders tbody tr").count() == 1
    with page.expect_download() as download:
        page.click("#export-csv")
    path = download.value.path()
    assert download.value.suggested_filename.startswith("orders-")
    with open(path, encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["order_number"] for r in rows] == [shop["processing"]]
    assert rows[0]["status"] == "shipped" and rows[0]["carrier"] == "UPS"
    assert rows[0]["tracking_number"] == "1Z999AA10123456784"


def test_bad_filter_shows_a_message_in_place(page, shop):
    browser_login(page, "support@staff.test")
    page.goto("/orders")
    page.fill("#f-min", "lots")
    page.press("#f-min", "Enter")
    page.wait_for_selector("#filter-errors")
    assert "is not an amount" in page.inner_text("#filter-errors")
    assert page.locator("#order-filters").count() == 1


def test_cancel_asks_first_then_says_what_it_did(page, shop):
    browser_login(page, "support@staff.test")
    page.goto(f"/orders/{shop['pending']}")
    page.fill("#cancel-reason", "Customer asked by phone")
    page.click("#cancel-order")
    assert f"Cancel order {shop['pending']}?" in page.locator("#confirm-dialog").inner_text()
    page.click("#confirm-yes")
    page.wait_for_selector("#action-message")
    message = page.inner_text("#action-message")
    assert f"Order {shop['pending']} cancelled" in message and "reserved stock released" in message
    assert page.inner_text("#order-status").strip() == "cancelled"
    void = page.locator("#order-timeline li", has_text="Void SUCCEEDED").inner_text()
    assert "by support@staff.test" in void


def test_the_orders_table_fits_a_laptop_screen(app, auth, page):
    """At 1366 px the whole table shows without scrolling sideways, with the demo's long
    cells on the page: partial refunds' amounts, open returns' RMA numbers, long emails."""
    from console.demo.seed import seed_demo

    auth.create("support")
    with app.app_context():
        seed_demo(customers=30, orders=300, seed=2)
    browser_login(page, "support@staff.test")
    page.goto("/orders?size=200")
    assert page.locator("#orders .partial-refund").count() and page.locator("#orders [title='open return']").count()
    wrap, table = page.evaluate("() => [document.querySelector('.table-wrap').clientWidth, "
                                "document.querySelector('#orders').scrollWidth]")
    assert table <= wrap, (table, wrap)
