"""The list contract itself: orderings from the address, links that keep the filters,
the routes one declaration gets (page, htmx partial, export), and the indexes every
declared sort needs."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Blueprint
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from console.demo.builders import make_coupon
from console.extensions import db
from console.filters import QueryFilters, choice, text
from console.lookups import DatabaseUnavailable, Lookups
from console.models.discount import Coupon
from console.models.types import utcnow
from console.screens.lists import ListScreen, Ordering, Sort
from console.views._listing import add_list_routes
from tests.conftest import StaffSignIn, make_app


# --- a list declared as a newcomer would ---------------------------------------------------

@dataclass
class CouponFilters(QueryFilters):
    code: str = ""
    kind: str = ""
    FIELDS = ("code", "kind")

    @classmethod
    def parse(cls, args):
        errors: list[str] = []
        return cls(code=text(args, "code", errors),
                   kind=choice(args, "kind", ("percentage", "fixed_amount"), "Kind", errors)), errors


def coupons_statement(filters, lookups):
    stmt = select(Coupon)
    if filters.code:
        stmt = stmt.where(Coupon.code.istartswith(filters.code, autoescape=True))
    if filters.kind:
        stmt = stmt.where(Coupon.type == filters.kind)
    return stmt


def decorate(coupons, lookups):
    return [{"coupon": c, "label": f"{c.code} ({c.type})"} for c in coupons]


COUPONS = ListScreen(
    name="coupons", noun="coupons", home="discount",
    filters=CouponFilters, statement=coupons_statement, id_column=Coupon.id,
    sorts=(Sort("created", Coupon.created_at, "Created"),
           Sort("code", Coupon.code, "Code", descending=False),
           Sort("value", Coupon.discount_value, "Value", numeric=True)),
    default_sort="-created", decorate=decorate,
    export_header=("code", "label", "value"),
    export_row=lambda row, lookups: [row["coupon"].code, row["label"], row["coupon"].discount_value])

TEMPLATES = {
    "coupons/list.html": '<html><form id="coupons-filters"></form>{% include "coupons/_table.html" %}</html>',
    "coupons/_table.html": """{% from "_list.html" import list_top, sort_header, list_pager %}
