"""In Chromium: the warehouse opens a low-stock product from the dashboard, adjusts its
stock with a reason and sees the history entry; then uploads a CSV, sees the dry run and
applies it."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from console.demo.builders import make_product
from console.extensions import db
from console.models.product import ProductInventory
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def on_hand(app, product_id):
    with app.app_context():
        return db.session.scalar(select(ProductInventory.quantity).where(ProductInventory.product_id == product_id))


def test_warehouse_adjusts_a_low_stock_product_and_applies_a_csv(app, auth, page, tmp_path):
    auth.create("warehouse")
    with app.app_context():
        low = make_product("LOW-LAMP", "Reading lamp", "35.00", stock=3, reserved=1)
        plenty = make_product("PLENTY-MUG", "Mug", "8.00", stock=40)
        db.session.commit()
        low_id, plenty_id = low.id, plenty.id

    browser_login(page, "warehouse@staff.test")
    page.goto("/")
    page.locator("#low-stock").get_by_role("link", name="LOW-LAMP").click()
    page.wait_for_selector("#product-sku")
    assert page.inner_text("#available") == "2"

    page.select_option("#adjust-mode", "add")
    page.fill("#adjust-quantity", "12")
    page.select_option("#adjust-reason", "received")
    page.fill("#adjust-note", "pallet 7")
    page.click("#adjust-submit")
    assert "LOW-LAMP: add 12 unit(s)" in page.inner_text("#confirm-message")
    page.click("#confirm-yes")
    page.wait_for_selector("#flashes .alert-success")
    assert "3 → 15 on hand" in page.inner_text("#flashes")
    assert page.inner_text("#available") == "14"
    history = page.locator("#stock-history tbody tr").first
    assert "warehouse@staff.test" in history.inner_text()
    assert "Received" in history.inner_text() and "pallet 7" in history.inner_text()
    assert "3 → 15" in history.inner_text()

    # Refused: below what is reserved; the stock is unchanged and the message says why.
    page.select_option("#adjust-mode", "set")
    page.fill("#adjust-quantity", "0")
    page.click("#adjust-submit")
    page.click("#confirm-yes")
    assert "below the 1 reserved" in page.inner_text("#action-message")
    assert on_hand(app, low_id) == 15

    csv_file = tmp_path / "count.csv"
    csv_file.write_text("sku,quantity\nLOW-LAMP,20\nPLENTY-MUG,38\n")
    page.goto("/products")
    page.click("#bulk-link")
    page.set_input_files("#bulk-file", str(csv_file))
    page.select_option("#bulk-reason", "cycle_count")
    page.click("#bulk-preview")
    page.wait_for_selector("#bulk-rows")
    assert "dry run" in page.inner_text("#bulk-state")
    assert page.inner_text("#bulk-changes") == "2"
    rows = page.locator("#bulk-rows tbody tr")
    assert "15" in rows.nth(0).inner_text() and "20" in rows.nth(0).inner_text() and "+5" in rows.nth(0).inner_text()
    assert on_hand(app, low_id) == 15  # nothing written by the dry run

    page.click("#bulk-apply")
    page.click("#confirm-yes")
    page.wait_for_selector("#flashes .alert-success")
    assert "Applied: 2 products changed" in page.inner_text("#flashes")
    assert page.inner_text("#bulk-state") == "applied"
    assert (on_hand(app, low_id), on_hand(app, plenty_id)) == (20, 38)
    with page.expect_download() as download:
        page.click("#bulk-result")
    assert download.value.suggested_filename.startswith("stock-update-result-")


def test_a_price_far_from_the_current_one_asks_its_own_question(app, auth, page):
    """22.00 → 171.50: the dialog asks that question (not the usual one), and answering
    it changes the price at once, with no second question from the server."""
    auth.create("marketing")
    with app.app_context():
        make_product("FAR-MUG", "Mug", "22.00", stock=5)
        db.session.commit()
    browser_login(page, "marketing@staff.test")
    page.goto("/products/FAR-MUG")
    assert page.inner_text("label[for=price-new]") == "New price" and page.get_attribute("#price-new", "placeholder") == "0.00"
    page.fill("#price-new", "171.50")
    page.fill("#price-reason", "new range")
    page.click("#price-submit")
    assert page.inner_text("#confirm-message") == "22.00 → 171.50 is 7.8 times the price: sure?"
    page.click("#confirm-yes")
    page.wait_for_selector("#flashes .alert-success")
    assert page.inner_text("#product-price") == "171.50"

    page.fill("#price-new", "170.00")  # near: the usual question
    page.fill("#price-reason", "rounding")
    page.click("#price-submit")
    assert page.inner_text("#confirm-message").startswith("Change the price to 170.00")
