"""In Chromium, on demo data: every list filtered to nothing says that the filters match
nothing (with the way to clear them), never the "nothing here yet" text of an empty
database."""
from __future__ import annotations

import pytest

from console.demo.seed import DEMO_STAFF_PASSWORD, seed_demo
from tests.conftest import browser_login

pytestmark = pytest.mark.browser

# For each list, a filter no demo row matches. A new list needs one here.
NOTHING = {
    "activity.list_activity": "entity_id=no-such-record",
    "coupons.list_coupons": "name=no-such-coupon",
    "customers.list_customers": "q=no-such-customer",
    # The templates list's own "active" filter (empty here) once hid whether filters were set.
    "email_templates.list_templates": "name=no-such-template",
    "notifications.list_notifications": "subject=no-such-subject",
    "orders.list_orders": "q=ORD-NO-SUCH-ORDER",
    "products.list_products": "q=no-such-product",
    "products.list_alerts": "sku={quiet_sku}",  # a product nobody waits for (an unknown SKU is refused)
    "promotions.list_promotions": "name=no-such-promotion",
    "refunds.list_refunds": "created_from=2099-01-01",
    "returns.list_returns": "rma=RMA-NO-SUCH",
    "staff.list_staff": "q=no-such-staff",
}
# What a list says when its database holds nothing yet.
NOTHING_YET = ("yet", "init-db", "create-staff", "has asked")


def test_a_list_filtered_to_nothing_says_so_not_that_it_is_empty(app, page):
    with app.app_context():
        seed_demo(customers=8, orders=24, seed=3)
        from flask import url_for
        from sqlalchemy import select

        from console.extensions import db
        from console.models.product import Product, ProductStockAlert
        quiet_sku = db.session.scalar(select(Product.sku).where(
            Product.id.not_in(select(ProductStockAlert.product_id))).limit(1))
        with app.test_request_context():
            lists = {endpoint: (screen.name, url_for(endpoint)) for endpoint, screen in app.extensions["list_screens"].items()}
    assert set(lists) == set(NOTHING), "a list without a filter that matches nothing: add it to NOTHING"

    browser_login(page, "admin@example.com", DEMO_STAFF_PASSWORD)
    for endpoint, (name, path) in sorted(lists.items()):
        page.goto(f"{path}?{NOTHING[endpoint].format(quiet_sku=quiet_sku)}")
        empty = page.locator(f"#{name}-empty")
        assert empty.is_visible(), f"{path}: no empty state for {NOTHING[endpoint]}"
        said = empty.inner_text()
        assert not any(words in said for words in NOTHING_YET), f"{path}?{NOTHING[endpoint]} says “{said}”"
        assert empty.locator(f"a[href='{path}']").count() == 1, f"{path}: no way to clear the filters in “{said}”"
