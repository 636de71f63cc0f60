"""The Activity screen: the audit trail filtered, paged by keyset, exported as CSV."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from console import audit
from console.screens.activity import ACTIVITY

EXPORT_HEADER = list(ACTIVITY.export_header)
from console.demo.builders import make_coupon, make_customer, make_order, make_product, make_staff
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.staff import load_staff
from tests.conftest import STAFF_PASSWORD

HTMX = {"HX-Request": "true"}
DAY = datetime(2030, 5, 10, 12, 0, tzinfo=timezone.utc)


def log(actor, action, entity, entity_id, when, **kwargs):
    row = audit.record(actor, action, entity, entity_id, **kwargs)
    row.created_at = when
    return row


@pytest.fixture
def trail(app):
    """Two staff members and their changes over three days: to an order, an order since
    gone (order-2), a staff member and a product."""
    with app.app_context():
        admin = make_staff("admin", "admin@staff.test", STAFF_PASSWORD)
        support = make_staff("support", "alice@staff.test", STAFF_PASSWORD)
        customer, _ = make_customer("shopper@example.com")
        lamp = make_product("LAMP-1", "Desk lamp", "20.00", stock=5)
        order = make_order(customer, [(lamp, 1)], order_number="ORD-ACT-1").order
        db.session.commit()
        a = load_staff(admin.id, ip="10.0.0.1")
        s = load_staff(support.id, ip="10.0.0.2")
        log(s, "order.cancelled", "order", order.id, DAY - timedelta(days=2),
            before={"status": "confirmed"}, after={"status": "cancelled"}, reason="customer asked")
        log(s, "order.note_added", "order", "order-2", DAY - timedelta(days=1), after={"note_id": "n1"})
        log(a, "staff.locked", "staff", support.id, DAY, before={"locked_until": None},
            after={"locked_until": "9999-12-31"}, email="alice@staff.test")
        log(None, "staff.created", "staff", admin.id, DAY + timedelta(hours=1), after={"email": "admin@staff.test"})
        log(a, "inventory.changed", "product", lamp.id, DAY + timedelta(hours=2),
            before={"quantity": 5, "reserved": 0}, after={"quantity": 7, "reserved": 0}, order_id=order.id,
            payment_id="pay-gone")
        db.session.commit()
        return {"admin": admin.id, "support": support.id, "order": order.id, "product": lamp.id}


def sign_in(client):
    assert client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD}).status_code == 302


def actions_in(html: str) -> list[str]:
    return [part.split("</span>")[0] for part in html.split('<td><span class="mono">')[1:]]


def test_the_trail_newest_first_with_emails_changes_and_ips(trail, client):
    sign_in(client)
    response = client.get("/activity")
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert actions_in(html)[:5] == ["inventory.changed", "staff.created", "staff.locked",
                                     "order.note_added", "order.cancelled"]
    assert "alice@staff.test" in html and "10.0.0.2" in html
    assert ">system<" in html
    # before -> after, key by key; unchanged keys are left out
    assert "quantity</span>: <span class=\"text-danger-emphasis\">5</span> → <span class=\"text-success-emphasis\">7</span>" in html
    assert "reserved</span>:" not in html
    assert "reason: customer asked" in html


def test_entities_show_what_they_are_and_link_to_their_pages(trail, client):
    sign_in(client)
    html = client.get("/activity").get_data(as_text=True)
    assert (f'<a class="d-block text-truncate" href="/staff?q=alice%40staff.test" title="id {trail["support"]}">'
            "alice@staff.test</a>") in html
    assert (f'<a class="d-block text-truncate" href="/orders/{trail["order"]}" title="id {trail["order"]}">'
            "ORD-ACT-1</a>") in html
    assert f'href="/products/{trail["product"]}" title="id {trail["product"]}">LAMP-1 · Desk lamp</a>' in html
    # Ids among the details read as what they are too.
    assert f'order_id: <a href="/orders/{trail["order"]}">ORD-ACT-1</a>' in html
    assert "payment_id: <span" in html and "missing (id pay-gone)" in html
    # An order since gone: said so, not linked.
    assert "missing (id order-2)" in html and 'href="/orders/order-2"' not in html


@pytest.mark.parametrize("query, expected", [
    ("staff=ALICE", ["order.note_added", "order.cancelled"]),
    ("action=order.", ["order.note_added", "order.cancelled"]),
    ("action=staff.locked", ["staff.locked"]),
    ("entity=order", ["order.note_added", "order.cancelled"]),
    ("entity=order&entity_id=order-2", ["order.note_added"]),
    ("from=2030-05-09&to=2030-05-09", ["order.note_added"]),
    ("from=2030-05-10", ["inventory.changed", "staff.created", "staff.locked"]),
    ("to=2030-05-08", ["order.cancelled"]),
    ("staff=nobody", []),
])
def test_filters(trail, client, query, expected):
    sign_in(client)
    html = client.get(f"/activity?{query}", headers=HTMX).get_data(as_text=True)
    assert actions_in(html) == expected
    assert "<html" not in html


def test_bad_filters_get_a_clear_400(trail, client):
    sign_in(client)
    response = client.get("/activity?from=10/05/2030")
    assert response.status_code == 400 and b"use YYYY-MM-DD" in response.data
    assert client.get("/activity?from=2030-05-10&to=2030-05-01").status_code == 400
    assert client.get("/activity?cursor=garbage").status_code == 400


def test_keyset_pages_and_constant_queries(trail, client, count_queries):
    sign_in(client)
    seen = []
    url = "/activity?size=2"
    start = count_queries.count
    first_page_queries = None
    while url:
        html = client.get(url, headers=HTMX).get_data(as_text=True)
        if first_page_queries is None:
            first_page_queries = count_queries.count - start
        seen += actions_in(html)
        url = html.split('id="activity-next"')[1].split('href="')[1].split('"')[0].replace("&amp;", "&") \
            if 'id="activity-next"' in html else None
    assert len(seen) == 5 and len(set(seen)) == 5
    assert first_page_queries <= 8


def test_one_query_per_database_for_a_whole_page(app, client, count_queries):
    """Fifty changes to orders, products, coupons and customers: their numbers, SKUs,
    codes and emails come from one query per database for the whole page."""
    with app.app_context():
        admin = make_staff("admin", "admin@staff.test", STAFF_PASSWORD)
        customer, _ = make_customer("many@example.com")
        db.session.commit()
        actor = load_staff(admin.id, ip="10.0.0.1")
        for i in range(15):
            product = make_product(f"SKU-{i:02}", f"Product {i}", "5.00", stock=10)
            order = make_order(customer, [(product, 1)], order_number=f"ORD-{i:04}").order
            coupon = make_coupon(f"CODE{i:02}")
            log(actor, "order.cancelled", "order", order.id, DAY + timedelta(minutes=i))
            log(actor, "inventory.changed", "product", product.id, DAY + timedelta(minutes=i, seconds=1))
            log(actor, "coupon.updated", "coupon", coupon.id, DAY + timedelta(minutes=i, seconds=2))
        for i in range(5):
            log(actor, "customer.locked", "user", customer.id, DAY + timedelta(hours=1, minutes=i))
        db.session.commit()
    sign_in(client)
    count_queries.statements.clear()
    html = client.get("/activity?size=50", headers=HTMX).get_data(as_text=True)
    assert len(actions_in(html)) == 50
    for i in range(15):
        assert f">ORD-{i:04}</a>" in html and f">SKU-{i:02} · Product {i}</a>" in html and f">CODE{i:02}</a>" in html
    assert ">many@example.com</a>" in html
    reads = {table: len([s for s in count_queries.statements if f"FROM {table} " in s + " "])
             for table in ("orders", "products", "coupons", "users")}
    assert reads["orders"] == 1 and reads["products"] == 1 and reads["coupons"] == 1
    assert reads["users"] <= 2  # the signed-in session's own check, and one for the page's people


def test_export_streams_exactly_the_filtered_rows(trail, client):
    sign_in(client)
    response = client.get("/activity/export.csv?action=order.")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="activity-')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == EXPORT_HEADER
    assert [r[2] for r in rows[1:]] == ["order.note_added", "order.cancelled"]
    cancelled = rows[2]
    assert cancelled[1] == "alice@staff.test"
    assert cancelled[3:7] == ["order", trail["order"], "ORD-ACT-1", "10.0.0.2"]
    assert cancelled[7] == '{"status": "confirmed"}' and cancelled[8] == '{"status": "cancelled"}'
    assert '"reason": "customer asked"' in cancelled[9]
    assert rows[1][5] == "missing (id order-2)"
    everything = client.get("/activity/export.csv").get_data(as_text=True)
    assert ",system,staff.created," in everything


def test_only_admins_read_the_trail(trail, app):
    client = app.test_client()
    client.post("/login", data={"email": "alice@staff.test", "password": STAFF_PASSWORD})
    assert client.get("/activity").status_code == 403
    assert client.get("/activity/export.csv").status_code == 403


def test_rows_written_by_other_services_render(app, client, trail):
    with app.app_context():
        db.session.add(SecurityAuditLog(user_id=None, action="login.password_changed", ip_address=None,
                                        metadata_=["not", "a", "dict"], created_at=DAY + timedelta(hours=3)))
        db.session.add(SecurityAuditLog(user_id=None, action="session.revoked", metadata_=None,
                                        created_at=DAY + timedelta(hours=4)))
        db.session.commit()
    sign_in(client)
    response = client.get("/activity")
    assert response.status_code == 200
    assert actions_in(response.get_data(as_text=True))[:2] == ["session.revoked", "login.password_changed"]


def test_changes_read_key_by_key_when_only_one_side_was_recorded():
    from console.screens.activity import ActivityRow, Change
    from console.models.auth import SecurityAuditLog

    created = ActivityRow(SecurityAuditLog(metadata_={"before": None, "after": {"amount": "24.00", "status": "PENDING"}}), None)
    assert created.changes == [Change("amount", None, "24.00"), Change("status", None, "PENDING")]
    removed = ActivityRow(SecurityAuditLog(metadata_={"before": {"role": "finance"}, "after": None}), None)
    assert removed.changes == [Change("role", "finance", None)]
    assert ActivityRow(SecurityAuditLog(metadata_={}), None).changes == []
