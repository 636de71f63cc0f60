"""Promotions: the form per type round-trips through configuration and rules, every
refusal names its field, the status machine, rule priorities and expiring past the end."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from console.demo.builders import make_category, make_product, make_promotion
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.discount import RULE_TYPES, Promotion, PromotionRule
from console.models.types import utcnow
from console.workflows import WorkflowError
from console.workflows import promotions as flow
from console.workflows.discounts import Invalid
from tests.returns_helpers import staff_actor

DAY = timedelta(days=1)


@pytest.fixture
def actor(ctx):
    return staff_actor("marketing")


@pytest.fixture
def catalog(ctx):
    ids = {sku: make_product(sku, sku.title(), "10.00").id for sku in ("SOCK-1", "SOCK-2", "PAN-1", "LID-1")}
    ids["apparel"] = make_category("Apparel", slug="apparel").id
    db.session.commit()
    return ids


def forms():
    now = utcnow()
    common = {"name": "Promo", "description": "For the test", "starts_at": now - DAY, "ends_at": now + 30 * DAY}
    return {
        "buy_x_get_y": flow.PromotionInput(type="buy_x_get_y", buy_quantity=2, buy_products=["SOCK-1", "SOCK-2"],
                                           buy_categories=["apparel"], get_quantity=1, get_products=["SOCK-1"],
                                           get_free=True, **common),
        "BUY_X_GET_Y half off": flow.PromotionInput(type="buy_x_get_y", buy_quantity=3, buy_categories=["apparel"],
                                                    get_quantity=1, get_free=False, get_percent=Decimal("50.00"),
                                                    **common),
        "BUNDLE price": flow.PromotionInput(type="bundle", bundle_products=["PAN-1", "LID-1"], bundle_pricing="price",
                                            bundle_price=Decimal("15.00"), bundle_currency="USD", **common),
        "BUNDLE percent": flow.PromotionInput(type="bundle", bundle_products=["PAN-1", "LID-1"],
                                              bundle_pricing="percent", bundle_percent=Decimal("12.50"), **common),
        "volume_discount": flow.PromotionInput(type="volume_discount", volume_categories=["apparel"],
                                               tiers=[(3, Decimal("5.00")), (5, Decimal("10.00")),
                                                      (10, Decimal("15.00"))], **common),
    }


@pytest.mark.parametrize("case", list(forms()))
def test_each_form_round_trips(actor, catalog, case):
    data = forms()[case]
    promotion = flow.create_promotion(actor, data)
    db.session.expire_all()
    stored = db.session.get(Promotion, promotion.id)
    assert stored.status == "draft" and stored.is_active is False
    assert stored.configuration["shape"] == 1
    assert flow.input_of(stored) == data
    rules = flow.rules_of(stored.id)
    assert rules and flow.rules_match(stored, rules)
    # the discount service tries the highest priority first: the first rule has the highest
    assert [r.priority for r in rules] == list(range(len(rules), 0, -1))


def test_the_documented_shape(actor, catalog):
    data = forms()
    volume = flow.create_promotion(actor, data["volume_discount"])
    assert volume.configuration == {"shape": 1, "scope": {"product_ids": [], "category_ids": [catalog["apparel"]]},
                                    "tiers": [{"min_quantity": 3, "percent_off": "5.00"},
                                              {"min_quantity": 5, "percent_off": "10.00"},
                                              {"min_quantity": 10, "percent_off": "15.00"}]}
    rules = flow.rules_of(volume.id)
    # rules in the discount service's terms: ruleType and conditions.type from its list,
    # its key names, and the highest tier tried first (highest priority)
    tier = {"type": "buy_quantity", "productIds": [], "categoryIds": [catalog["apparel"]]}
    assert [(r.rule_type, r.conditions, r.actions, r.priority) for r in rules] == [
        ("buy_quantity", {**tier, "quantity": 10},
         {"type": "discount", "discountType": "percentage", "discountValue": "15.00"}, 3),
        ("buy_quantity", {**tier, "quantity": 5},
         {"type": "discount", "discountType": "percentage", "discountValue": "10.00"}, 2),
        ("buy_quantity", {**tier, "quantity": 3},
         {"type": "discount", "discountType": "percentage", "discountValue": "5.00"}, 1)]
    bogo = flow.create_promotion(actor, data["buy_x_get_y"])
    [rule] = flow.rules_of(bogo.id)
    assert rule.rule_type == "buy_quantity"
    assert rule.conditions == {"type": "buy_quantity", "quantity": 2,
                               "productIds": [catalog["SOCK-1"], catalog["SOCK-2"]], "categoryIds": [catalog["apparel"]]}
    assert rule.actions == {"type": "free_item", "quantity": 1, "productIds": [catalog["SOCK-1"]],
                            "percentOff": "100.00"}
    bundle = flow.create_promotion(actor, data["BUNDLE price"])
    [rule] = flow.rules_of(bundle.id)
    assert (rule.rule_type, rule.conditions, rule.actions) == (
        "product_match", {"type": "product_match", "productIds": [catalog["PAN-1"], catalog["LID-1"]],
                          "allRequired": True},
        {"type": "bundle_discount", "bundlePrice": "15.00", "currency": "USD"})
    assert {r.rule_type for r in db.session.scalars(select(PromotionRule))} <= set(RULE_TYPES)
    [row] = [r for r in db.session.scalars(select(SecurityAuditLog).where(
        SecurityAuditLog.action == "promotion.created")) if r.metadata_["entity_id"] == bundle.id]
    assert row.metadata_["after"]["rules"][0]["rule_type"] == "product_match"


@pytest.mark.parametrize("case, changes, field, message", [
    ("buy_x_get_y", {"name": ""}, "name", "Enter the name"),
    ("buy_x_get_y", {"type": "NOPE"}, "type", "Choose the type"),
    ("buy_x_get_y", {"ends_at": utcnow() - 2 * DAY}, "ends_at", "The end must come after the start"),
    ("buy_x_get_y", {"buy_quantity": 0}, "buy_quantity", "from 1 to 1000"),
    ("buy_x_get_y", {"buy_quantity": None}, "buy_quantity", "Enter the quantity to buy"),
    ("buy_x_get_y", {"get_quantity": 1001}, "get_quantity", "from 1 to 1000"),
    ("buy_x_get_y", {"buy_products": [], "buy_categories": []}, "buy_products", "Choose what has to be bought"),
    ("buy_x_get_y", {"buy_products": ["SOCK-9"]}, "buy_products", "No product with SKU “SOCK-9”"),
    ("buy_x_get_y", {"buy_categories": ["shoes"]}, "buy_categories", "No category with slug “shoes”"),
    ("buy_x_get_y", {"get_free": False, "get_percent": Decimal("0")}, "get_percent", "more than 0 and at most 100"),
    ("BUNDLE price", {"bundle_products": ["PAN-1"]}, "bundle_products", "at least 2 products"),
    ("BUNDLE price", {"bundle_price": Decimal("0")}, "bundle_price", "Enter the bundle price, more than 0"),
    ("BUNDLE price", {"bundle_currency": ""}, "bundle_currency", "three letters"),
    ("BUNDLE price", {"bundle_pricing": "other"}, "bundle_pricing", "Choose a bundle price or a percentage"),
    ("BUNDLE percent", {"bundle_percent": Decimal("101")}, "bundle_percent", "more than 0 and at most 100"),
    ("volume_discount", {"tiers": []}, "tiers", "Add at least one tier"),
    ("volume_discount", {"tiers": [(5, Decimal("5")), (3, Decimal("10"))]}, "tiers",
     "Tier 2: tiers go in ascending order of quantity, so 3 must be more than 5"),
    ("volume_discount", {"tiers": [(3, Decimal("10")), (5, Decimal("5"))]}, "tiers",
     "Tier 2: buying more can't give less off"),
    ("volume_discount", {"tiers": [(1, Decimal("5"))]}, "tiers", "Tier 1: the quantity must be from 2 to 1000"),
    ("volume_discount", {"tiers": [(3, None)]}, "tiers", "Tier 1: the percentage must be more than 0"),
    ("volume_discount", {"volume_products": ["NOPE"]}, "volume_products", "No product with SKU “NOPE”"),
])
def test_every_refusal_names_its_field(actor, catalog, case, changes, field, message):
    with pytest.raises(Invalid) as caught:
        flow.create_promotion(actor, replace(forms()[case], **changes))
    assert message in caught.value.errors[field], caught.value.errors
    assert db.session.scalars(select(Promotion)).all() == []


def test_status_machine(actor, catalog):
    promotion = flow.create_promotion(actor, forms()["BUNDLE price"])
    with pytest.raises(WorkflowError, match="is draft: it can't become paused .*active or expired"):
        flow.pause(actor, promotion.id)
    assert flow.activate(actor, promotion.id).is_active is True
    assert flow.pause(actor, promotion.id).status == "paused"
    assert flow.activate(actor, promotion.id).status == "active"
    assert flow.expire(actor, promotion.id).is_active is False
    with pytest.raises(WorkflowError, match=r"expired is final"):
        flow.activate(actor, promotion.id)
    with pytest.raises(WorkflowError, match="has expired: it can't be edited"):
        flow.update_promotion(actor, promotion.id, replace(forms()["BUNDLE price"], name="Late"))
    actions = [r.action for r in db.session.scalars(select(SecurityAuditLog).order_by(SecurityAuditLog.created_at))
               if r.action.startswith("promotion.")]
    assert actions == ["promotion.created", "promotion.active", "promotion.paused", "promotion.active",
                       "promotion.expired"]


def test_activating_checks_the_window_and_the_rules(actor, catalog):
    past = flow.create_promotion(actor, replace(forms()["BUNDLE price"], starts_at=utcnow() - 9 * DAY,
                                                ends_at=utcnow() - DAY))
    with pytest.raises(WorkflowError, match="can't be activated: its end has passed") as caught:
        flow.activate(actor, past.id)
    assert caught.value.status == 422
    legacy = make_promotion("Service-made", "bundle", "draft", configuration={"percent_off": 10},
                            rules=[{"rule_type": "product_match", "conditions": {"tag": "gift"}, "actions": {}}])
    db.session.commit()
    with pytest.raises(WorkflowError, match="its rules are not those of its configuration"):
        flow.activate(actor, legacy.id)
    empty = make_promotion("No rules", "bundle", "draft", configuration={"shape": 1})
    db.session.commit()
    with pytest.raises(WorkflowError, match="it has no rules"):
        flow.activate(actor, empty.id)


def test_type_changes_only_while_draft_and_saving_keeps_reordered_rules(actor, catalog):
    data = forms()["volume_discount"]
    promotion = flow.create_promotion(actor, data)
    first, second, third = flow.rules_of(promotion.id)
    flow.move_rule(actor, promotion.id, third.id, "up")
    assert [r.id for r in flow.rules_of(promotion.id)] == [first.id, third.id, second.id]
    with pytest.raises(WorkflowError, match="already first"):
        flow.move_rule(actor, promotion.id, first.id, "up")
    # a change outside the offer keeps the rules and their order
    flow.update_promotion(actor, promotion.id, replace(data, name="Renamed"))
    assert [r.id for r in flow.rules_of(promotion.id)] == [first.id, third.id, second.id]
    # a changed offer rewrites them in the default order
    flow.update_promotion(actor, promotion.id, replace(data, tiers=[(3, Decimal("5")), (6, Decimal("12"))]))
    assert [r.conditions["quantity"] for r in flow.rules_of(promotion.id)] == [6, 3]
    flow.activate(actor, promotion.id)
    with pytest.raises(WorkflowError, match="changes only while it is a draft"):
        flow.update_promotion(actor, promotion.id, replace(forms()["BUNDLE price"]))


def test_past_end_shows_expired_and_the_cron_command_expires_it(app, actor, catalog):
    promotion = flow.create_promotion(actor, replace(forms()["BUNDLE price"], ends_at=utcnow() + DAY))
    flow.activate(actor, promotion.id)
    later = utcnow() + 2 * DAY
    assert flow.shown_status(promotion, later) == "expired" and promotion.status == "active"
    assert db.session.scalars(select(Promotion.id).where(flow.status_condition("expired", later))).all() == [
        promotion.id]
    assert db.session.scalars(select(Promotion.id).where(flow.status_condition("active", later))).all() == []
    assert flow.expire_past_end(now=utcnow()) == []
    db.session.remove()
    with app.app_context():
        # the CLI command, as cron runs it (its clock is real time: move the end instead)
        row = db.session.get(Promotion, promotion.id)
        row.ends_at = utcnow() - DAY
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["console", "expire-promotions"])
    assert result.exit_code == 0 and "Expired 1 promotion: “Promo”" in result.output
    again = app.test_cli_runner().invoke(args=["console", "expire-promotions"])
    assert "No promotion is past its end date." in again.output
    with app.app_context():
        assert db.session.get(Promotion, promotion.id).status == "expired"
        [row] = db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action == "promotion.expired")).all()
        assert row.user_id is None and row.metadata_["reason"] == "past its end"


def test_legacy_configuration_reads_only_the_common_fields(actor, catalog):
    legacy = make_promotion("Service-made", "bundle", "paused", configuration={"percent_off": 10})
    db.session.commit()
    data = flow.input_of(legacy)
    assert data.name == "Service-made" and data.bundle_products == [] and not flow.readable(legacy.configuration)


def test_every_demo_promotion_opens_in_its_form(ctx):
    from console.demo.seed import seed_demo

    seed_demo(customers=5, orders=10, seed=2)
    promotions = db.session.scalars(select(Promotion)).all()
    assert {p.type for p in promotions} == set(flow.TYPES) and {p.status for p in promotions} == set(flow.STATUSES)
    for promotion in promotions:
        assert flow.rules_match(promotion, flow.rules_of(promotion.id)), promotion.name
        assert flow.configuration_for(flow.input_of(promotion)) == promotion.configuration, promotion.name
