"""In Chromium: the warehouse uploads the carrier's label file from the orders list, reads
the dry run, applies it and sees each order shipped."""
from __future__ import annotations

import pytest

from console.demo.builders import ensure_shipping_options
from console.extensions import db
from console.models.order import Order
from tests.conftest import browser_login
from tests.workflows.test_orders import order_with_stock

pytestmark = pytest.mark.browser


def test_warehouse_ships_from_a_carrier_file(app, auth, page, tmp_path):
    auth.create("warehouse")
    with app.app_context():
        ensure_shipping_options()
        ready = [order_with_stock("processing")[0].order for _ in range(2)]
        cancelled = order_with_stock("cancelled")[0].order
        numbers = [o.order_number for o in ready] + [cancelled.order_number]
        ids = [o.id for o in ready]
        db.session.commit()

    csv_file = tmp_path / "ups-labels.csv"
    csv_file.write_text("order_number,carrier,tracking_number,service\n"
                        f"{numbers[0]},ups,1ZBROWSER0001,express\n{numbers[1]},ups,1ZBROWSER0002,\n"
                        f"{numbers[2]},ups,1ZBROWSER0003,standard\n")
    browser_login(page, "warehouse@staff.test")
    page.goto("/orders")
    page.click("#carrier-link")
    page.set_input_files("#carrier-file", str(csv_file))
    page.click("#carrier-preview")
    page.wait_for_selector("#carrier-rows")
    assert "dry run" in page.inner_text("#carrier-state")
    rows = page.locator("#carrier-rows tbody tr")
    assert rows.count() == 3
    assert "will be shipped" in rows.nth(0).inner_text() and "not shippable" in rows.nth(2).inner_text()
    with app.app_context():
        assert db.session.get(Order, ids[0]).status == "processing"  # the dry run ships nothing

    page.click("#carrier-apply")
    assert "Mark 2 orders shipped" in page.inner_text("#confirm-message")
    page.click("#confirm-yes")
    page.wait_for_selector("#flashes .alert-success")
    assert "Applied: 2 orders shipped" in page.inner_text("#flashes")
    assert page.inner_text("#carrier-state") == "applied"
    assert page.locator("#carrier-rows td.outcome", has_text="shipped").count() == 2
    with app.app_context():
        assert [(o.status, o.tracking_number) for o in (db.session.get(Order, i) for i in ids)] == [
            ("shipped", "1ZBROWSER0001"), ("shipped", "1ZBROWSER0002")]
