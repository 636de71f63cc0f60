"""The carrier file screen: upload, dry run, Apply (twice ships once), result CSV,
refusals on the form, and who may use it."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from console.demo.builders import ensure_shipping_options
from console.extensions import db
from console.models.order import Order
from console.models.shipping import Shipment
from tests.workflows.test_orders import order_with_stock


def upload(client, text: str | bytes, name="labels.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post("/orders/carrier-file", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


@pytest.fixture
def two_orders(app):
    with app.app_context():
        ensure_shipping_options()
        made = [order_with_stock("processing")[0].order, order_with_stock("cancelled")[0].order]
        return [(o.id, o.order_number) for o in made]


def test_upload_dry_run_apply_twice_and_result(app, auth, client, two_orders):
    auth.login("warehouse")
    (ship_id, ship_no), (_, cancelled_no) = two_orders
    response = upload(client, f"order_number,carrier,tracking_number\n{ship_no},ups,1ZVIEW000001\n"
                              f"{cancelled_no},ups,1ZVIEW000002\nORD-NONE,ups,1ZVIEW000003\n")
    assert response.status_code == 303
    url = response.headers["Location"]
    html = client.get(url).get_data(as_text=True)
    assert "dry run, nothing shipped" in html and "Apply: ship 1 order" in html
    assert "not shippable" in html and "unknown order" in html and "the order is cancelled" in html
    applied = client.post(url + "/apply")
    text = applied.get_data(as_text=True)
    assert applied.status_code == 200 and 'id="carrier-state">applied' in text and ">shipped<" in text
    with app.app_context():
        assert db.session.get(Order, ship_id).status == "shipped"
    again = client.post(url + "/apply").get_data(as_text=True)
    assert "already shipped with this tracking number: skipped" in again
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Shipment)
                                 .where(Shipment.order_id == ship_id)) == 1
    rows = list(csv.reader(io.StringIO(client.get(url + "/result.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["line", "order_number"] and rows[1][1] == ship_no and len(rows) == 4


@pytest.mark.parametrize("data,name,message", [
    (b"PK\x03\x04zip", "labels.xlsx", "spreadsheet workbook"),
    (b"sku,quantity\nA,1\n", "labels.csv", "order_number,carrier,tracking_number"),
    (b"order_number,carrier,tracking_number\n\x00,ups,1Z\n", "labels.csv", "NUL"),
    (b"order_number,carrier,tracking_number\n@SUM(1),ups,1ZAAAAA\n", "labels.csv", "formulas"),
])
def test_bad_files_are_refused_on_the_form(auth, client, data, name, message):
    auth.login("warehouse")
    response = upload(client, data, name)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html and 'id="carrier-form"' in html


def test_no_file_and_bad_ids(auth, client):
    auth.login("warehouse")
    assert client.post("/orders/carrier-file", data={}).status_code == 422
    assert client.get("/orders/carrier-file/%00abc").status_code in (400, 404)
    assert client.get("/orders/carrier-file/" + "x" * 5000).status_code in (400, 404)
    assert client.get("/orders/carrier-file/" + "x" * 60).status_code == 404
    assert client.post("/orders/carrier-file/nope/apply").status_code == 404


def test_only_staff_who_ship_may_use_it(auth, client):
    auth.login("marketing")
    assert client.get("/orders/carrier-file").status_code == 403
    assert upload(client, "order_number,carrier,tracking_number\nA,ups,1ZAAAAA\n").status_code == 403
