"""Global search: each kind of identifier found, one match opens it, several list,
none explains what can be searched; permissions and a database down respected."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from console.demo.builders import make_product, make_variant
from console.extensions import db
from console.models.returns import ReturnAuthorization
from tests.conftest import StaffSignIn
from tests.customer_helpers import full_customer
from tests.second_app import app_with_unreachable


@pytest.fixture
def jane(app):
    """full_customer() plus a product variant, as plain values."""
    with app.app_context():
        c = full_customer()
        variant = make_variant(c.products[0], "Blue", {"colour": "blue"}, sku=f"{c.products[0].sku}-BLU")
        parcel = db.session.scalar(select(ReturnAuthorization.tracking_number)
                                   .where(ReturnAuthorization.return_request_id == c.ret.id))
        db.session.commit()
        return SimpleNamespace(
            user_id=c.user.id, order_id=c.order.id, order_number=c.order.order_number, rma=c.ret.rma_number,
            return_page=f"/returns/{c.ret.id}", parcel=parcel,
            shipment_tracking=c.shipment.tracking_number, provider_payment_id=c.payment.provider_payment_id,
            coupon=c.coupon.code, sku=c.products[1].sku, variant_sku=variant.sku)


def opens(client, q: str) -> str:
    response = client.get("/search", query_string={"q": q})
    assert response.status_code == 302, (q, response.get_data(as_text=True)[:2000])
    return response.headers["Location"]


def test_each_kind_opens_its_record(auth, client, jane):
    auth.login("support")
    order_page = f"/orders/{jane.order_id}"
    assert opens(client, jane.order_number) == order_page
    assert opens(client, jane.order_number.lower()) == order_page  # any case
    assert opens(client, "jane.doe@example.com") == f"/customers/{jane.user_id}"
    assert opens(client, jane.rma) == jane.return_page
    assert opens(client, jane.parcel) == jane.return_page  # the return parcel's tracking number
    # The shipment's tracking number is also the order's: one record, so it opens.
    assert opens(client, jane.shipment_tracking) == order_page
    assert opens(client, jane.provider_payment_id) == order_page
    # Support may see coupons: a code opens the coupon's page (warehouse: its orders, below).
    assert opens(client, jane.coupon.lower()) == f"/coupons/{jane.coupon}"
    assert opens(client, jane.sku) == f"/orders?sku={jane.sku}"
    assert opens(client, jane.variant_sku) == f"/orders?sku={jane.variant_sku}"


def test_a_coupon_opens_its_orders_for_staff_who_may_not_see_coupons(auth, client, jane):
    auth.login("warehouse")
    assert opens(client, jane.coupon) == f"/orders?coupon={jane.coupon}"


def test_several_matches_are_listed_by_kind(app, auth, client, jane):
    with app.app_context():
        make_product("MUGGY-1", "Muggy", "3.00")
        make_product("MUGGY-2", "Muggier", "3.00")
        db.session.commit()
    auth.login("support")
    response = client.get("/search?q=muggy")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Products" in html and "MUGGY-1" in html and "MUGGY-2" in html
    assert "nothing matched exactly, these start with it" in html
    # An exact match wins over prefix matches: MUGGY-1 alone opens.
    assert opens(client, "muggy-1") == "/orders?sku=MUGGY-1"


def test_a_customer_found_in_two_databases_is_one_match(auth, client, jane):
    auth.login("support")
    # "jane.doe@" starts the email in user_db and in auth_db: one customer, so it opens.
    assert opens(client, "jane.doe@") == f"/customers/{jane.user_id}"


def test_nothing_found_says_what_can_be_searched(auth, client, jane):
    auth.login("support")
    for q in ("no-such-thing", ""):
        response = client.get("/search", query_string={"q": q})
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert 'id="search-empty"' in html
        assert "order numbers" in html and "tracking numbers" in html and "SKUs" in html
    assert "Nothing matches “no-such-thing”" in client.get("/search?q=no-such-thing").get_data(as_text=True)
    assert "at least 3 characters" in client.get("/search?q=zz").get_data(as_text=True)


def test_only_kinds_the_user_may_open(auth, client, jane):
    auth.login("marketing")  # dashboard and customers, no orders
    html = client.get("/search", query_string={"q": jane.order_number}).get_data(as_text=True)
    assert 'id="search-empty"' in html and jane.order_id not in html
    assert opens(client, "jane.doe@example.com") == f"/customers/{jane.user_id}"
    auth.logout()
    auth.login("warehouse")  # orders, no customers
    html = client.get("/search?q=jane.doe@example.com").get_data(as_text=True)
    assert 'id="search-empty"' in html


@pytest.fixture(scope="module")
def app_without_shipping(database_urls):
    with app_with_unreachable(database_urls, "shipping") as application:
        yield application


def test_a_database_down_is_named_and_nothing_opens_blindly(app, app_without_shipping, jane):
    client = app_without_shipping.test_client()
    StaffSignIn(app_without_shipping, client).login("support")
    # The order still matches by its tracking number, but the shipment could not be
    # checked: list what was found and say what was not searched.
    response = client.get("/search", query_string={"q": jane.shipment_tracking})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "shipping database unavailable" in html
    assert jane.order_number in html


def test_customers_by_name_and_phone(app, auth, client, jane):
    with app.app_context():
        from console.demo.builders import make_customer
        make_customer("robert.t@example.com", "Robert", "Thompson", phone="+44 20 7946 0958")
        make_customer("roberta@example.com", "Roberta", "Thomas")
        db.session.commit()
    auth.login("support")
    robert = opens(client, "Robert Thompson")
    assert robert.startswith("/customers/") and robert != f"/customers/{jane.user_id}"
    assert opens(client, "robert thompson") == robert  # any case
    assert opens(client, "020 7946 0958".lstrip("0")) == robert  # the digits, whatever the separators
    assert opens(client, "+1 (555) 010-0199") == f"/customers/{jane.user_id}"
    assert opens(client, "555-010-0199") == f"/customers/{jane.user_id}"
    # Nothing exact: names that start with it, both listed.
    html = client.get("/search?q=Robert").get_data(as_text=True)
    assert "robert.t@example.com" in html and "roberta@example.com" in html and "Robert Thompson" in html
    # A short number is not a phone search.
    assert "robert.t@example.com" not in client.get("/search?q=0958").get_data(as_text=True)


def test_more_matches_than_shown_link_to_the_filtered_list(app, auth, client):
    from console.demo.builders import make_customer
    from console.screens.search import PER_KIND
    with app.app_context():
        for n in range(PER_KIND + 2):
            make_customer(f"smith{n:02d}@example.com", "Alex", f"Smithson{n:02d}")
        for n in range(3):
            make_customer(f"jones{n}@example.com", "Sam", "Jones")
        db.session.commit()
    auth.login("support")
    html = client.get("/search?q=smith").get_data(as_text=True)
    assert html.count("@example.com</a>") == PER_KIND
    assert 'href="/customers?q=smith"' in html and "See all customers matching “smith”" in html
    few = client.get("/search?q=jones").get_data(as_text=True)
    assert few.count("@example.com</a>") == 3 and "See all" not in few
    listed = client.get("/customers?q=smith").get_data(as_text=True)
    assert f"1–{PER_KIND + 2} of about {PER_KIND + 2} customers" in listed


def test_staff_accounts_are_not_found_as_customers(app, auth, client, jane):
    """Staff sign in through the auth database too; search leaves them out of customers,
    by their whole email or its start, while a customer whose email starts the same way
    is found."""
    from console.demo.builders import make_customer

    with app.app_context():
        fan, _ = make_customer("support.fan@staff.test")
        db.session.commit()
        fan_id = fan.id
    auth.create("support")  # support@staff.test
    auth.login("admin")  # admin@staff.test
    response = client.get("/search", query_string={"q": "support@staff.test"})
    assert response.status_code == 200 and "Nothing matches" in response.get_data(as_text=True)
    assert opens(client, "support") == f"/customers/{fan_id}"  # the one customer, not the staff member
