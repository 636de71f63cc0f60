"""In Chromium: the warehouse uploads the carrier's label file from the orders list, reads
the dry run, applies it and sees each order shipped, then ticks orders on the list and
downloads their packing slips as one PDF; support marks a mixed selection processing
and reads which orders were refused and why."""
from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from console.demo.builders import ensure_shipping_options
from console.extensions import db
from console.models.order import Order
from tests.conftest import assert_accessible, browser_login
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

    # The day's slips: tick the two shipped orders on the list, one PDF with a page each.
    page.goto("/orders?status=shipped")
    for order_id in ids:
        page.check(f"#pick-{order_id}")
    with page.expect_download() as download:
        page.click("#bulk-slips")
    reader = PdfReader(io.BytesIO(open(download.value.path(), "rb").read()))
    assert len(reader.pages) == 2
    assert sorted(next(n for n in numbers[:2] if n in p.extract_text()) for p in reader.pages) == sorted(numbers[:2])


def test_support_marks_a_mixed_selection_processing(app, auth, page):
    auth.create("support")
    with app.app_context():
        confirmed = [order_with_stock("confirmed")[0].order for _ in range(2)]
        pending = order_with_stock("pending")[0].order
        chosen = [(o.id, o.order_number) for o in confirmed + [pending]]
        db.session.commit()
    browser_login(page, "support@staff.test")
    page.goto("/orders")
    page.check("#select-all-orders")  # every order on the page
    assert page.locator("input[name=order_id]:checked").count() == 3
    page.click("#bulk-processing")
    # It asks first, naming how many are ticked.
    assert "Mark the 3 ticked order(s) processing?" in page.inner_text("#confirm-message")
    assert_accessible(page)
    page.click("#confirm-yes")
    page.wait_for_selector("#bulk-done")
    assert page.locator("#bulk-done a").count() == 2 and page.locator("#bulk-refused a").count() == 1
    refused = page.inner_text("#bulk-refused")
    assert chosen[2][1] in refused and "pending; it cannot become processing" in refused
    with app.app_context():
        assert [db.session.get(Order, i).status for i, _ in chosen] == ["processing", "processing", "pending"]
    page.click(f"#bulk-done a >> text={chosen[0][1]}")
    page.wait_for_selector("#invoice-link")
    page.click("#invoice-link")
    page.wait_for_selector("#invoice-totals")
    assert chosen[0][1] in page.inner_text("#invoice-order-number")
