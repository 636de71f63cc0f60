"""The coupons screens: list (state, filters, sort, export), the forms and their
refusals next to the fields, bulk generation with its download, the coupon page's
report, Recount, and who may do what."""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.demo.builders import make_category, make_coupon, make_customer, make_order, make_product, use_coupon
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.discount import Coupon, CouponUsage
from console.models.types import utcnow

FORM = {"code": "spring-10", "name": "Spring 10%", "type": "percentage", "discount_value": "10",
        "currency": "USD", "minimum_amount": "", "maximum_discount": "", "usage_limit": "100",
        "usage_limit_per_user": "1", "starts_at": "", "ends_at": "", "is_active": "y",
        "applicable_products": "", "applicable_categories": "", "excluded_products": "", "metadata": ""}


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


@pytest.fixture
def shop(app):
    with app.app_context():
        now = utcnow()
        mug = make_product("MUG-1", "Blue mug", "12.00")
        make_category("Kitchen", slug="kitchen")
        used = make_coupon("USED-5", usage_limit=10, name="Used five")
        customer, _ = make_customer("ana@example.com", "Ana", "Silva")
        for _ in range(2):
            use_coupon(used, make_order(customer, [(mug, 1)], status="delivered", discount=Decimal("1.20")).order)
        make_coupon("LATER", starts_at=now + timedelta(days=3), name="Scheduled")
        make_coupon("OLD", starts_at=now - timedelta(days=9), ends_at=now - timedelta(days=1), name="Expired")
        make_coupon("OFF", is_active=False, name="Disabled")
        make_coupon("FULL", usage_limit=1, name="Exhausted").usage_count = 1
        db.session.commit()
        return {"used": used.id}


def test_list_shows_the_derived_state_and_filters_on_it(auth, client, shop):
    auth.login("marketing")
    page = client.get("/coupons").get_data(as_text=True)
    for code in ("USED-5", "LATER", "OLD", "OFF", "FULL"):
        assert f'data-coupon="{code}"' in page
    assert "2.40" in page  # USED-5's discount given
    for state, code in (("active", "USED-5"), ("scheduled", "LATER"), ("expired", "OLD"), ("disabled", "OFF"),
                        ("exhausted", "FULL")):
        body = client.get(f"/coupons?state={state}").get_data(as_text=True)
        assert f'data-coupon="{code}"' in body and body.count("data-coupon=") == 1, state
    assert client.get("/coupons?code=us").get_data(as_text=True).count("data-coupon=") == 1
    ascending = client.get("/coupons?sort=code").get_data(as_text=True)
    assert ascending.index('data-coupon="FULL"') < ascending.index('data-coupon="USED-5"')
    # Finance's question, "which coupon gave most away?": discount given, biggest first,
    # then the coupons that gave nothing (by id); the export follows the same order.
    biggest = client.get("/coupons?sort=-given").get_data(as_text=True)
    assert biggest.index('data-coupon="USED-5"') < min(biggest.index(f'data-coupon="{c}"') for c in ("LATER", "OFF"))
    smallest = client.get("/coupons?sort=given").get_data(as_text=True)
    assert smallest.index('data-coupon="USED-5"') > max(smallest.index(f'data-coupon="{c}"') for c in ("LATER", "OFF"))
    exported = rows_of(client.get("/coupons/export.csv?sort=-given"))
    assert exported[1][0] == "USED-5" and exported[1][exported[0].index("discount_given")] == "2.40"
    response = client.get("/coupons/export.csv?state=active")
    rows = rows_of(response)
    assert rows[0][:3] == ["code", "name", "state"] and [r[0] for r in rows[1:]] == ["USED-5"]


@pytest.mark.parametrize("query", ["state=bogus", "type=HALF", "window_from=31-12-2026", "sort=secret",
                                   "code=" + "x" * 300, "name=a%00b"])
def test_filters_that_cant_be_used_answer_400(auth, client, shop, query):
    auth.login("marketing")
    response = client.get(f"/coupons?{query}")
    assert response.status_code == 400, query


def test_support_and_finance_view_but_do_not_manage(auth, client, shop):
    for role in ("support", "finance"):
        auth.login(role)
        assert client.get("/coupons").status_code == 200
        page = client.get("/coupons/USED-5").get_data(as_text=True)
        assert 'id="edit-coupon"' not in page and 'id="new-coupon"' not in client.get("/coupons").get_data(as_text=True)
        assert client.post("/coupons/new", data=FORM).status_code == 403
        assert client.post("/coupons/USED-5/disable").status_code == 403
        auth.logout()
    auth.login("warehouse")
    assert client.get("/coupons").status_code == 403


