"""Coupons: every refusal of the form's fields with its message, create/edit/disable/
enable/delete/recount with their audit rows, and bulk generation."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.demo.builders import make_category, make_coupon, make_customer, make_order, make_product, use_coupon
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.discount import Coupon, CouponUsage
from console.models.types import random_tail, utcnow
from console.workflows import WorkflowError
from console.workflows import coupons as flow
from console.workflows.discounts import Invalid
from tests.returns_helpers import staff_actor


@pytest.fixture
def actor(ctx):
    return staff_actor("marketing")


@pytest.fixture
def catalog(ctx):
    mug = make_product("MUG-1", "Blue mug", "12.00")
    plate = make_product("PLATE-1", "Red plate", "9.00")
    kitchen = make_category("Kitchen", slug="kitchen")
    db.session.commit()
    return {"mug": mug.id, "plate": plate.id, "kitchen": kitchen.id}


def good(**changes) -> flow.CouponInput:
    base = flow.CouponInput(code="spring-10", name="Spring 10%", type="percentage", discount_value=Decimal("10"),
                            currency="USD", usage_limit=100, usage_limit_per_user=1)
    return replace(base, **changes)


def audit_rows(action: str) -> list[SecurityAuditLog]:
    return list(db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action == action)))


def refused(data, coupon=None) -> dict[str, str]:
    with pytest.raises(Invalid) as caught:
        if coupon is None:
            flow.create_coupon(None, data)
        else:
            flow.update_coupon(None, coupon, data)
    assert caught.value.status == 422
    return caught.value.errors


def test_create_upper_cases_the_code_and_stores_skus_and_slugs_as_ids(actor, catalog):
    coupon = flow.create_coupon(actor, good(applicable_products=["mug-1"], applicable_categories=["KITCHEN"],
                                            excluded_products=["PLATE-1"], metadata=[("channel", "email")]))
    db.session.expire_all()
    stored = db.session.get(Coupon, coupon.id)
    assert stored.code == "SPRING-10" and stored.usage_count == 0 and stored.is_active is True
    assert stored.applicable_products == [catalog["mug"]]
    assert stored.applicable_categories == [catalog["kitchen"]]
    assert stored.excluded_products == [catalog["plate"]]
    assert stored.metadata_ == {"channel": "email"}
    [row] = audit_rows("coupon.created")
    assert row.user_id == actor.id and row.metadata_["after"]["code"] == "SPRING-10"
    # read back into the form as SKUs and slugs
    data = flow.input_of(stored)
    assert (data.applicable_products, data.applicable_categories, data.excluded_products) == (
        ["MUG-1"], ["kitchen"], ["PLATE-1"])


@pytest.mark.parametrize("changes, field, message", [
    ({"code": ""}, "code", "Enter a code"),
    ({"code": "spring 10"}, "code", "Use only letters A-Z, digits and dashes"),
    ({"code": "SPRÍNG"}, "code", "Use only letters A-Z, digits and dashes"),
    ({"code": "A" * 51}, "code", "Keep the code to 50 characters"),
    ({"name": "  "}, "name", "Enter the name"),
    ({"name": "x" * 201}, "name", "keep it to 200"),
    ({"name": "bad\x00name"}, "name", "control character"),
    ({"type": "BOGUS"}, "type", "Choose the type"),
    ({"discount_value": Decimal("0")}, "discount_value", "more than 0 and at most 100"),
    ({"discount_value": Decimal("100.01")}, "discount_value", "more than 0 and at most 100"),
    ({"discount_value": None}, "discount_value", "Enter the percentage"),
    ({"type": "fixed_amount", "discount_value": Decimal("0")}, "discount_value", "must be more than 0"),
    ({"type": "fixed_amount", "discount_value": None}, "discount_value", "Enter the amount off"),
    ({"type": "fixed_amount", "discount_value": Decimal("5"), "currency": None}, "currency",
     "A fixed amount needs its currency"),
    ({"currency": "US"}, "currency", "three letters"),
    ({"type": "free_shipping", "discount_value": Decimal("5")}, "discount_value", "Free shipping takes no value"),
    ({"minimum_amount": Decimal("-1")}, "minimum_amount", "minimum order amount must be at least 0"),
    ({"maximum_discount": Decimal("-0.01")}, "maximum_discount", "maximum discount must be at least 0"),
    ({"usage_limit": 0}, "usage_limit", "usage limit must be at least 1"),
    ({"usage_limit_per_user": 0}, "usage_limit_per_user", "limit per customer must be at least 1"),
    ({"starts_at": utcnow(), "ends_at": utcnow() - timedelta(days=1)}, "ends_at", "The end must come after the start"),
    ({"applicable_products": ["NOPE-1", "MUG-1"]}, "applicable_products", "No product with SKU “NOPE-1”"),
    ({"applicable_categories": ["garden"]}, "applicable_categories", "No category with slug “garden”"),
    ({"excluded_products": ["GONE"]}, "excluded_products", "No product with SKU “GONE”"),
    ({"applicable_products": ["MUG-1"], "excluded_products": ["MUG-1"]}, "excluded_products",
     "both applicable and excluded"),
    ({"metadata": [("", "orphan")]}, "metadata", "Give the value “orphan” a key"),
    ({"metadata": [("a", "1"), ("a", "2")]}, "metadata", "appears twice"),
])
def test_every_refusal_names_its_field(ctx, catalog, changes, field, message):
    errors = refused(good(**changes))
    assert message in errors[field], errors
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 0


def test_codes_are_unique_ignoring_case(actor, catalog):
    make_coupon("spring-10", name="lower-case, written by the discount service")
    db.session.commit()
    errors = refused(good(code="SPRING-10"))
    assert "already taken (as spring-10: codes are compared ignoring case)" in errors["code"]


def used_coupon(code="USED-5", usage_limit=10):
    coupon = make_coupon(code, usage_limit=usage_limit)
    customer, _ = make_customer(f"{code.lower()}@example.com")
    for _ in range(3):
        order = make_order(customer, [(make_product(f"P-{random_tail(8)}", "Thing", "10.00"), 1)]).order
        use_coupon(coupon, order)
    db.session.commit()
    return coupon


def test_a_used_coupon_keeps_its_code_and_its_limit_stays_above_its_uses(actor, catalog):
    coupon = used_coupon()
    data = flow.input_of(coupon)
    errors = refused(replace(data, code="RENAMED"), coupon.id)
    assert "has been used, so its code can't change" in errors["code"]
    errors = refused(replace(data, usage_limit=2), coupon.id)
    assert "can't be below the 3 times the coupon has already been used" in errors["usage_limit"]
    flow.update_coupon(actor, coupon.id, replace(data, usage_limit=3, name="Renamed only"))
    [row] = audit_rows("coupon.updated")
    assert row.metadata_["before"] == {"name": "USED-5", "usage_limit": 10}
    assert row.metadata_["after"] == {"name": "Renamed only", "usage_limit": 3}


def test_editing_keeps_a_product_that_has_gone_from_the_catalog(actor, catalog):
    coupon = flow.create_coupon(actor, good(applicable_products=["MUG-1"]))
    coupon.applicable_products = [catalog["mug"], "deleted-product-id"]
    db.session.commit()
    data = flow.input_of(coupon)
    assert data.applicable_products == ["MUG-1", "deleted-product-id"]
    [gone] = [c for c in flow.chosen("products", coupon.applicable_products) if c.missing]
    assert gone.name == "missing (id deleted-product-id)"
    flow.update_coupon(actor, coupon.id, replace(data, name="Still fine"))
    assert db.session.get(Coupon, coupon.id).applicable_products == [catalog["mug"], "deleted-product-id"]


def test_saving_without_a_change_is_refused(actor, catalog):
    coupon = flow.create_coupon(actor, good())
    with pytest.raises(WorkflowError, match="Nothing changed"):
        flow.update_coupon(actor, coupon.id, flow.input_of(coupon))


def test_disable_enable_and_delete_only_when_never_used(actor, catalog):
    fresh = flow.create_coupon(actor, good())
    flow.disable(actor, fresh.id)
    assert flow.state_of(db.session.get(Coupon, fresh.id)) == "disabled"
    with pytest.raises(WorkflowError, match="already disabled"):
        flow.disable(actor, fresh.id)
    flow.enable(actor, fresh.id)
    assert [r.metadata_["after"] for r in audit_rows("coupon.disabled") + audit_rows("coupon.enabled")] == [
        {"is_active": False}, {"is_active": True}]
    assert flow.delete_coupon(actor, fresh.id) == "SPRING-10"
    assert db.session.get(Coupon, fresh.id) is None
    assert audit_rows("coupon.deleted")[0].metadata_["before"]["code"] == "SPRING-10"
    used = used_coupon()
    with pytest.raises(WorkflowError, match="has been used, so it is kept .* disable it instead") as caught:
        flow.delete_coupon(actor, used.id)
    assert caught.value.status == 409 and db.session.get(Coupon, used.id) is not None


def test_recount_sets_the_count_to_the_usage_rows_and_is_audited(actor, catalog):
    coupon = used_coupon()
    coupon.usage_count = 7
    db.session.commit()
    result = flow.recount(actor, coupon.id)
    assert (result.before, result.after) == (7, 3)
    assert db.session.get(Coupon, coupon.id).usage_count == 3
    [row] = audit_rows("coupon.recounted")
    assert row.metadata_["before"] == {"usage_count": 7} and row.metadata_["after"] == {"usage_count": 3}
    with pytest.raises(WorkflowError, match="already matches its 3 uses"):
        flow.recount(actor, coupon.id)


def test_derived_state(ctx):
    now = utcnow()
    day = timedelta(days=1)
    rows = {
        "active": make_coupon("A1", starts_at=now - day, ends_at=now + day),
        "scheduled": make_coupon("S1", starts_at=now + day),
        "expired": make_coupon("E1", starts_at=now - 2 * day, ends_at=now - day),
        "exhausted": make_coupon("X1", usage_limit=2),
        "disabled": make_coupon("D1", is_active=False, ends_at=now - day),
    }
    rows["exhausted"].usage_count = 2
    db.session.commit()
    for state, coupon in rows.items():
        assert flow.state_of(coupon, now) == state
        found = db.session.scalars(select(Coupon.code).where(flow.state_condition(state, now))).all()
        assert found == [coupon.code], state


# --- bulk generation ---------------------------------------------------------------------

def test_ten_thousand_codes_unique_written_once_in_the_look_alike_free_alphabet(actor, catalog, count_queries):
    template = flow.create_coupon(actor, good(code="TEMPLATE", applicable_products=["MUG-1"]))
    before = count_queries.count
    result = flow.generate_codes(actor, template.id, 10_000, prefix="spr-", length=8)
    statements = count_queries.statements[before:]
    assert len(result.codes) == len(set(result.codes)) == 10_000
    assert all(c.startswith("SPR-") and len(c) == 12 and not set(c[4:]) & set("01OIL") for c in result.codes)
    rows = db.session.execute(select(Coupon.code, Coupon.usage_limit, Coupon.applicable_products, Coupon.metadata_)
                              .where(Coupon.code.like("SPR-%"))).all()
    assert len(rows) == 10_000 and {r.code for r in rows} == set(result.codes)
    assert {r.usage_limit for r in rows} == {1}
    assert all(r.applicable_products == [catalog["mug"]] and r.metadata_["batch"] == result.batch for r in rows)
    # written once, in two statements of 5,000 codes, not one per code
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO COUPONS")]
    assert len(inserts) == 2
    [row] = audit_rows("coupon.codes_generated")
    assert row.metadata_["after"]["count"] == 10_000 and row.metadata_["entity_id"] == template.id
    assert db.session.scalar(select(func.count()).select_from(Coupon).where(flow.batch_condition(result.batch))) == 10_000


@pytest.mark.parametrize("count, prefix, length, field, message", [
    (0, "", 8, "count", "Generate from 1 to 10,000 codes"),
    (10_001, "", 8, "count", "Generate from 1 to 10,000 codes"),
    (10, "BAD PREFIX", 8, "prefix", "Use only letters A-Z, digits and dashes in the prefix"),
    (10, "P" * 21, 8, "prefix", "Keep the prefix to 20 characters"),
    (10, "", 3, "length", "4 to 16 characters"),
    (10, "", 17, "length", "4 to 16 characters"),
    (10_000, "", 4, "length", "give too few different codes"),
])
def test_generation_refusals(actor, catalog, count, prefix, length, field, message):
    template = flow.create_coupon(actor, good())
    with pytest.raises(Invalid) as caught:
        flow.generate_codes(actor, template.id, count, prefix=prefix, length=length)
    assert message in caught.value.errors[field]
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 1


def test_generated_codes_avoid_existing_codes_in_any_case(actor, catalog, monkeypatch):
    template = flow.create_coupon(actor, good())
    make_coupon("z-aaaa", name="taken in lower case")
    db.session.commit()
    draws = iter(["Z-AAAA", "Z-AAAA", "Z-BBBB", "Z-CCCC"])
    monkeypatch.setattr(flow, "_random_code", lambda prefix, length: next(draws))
    result = flow.generate_codes(actor, template.id, 2, prefix="Z-", length=4, uses_per_code=None)
    assert sorted(result.codes) == ["Z-BBBB", "Z-CCCC"]
    assert db.session.scalar(select(Coupon.usage_limit).where(Coupon.code == "Z-BBBB")) == 100


def test_a_generation_that_fails_part_way_writes_nothing(actor, catalog, monkeypatch):
    template = flow.create_coupon(actor, good())
    real = flow._insert_new
    calls = []

    def fail_on_second_chunk(pairs, settings):
        calls.append(len(pairs))
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return real(pairs, settings)

    monkeypatch.setattr(flow, "_insert_new", lambda pairs, settings: {
        code for part in (pairs[:500], pairs[500:]) if part for code in fail_on_second_chunk(part, settings)})
    with pytest.raises(RuntimeError):
        flow.generate_codes(actor, template.id, 1000, prefix="HALF-", length=6)
    db.session.rollback()
    assert calls == [500, 500]
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 1
    assert not audit_rows("coupon.codes_generated")
