"""The promotions screens: list and export, the form per type (saved and read back),
refusals next to the fields, status buttons, rule order and who may do what."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from console.demo.builders import make_category, make_product, make_promotion
from console.extensions import db
from console.models.discount import Promotion, PromotionRule
from console.models.types import utcnow
from console.workflows import promotions as flow

COMMON = {"name": "Socks deal", "description": "", "starts_at": "2026-01-01 00:00", "ends_at": "2036-01-01 00:00"}
FORMS = {
    "buy_x_get_y": {"buy_quantity": "2", "buy_products": "SOCK-1, SOCK-2", "buy_categories": "apparel",
                    "get_quantity": "1", "get_products": "SOCK-1", "get_reward": "percent", "get_percent": "50"},
    "bundle": {"bundle_products": "PAN-1\nLID-1", "bundle_pricing": "price", "bundle_price": "15.00",
               "bundle_currency": "USD", "bundle_percent": ""},
    "volume_discount": {"volume_products": "", "volume_categories": "apparel", "tier1_quantity": "3",
                        "tier1_percent": "5", "tier2_quantity": "6", "tier2_percent": "10"},
}


@pytest.fixture
def catalog(app):
    with app.app_context():
        for sku in ("SOCK-1", "SOCK-2", "PAN-1", "LID-1"):
            make_product(sku, sku.title(), "10.00")
        make_category("Apparel", slug="apparel")
        db.session.commit()


def post_new(client, kind, **changes):
    return client.post(f"/promotions/new?type={kind}", data={**COMMON, "type": kind, **FORMS[kind], **changes})


@pytest.mark.parametrize("kind", list(FORMS))
def test_each_form_saves_and_reads_back(app, auth, client, catalog, kind):
    auth.login("marketing")
    assert client.get(f"/promotions/new?type={kind}").status_code == 200
    response = post_new(client, kind)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    key = response.headers["Location"].rsplit("/", 1)[1]
    page = client.get(f"/promotions/{key}").get_data(as_text=True)
    assert "Socks deal" in page and 'id="status-active"' in page and 'id="rules-differ"' not in page
    edit = client.get(f"/promotions/{key}/edit").get_data(as_text=True)
    for value in FORMS[kind].values():
        for part in value.replace(",", " ").split():
            assert part in edit, (kind, part)
    # saving the form as it reads back changes nothing
    again = client.post(f"/promotions/{key}/edit", data={**COMMON, "type": kind, **FORMS[kind]})
    assert again.status_code == 409 and "Nothing changed" in again.get_data(as_text=True)


@pytest.mark.parametrize("kind, changes, message", [
    ("buy_x_get_y", {"buy_quantity": "0"}, "from 1 to 1000"),
    ("buy_x_get_y", {"buy_products": "", "buy_categories": ""}, "Choose what has to be bought"),
    ("buy_x_get_y", {"get_percent": "150"}, "At most 100"),
    ("bundle", {"bundle_products": "PAN-1"}, "at least 2 products"),
    ("bundle", {"bundle_price": "1e309"}, "not an amount"),
    ("bundle", {"bundle_products": "PAN-1 NOPE"}, "No product with SKU “NOPE”"),
    ("volume_discount", {"tier2_quantity": "2"}, "tiers go in ascending order of quantity"),
    ("volume_discount", {"tier1_percent": "", "tier1_quantity": "", "tier2_quantity": "", "tier2_percent": ""},
     "Add at least one tier"),
    ("volume_discount", {"name": ""}, "This cannot be empty"),
    ("volume_discount", {"ends_at": "2025-01-01 00:00"}, "The end must come after the start"),
])
def test_refusals_are_shown_with_the_form(app, auth, client, catalog, kind, changes, message):
    auth.login("marketing")
    response = post_new(client, kind, **changes)
    assert response.status_code in (400, 422), response.status_code
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    with app.app_context():
        assert db.session.scalars(select(Promotion)).all() == []


def test_status_buttons_and_rule_order(app, auth, client, catalog):
    auth.login("marketing")
    key = post_new(client, "volume_discount").headers["Location"].rsplit("/", 1)[1]
    assert client.post(f"/promotions/{key}/status", data={"status": "paused"}).status_code == 409
    assert client.post(f"/promotions/{key}/status", data={"status": "active"}).status_code == 303
    with app.app_context():
        first, second = flow.rules_of(key)
        assert db.session.get(Promotion, key).status == "active"
    assert client.post(f"/promotions/{key}/rules/{second.id}/move", data={"direction": "up"}).status_code == 303
    with app.app_context():
        assert [r.id for r in flow.rules_of(key)] == [second.id, first.id]
    assert client.post(f"/promotions/{key}/status", data={"status": "expired"}).status_code == 303
    assert client.get(f"/promotions/{key}/edit").status_code == 409
    assert client.post(f"/promotions/{key}/status", data={"status": "bogus"}).status_code == 400


def test_list_filters_sort_and_export(app, auth, client, catalog):
    with app.app_context():
        make_promotion("Alpha", "bundle", "draft", starts_at=utcnow())
        make_promotion("Beta", "volume_discount", "active", starts_at=utcnow(), ends_at=utcnow().replace(year=2020))
        db.session.commit()
    auth.login("support")
    page = client.get("/promotions?sort=name").get_data(as_text=True)
    assert page.index("Alpha") < page.index("Beta") and 'id="new-promotion"' not in page
    expired = client.get("/promotions?status=expired").get_data(as_text=True)
    assert "Beta" in expired and "Alpha" not in expired and "past its end, still active" in expired
    rows = list(csv.reader(io.StringIO(client.get("/promotions/export.csv?type=bundle").get_data(as_text=True)
                                       .lstrip("\ufeff"))))
    assert rows[0][:3] == ["name", "type", "status"] and [r[0] for r in rows[1:]] == ["Alpha"]
    assert client.post("/promotions/new?type=bundle", data={**COMMON, **FORMS["bundle"]}).status_code == 403
    assert client.get("/promotions?status=NOPE").status_code == 400
