"""Customers: search and paging, the customer page's panels, one database down,
account actions over HTTP, and tokens never shown."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from console.screens.customers import PANELS
from console.demo.builders import make_customer, make_order, make_product, make_staff
from console.extensions import db
from console.models.auth import SecurityAuditLog, User
from console.models.types import utcnow
from console.models.user import UserPaymentMethod, UserProfile
from tests.conftest import StaffSignIn, browser_login, confirm_dialog
from tests.customer_helpers import full_customer
from tests.second_app import app_with_unreachable

HTMX = {"HX-Request": "true"}


def table_of(html: str) -> str:
    # An empty list shows no table at all, only what to do about it.
    if 'id="customers"' not in html:
        return ""
    return html[html.index('id="customers"'):html.index("</table>")]


def customers_in(html: str, emails) -> list[str]:
    table = table_of(html)
    return [e for e in emails if e in table]


@pytest.fixture
def three(app):
    """Three customers and one staff member, oldest to newest."""
    with app.app_context():
        now = utcnow()
        make_customer("ana.silva@example.com", "Ana", "Silva", phone="+1 (555) 010-0101",
                      created_at=now - timedelta(days=3))
        make_customer("bo.chen@example.com", "Bo", "Chen", phone="555-020-0202", created_at=now - timedelta(days=2))
        make_customer("cleo.doe@example.org", "Cleo", "Doe", phone=None, created_at=now - timedelta(days=1))
        helper = make_staff("support", "helper@staff.test")
        # A staff member who also has a shop profile is still not a customer.
        db.session.add(UserProfile(user_id=helper.id, email=helper.email, first_name="Help", last_name="Er",
                                   created_at=now))
        db.session.commit()
    return ["ana.silva@example.com", "bo.chen@example.com", "cleo.doe@example.org"]


def test_list_shows_customers_not_staff(auth, client, three):
    auth.login("support")
    html = client.get("/customers").get_data(as_text=True)
    assert customers_in(html, three) == three
    assert "helper@staff.test" not in table_of(html) and "support@staff.test" not in table_of(html)
    # Newest first.
    assert html.index("cleo.doe@example.org") < html.index("bo.chen@example.com") < html.index("ana.silva@example.com")


@pytest.mark.parametrize("q, expected", [
    ("ANA.SILVA@", ["ana.silva@example.com"]),        # email, any case
    ("example.com", ["ana.silva@example.com", "bo.chen@example.com"]),
    ("cleo doe", ["cleo.doe@example.org"]),            # full name
    ("chen", ["bo.chen@example.com"]),                 # last name
    ("555 020 0202", ["bo.chen@example.com"]),         # phone, however it is typed
    ("(555) 010", ["ana.silva@example.com"]),
])
def test_search_by_email_name_phone(auth, client, three, q, expected):
    auth.login("support")
    html = client.get("/customers", query_string={"q": q}).get_data(as_text=True)
    assert customers_in(html, three) == expected


def test_search_with_no_match_says_what_to_do(auth, client, three):
    auth.login("support")
    html = client.get("/customers?q=nobody-like-this").get_data(as_text=True)
    assert customers_in(html, three) == []
    assert "No customer's email, name or phone contains" in html
    assert "clear the search" in html


def test_keyset_paging_visits_every_customer_once(app, auth, client):
    with app.app_context():
        now = utcnow()
        emails = [f"c{i}@example.com" for i in range(7)]
        for i, email in enumerate(emails):
            make_customer(email, "C", str(i), created_at=now - timedelta(hours=i))
        db.session.commit()
    auth.login("support")
    seen, url = [], "/customers?size=3"
    for expected_rows in (3, 3, 1):
        response = client.get(url, headers={**HTMX, "HX-Target": "customers-table"})
        html = response.get_data(as_text=True)
        page = [e for e in emails if f">{e}<" in html]
        assert len(page) == expected_rows
        seen += page
        if expected_rows == 3:
            start = html.index('id="customers-next"')
            url = html[html.index('href="', start) + 6: html.index('"', html.index('href="', start) + 6)]
            url = url.replace("&amp;", "&")
            assert "cursor=" in url and "size=3" in url
        else:
            assert 'id="customers-next"' not in html
    assert seen == emails  # newest first, none twice, none skipped
    assert client.get("/customers?cursor=not-a-cursor").status_code == 400


def test_htmx_gets_the_table_alone(auth, client, three):
    auth.login("support")
    partial = client.get("/customers?q=chen", headers={**HTMX, "HX-Target": "customers-table"})
    assert "HX-Request" in partial.headers["Vary"]
    body = partial.get_data(as_text=True)
    assert "<html" not in body and 'id="customers"' in body
    page = client.get("/customers?q=chen")
    assert "<html" in page.get_data(as_text=True) and "HX-Request" in page.headers["Vary"]
    # The filter lives in the query string, so the page is bookmarkable.
    assert 'value="chen"' in page.get_data(as_text=True)


def test_list_query_count_does_not_grow_with_page_size(app, auth, client, count_queries):
    with app.app_context():
        mug = make_product("MUG-1", "Mug", "10.00", stock=1000)
        for i in range(100):
            user, _ = make_customer(f"bulk{i}@example.com", "Bulk", f"N{i}",
                                    created_at=utcnow() - timedelta(minutes=i))
            if i % 3 == 0:
                make_order(user, [(mug, 1)], with_payment=False)
        db.session.commit()
    auth.login("support")
    counts = {}
    for size in (10, 100):
        count_queries.statements.clear()
        html = client.get(f"/customers?size={size}").get_data(as_text=True)
        assert html.count("bulk") >= size
        counts[size] = count_queries.count
    assert counts[10] == counts[100]
    assert counts[10] <= 10


def test_export_is_the_filtered_list_with_formula_cells_neutralised(app, auth, client, three):
    with app.app_context():
        make_customer("evil@example.com", "=HYPERLINK(\"x\")", "Doe")
        db.session.commit()
    auth.login("support")
    response = client.get("/customers/export.csv?q=doe")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="customers-')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["user_id", "first_name", "last_name", "email"]
    assert sorted(r[3] for r in rows[1:]) == ["cleo.doe@example.org", "evil@example.com"]
    evil = next(r for r in rows[1:] if r[3] == "evil@example.com")
    assert evil[1] == "'=HYPERLINK(\"x\")"


# --- the customer page ----------------------------------------------------------------------

# What each panel must show for tests.customer_helpers.full_customer().
def expected_in_panels(c) -> dict[str, list[str]]:
    return {
        "account": ["Email verified", "customer", "Lock account", "Sign out everywhere"],
        "profile": ["+1 (555) 010-0199", "jane.doe@example.com"],
        "sessions": ["Jane&#39;s iPhone", "refresh token"],
        "signins": ["203.0.113.7", "198.51.100.9", "failed", "iOS · Safari"],
        "orders": [c.order.order_number, f"/orders/{c.order.id}", c.shipment.tracking_number, "delivered"],
        "returns": [c.ret.rma_number, c.order.order_number, "processed"],
        "refunds": [f"{c.refund.amount:,.2f} USD", c.order.order_number, "completed"],
        "payment_methods": ["mastercard", "•••• 1881", "12/2030"],
        "addresses": ["12 Harbour Road", "97201 Portland"],
        "cart": [c.products[1].sku, "Desk lamp", "active"],
        "wishlist": ["Stoneware mug", "for the office"],
        "reviews": ["Solid mug", "★★★★☆", "Does it take LED bulbs?"],
        "coupons": [c.coupon.code, "Spring sale", c.order.order_number],
        "notifications": [c.notification.subject, "SENT"],
    }


def test_customer_page_loads_every_panel_with_its_data(app, auth, client):
    with app.app_context():
        c = full_customer()
        tokens = [c.card.provider_token, *db.session.scalars(select(UserPaymentMethod.provider_token))]
    auth.login("support")
    page = client.get(f"/customers/{c.user.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Jane Doe" in html and "jane.doe@example.com" in html
    expected = expected_in_panels(c)
    assert set(expected) == set(PANELS)
    for key, texts in expected.items():
        url = f"/customers/{c.user.id}/panels/{key}"
        # A placeholder that loads itself, with a plain link as the fallback.
        assert f'hx-get="{url}"' in html and f'href="{url}"' in html
        panel = client.get(url, headers=HTMX)
        assert panel.status_code == 200 and "HX-Request" in panel.headers["Vary"]
        body = panel.get_data(as_text=True)
        assert "<html" not in body
        for text in texts:
            assert text in body, (key, text)
        assert "unavailable" not in body
        for token in tokens:
            assert token not in body
    for token in tokens:
        assert token not in html


def test_a_panel_opens_as_a_page_without_javascript(app, auth, client):
    with app.app_context():
        c = full_customer()
    auth.login("support")
    page = client.get(f"/customers/{c.user.id}/panels/orders")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert c.order.order_number in html and f"/customers/{c.user.id}" in html
    assert client.get(f"/customers/{c.user.id}/panels/nonsense").status_code == 404


def test_staff_and_unknown_ids_are_not_customer_pages(app, auth, client):
    auth.login("support")
    with app.app_context():
        staff_id = db.session.scalar(select(User.id).where(User.email == "support@staff.test"))
    staff_page = client.get(f"/customers/{staff_id}")
    assert staff_page.status_code == 404
    assert "staff account" in staff_page.get_data(as_text=True)
    assert client.get("/customers/no-such-id").status_code == 404


def test_roles_without_customers_view_are_refused(auth, client):
    auth.login("warehouse")
    assert client.get("/customers").status_code == 403


@pytest.fixture(scope="module")
def app_without_cart(database_urls):
    with app_with_unreachable(database_urls, "cart") as application:
        yield application


@pytest.fixture(scope="module")
def app_without_order(database_urls):
    with app_with_unreachable(database_urls, "order") as application:
        yield application


def test_cart_database_down_only_empties_the_cart_panel(app, app_without_cart):
    with app.app_context():
        c = full_customer()
    client = app_without_cart.test_client()
    StaffSignIn(app_without_cart, client).login("support")
    page = client.get(f"/customers/{c.user.id}")
    assert page.status_code == 200
    cart = client.get(f"/customers/{c.user.id}/panels/cart", headers=HTMX)
    assert cart.status_code == 200  # htmx swaps it; the panel says what is wrong
    assert "cart database unavailable" in cart.get_data(as_text=True)
    for key in ("orders", "account", "notifications", "returns"):
        body = client.get(f"/customers/{c.user.id}/panels/{key}", headers=HTMX).get_data(as_text=True)
        assert "unavailable" not in body, key
    assert c.order.order_number in client.get(f"/customers/{c.user.id}/panels/orders", headers=HTMX).get_data(as_text=True)
    assert "jane.doe@example.com" in client.get("/customers").get_data(as_text=True)


def test_order_database_down_degrades_the_list_and_the_panels_that_need_it(app, app_without_order):
    with app.app_context():
        c = full_customer()
    client = app_without_order.test_client()
    StaffSignIn(app_without_order, client).login("support")
    listing = client.get("/customers")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert "jane.doe@example.com" in html and "order database unavailable" in html
    orders = client.get(f"/customers/{c.user.id}/panels/orders", headers=HTMX).get_data(as_text=True)
    assert "order database unavailable" in orders
    # The returns panel reads return_db; only the order numbers beside it are missing.
    returns = client.get(f"/customers/{c.user.id}/panels/returns", headers=HTMX).get_data(as_text=True)
    assert c.ret.rma_number in returns and "order database unavailable" in returns
    assert c.order.order_number not in returns
    # The export still downloads; the cells order_db would fill say so.
    rows = list(csv.DictReader(io.StringIO(client.get("/customers/export.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["email"], r["orders"], r["active"]) for r in rows] == [("jane.doe@example.com", "unavailable", "True")]


# --- account actions over HTTP ----------------------------------------------------------------

def test_lock_from_the_account_panel(app, auth, client):
    with app.app_context():
        user, _ = make_customer("locked@example.com", "Lou", "Ked")
        db.session.commit()
        user_id = user.id
    auth.login("support")
    response = client.post(f"/customers/{user_id}/lock", data={"reason": "Chargeback fraud", "duration": "7d"},
                           headers=HTMX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Locked locked@example.com for 7 days." in body and "locked until" in body
    assert response.headers["HX-Trigger"] == "customer-changed"
    with app.app_context():
        assert db.session.get(User, user_id).locked_until > utcnow() + timedelta(days=6)
        row = db.session.scalar(select(SecurityAuditLog).where(SecurityAuditLog.action == "customer.locked"))
        assert row.metadata_["reason"] == "Chargeback fraud"
    # Unlock as a plain form post: a flash and a redirect back to the page.
    plain = client.post(f"/customers/{user_id}/unlock", data={"reason": "Cleared"})
    assert plain.status_code == 303 and plain.headers["Location"].endswith(f"/customers/{user_id}")
    assert "Unlocked locked@example.com" in client.get(plain.headers["Location"]).get_data(as_text=True)


def test_actions_refused_with_clear_messages(app, auth, client):
    with app.app_context():
        user, _ = make_customer("ok@example.com")
        staff = make_staff("finance", "fin@staff.test")
        db.session.commit()
        user_id, staff_id = user.id, staff.id
    auth.login("support")
    no_reason = client.post(f"/customers/{user_id}/lock", data={"reason": ""}, headers=HTMX)
    assert no_reason.status_code == 422 and "Give a reason" in no_reason.get_data(as_text=True)
    on_staff = client.post(f"/customers/{staff_id}/revoke-sessions", data={"reason": "x"}, headers=HTMX)
    assert on_staff.status_code == 409 and "staff account" in on_staff.get_data(as_text=True)
    nothing = client.post(f"/customers/{user_id}/revoke-sessions", data={"reason": "x"})
    assert nothing.status_code == 409 and "no active sessions" in nothing.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user_id).locked_until is None
        assert db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action.like("customer.%"))).all() == []


def test_actions_need_customers_manage_and_csrf(app, auth, client):
    with app.app_context():
        user, _ = make_customer("ok@example.com")
        db.session.commit()
        user_id = user.id
    auth.login("finance")  # may look customers up, not change them
    assert client.post(f"/customers/{user_id}/lock", data={"reason": "x"}).status_code == 403
    auth.logout()
    auth.login("support")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post(f"/customers/{user_id}/lock", data={"reason": "x"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(User, user_id).locked_until is None


@pytest.mark.browser
def test_browser_search_open_and_lock(app, auth, page):
    with app.app_context():
        c = full_customer()
    auth.create("support")
    browser_login(page, "support@staff.test")
    page.goto("/customers")
    page.fill("#customer-q", "harbour")  # matches nobody: the table says so without a reload
    page.wait_for_selector("#customers-empty")
    page.fill("#customer-q", "jane doe")
    page.wait_for_selector("#customers >> text=jane.doe@example.com")
    assert "q=jane%20doe" in page.url  # the filter is in the address: bookmarkable
    page.click("#customers tbody a")
    page.wait_for_url(f"**/customers/{c.user.id}")
    # Every panel loads itself.
    page.wait_for_selector(f"#panel-orders-body >> text={c.order.order_number}")
    page.wait_for_selector(f"#panel-cart-body >> text={c.products[1].sku}")
    assert page.locator(".customer-panel .panel-unavailable").count() == 0
    page.fill("#account-reason", "Asked by the customer")
    page.click("#lock-account")
    confirm_dialog(page)
    page.wait_for_selector("#panel-message >> text=Locked jane.doe@example.com until unlocked.")
    assert "until unlocked" in page.inner_text("#account-locked")
    page.fill("#account-reason", "Lost phone")
    page.click("#revoke-sessions")
    confirm_dialog(page)
    page.wait_for_selector("#panel-message >> text=1 session(s) ended")
    page.wait_for_selector("#panel-sessions-body >> text=No active sessions.")


@pytest.mark.parametrize("q", ["a", "ch", " c "])
def test_a_search_shorter_than_three_characters_is_refused_saying_so(auth, client, three, q):
    # Three characters make a trigram, which the search's indexes look up; fewer would
    # have PostgreSQL read every customer.
    auth.login("support")
    response = client.get("/customers", query_string={"q": q})
    assert response.status_code == 400
    assert "Type at least 3 characters of the customer" in response.get_data(as_text=True)
    assert client.get("/customers", query_string={"q": "che"}).status_code == 200
