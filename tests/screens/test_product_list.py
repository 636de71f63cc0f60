"""The products list: filters, the low-stock view, every sort paged forwards and back
(units sold ranked from order_db), the export, and the alerts list."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from console.demo.builders import make_category, make_customer, make_order, make_product
from console.extensions import db
from console.models.product import ProductCategory, ProductStockAlert
from console.models.types import utcnow


@pytest.fixture
def shelf(app):
    """Six products: available 0, 2, 5, 9, 30 (with reservations), one archived, two categories."""
    with app.app_context():
        home = make_category("Home")
        kitchen = make_category("Kitchen", parent=home)
        garden = make_category("Garden")
        specs = [("P-OUT", 3, 3, "10.00", kitchen), ("P-TWO", 2, 0, "20.00", kitchen), ("P-FIVE", 6, 1, "30.00", home),
                 ("P-NINE", 9, 0, "40.00", garden), ("P-LOTS", 40, 10, "50.00", garden)]
        ids = {}
        for sku, stock, reserved, price, category in specs:
            product = make_product(sku, f"Item {sku}", price, stock=stock, reserved=reserved)
            db.session.add(ProductCategory(product_id=product.id, category_id=category.id))
            ids[sku] = product.id
        old = make_product("P-OLD", "Retired item", "5.00", stock=1, status="archived")
        ids["P-OLD"] = old.id
        db.session.commit()
        return {"ids": ids, "kitchen": kitchen.id, "home": home.id}


def skus(html: str) -> list[str]:
    return re.findall(r'<tr data-sku="([^"]+)"', html)


def test_default_is_lowest_available_first(auth, client, shelf):
    auth.login("warehouse")
    html = client.get("/products").get_data(as_text=True)
    assert skus(html) == ["P-OUT", "P-OLD", "P-TWO", "P-FIVE", "P-NINE", "P-LOTS"]


@pytest.mark.parametrize("query,expected", [
    ("stock=low", ["P-OUT", "P-OLD", "P-TWO", "P-FIVE"]),
    ("stock=out", ["P-OUT"]),
    ("stock=in", ["P-NINE", "P-LOTS"]),
    ("status=archived", ["P-OLD"]),
    ("q=p-n", ["P-NINE"]),
    ("q=item%20p-t", ["P-TWO"]),
    ("price_min=20&price_max=40", ["P-TWO", "P-FIVE", "P-NINE"]),
])
def test_filters(auth, client, shelf, query, expected):
    auth.login("support")
    assert skus(client.get(f"/products?{query}").get_data(as_text=True)) == expected


def test_category_filter_takes_its_children(auth, client, shelf):
    auth.login("support")
    assert skus(client.get(f"/products?category={shelf['home']}").get_data(as_text=True)) == ["P-OUT", "P-TWO", "P-FIVE"]
    assert skus(client.get(f"/products?category={shelf['kitchen']}").get_data(as_text=True)) == ["P-OUT", "P-TWO"]


@pytest.mark.parametrize("query,message", [
    ("price_min=1e309", "not an amount"), ("price_min=1,0", "Use no commas"), ("price_min=%D9%A1", "digits 0-9"),
    ("q=%00", "control character"),
    ("price_min=9&price_max=1", "swap them"), ("stock=some", "is not one of"), ("q=" + "x" * 300, "too long"),
    ("sort=-colour", "be sorted by"), ("cursor=garbage", "not valid"),
])
def test_bad_filters_are_400_with_a_message(auth, client, shelf, query, message):
    auth.login("support")
    response = client.get(f"/products?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_low_stock_view_is_the_saved_filter_the_dashboard_links_to(auth, client, shelf):
    auth.login("warehouse")
    dashboard = client.get("/").get_data(as_text=True)
    assert 'href="/products/low-stock"' in dashboard and 'href="/products/P-OUT"' in dashboard
    response = client.get("/products/low-stock", follow_redirects=True)
    assert skus(response.get_data(as_text=True)) == ["P-OUT", "P-OLD", "P-TWO", "P-FIVE"]


def test_dashboard_does_not_link_stock_for_finance(auth, client, shelf):
    auth.login("finance")
    assert "/products" not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("sort,expected", [
    ("sku", ["P-FIVE", "P-LOTS", "P-NINE", "P-OLD", "P-OUT", "P-TWO"]),
    ("-price", ["P-LOTS", "P-NINE", "P-FIVE", "P-TWO", "P-OUT", "P-OLD"]),
    ("-available", ["P-LOTS", "P-NINE", "P-FIVE", "P-TWO", "P-OLD", "P-OUT"]),
])
def test_sorts_page_forwards_and_back_by_two(auth, client, shelf, sort, expected):
    auth.login("support")
    seen, url = [], f"/products?sort={sort}&size=2"
    pages = []
    while url:
        html = client.get(url).get_data(as_text=True)
        pages.append(url)
        seen += skus(html)
        following = re.search(r'id="next-page" href="([^"]+)"', html)
        url = following.group(1).replace("&amp;", "&") if following else None
    assert seen == expected
    html = client.get(pages[-1]).get_data(as_text=True)
    back = re.search(r'id="previous-page" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert skus(client.get(back).get_data(as_text=True)) == expected[-4:-2]


def sell(app, shelf, sales: dict[str, int], days_ago: int = 3):
    with app.app_context():
        from console.models.product import Product

        customer, _ = make_customer(f"buyer-{days_ago}@example.com", "Bea", "Buyer")
        for sku, units in sales.items():
            product = db.session.get(Product, shelf["ids"][sku])
            make_order(customer, [(product, units)], status="delivered", created_at=utcnow() - timedelta(days=days_ago))
        db.session.commit()


def test_units_sold_in_30_days_column_and_sort_both_ways(app, auth, client, shelf):
    sell(app, shelf, {"P-NINE": 5, "P-TWO": 2, "P-LOTS": 7})
    sell(app, shelf, {"P-OUT": 50}, days_ago=45)  # outside the window
    auth.login("warehouse")
    expected = ["P-LOTS", "P-NINE", "P-TWO"]
    unsold = sorted((i, s) for s, i in shelf["ids"].items() if s not in expected)
    expected += [s for _, s in reversed(unsold)]
    seen, url, last = [], "/products?sort=-sold&size=2", None
    while url:
        html = client.get(url).get_data(as_text=True)
        assert client.get(url).status_code == 200
        seen += skus(html)
        last = url
        following = re.search(r'id="next-page" href="([^"]+)"', html)
        url = following.group(1).replace("&amp;", "&") if following else None
    assert seen == expected
    html = client.get(last).get_data(as_text=True)
    back = re.search(r'id="previous-page" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert skus(client.get(back).get_data(as_text=True)) == expected[2:4]
    ascending = skus(client.get("/products?sort=sold&size=50").get_data(as_text=True))
    assert ascending == list(reversed(expected))
    row = re.search(r'<tr data-sku="P-LOTS">(.*?)</tr>', client.get("/products").get_data(as_text=True), re.S).group(1)
    assert re.findall(r'<td class="num">(\d+)</td>', row)[-1] == "7"


def test_export_has_every_filtered_row_with_stock_and_sales(app, auth, client, shelf):
    sell(app, shelf, {"P-TWO": 2})
    auth.login("support")
    response = client.get("/products/export.csv?stock=low")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["sku"] for r in rows] == ["P-OUT", "P-OLD", "P-TWO", "P-FIVE"]
    two = rows[2]
    assert (two["on_hand"], two["reserved"], two["available"], two["units_sold_30d"]) == ("2", "0", "2", "2")
    assert two["category"] == "Kitchen"


def test_a_page_costs_the_same_statements_at_every_size(app, auth, client, shelf, count_queries):
    auth.login("support")
    counts = []
    for size in (2, 5):
        count_queries.statements.clear()
        assert client.get(f"/products?size={size}").status_code == 200
        counts.append(count_queries.count)
    assert counts[0] == counts[1]


def test_alerts_list_filters_by_state_and_sku(app, auth, client, shelf):
    with app.app_context():
        user, _ = make_customer("waits@example.com", "Wai", "Ting")
        db.session.add_all([
            ProductStockAlert(product_id=shelf["ids"]["P-OUT"], user_id=user.id, email=user.email, notified=False,
                              expires_at=utcnow() + timedelta(days=5)),
            ProductStockAlert(product_id=shelf["ids"]["P-TWO"], user_id=user.id, email=user.email, notified=True,
                              expires_at=utcnow() + timedelta(days=5)),
            ProductStockAlert(product_id=shelf["ids"]["P-TWO"], user_id=user.id, email=user.email, notified=False,
                              expires_at=utcnow() - timedelta(days=1))])
        db.session.commit()
    auth.login("warehouse")
    html = client.get("/products/alerts?state=waiting").get_data(as_text=True)
    assert "P-OUT" in html and "P-TWO" not in html and "waits@example.com" in html
    assert html.count('border">expired<') == 0
    assert client.get("/products/alerts?state=expired").get_data(as_text=True).count('border">expired<') == 1
    assert "P-OUT" not in client.get("/products/alerts?sku=p-two").get_data(as_text=True)
    unknown = client.get("/products/alerts?sku=NOPE")
    assert unknown.status_code == 400 and "No product or variant" in unknown.get_data(as_text=True)
    auth.login("marketing", "m2@staff.test")
    assert client.get("/products/alerts").status_code == 403
