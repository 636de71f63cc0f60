"""The orders list, its filters and export, the order page and its actions over HTTP."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.demo.builders import (ensure_email_templates, ensure_shipping_options, make_coupon, make_customer,
                                   make_notification, make_order, make_product, make_return, make_shipment,
                                   use_coupon)
from console.extensions import db
from console.models.order import Order, OrderItem, OrderNote
from console.models.product import Product, ProductInventory
from console.models.shipping import Shipment
from console.models.types import utcnow
from tests.conftest import STAFF_PASSWORD
from tests.second_app import app_with_unreachable

HTMX = {"HX-Request": "true", "HX-Target": "orders-table"}
ROW = re.compile(r'<tr data-order="([^"]+)"')


def listed(response) -> list[str]:
    """Order numbers in the table, in the order shown."""
    return ROW.findall(response.get_data(as_text=True))


def build_orders(count: int, *, customers: int = 4) -> list[Order]:
    """``count`` orders over a few customers, newest last, in every status, with payments;
    shipped ones with a shipment, delivered ones with an open return."""
    options = ensure_shipping_options()
    method = options.by_service("standard")
    carrier = options.carrier_of(method)
    people = [make_customer(f"buyer{n}@example.com", f"Buyer{n}", "Smith")[0] for n in range(customers)]
    product = make_product("MUG-1", "Blue mug", "12.50", stock=10_000, reserved=0)
    start = utcnow() - timedelta(days=60)
    made = []
    cycle = ("pending", "confirmed", "processing", "shipped", "delivered")
    for n in range(count):
        status = cycle[n % len(cycle)]
        bundle = make_order(people[n % customers], [(product, 1 + n % 3)], status=status,
                            created_at=start + timedelta(minutes=10 * n))
        if status in ("shipped", "delivered"):
            make_shipment(bundle.order, carrier, method, status="delivered" if status == "delivered" else "in_transit")
        if status == "delivered":
            make_return(bundle.order, [(bundle.items[0], 1)], status="approved",
                        requested_at=bundle.order.created_at + timedelta(days=5))
        made.append(bundle.order)
    db.session.commit()
    return made


# --- the list ---------------------------------------------------------------------------------

def test_list_joins_every_database(app, auth, client):
    auth.login("support")
    with app.app_context():
        orders = build_orders(5, customers=1)
        numbers = [o.order_number for o in orders]
    response = client.get("/orders")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.vary
    assert listed(response) == numbers[::-1]  # newest first
    assert "Buyer0 Smith" in html and "buyer0@example.com" in html
    assert "succeeded" in html and "MOCK" in html  # payment_db
    assert "in transit" in html and "USPS" in html  # shipping_db
    assert "RMA-" in html  # return_db: the delivered order's open return
    assert "1–5 of about 5 orders" in html
    assert 'id="export-csv"' in html


def test_list_issues_the_same_number_of_queries_at_any_page_size(app, auth, client, count_queries):
    auth.login("support")
    with app.app_context():
        build_orders(210)
    client.get("/orders?size=10")  # sign-in state is loaded once either way; warm it up
    counts = {}
    for size in (10, 200):
        count_queries.statements.clear()
        response = client.get(f"/orders?size={size}")
        assert response.status_code == 200 and len(listed(response)) == size
        counts[size] = count_queries.count
    assert counts[10] == counts[200], counts
    count_queries.statements.clear()
    assert len(listed(client.get("/orders?size=200", headers=HTMX))) == 200
    assert count_queries.count == counts[200]


def test_htmx_gets_the_table_and_a_plain_request_the_page(auth, client):
    auth.login("support")
    full = client.get("/orders?status=pending")
    partial = client.get("/orders?status=pending", headers=HTMX)
    assert "<html" in full.get_data(as_text=True) and 'id="order-filters"' in full.get_data(as_text=True)
    body = partial.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<div id="orders-table">')
    assert "No orders match these filters." in body
    assert "HX-Request" in partial.vary and "HX-Request" in full.vary


def test_keyset_pages_follow_each_other(app, auth, client):
    auth.login("support")
    with app.app_context():
        numbers = [o.order_number for o in build_orders(7)][::-1]
    first = client.get("/orders?size=3")
    assert listed(first) == numbers[:3]
    html = first.get_data(as_text=True)
    assert "First page" not in html
    next_url = re.search(r'id="next-page" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "cursor=" in next_url and "size=3" in next_url
    second = client.get(next_url)
    assert listed(second) == numbers[3:6]
    assert "4–6 of about 7 orders" in second.get_data(as_text=True)
    assert 'id="first-page"' in second.get_data(as_text=True)
    third_url = re.search(r'id="next-page" href="([^"]+)"', second.get_data(as_text=True)).group(1)
    third = client.get(third_url.replace("&amp;", "&"))
    assert listed(third) == numbers[6:] and 'id="next-page"' not in third.get_data(as_text=True)


@pytest.fixture
def varied(app):
    """Six orders that differ in one filterable way each."""
    with app.app_context():
        ensure_shipping_options()
        jane, _ = make_customer("jane.roe@example.com", "Jane", "Roe")
        omar, _ = make_customer("omar@example.net", "Omar", "Haddad")
        mug = make_product("MUG-1", "Blue mug", "10.00")
        lamp = make_product("LAMP-9", "Desk lamp", "80.00")
        old = utcnow() - timedelta(days=40)
        made = {
            "jane_mug": make_order(jane, [(mug, 1)], status="pending", created_at=old),
            "jane_lamp": make_order(jane, [(lamp, 1)], status="processing", created_at=old + timedelta(days=10)),
            "omar_mug": make_order(omar, [(mug, 2)], status="delivered", created_at=old + timedelta(days=20)),
            "omar_eur": make_order(omar, [(lamp, 2)], status="confirmed", currency="EUR",
                                   created_at=old + timedelta(days=30)),
            "omar_failed": make_order(omar, [(mug, 5)], status="pending", payment_status="failed",
                                      created_at=old + timedelta(days=35)),
        }
        coupon = make_coupon("SPRING10")
        use_coupon(coupon, made["jane_lamp"].order)
        db.session.commit()
        return {name: b.order.order_number for name, b in made.items()}


@pytest.mark.parametrize("query,expected", [
    ("status=pending", {"jane_mug", "omar_failed"}),
    ("payment_status=failed", {"omar_failed"}),
    ("payment_status=paid", {"jane_lamp", "omar_mug", "omar_eur"}),
    ("currency=eur", {"omar_eur"}),
    ("customer=JANE.ROE@", {"jane_mug", "jane_lamp"}),
    ("customer=omar+haddad", {"omar_mug", "omar_eur", "omar_failed"}),
    ("customer=nobody-at-all", set()),
    ("sku=lamp-9", {"jane_lamp", "omar_eur"}),
    ("coupon=spring10", {"jane_lamp"}),
    ("coupon=NOSUCHCODE", set()),
    ("total_min=50&total_max=100", {"jane_lamp", "omar_failed"}),
    ("total_min=150.5", {"omar_eur"}),
])
def test_filters(auth, client, varied, query, expected):
    auth.login("support")
    response = client.get(f"/orders?{query}", headers=HTMX)
    assert response.status_code == 200
    assert set(listed(response)) == {varied[name] for name in expected}


def test_a_sku_on_many_orders_filters_them_all_as_on_few(auth, client, varied, monkeypatch):
    """Past MAX_MATCHES orders the SKU filter is a subquery instead of a list of ids: the
    same orders, and still with the other filters."""
    from console.screens import orders

    monkeypatch.setattr(orders, "MAX_MATCHES", 1)
    auth.login("support")
    for query, expected in (("sku=MUG-1", {"jane_mug", "omar_mug", "omar_failed"}),
                            ("sku=mug-1&status=pending", {"jane_mug", "omar_failed"}),
                            ("sku=NO-SUCH-SKU", set())):
        response = client.get(f"/orders?{query}", headers=HTMX)
        assert set(listed(response)) == {varied[name] for name in expected}, query


@pytest.mark.postgres_only
def test_a_rare_sku_reads_its_orders_by_id_not_by_walking_every_order(app, auth, client, varied):
    """A SKU on few orders (or none, as typed by mistake) is looked up in the SKU's index
    and its orders read by their ids; walking the orders by date looking for it read every
    order for a SKU nobody bought (5.5 s at 1,000,000 orders)."""
    from tests.screens.test_search import index_scans, plans, statements_of

    auth.login("support")
    for sku in ("LAMP-9", "NO-SUCH-SKU"):
        statements = statements_of(app, lambda: client.get(f"/orders?sku={sku}"))
        found = [p for p in plans([s for s in statements if "order_items" in s[1] and "upper" in s[1]])]
        assert found and all("ix_order_items_sku_order_id" in index_scans(p) for p in found), found
        # The page and its count name the ids, not a subquery over the items that the
        # server could only answer by walking the orders (the test tables are too small
        # for their plans to say which it would pick at scale).
        reads = [s[1] for s in statements if "FROM orders" in s[1]]
        assert reads and not [text for text in reads if "order_items" in text], reads


def test_filters_by_date_range_and_order_number(app, auth, client, varied):
    auth.login("support")
    with app.app_context():
        created = {o.order_number: o.created_at.date() for o in db.session.scalars(select(Order))}
    day = created[varied["jane_lamp"]]
    response = client.get(f"/orders?created_from={day}&created_to={day}")
    assert listed(response) == [varied["jane_lamp"]]
    response = client.get(f"/orders?q={varied['omar_mug'][:-2].lower()}")
    assert varied["omar_mug"] in listed(response)
    assert client.get(f"/orders?q={varied['omar_mug']}").status_code == 200


@pytest.mark.parametrize("query,message", [
    ("status=lost", "Status “lost” is not one of"),
    ("created_from=2024-13-01", "is not a date"),
    ("created_from=2025-02-01&created_to=2025-01-01", "swap the dates"),
    ("total_min=abc", "is not an amount"),
    ("total_min=NaN", "is not an amount"),
    ("total_min=50&total_max=5", "is more than"),
    ("currency=EURO", "three-letter code"),
    ("customer=a", "at least 3 characters"),
    ("customer=qx", "at least 3 characters"),
    ("cursor=not-a-cursor", "not valid any more"),
])
def test_bad_filters_are_400_with_a_message(auth, client, query, message):
    auth.login("support")
    for headers in ({}, HTMX):
        response = client.get(f"/orders?{query}", headers=headers)
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert 'id="filter-errors"' in html and message in html
    if "cursor" not in query:  # the export has no pages
        assert client.get(f"/orders/export.csv?{query}").status_code == 400


def test_list_needs_orders_view(auth, client):
    auth.login("marketing")
    assert client.get("/orders").status_code == 403
    assert client.get("/orders/export.csv").status_code == 403


# --- export ------------------------------------------------------------------------------------

def test_export_streams_exactly_the_filtered_rows(app, auth, client):
    auth.login("support")
    with app.app_context():
        orders = build_orders(12)
        pending = {o.order_number for o in orders if o.status == "pending"}
        sneaky, _ = make_customer("sneaky@example.com", '=HYPERLINK("http://evil.example")', "+1")
        product = db.session.scalar(select(Product))
        extra = make_order(sneaky, [(product, 1)], status="pending").order
        pending.add(extra.order_number)
        db.session.commit()
        extra_number, extra_total = extra.order_number, extra.total_amount
    response = client.get("/orders/export.csv?status=pending")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert re.search(r'filename="orders-\d{4}-\d{2}-\d{2}\.csv"', response.headers["Content-Disposition"])
    text = response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["order_number", "created_at", "status", "payment_status"]
    assert {r[0] for r in body} == pending and len(body) == len(pending)
    assert all(r[2] == "pending" for r in body)
    sneaky_row = next(r for r in body if r[0] == extra_number)
    assert sneaky_row[header.index("customer_name")] == '\'=HYPERLINK("http://evil.example") +1'
    assert sneaky_row[header.index("total")] == str(extra_total)
    assert sneaky_row[header.index("payment_state")] == "pending"


def test_export_link_carries_the_filters(auth, client):
    auth.login("support")
    html = client.get("/orders?status=shipped&currency=USD").get_data(as_text=True)
    link = re.search(r'id="export-csv" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert link.startswith("/orders/export.csv?") and "status=shipped" in link and "currency=USD" in link


# --- the order page -------------------------------------------------------------------------------

@pytest.fixture
def full_order(app, auth):
    """A delivered order touching every database: coupon, shipment, return, notes, email."""
    staff_id = auth.create("support", "lead@staff.test")
    with app.app_context():
        options = ensure_shipping_options()
        method = options.by_service("express")
        customer, _ = make_customer("riley@example.com", "Riley", "Park", phone="+1 555 0100")
        mug = make_product("MUG-1", "Blue mug", "10.00")
        gone = make_product("GONE-1", "Retired vase", "30.00")
        coupon = make_coupon("WELCOME5", "fixed_amount", "5")
        bundle = make_order(customer, [(mug, 2), (gone, 1)], status="delivered", discount="5.00",
                            created_at=utcnow() - timedelta(days=20))
        order = bundle.order
        use_coupon(coupon, order)
        make_shipment(order, options.carrier_of(method), method, status="delivered")
        make_return(order, [(bundle.items[0], 1)], status="approved", staff_id=staff_id,
                    requested_at=order.created_at + timedelta(days=6))
        templates = ensure_email_templates()
        make_notification(customer.id, templates["order_shipped"],
                          {"order_number": order.order_number, "first_name": "Riley", "carrier": "FedEx",
                           "tracking_number": order.tracking_number},
                          key=f"order_shipped:{order.id}", created_at=order.shipped_at)
        db.session.add(OrderNote(order_id=order.id, note="Left at the back door", created_by=staff_id,
                                 is_internal=True, created_at=order.created_at + timedelta(days=5)))
        # The vase has since been deleted from the catalogue.
        db.session.execute(ProductInventory.__table__.delete().where(ProductInventory.product_id == gone.id))
        db.session.execute(Product.__table__.delete().where(Product.id == gone.id))
        db.session.commit()
        return order.id, order.order_number


def test_order_page_gathers_every_database_in_bounded_queries(auth, client, full_order, count_queries):
    order_id, number = full_order
    auth.login("support")
    count_queries.statements.clear()
    response = client.get(f"/orders/{number}")
    queries = count_queries.count
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    # The order's own data across nine databases (each read once or twice: rows and the
    # rows hanging off them joined), sign-in, and the returns panel's returned quantities;
    # the refunds panel reuses what the page read. It does not grow with items or events.
    assert queries <= 15, queries
    # items, the product as it is now, and the one that no longer exists
    assert "Blue mug" in html and "MUG-1" in html and "10.00 now" in html
    assert "Retired vase" in html and "no longer exists" in html
    # totals, address, coupon, customer, payment, shipment
    assert "−5.00" in html and "WELCOME5" in html
    assert "1 Main Street" in html and "Springfield" in html
    assert "Riley Park" in html and "riley@example.com" in html
    assert "succeeded" in html and "UPS" in html
    # one timeline across databases, each entry saying who did it
    timeline = html[html.index('id="order-timeline"'):]
    for text in ("Status shipped → delivered", "Charge SUCCEEDED", "Shipment created", "Tracking: delivered",
                 "Return RMA-", "Email ", "Your order " + number + " is on its way", "Internal note",
                 "Left at the back door", "by lead@staff.test", "by customer", "by order service"):
        assert text in timeline, text
    assert 'returns/_order_panel.html' not in html
    assert client.get(f"/orders/{order_id}").status_code == 200

    # More items, notes and products cost no more queries.
    with client.application.app_context():
        for n in range(4):
            product = make_product(f"EXTRA-{n}", f"Extra {n}", "3.00")
            db.session.add(OrderItem(order_id=order_id, product_id=product.id, product_name=product.name,
                                     product_sku=product.sku, unit_price=product.price, quantity=1,
                                     total_price=product.price, created_at=utcnow()))
            db.session.add(OrderNote(order_id=order_id, note=f"note {n}", created_by="system", is_internal=True,
                                     created_at=utcnow()))
        db.session.commit()
    count_queries.statements.clear()
    bigger = client.get(f"/orders/{number}")
    assert "Extra 3" in bigger.get_data(as_text=True)
    assert count_queries.count == queries


def test_order_page_reads_each_table_once_and_its_panels_read_nothing(auth, client, full_order, count_queries):
    _, number = full_order
    auth.login("support")
    count_queries.statements.clear()
    html = client.get(f"/orders/{number}").get_data(as_text=True)
    assert 'id="order-refunds"' in html and 'id="order-returns"' in html and "RMA-" in html
    reads = [re.search(r"\bFROM (\w+)", sql) for sql in count_queries.statements if sql.lstrip().upper().startswith("SELECT")]
    tables = [m.group(1) for m in reads if m]
    for table in ("payments", "refunds", "payment_transactions", "return_requests", "return_items",
                  "orders", "order_items", "shipments", "coupon_usage"):
        assert tables.count(table) <= 1, (table, tables)


def test_unknown_order_is_404(auth, client):
    auth.login("support")
    response = client.get("/orders/ORD-NOPE")
    assert response.status_code == 404 and "ORD-NOPE" in response.get_data(as_text=True)


def _sign_in(application, role="support"):
    client = application.test_client()
    response = client.post("/login", data={"email": f"{role}@staff.test", "password": STAFF_PASSWORD})
    assert response.status_code == 302
    return client


def test_payment_db_down_list_and_page_still_render(auth, full_order, database_urls):
    order_id, number = full_order
    auth.create("support")
    with app_with_unreachable(database_urls, "payment") as broken:
        client = _sign_in(broken)
        listing = client.get("/orders")
        html = listing.get_data(as_text=True)
        assert listing.status_code == 200 and number in html
        assert "payment data unavailable" in html and "payment_db" in html
        assert "Riley Park" in html and "UPS" in html  # the other databases still answer
        page = client.get(f"/orders/{number}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "payment data unavailable" in html
        assert "Blue mug" in html and "Shipment created" in html and "Internal note" in html
        export = client.get("/orders/export.csv")
        rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
        assert rows[1][rows[0].index("payment_state")] == "unavailable"
        assert rows[1][rows[0].index("carrier")] == "UPS"


# --- actions ------------------------------------------------------------------------------------

@pytest.fixture
def open_order(app):
    with app.app_context():
        ensure_shipping_options()
        customer, _ = make_customer("sam@example.com", "Sam", "Lee")
        mug = make_product("MUG-1", "Blue mug", "10.00", stock=10, reserved=2)
        order = make_order(customer, [(mug, 2)], status="pending", created_at=utcnow() - timedelta(days=2)).order
        db.session.commit()
        return order.id, order.order_number


def status_of(app, order_id):
    with app.app_context():
        return db.session.get(Order, order_id).status


def test_transition_over_htmx_swaps_the_order_body(app, auth, client, open_order):
    order_id, number = open_order
    auth.login("support")
    page = client.get(f"/orders/{number}").get_data(as_text=True)
    assert 'id="to-confirmed"' in page and 'id="to-delivered"' not in page
    response = client.post(f"/orders/{order_id}/status", data={"status": "confirmed", "reason": "paid by phone"},
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="order-body">')
    assert f"Order {number} is now confirmed." in html and "paid by phone" in html
    assert status_of(app, order_id) == "confirmed"


def test_refused_transition_is_409_with_the_reason(app, auth, client, open_order):
    order_id, number = open_order
    auth.login("support")
    response = client.post(f"/orders/{order_id}/status", data={"status": "delivered"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "cannot become delivered" in response.get_data(as_text=True)
    plain = client.post(f"/orders/{order_id}/status", data={"status": "delivered"})
    assert plain.status_code == 409 and "cannot become delivered" in plain.get_data(as_text=True)
    assert status_of(app, order_id) == "pending"


def test_plain_form_post_redirects_with_a_flash(app, auth, client, open_order):
    order_id, number = open_order
    auth.login("support")
    response = client.post(f"/orders/{order_id}/cancel", data={"reason": "customer asked"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/orders/{number}")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Order {number} cancelled" in html and "reserved stock released" in html
    assert status_of(app, order_id) == "cancelled"


def test_mark_shipped_over_http_and_duplicate_tracking(app, auth, client, open_order):
    order_id, number = open_order
    auth.login("support")
    client.post(f"/orders/{order_id}/status", data={"status": "confirmed"})
    form = {"carrier": "ups", "service_type": "standard", "tracking_number": "1Z12345E0205271688", "weight": "2.5"}
    response = client.post(f"/orders/{order_id}/ship", data=form, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Marked shipped: tracking number 1Z12345E0205271688" in html
    assert "Shipment created" in html and "Tracking: in transit" in html
    with app.app_context():
        shipment = db.session.scalar(select(Shipment))
        assert shipment.weight == Decimal("2.50") and shipment.order_id == order_id
        kim, _ = make_customer("kim@example.com", "Kim", "Ng")
        other = make_order(kim, [(db.session.scalar(select(Product)), 1)], status="processing").order
        db.session.commit()
        other_id = other.id
    again = client.post(f"/orders/{other_id}/ship", data=form, headers={"HX-Request": "true"})
    assert again.status_code == 409 and "already used by another shipment" in again.get_data(as_text=True)
    bad = client.post(f"/orders/{other_id}/ship", data={**form, "tracking_number": "NEW-123456", "weight": "heavy"},
                      headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "is not a number of kilograms" in bad.get_data(as_text=True)
    assert status_of(app, other_id) == "processing"


def test_notes_over_http(app, auth, client, open_order):
    order_id, number = open_order
    auth.login("support")
    response = client.post(f"/orders/{order_id}/notes", data={"note": "VIP customer", "visibility": "customer"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Note for the customer added." in response.get_data(as_text=True)
    assert "Note to customer" in response.get_data(as_text=True)
    empty = client.post(f"/orders/{order_id}/notes", data={"note": " "}, headers={"HX-Request": "true"})
    assert empty.status_code == 422 and "Write the note first." in empty.get_data(as_text=True)
    with app.app_context():
        assert [n.note for n in db.session.scalars(select(OrderNote))] == ["VIP customer"]


@pytest.mark.parametrize("role,path,allowed", [
    ("finance", "cancel", False), ("finance", "ship", False), ("warehouse", "ship", True),
    ("warehouse", "cancel", False), ("warehouse", "notes", False),
])
def test_actions_follow_permissions(app, auth, client, open_order, role, path, allowed):
    order_id, _ = open_order
    auth.login(role)
    response = client.post(f"/orders/{order_id}/{path}", data={"reason": "x", "note": "x", "carrier": "ups",
                                                               "service_type": "standard",
                                                               "tracking_number": "TRACK-77777"})
    if allowed:
        assert response.status_code == 409  # permitted, but a pending order can't ship
    else:
        assert response.status_code == 403
    assert status_of(app, order_id) == "pending"


def test_actions_need_the_csrf_token(app, auth, client, open_order):
    order_id, _ = open_order
    auth.login("support")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post(f"/orders/{order_id}/cancel", data={"reason": "no token"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400
    assert status_of(app, order_id) == "pending"


@pytest.mark.parametrize("down,query", [("order", ""), ("discount", "coupon=WELCOME5")])
def test_list_says_which_database_it_needs(auth, database_urls, down, query):
    auth.create("support")
    with app_with_unreachable(database_urls, down) as broken:
        client = _sign_in(broken)
        response = client.get(f"/orders?{query}", headers=HTMX)
        html = response.get_data(as_text=True)
        assert response.status_code == 503
        assert html.lstrip().startswith('<div id="orders-table">') and f"{down}_db is unavailable" in html


# --- sorting and Previous --------------------------------------------------------------------

def link(response, element_id: str) -> str | None:
    found = re.search(rf'id="{element_id}" href="([^"]+)"', response.get_data(as_text=True))
    return found.group(1).replace("&amp;", "&") if found else None


def test_sort_by_total_pages_both_ways_and_keeps_the_filters(app, auth, client):
    auth.login("support")
    with app.app_context():
        build_orders(9)
        everything = list(db.session.scalars(select(Order.order_number).order_by(Order.total_amount, Order.id)))
    first = client.get("/orders?sort=total&size=3")
    assert listed(first) == everything[:3]
    header = re.search(r'<th class="num" aria-sort="ascending">\s*<a[^>]*href="([^"]+)"', first.get_data(as_text=True))
    assert header and "sort=-total" in header.group(1)
    second = client.get(link(first, "next-page"))
    assert listed(second) == everything[3:6] and "sort=total" in link(second, "previous-page")
    third = client.get(link(second, "next-page"))
    assert listed(third) == everything[6:9] and link(third, "next-page") is None
    back = client.get(link(third, "previous-page"))
    assert listed(back) == everything[3:6] and "4–6 of about 9 orders" in back.get_data(as_text=True)
    start = client.get(link(back, "previous-page"))
    assert listed(start) == everything[:3] and link(start, "previous-page") is None
    assert "1–3 of about 9 orders" in start.get_data(as_text=True)
    filtered = client.get("/orders?sort=-total&status=shipped")
    assert "sort=-total" in link(filtered, "export-csv") and "status=shipped" in link(filtered, "export-csv")


def test_export_follows_the_sort(app, auth, client):
    auth.login("support")
    with app.app_context():
        build_orders(6)
        want = list(db.session.scalars(select(Order.order_number).order_by(Order.total_amount.desc(), Order.id.desc())))
    rows = list(csv.reader(io.StringIO(client.get("/orders/export.csv?sort=-total").get_data(as_text=True)
                                       .lstrip("\ufeff"))))
    assert [r[0] for r in rows[1:]] == want


@pytest.mark.parametrize("query, message", [
    ("sort=colour", "be sorted by “colour”"),
    ("sort=-total&cursor=" + "x", "not valid any more"),
])
def test_bad_sort_or_cursor_is_400(auth, client, query, message):
    auth.login("support")
    response = client.get(f"/orders?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_a_cursor_of_another_sort_is_refused(app, auth, client):
    auth.login("support")
    with app.app_context():
        build_orders(4)
    next_url = link(client.get("/orders?size=2"), "next-page")
    response = client.get(next_url + "&sort=total")
    assert response.status_code == 400 and "not valid any more" in response.get_data(as_text=True)


def shipped_orders(count: int) -> None:
    """``count`` shipped orders with varied totals, each with its shipment, so every page
    asks every database the same questions."""
    options = ensure_shipping_options()
    method = options.by_service("standard")
    customer = make_customer("many@example.com", "Many", "Orders")[0]
    product = make_product("MUG-1", "Blue mug", "12.50", stock=10_000, reserved=0)
    start = utcnow() - timedelta(days=30)
    for n in range(count):
        order = make_order(customer, [(product, 1 + n % 4)], status="shipped",
                           created_at=start + timedelta(hours=n)).order
        make_shipment(order, options.carrier_of(method), method)
    db.session.commit()


@pytest.mark.parametrize("sort", ["-created", "number", "-total", "status"])
def test_statements_per_page_do_not_grow_with_size_or_depth(app, auth, client, count_queries, sort):
    auth.login("support")
    with app.app_context():
        shipped_orders(12)
    counts = set()
    for size in (2, 5):
        url = f"/orders?sort={sort}&size={size}"
        while url:  # every page, Next to the end, and Previous from each
            count_queries.statements.clear()
            response = client.get(url, headers=HTMX)
            counts.add(count_queries.count)
            previous = link(response, "previous-page")
            if previous:
                count_queries.statements.clear()
                client.get(previous, headers=HTMX)
                counts.add(count_queries.count)
            url = link(response, "next-page")
    assert len(counts) == 1


def test_export_fast_path_writes_every_row_with_the_other_databases_filled(app, auth, client, monkeypatch):
    """The export's fast path (plain tuples, batched lookups) over several batches: N
    orders give N lines, the cross-database columns are filled, and every cell is what
    the row-by-row path writes."""
    from dataclasses import replace

    from console.demo.seed import seed_demo
    from console.exports import csv_lines
    from console.screens import orders as screen

    monkeypatch.setattr(screen, "EXPORT_BATCH", 7)
    auth.login("support")
    with app.app_context():
        seed_demo(customers=8, orders=30, seed=4)
        total = db.session.scalar(select(func.count()).select_from(Order))
    text = client.get("/orders/export.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert len(body) == total == 30 and len({r[0] for r in body}) == 30
    column = {name: header.index(name) for name in header}
    assert all(r[column["customer_email"]].endswith("@example.net") for r in body)
    assert all(r[column["customer_name"]] and r[column["payment_provider"]] for r in body)
    assert all(int(r[column["items"]]) >= 1 for r in body)
    shipped = [r for r in body if r[column["status"]] in ("shipped", "delivered")]
    assert shipped and all(r[column["carrier"]] and r[column["shipment_status"]] for r in shipped)
    assert any(r[column["open_return"]].startswith("RMA-") for r in body)

    with app.test_request_context():
        filters, _ = screen.OrderFilters.parse({})
        ordering = screen.ORDERS.ordering(None)
        slow = replace(screen.ORDERS, export_fast=None)
        expected = "".join(csv_lines(list(slow.export_header), slow.export_rows(slow.export_plan(filters, ordering))))
    assert text == expected


@pytest.mark.postgres_only
def test_open_returns_are_read_through_their_partial_index(app, auth, client):
    """An order's open return, on the list and in its export, is looked up in the index of
    open returns alone: rejected and closed ones (most returns, on a store that has run for
    a while) are never read."""
    from tests.screens.test_search import index_scans, plans, statements_of

    auth.login("support")
    with app.app_context():
        orders = build_orders(3)
        for order, status in zip(orders, ("pending", "closed", "rejected")):
            item = db.session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)).first()
            make_return(order, [(item, 1)], status=status)
        db.session.commit()
        opened = orders[0].order_number
    for url in ("/orders", "/orders/export.csv"):
        statements = [s for s in statements_of(app, lambda: client.get(url).get_data()) if "SELECT" in s[1]]
        return_plans = [p for p in plans(statements) if " on return_requests" in p]
        assert return_plans and all("ix_return_requests_open_order_id" in index_scans(p) for p in return_plans), \
            (url, return_plans)
    rows = list(csv.DictReader(io.StringIO(client.get("/orders/export.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert {row["order_number"] for row in rows if row["open_return"]} == {opened}


@pytest.mark.postgres_only
@pytest.mark.parametrize("query,column", [("currency=EUR", "currency"), ("payment_status=refunded", "paymentStatus")])
def test_a_currency_or_payment_status_is_sought_in_an_index(app, auth, client, query, column):
    """Filtered by a currency or a payment status, the page and its count seek the value in
    an index led by its column (ix_orders_currency_created_at_id,
    ix_orders_payment_status_created_at_id; the service's own index on the payment status
    too, on tables this small). Through the date index alone, a currency no order used
    walked every order to fill the page (1.4 s at 1,000,000 orders)."""
    from tests.screens.test_search import plans, statements_of

    auth.login("support")
    with app.app_context():
        build_orders(3)
    statements = [s for s in statements_of(app, lambda: client.get(f"/orders?{query}").get_data())
                  if "FROM orders" in s[1]]
    found = plans(statements)
    # An index scan (plain, index-only or bitmap) whose condition is the value: sought, not
    # a walk of another index that filters each order.
    sought = re.compile(rf'Index Cond: \(+"?{column}"? =')
    assert len(found) == 2 and all(sought.search(plan) for plan in found), found  # the page, the count