def test_create_through_the_form(app, auth, client, shop):
    auth.login("marketing")
    assert client.get("/coupons/new").status_code == 200
    response = client.post("/coupons/new", data={**FORM, "applicable_products": "mug-1",
                                                 "applicable_categories": "KITCHEN", "metadata": "channel = email"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/coupons/SPRING-10")
    page = client.get("/coupons/SPRING-10").get_data(as_text=True)
    assert "MUG-1" in page and "Blue mug" in page and "channel" in page
    edit = client.get("/coupons/SPRING-10/edit").get_data(as_text=True)
    assert "MUG-1" in edit and "kitchen" in edit and "channel = email" in edit


@pytest.mark.parametrize("changes, message", [
    ({"discount_value": "150"}, "more than 0 and at most 100"),
    ({"discount_value": "1e309"}, "is not a percentage or an amount"),
    ({"discount_value": "1,5"}, "is not a percentage or an amount"),
    ({"code": "SPRING 10"}, "Use only letters A-Z, digits and dashes"),
    ({"code": "used-5"}, "already taken"),
    ({"type": "fixed_amount", "currency": ""}, "A fixed amount needs its currency"),
    ({"type": "free_shipping"}, "Free shipping takes no value"),
    ({"minimum_amount": "-5"}, "without a sign"),
    ({"usage_limit": "0"}, "usage limit must be at least 1"),
    ({"usage_limit": "٣"}, "is not a number of uses"),
    ({"usage_limit_per_user": "0"}, "limit per customer must be at least 1"),
    ({"starts_at": "2026-12-10 10:00", "ends_at": "2026-12-01 10:00"}, "The end must come after the start"),
    ({"ends_at": "next week"}, "is not a date and time"),
    ({"applicable_products": "NOPE-9"}, "No product with SKU “NOPE-9”"),
    ({"applicable_categories": "garden"}, "No category with slug “garden”"),
    ({"name": "x" * 201}, "At most 200 characters"),
    ({"name": "bad\x00name"}, "NUL"),
    ({"metadata": "= orphan"}, "a key"),
])
def test_every_refusal_is_shown_next_to_its_field(app, auth, client, shop, changes, message):
    auth.login("marketing")
    response = client.post("/coupons/new", data={**FORM, **changes})
    assert response.status_code in (400, 409, 422), response.status_code
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Coupon).where(Coupon.code == "SPRING-10")) == 0


def test_a_used_coupon_keeps_its_code(auth, client, shop):
    auth.login("marketing")
    edit = client.get("/coupons/USED-5/edit")
    assert edit.status_code == 200
    response = client.post("/coupons/USED-5/edit", data={**FORM, "code": "RENAMED", "usage_limit": "10"})
    assert response.status_code == 422 and "has been used, so its code can&#39;t change" in response.get_data(as_text=True)


def test_generate_then_download_and_find_them_by_prefix(app, auth, client, shop):
    auth.login("marketing")
    assert client.get("/coupons/USED-5/generate").status_code == 200
    response = client.post("/coupons/USED-5/generate", data={"count": "100", "prefix": "vip-", "length": "6",
                                                             "uses_per_code": "1"})
    assert response.status_code == 303 and "/coupons/USED-5/generated/" in response.headers["Location"]
    for _ in range(2):  # reloading the page shows the same generation, it does not make another
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "100 codes generated" in page and page.count("<li>VIP-") == 20
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Coupon).where(Coupon.code.like("VIP-%"))) == 100
    download = page.split('id="download-codes" href="')[1].split('"')[0].replace("&amp;", "&")
    rows = rows_of(client.get(download))
    assert rows[0][0] == "code" and len(rows) == 101
    assert all(r[0].startswith("VIP-") and len(r[0]) == 10 for r in rows[1:])
    later = rows_of(client.get("/coupons/export.csv?code=VIP-"))
    assert sorted(r[0] for r in later[1:]) == sorted(r[0] for r in rows[1:])
    refused = client.post("/coupons/USED-5/generate", data={"count": "10001", "prefix": "", "length": "8"})
    assert refused.status_code == 422 and "10000" in refused.get_data(as_text=True).replace(",", "")


