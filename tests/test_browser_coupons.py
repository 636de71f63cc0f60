"""Coupons in Chromium, as marketing: create a coupon, generate 100 codes from it and
download them, then open a used coupon's usage report."""
from __future__ import annotations

import csv
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from console.demo.builders import make_coupon, make_customer, make_order, make_product, use_coupon
from console.extensions import db
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


@pytest.fixture
def shop(app, auth):
    auth.create("marketing")
    with app.app_context():
        lamp = make_product("LAMP-1", "Desk lamp", "40.00")
        used = make_coupon("WELCOME", name="Welcome 10%")
        for email, name in (("ada@example.com", "Ada"), ("ben@example.com", "Ben")):
            customer, _ = make_customer(email, name, "Lovelace")
            use_coupon(used, make_order(customer, [(lamp, 1)], status="delivered", discount=Decimal("4.00")).order)
        db.session.commit()


def test_marketing_creates_generates_downloads_and_reads_a_report(page, shop, tmp_path):
    browser_login(page, "marketing@staff.test")
    page.click("#menu-marketing")
    page.click("#main-menu >> text=Coupons")
    page.wait_for_url("**/coupons")
    page.click("#new-coupon")
    page.fill("#code", "autumn-15")
    page.fill("#name", "Autumn 15%")
    page.select_option("#type", "percentage")
    page.fill("#discount_value", "150")
    page.fill("#currency", "USD")
    page.fill("#applicable_products", "lamp-1")
    page.click("#save-coupon")
    # a refusal stays on the form, next to its field
    assert "more than 0 and at most 100" in page.inner_text("#discount_value-error")
    page.fill("#discount_value", "15")
    page.click("#save-coupon")
    page.wait_for_url("**/coupons/AUTUMN-15")
    assert "LAMP-1" in page.inner_text("#coupon-settings")
    page.screenshot(path=str(tmp_path / "coupon.png"), full_page=True)

    page.click("#generate-codes")
    page.fill("#count", "100")
    page.fill("#prefix", "fall-")
    page.fill("#length", "6")
    page.click("#generate")
    assert "Generate 100 codes like AUTUMN-15 starting with “fall-”?" in page.inner_text("#confirm-message")
    page.click("#confirm-yes")
    page.wait_for_selector("#generated")
    assert page.inner_text("#generated-title").startswith("100 codes generated")
    with page.expect_download() as download:
        page.click("#download-codes")
    path = tmp_path / "codes.csv"
    download.value.save_as(path)
    with open(path, encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "code" and len(rows) == 101
    assert all(r[0].startswith("FALL-") and len(r[0]) == 11 for r in rows[1:])

    page.goto("/coupons?code=fall-")
    assert page.locator("#coupons tbody tr").count() == 50
    page.fill("#f-code", "")
    page.fill("#f-name", "welcome")
    page.press("#f-name", "Enter")
    page.wait_for_url("**/coupons?*name=welcome*")
    expect(page.locator("#coupons tbody tr")).to_have_count(1)
    page.click("#coupons >> text=WELCOME")
    page.wait_for_url("**/coupons/WELCOME")
    assert page.inner_text("#figure-uses").strip() == "2"
    assert page.inner_text("#figure-customers").strip() == "2"
    assert "ada@example.com" in page.inner_text("#uses") and "delivered" in page.inner_text("#uses")
    assert page.locator("#usage-chart svg rect.bar").count() >= 1
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)


def test_a_batch_of_generated_codes_leaves_the_hand_made_coupons_on_the_first_page(page, shop):
    """500 codes generated after the hand-made coupons: the list (newest first) still
    opens on the coupons people work with; the batch is one filter away, paged by keyset."""
    browser_login(page, "marketing@staff.test")
    page.goto("/coupons/WELCOME/generate")
    page.fill("#count", "500")
    page.fill("#prefix", "bulk-")
    page.fill("#length", "6")
    page.click("#generate")
    page.click("#confirm-yes")
    page.wait_for_selector("#generated")

    page.goto("/coupons")
    codes = page.locator("#coupons tbody tr").evaluate_all("rows => rows.map(r => r.dataset.coupon)")
    assert codes == ["WELCOME"]
    assert page.inner_text("#f-source option:checked") == "left out"

    page.select_option("#f-source", "generated")
    page.wait_for_url("**source=generated*")
    expect(page.locator("#coupons tbody tr")).to_have_count(50)
    assert "500 coupons" in page.inner_text("#coupons-count")
    page.click("#next-page")
    page.wait_for_url("**cursor=*")
    assert page.locator("#coupons tbody tr").evaluate_all("rows => rows.map(r => r.dataset.coupon)")[0].startswith("BULK-")
    page.select_option("#f-source", "all")
    page.wait_for_url("**source=all*")
    assert "501 coupons" in page.inner_text("#coupons-count")