<div id="coupons-table">
{{ list_top(screen, result, errors, problem, start, cursor, list_endpoint, export_endpoint, ordering) }}
{% if not errors %}<table><tr>{{ sort_header(screen, result, "code", size=size) }}{{ sort_header(screen, result, "value", size=size) }}</tr>
{% for row in result.rows %}<tr data-code="{{ row.coupon.code }}"><td>{{ row.label }}</td></tr>{% endfor %}</table>
{{ list_pager(screen, result, size, start, cursor, list_endpoint) }}{% endif %}
</div>""",
}


@pytest.fixture(scope="module")
def coupon_app(database_urls):
    application = make_app(database_urls)
    bp = Blueprint("test_coupons", __name__, url_prefix="/coupons-test")
    add_list_routes(bp, COUPONS, "orders.view")
    application.register_blueprint(bp)
    application.jinja_loader  # noqa: B018 - the app's own loader, kept behind the test templates
    application.jinja_env.loader = ChoiceLoader([DictLoader(TEMPLATES), application.jinja_env.loader])
    return application


@pytest.fixture
def coupon_client(app, coupon_app):
    client = coupon_app.test_client()
    StaffSignIn(coupon_app, client).login("support")
    with app.app_context():
        start = utcnow() - timedelta(days=10)
        for n, (code, value) in enumerate([("B-ONE", "5"), ("A-TWO", "10"), ("=SUM(A1)", "10"), ("C-FOUR", "2.5"),
                                           ("D-FIVE", "10")]):
            coupon = make_coupon(code, "percentage" if n % 2 else "fixed_amount", value)
            coupon.created_at = start + timedelta(days=n)
        db.session.commit()
    return client


def codes(response) -> list[str]:
    return re.findall(r'data-code="([^"]+)"', response.get_data(as_text=True))


def link(response, text_: str) -> str | None:
    found = re.search(rf'href="([^"]+)"[^>]*>{re.escape(text_)}', response.get_data(as_text=True))
    return found.group(1).replace("&amp;", "&") if found else None


def test_one_declaration_gives_the_page_the_partial_and_the_export(coupon_client):
    page = coupon_client.get("/coupons-test")
    assert page.status_code == 200 and "<html>" in page.get_data(as_text=True)
    assert codes(page) == ["D-FIVE", "C-FOUR", "=SUM(A1)", "A-TWO", "B-ONE"]  # newest first
    partial = coupon_client.get("/coupons-test?sort=code", headers={"HX-Request": "true", "HX-Target": "coupons-table"})
    body = partial.get_data(as_text=True)
    assert "<html>" not in body
    assert codes(partial) == ["=SUM(A1)", "A-TWO", "B-ONE", "C-FOUR", "D-FIVE"]
    assert 'form="coupons-filters"' in body and "HX-Request" in partial.vary
    export = coupon_client.get("/coupons-test/export.csv?sort=-value&kind=fixed_amount")
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["code", "label", "value"]
    # In the list's order, filtered; the formula-looking code is neutralised, numbers stay numbers.
    assert [r[2] for r in rows[1:]] == ["10.00", "10.00", "5.00"]
    assert {r[0] for r in rows[1:3]} == {"'=SUM(A1)", "D-FIVE"} and rows[3][0] == "B-ONE"


def test_sorted_pages_go_forward_and_back_keeping_filters(coupon_client):
    first = coupon_client.get("/coupons-test?sort=-value&size=2")
    assert codes(first)[0] in ("=SUM(A1)", "A-TWO", "D-FIVE") and len(codes(first)) == 2
    seen = list(codes(first))
    response = first
    while (next_url := link(response, "Next 2 »")):
        assert "sort=-value" in next_url and "size=2" in next_url
        response = coupon_client.get(next_url)
        seen += codes(response)
    assert sorted(seen) == sorted(["D-FIVE", "C-FOUR", "=SUM(A1)", "A-TWO", "B-ONE"]) and len(set(seen)) == 5
    assert seen[-1] == "C-FOUR"  # 2.50, the smallest
    back = coupon_client.get(link(response, "‹ Previous 2"))
    assert codes(back) == seen[2:4]
    header = re.search(r'<a class="sort-link active" href="([^"]+)"', back.get_data(as_text=True)).group(1)
    assert "sort=value" in header.replace("&amp;", "&")  # the other direction


@pytest.mark.parametrize("query, message", [
    ("sort=colour", "be sorted by"), ("kind=BOGUS", "Kind"), ("cursor=%00%00", "control character"),
    ("cursor=eyJ4Ijo", "not valid any more"),
    ("before=abc", "not valid any more"), ("code=" + "x" * 100_000, "too long")])
def test_what_cannot_be_used_is_a_400_saying_so(coupon_client, query, message):
    response = coupon_client.get(f"/coupons-test?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    if "cursor" not in query and "before" not in query:
        assert coupon_client.get(f"/coupons-test/export.csv?{query}").status_code == 400


def test_ordering_from_the_address():
    errors: list[str] = []
    assert COUPONS.ordering(None) == Ordering(COUPONS.sorts[0], True)
    assert COUPONS.ordering("code") == Ordering(COUPONS.sorts[1], False)
    assert COUPONS.ordering("-value") == Ordering(COUPONS.sorts[2], True)
    assert COUPONS.ordering("-nope", errors) == Ordering(COUPONS.sorts[0], True) and "nope" in errors[0]
    current = COUPONS.ordering("code")
    assert COUPONS.header_arg(current, "code") == "-code"  # flips
    assert COUPONS.header_arg(current, "value") == "-value"  # the column's own first direction
    filters, _ = CouponFilters.parse(MultiDict({"code": "A"}))
    assert COUPONS.args(filters, COUPONS.ordering(None)) == {"code": "A"}  # the default sort stays out
    assert COUPONS.args(filters, current) == {"code": "A", "sort": "code"}


def test_export_streams_in_order_and_tries_a_failing_database_once(app):
    attempts = []

    def failing():
        attempts.append(1)
        raise DatabaseUnavailable("notification")

    def decorate_rows(coupons, lookups):
        note = lookups.run("notification", failing, "down")
        return [{"coupon": c, "label": note} for c in coupons]

    screen = ListScreen(name="c", noun="c", home="discount", filters=CouponFilters, statement=coupons_statement,
                        id_column=Coupon.id, sorts=COUPONS.sorts, default_sort="-created", decorate=decorate_rows,
                        export_header=COUPONS.export_header, export_row=COUPONS.export_row)
    with app.app_context():
        for n in range(7):
            make_coupon(f"C{n}")
        db.session.commit()
        plan = screen.export_plan(CouponFilters(), screen.ordering("code"))
        rows = list(screen.export_rows(plan, batch_size=3))  # three batches
    assert [r[0] for r in rows] == sorted(f"C{n}" for n in range(7))
    assert {r[1] for r in rows} == {"down"} and len(attempts) == 1


# Sorts a list ranks itself rather than by its column: units sold come from order_db's
# figures (console/screens/product_list.py).
NOT_BY_COLUMN = {("products.list_products", "sold"),
                 # sums over the usage rows: each row's an index-only read (the next test)
                 ("coupons.list_coupons", "given"), ("promotions.list_promotions", "given")}


def test_discount_given_is_read_from_the_usage_index_alone():
    from console.models.discount import CouponUsage, PromotionUsage

    for usage, owner in ((CouponUsage, "coupon_id"), (PromotionUsage, "promotion_id")):
        covering = [index for index in usage.__table__.indexes
                    if [c.key for c in index.columns][0] == owner
                    and "discount_amount" in (index.dialect_options["postgresql"]["include"] or ())]
        assert covering, usage.__tablename__


def test_every_declared_sort_has_its_index(app):
    screens = app.extensions["list_screens"]
    assert set(screens) >= {"orders.list_orders", "customers.list_customers", "returns.list_returns",
                            "refunds.list_refunds", "activity.list_activity", "staff.list_staff"}
    for endpoint, screen in screens.items():
        for sort in screen.sorts:
            if (endpoint, sort.key) in NOT_BY_COLUMN:
                continue
            table = sort.column.class_.__table__
            indexed = {tuple(c.key for c in index.columns) for index in table.indexes}
            if sort.column.class_ is screen.id_column.class_:
                assert (sort.column.key, screen.id_column.key) in indexed, (endpoint, sort.key)
            else:  # a column of a joined one-to-one table: (column, the key it joins on)
                assert any(len(cols) == 2 and cols[0] == sort.column.key for cols in indexed), (endpoint, sort.key)


def test_lookups_of_a_page_are_shared_with_the_statement(app):
    seen = []

    def statement(filters, lookups):
        seen.append(lookups)
        return select(Coupon)

    def decorate_rows(rows, lookups):
        seen.append(lookups)
        return rows

    screen = ListScreen(name="c", noun="c", home="discount", filters=CouponFilters, statement=statement,
                        id_column=Coupon.id, sorts=(Sort("created", Coupon.created_at, "Created"),),
                        default_sort="-created", decorate=decorate_rows)
    with app.app_context():
        screen.load(CouponFilters(), screen.ordering(None), size=5)
    assert len(seen) == 2 and seen[0] is seen[1] and isinstance(seen[0], Lookups)