def test_coupon_page_report_uses_and_recount(app, auth, client, shop):
    auth.login("marketing")
    page = client.get("/coupons/USED-5").get_data(as_text=True)
    assert 'id="figure-uses">2<' in page and "ana@example.com" in page and "Ana Silva" in page
    assert 'id="count-differs"' not in page and 'id="delete-coupon"' not in page
    with app.app_context():
        db.session.get(Coupon, shop["used"]).usage_count = 5
        db.session.commit()
    page = client.get("/coupons/USED-5").get_data(as_text=True)
    assert 'id="count-differs"' in page and "holds 2 uses" in page
    response = client.post("/coupons/USED-5/recount")
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Coupon, shop["used"]).usage_count == 2
    refused = client.post("/coupons/USED-5/delete")
    assert refused.status_code == 409 and "disable it instead" in refused.get_data(as_text=True)
    uses = rows_of(client.get("/coupons/USED-5/uses.csv"))
    assert len(uses) == 3 and {r[1] for r in uses[1:]} == {"ana@example.com"}


def test_activity_links_to_the_coupon(app, auth, client, shop):
    auth.login("marketing")
    client.post("/coupons/USED-5/disable")
    auth.logout()
    auth.login("admin")
    page = client.get("/activity?action=coupon.").get_data(as_text=True)
    assert f'href="/coupons/{shop["used"]}"' in page


def test_unknown_coupon_is_404(auth, client, shop):
    auth.login("marketing")
    assert client.get("/coupons/NOPE").status_code == 404
    assert client.get("/coupons/" + "x" * 5000).status_code in (400, 404)
    assert client.post("/coupons/new", data={**FORM, "name": "x" * 100_000}).status_code in (400, 413, 422)


def test_every_problem_shows_at_once(auth, client, shop):
    auth.login("marketing")
    response = client.post("/coupons/new", data={**FORM, "code": "bad code", "discount_value": "1e309",
                                                 "applicable_products": "NOPE-1", "usage_limit": "0"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for message in ("is not a percentage or an amount", "Use only letters A-Z", "No product with SKU “NOPE-1”",
                    "usage limit must be at least 1"):
        assert message in page, message


def test_the_order_page_and_the_customer_page_link_to_the_coupon(app, auth, client, shop):
    with app.app_context():
        usage = db.session.scalars(select(CouponUsage).where(CouponUsage.coupon_id == shop["used"])).first()
        order_id, user_id = usage.order_id, usage.user_id
    auth.login("support")  # may see orders, customers and coupons
    order_page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert 'id="coupon-link" href="/coupons/USED-5"' in order_page
    panel = client.get(f"/customers/{user_id}/panels/coupons").get_data(as_text=True)
    assert 'href="/coupons/USED-5"' in panel
    auth.logout()
    auth.login("warehouse")  # may see orders, not coupons: the code without a link
    order_page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "USED-5" in order_page and 'id="coupon-link"' not in order_page


@pytest.mark.postgres_only
def test_the_list_reads_hand_made_coupons_and_one_generation_through_their_indexes(app, auth, client, shop):
    """Thousands of generated codes never lie between the list and the coupons made by
    hand: its default reads a partial index over those, and one generation's codes are
    found through the generation's id."""
    from tests.screens.test_search import index_scans, plans, statements_of

    auth.login("marketing")
    generated = client.post("/coupons/USED-5/generate", data={"count": "200", "prefix": "gen-", "length": "6",
                                                              "uses_per_code": "1"})
    batch = generated.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    # Which of the partial indexes the planner takes over a handful of rows varies with
    # its estimates; any of them reads the coupons made by hand alone.
    by_hand = {f"ix_coupons_by_hand_{column}_id" for column in ("created_at", "code", "usage_count", "ends_at")}
    for query, indexes in ((None, by_hand), ({"sort": "code"}, by_hand), ({"sort": "-usage"}, by_hand),
                           ({"batch": batch, "source": "all"}, {"ix_coupons_batch"})):
        statements = statements_of(app, lambda: client.get("/coupons", query_string=query))
        page_plans = [p for p in plans(statements) if " on coupons" in p]
        assert page_plans and not [p for p in page_plans if "Seq Scan" in p], (query, page_plans)
        assert indexes & set().union(*(index_scans(p) for p in page_plans)), (query, page_plans)
    page = client.get("/coupons").get_data(as_text=True)
    assert "GEN-" not in page and "USED-5" in page
