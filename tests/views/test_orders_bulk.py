"""Bulk actions on the orders list: ticked orders or all those matching the filters
(bounded), marked processing one by one through the order workflow, exported as CSV, or
printed as one PDF of packing slips."""
from __future__ import annotations

import csv
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.order import Order, OrderStatusHistory
from console.workflows import orders as actions
from tests.views.test_orders import build_orders


def statuses(app, ids):
    with app.app_context():
        return {o.id: o.status for o in db.session.scalars(select(Order).where(Order.id.in_(ids)))}


@pytest.fixture
def mixed(app):
    """Orders in every status (pending, confirmed, processing, shipped, delivered, …)."""
    with app.app_context():
        made = build_orders(10)
        return [(o.id, o.order_number, o.status) for o in made]


def test_a_mixed_selection_changes_the_allowed_orders_and_says_why_the_others_were_refused(app, auth, client, mixed):
    staff_id = auth.login("support")
    confirmed = [m for m in mixed if m[2] == "confirmed"]
    others = [m for m in mixed if m[2] in ("pending", "shipped", "delivered")]
    ids = [m[0] for m in confirmed + others]
    response = client.post("/orders/bulk", data={"action": "processing", "scope": "selected", "order_id": ids})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"{len(confirmed)} done, {len(others)} refused" in html
    done = re.search(r'id="bulk-done">(.*?)</ul>', html, re.S).group(1)
    refused = re.search(r'id="bulk-refused">(.*?)</ul>', html, re.S).group(1)
    for order_id, number, status in confirmed:
        assert f'href="/orders/{number}"' in done
    for order_id, number, status in others:
        assert f'href="/orders/{number}"' in refused and f"Order {number} is {status}" in refused
    now = statuses(app, [m[0] for m in mixed])
    assert all(now[i] == "processing" for i, _, _ in confirmed)
    assert all(now[i] == status for i, _, status in others)  # the refused ones are as they were
    with app.app_context():
        for order_id, _, _ in confirmed:
            [history] = db.session.scalars(select(OrderStatusHistory).where(
                OrderStatusHistory.order_id == order_id, OrderStatusHistory.status == "processing")).all()
            assert history.changed_by != "system" and history.reason
        audited = [r for r in db.session.scalars(select(SecurityAuditLog).where(
            SecurityAuditLog.action == "order.processing"))]
        assert {r.metadata_["entity_id"] for r in audited} == {i for i, _, _ in confirmed}
        assert {r.user_id for r in audited} == {history.changed_by}


def test_all_matching_the_filters_acts_on_exactly_those_orders(app, auth, client, mixed):
    auth.login("support")
    html = client.get("/orders?status=confirmed").get_data(as_text=True)
    confirmed = [m for m in mixed if m[2] == "confirmed"]
    assert f"Or all {len(confirmed)} orders matching the filters" in html
    assert f'data-confirm="Mark all {len(confirmed)} orders matching these filters processing?' in html
    filters = re.search(r'name="filters" value="([^"]*)"', html).group(1).replace("&amp;", "&")
    response = client.post("/orders/bulk", data={"action": "processing", "scope": "matching", "filters": filters,
                                                 "count": str(len(confirmed))})
    assert response.status_code == 200
    now = statuses(app, [m[0] for m in mixed])
    assert [i for i, s in now.items() if s == "processing"] and all(
        now[i] == "processing" for i, _, _ in confirmed)
    assert sum(1 for s in now.values() if s == "processing") == sum(
        1 for m in mixed if m[2] in ("confirmed", "processing"))


def test_all_matching_is_refused_above_the_bound_naming_the_count_and_the_bound(app, auth, client, mixed,
                                                                                monkeypatch):
    auth.login("support")
    monkeypatch.setattr(actions, "MAX_BULK", 3)
    from console.views import orders as views
    monkeypatch.setitem(views.BULK_LIMITS, "processing", 3)
    html = client.get("/orders").get_data(as_text=True)
    assert "10 orders match the filters: actions on all of them take at most 3" in html
    response = client.post("/orders/bulk", data={"action": "processing", "scope": "matching", "filters": "",
                                                 "count": "10"})
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "10 orders match these filters" in text and "at most 3 at once" in text
    assert statuses(app, [m[0] for m in mixed]) == {i: s for i, _, s in mixed}  # nothing changed


def test_all_matching_is_refused_when_the_count_changed_since_the_page(app, auth, client, mixed):
    auth.login("support")
    response = client.post("/orders/bulk", data={"action": "processing", "scope": "matching",
                                                 "filters": "status=confirmed", "count": "7"})
    assert response.status_code == 409 and "not the 7 the page showed" in response.get_data(as_text=True)


@pytest.mark.parametrize("ids,message", [
    ([], "Tick at least one order"),
    (["not-an-order"], "No order has the id not-an-order"),
    (["x" * 100], "is not an id"),
    (["bad\x00id"], ""),
])
def test_bad_ids_answer_400_with_a_message(auth, client, mixed, ids, message):
    auth.login("support")
    response = client.post("/orders/bulk", data={"action": "processing", "scope": "selected", "order_id": ids})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_roles_decide_the_bulk_actions(auth, client, mixed):
    auth.login("warehouse")  # may print slips, may not change a status
    ids = [m[0] for m in mixed[:2]]
    refused = client.post("/orders/bulk", data={"action": "processing", "scope": "selected", "order_id": ids})
    assert refused.status_code == 403
    html = client.get("/orders").get_data(as_text=True)
    assert 'id="bulk-slips"' in html and 'id="bulk-processing"' not in html
    assert client.post("/orders/bulk", data={"action": "slips", "scope": "selected",
                                             "order_id": ids}).status_code == 200


def test_export_of_the_selection_has_the_list_export_columns(app, auth, client, mixed):
    auth.login("support")
    chosen = mixed[:3]
    response = client.post("/orders/bulk", data={"action": "export", "scope": "selected",
                                                 "order_id": [m[0] for m in chosen]})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    full = list(csv.reader(io.StringIO(client.get("/orders/export.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == full[0]
    assert sorted(r[0] for r in rows[1:]) == sorted(m[1] for m in chosen)
    assert all(r in full[1:] for r in rows[1:])  # the same cells as the list's export


def test_a_batch_of_packing_slips_is_one_pdf_with_a_page_per_order(auth, client, mixed):
    auth.login("warehouse")
    chosen = mixed[:4]
    response = client.post("/orders/bulk", data={"action": "slips", "scope": "selected",
                                                 "order_id": [m[0] for m in chosen]})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages) == len(chosen)
    for page, (_, number, _) in zip(reader.pages, chosen):
        text = page.extract_text()
        assert number in text and "MUG-1" in text and "Packing slip" in text


def test_the_slips_batch_is_bounded(auth, client, mixed, monkeypatch):
    from console.views import orders as views
    monkeypatch.setitem(views.BULK_LIMITS, "slips", 2)
    auth.login("warehouse")
    response = client.post("/orders/bulk", data={"action": "slips", "scope": "selected",
                                                 "order_id": [m[0] for m in mixed[:3]]})
    assert response.status_code == 409 and "at most 2 at once" in response.get_data(as_text=True)
