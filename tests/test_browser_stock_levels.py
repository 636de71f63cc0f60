"""In Chromium: the stock badge, the low-stock view, the dashboard's low-stock figure and
the export read one rule (console/workflows/inventory.py: stock_level) on the products
at its boundaries."""
from __future__ import annotations

import csv
import io

import pytest

from console.demo.builders import make_product
from console.extensions import db
from tests.conftest import browser_login

pytestmark = pytest.mark.browser

# sku: (on hand, reserved, the level of what is available, with the default threshold of 5)
BOUNDARY = {
    "EDGE-RESERVED": (7, 2, "low"),  # 7 on hand, 5 available: low, whatever is on hand
    "EDGE-SIX": (6, 0, "in"),
    "EDGE-FIVE": (5, 0, "low"),
    "EDGE-ONE": (1, 0, "low"),
    "EDGE-HELD": (3, 3, "out"),  # on hand, all of it reserved
    "EDGE-NONE": (0, 0, "out"),
}


def badges(page) -> dict[str, str]:
    rows = page.locator("#products tbody tr")
    return {rows.nth(i).get_attribute("data-sku"): rows.nth(i).locator(".stock-level").get_attribute("data-level")
            for i in range(rows.count())}


def test_the_badge_and_the_low_stock_view_agree_on_the_boundary_products(app, auth, page):
    auth.create("warehouse")
    with app.app_context():
        for sku, (on_hand, reserved, _) in BOUNDARY.items():
            make_product(sku, sku.title(), "10.00", stock=on_hand, reserved=reserved)
        db.session.commit()
    expected = {sku: level for sku, (_, _, level) in BOUNDARY.items()}

    browser_login(page, "warehouse@staff.test")
    page.goto("/products")
    assert badges(page) == expected
    labels = {level: page.locator(f"#products .stock-level[data-level={level}]").first.inner_text()
              for level in ("in", "low", "out")}
    assert labels == {"in": "in stock", "low": "low stock", "out": "out of stock"}

    page.click("#low-stock-view")
    page.wait_for_url("**/products?stock=low")
    assert badges(page) == {sku: level for sku, level in expected.items() if level != "in"}
    page.select_option("#f-stock", "out")
    page.wait_for_url("**stock=out*")
    assert badges(page) == {sku: level for sku, level in expected.items() if level == "out"}

    page.goto("/")
    dashboard = page.locator("#low-stock tbody tr")
    seen = {dashboard.nth(i).locator("td").first.inner_text(): dashboard.nth(i).locator(".stock-level").get_attribute("data-level")
            for i in range(dashboard.count())}
    assert seen == {sku: level for sku, level in expected.items() if level != "in"}

    exported = page.request.get("/products/export.csv")
    rows = {row["sku"]: row for row in csv.DictReader(io.StringIO(exported.text().lstrip("\ufeff")))}
    assert {sku: row["stock"] for sku, row in rows.items()} == expected
    assert {sku: row["stock_status"] for sku, row in rows.items()} == {
        sku: "out_of_stock" if level == "out" else "in_stock" for sku, level in expected.items()}
