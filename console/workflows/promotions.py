"""Promotions in discount_db: a form per type, written as one documented shape, a status
state machine, rule priorities, and expiring those past their end (also from cron).

The shape (README, "Promotion rules"): ``configuration`` holds the offer as one
document, ``{"shape": 1, ...}``, which is what the form reads back; ``promotion_rules``
holds the same offer as rows in the discount service's own terms: it evaluates a
promotion's rules from the highest ``priority`` down, reads ``conditions.type`` (one of
RULE_TYPES in console.models.discount, also written as ``ruleType``) with ``productIds``,
``categoryIds``, ``quantity``, and applies the first rule whose conditions hold through ``actions.type``
(``discount`` with ``discountType`` percentage and ``discountValue``, ``free_item`` or
``bundle_discount``). Both are written together from the form by ``rules_for``; a
promotion whose rules no longer match its configuration says so.

    buy_x_get_y      configuration {"shape": 1,
                                    "buy": {"quantity": 2, "product_ids": [...], "category_ids": [...]},
                                    "get": {"quantity": 1, "product_ids": [...], "percent_off": "100"}}
                     one rule      buy_quantity   conditions {"type", "quantity", "productIds", "categoryIds"}
                                                  actions    {"type": "free_item", "quantity", "productIds",
                                                              "percentOff"}
    bundle           configuration {"shape": 1, "bundle": {"product_ids": [...]},
                                    "price": {"amount": "49.00", "currency": "USD"}}  or  "percent_off": "10"
                     one rule      product_match  conditions {"type", "productIds", "allRequired": true}
                                                  actions    {"type": "bundle_discount", "bundlePrice",
                                                              "currency"} or {..., "percentOff"}
    volume_discount  configuration {"shape": 1, "scope": {"product_ids": [...], "category_ids": [...]},
                                    "tiers": [{"min_quantity": 3, "percent_off": "5"}, ...]}  (ascending)
                     a rule a tier buy_quantity   conditions {"type", "quantity", "productIds", "categoryIds"}
                                                  actions    {"type": "discount", "discountType": "percentage",
                                                              "discountValue"}   (largest quantity first)

Empty product and category lists mean "any product". ``get.product_ids`` empty means
"the same items as bought"; ``percent_off`` "100" means free. Percentages and amounts
are strings with two decimals, so no float ever reaches the service.

Status: draft -> active -> paused -> active; any -> expired (final). ``is_active``
follows (true exactly when active). Activating checks the window and that the rules
are complete.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import delete, func, or_, select

from console import audit
from console.extensions import db
from console.lookups import database
from console.models.discount import PROMOTION_STATUSES, PROMOTION_TYPES, Promotion, PromotionRule, PromotionUsage
from console.models.types import MAX_MONEY, new_id, utcnow
from console.workflows import WorkflowError
from console.workflows.discounts import (
    CENTS, DESCRIPTION_MAX, NAME_MAX, Invalid, changes, check_percent, check_text, check_window, category_ids,
    chosen, product_ids,
)

TYPES = PROMOTION_TYPES
TYPE_LABELS = {TYPES.BUY_X_GET_Y: "buy X get Y", TYPES.BUNDLE: "bundle", TYPES.VOLUME_DISCOUNT: "volume discount"}
STATUSES = PROMOTION_STATUSES
# status -> the statuses an action may move it to; expired is final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    STATUSES.DRAFT: (STATUSES.ACTIVE, STATUSES.EXPIRED),
    STATUSES.ACTIVE: (STATUSES.PAUSED, STATUSES.EXPIRED),
    STATUSES.PAUSED: (STATUSES.ACTIVE, STATUSES.EXPIRED),
    STATUSES.EXPIRED: (),
}
SHAPE = 1
MAX_QUANTITY = 1000
MAX_TIERS = 10


# --- input --------------------------------------------------------------------------------

@dataclass
class PromotionInput:
    """A promotion as its form gives it: products as SKUs, categories as slugs (typed),
    numbers already parsed. Only the fields of ``type`` are read."""

    name: str = ""
    description: str | None = None
    type: str = TYPES.BUY_X_GET_Y
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    # buy_x_get_y
    buy_quantity: int | None = None
    buy_products: list[str] = field(default_factory=list)
    buy_categories: list[str] = field(default_factory=list)
    get_quantity: int | None = None
    get_products: list[str] = field(default_factory=list)
    get_free: bool = True
    get_percent: Decimal | None = None
    # bundle
    bundle_products: list[str] = field(default_factory=list)
    bundle_pricing: str = "price"  # "price" or "percent"
    bundle_price: Decimal | None = None
    bundle_currency: str | None = None
    bundle_percent: Decimal | None = None
    # volume_discount
    volume_products: list[str] = field(default_factory=list)
    volume_categories: list[str] = field(default_factory=list)
    tiers: list[tuple[int | None, Decimal | None]] = field(default_factory=list)


def _text(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENTS))


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def readable(configuration) -> bool:
    """True when ``configuration`` is in the console's shape (the form can read it)."""
    return isinstance(configuration, dict) and configuration.get("shape") == SHAPE


def _keys(table: str, ids) -> list[str]:
    return [c.key for c in chosen(table, ids)]


def input_of(promotion: Promotion) -> PromotionInput:
    """What the form shows for ``promotion``: its configuration read back, ids as SKUs and
    slugs. A configuration in another shape gives only the common fields."""
    data = PromotionInput(name=promotion.name or "", description=promotion.description,
                          type=promotion.type or TYPES.BUY_X_GET_Y, starts_at=promotion.starts_at,
                          ends_at=promotion.ends_at)
    config = promotion.configuration
    if not readable(config):
        return data
    if data.type == TYPES.BUY_X_GET_Y:
        buy, get = config.get("buy") or {}, config.get("get") or {}
        percent = _decimal(get.get("percent_off"))
        data.buy_quantity, data.get_quantity = buy.get("quantity"), get.get("quantity")
        data.buy_products = _keys("products", buy.get("product_ids"))
        data.buy_categories = _keys("categories", buy.get("category_ids"))
        data.get_products = _keys("products", get.get("product_ids"))
        data.get_free = percent == 100
        data.get_percent = None if data.get_free else percent
    elif data.type == TYPES.BUNDLE:
        data.bundle_products = _keys("products", (config.get("bundle") or {}).get("product_ids"))
        price = config.get("price")
        if price:
            data.bundle_pricing, data.bundle_price = "price", _decimal(price.get("amount"))
            data.bundle_currency = price.get("currency")
        else:
            data.bundle_pricing, data.bundle_percent = "percent", _decimal(config.get("percent_off"))
    elif data.type == TYPES.VOLUME_DISCOUNT:
        scope = config.get("scope") or {}
        data.volume_products = _keys("products", scope.get("product_ids"))
        data.volume_categories = _keys("categories", scope.get("category_ids"))
        data.tiers = [(t.get("min_quantity"), _decimal(t.get("percent_off"))) for t in config.get("tiers") or []]
    return data


def _quantity(errors: dict, name: str, value: int | None, label: str) -> None:
    if value is None:
        errors[name] = f"Enter the {label}, from 1 to {MAX_QUANTITY}."
    elif not 1 <= value <= MAX_QUANTITY:
        errors[name] = f"The {label} must be from 1 to {MAX_QUANTITY} (it is {value})."


def _ids(kind, typed, kept, errors: dict, name: str) -> list[str]:
    """Ids for what was typed; an id the promotion already holds (a product that has
    gone shows as its id) is kept as it is."""
    kept = set(kept)
    new = [v for v in typed if v not in kept]
    resolved = dict(zip(new, kind(new, errors, name))) if new else {}
    if name in errors:
        return []
    return list(dict.fromkeys(v if v in kept else resolved[v] for v in typed))


def _stored_ids(config) -> set[str]:
    """Every product and category id in a configuration (kept when typed back as ids)."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("product_ids", "category_ids"):
                    found.update(str(i) for i in inner or [])
                else:
                    walk(inner)
    walk(config or {})
    return found


def configuration_for(data: PromotionInput, kept: set[str] = frozenset()) -> dict:
    """The configuration document for ``data``'s type, or Invalid naming each field."""
    errors: dict[str, str] = {}
    config: dict = {"shape": SHAPE}
    if data.type == TYPES.BUY_X_GET_Y:
        _quantity(errors, "buy_quantity", data.buy_quantity, "quantity to buy")
        _quantity(errors, "get_quantity", data.get_quantity, "quantity given")
        buy_products = _ids(product_ids, data.buy_products, kept, errors, "buy_products")
        buy_categories = _ids(category_ids, data.buy_categories, kept, errors, "buy_categories")
        if not data.buy_products and not data.buy_categories:
            errors["buy_products"] = "Choose what has to be bought: products (SKUs) or categories (slugs)."
        get_products = _ids(product_ids, data.get_products, kept, errors, "get_products")
        percent = Decimal(100) if data.get_free else data.get_percent
        if not data.get_free:
            check_percent(errors, "get_percent", percent, "percentage off the items given")
        if not errors:
            config["buy"] = {"quantity": data.buy_quantity, "product_ids": buy_products, "category_ids": buy_categories}
            config["get"] = {"quantity": data.get_quantity, "product_ids": get_products, "percent_off": _text(percent)}
    elif data.type == TYPES.BUNDLE:
        products = _ids(product_ids, data.bundle_products, kept, errors, "bundle_products")
        if "bundle_products" not in errors and len(data.bundle_products) < 2:
            errors["bundle_products"] = "A bundle needs at least 2 products (SKUs)."
        if data.bundle_pricing == "price":
            currency = (data.bundle_currency or "").strip().upper()
            if data.bundle_price is None or data.bundle_price <= 0:
                errors["bundle_price"] = "Enter the bundle price, more than 0, like 49.00."
            elif data.bundle_price > MAX_MONEY:
                errors["bundle_price"] = f"The bundle price can be at most {MAX_MONEY}."
            if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
                errors["bundle_currency"] = "Write the bundle price's currency as three letters, like USD."
            if not errors:
                config["price"] = {"amount": _text(data.bundle_price), "currency": currency}
        elif data.bundle_pricing == "percent":
            check_percent(errors, "bundle_percent", data.bundle_percent, "percentage off the bundle")
            if not errors:
                config["percent_off"] = _text(data.bundle_percent)
        else:
            errors["bundle_pricing"] = "Choose a bundle price or a percentage off."
        if not errors:
            config["bundle"] = {"product_ids": products}
    elif data.type == TYPES.VOLUME_DISCOUNT:
        products = _ids(product_ids, data.volume_products, kept, errors, "volume_products")
        categories = _ids(category_ids, data.volume_categories, kept, errors, "volume_categories")
        tiers = [(q, p) for q, p in data.tiers if q is not None or p is not None]
        if not tiers:
            errors["tiers"] = "Add at least one tier: from a quantity, a percentage off."
        elif len(tiers) > MAX_TIERS:
            errors["tiers"] = f"Keep to {MAX_TIERS} tiers."
        for i, (quantity, percent) in enumerate(tiers, start=1):
            if quantity is None or not 2 <= quantity <= MAX_QUANTITY:
                errors["tiers"] = f"Tier {i}: the quantity must be from 2 to {MAX_QUANTITY}."
            elif percent is None or not Decimal(0) < percent <= 100:
                errors["tiers"] = f"Tier {i}: the percentage must be more than 0 and at most 100."
            elif i > 1 and tiers[i - 2][0] is not None and quantity <= tiers[i - 2][0]:
                errors["tiers"] = (f"Tier {i}: tiers go in ascending order of quantity, so {quantity} must be "
                                   f"more than {tiers[i - 2][0]}.")
            elif i > 1 and tiers[i - 2][1] is not None and percent < tiers[i - 2][1]:
                errors["tiers"] = (f"Tier {i}: buying more can't give less off: {percent}% is below the "
                                   f"{tiers[i - 2][1]}% of tier {i - 1}.")
            if "tiers" in errors:
                break
        if not errors:
            config["scope"] = {"product_ids": products, "category_ids": categories}
            config["tiers"] = [{"min_quantity": q, "percent_off": _text(p)} for q, p in tiers]
    else:
        errors["type"] = f"Choose the type: {', '.join(TYPES)}."
    if errors:
        raise Invalid(errors)
    return config


def rules_for(kind: str, config: dict) -> list[dict]:
    """The promotion_rules rows for a configuration, the one to try first first."""
    if kind == TYPES.BUY_X_GET_Y:
        buy, get = config["buy"], config["get"]
        return [_rule("buy_quantity", {"quantity": buy["quantity"], "productIds": buy["product_ids"],
                                       "categoryIds": buy["category_ids"]},
                      {"type": "free_item", "quantity": get["quantity"], "productIds": get["product_ids"],
                       "percentOff": get["percent_off"]})]
    if kind == TYPES.BUNDLE:
        price = config.get("price")
        actions = ({"type": "bundle_discount", "bundlePrice": price["amount"], "currency": price["currency"]}
                   if price else {"type": "bundle_discount", "percentOff": config["percent_off"]})
        return [_rule("product_match", {"productIds": config["bundle"]["product_ids"], "allRequired": True}, actions)]
    if kind == TYPES.VOLUME_DISCOUNT:
        scope = config["scope"]
        return [_rule("buy_quantity", {"quantity": t["min_quantity"], "productIds": scope["product_ids"],
                                       "categoryIds": scope["category_ids"]},
                      {"type": "discount", "discountType": "percentage", "discountValue": t["percent_off"]})
                for t in sorted(config["tiers"], key=lambda t: t["min_quantity"], reverse=True)]
    raise ValueError(f"unknown promotion type {kind!r}")


def _rule(rule_type: str, conditions: dict, actions: dict) -> dict:
    # The service reads the condition's type from the conditions themselves.
    return {"rule_type": rule_type, "conditions": {"type": rule_type, **conditions}, "actions": actions}


def priorities(count: int) -> range:
    """The priorities of ``count`` rules in the order they are tried: the discount service
    tries the highest first, so the first rule gets ``count`` and the last 1."""
    return range(count, 0, -1)


def _rule_key(rule) -> str:
    """A rule's type, conditions and actions as one comparable string (priority left out)."""
    get = rule.get if isinstance(rule, dict) else lambda name: getattr(rule, name)
    return json.dumps([get("rule_type"), get("conditions"), get("actions")], sort_keys=True, default=str)


def rules_of(promotion_id: str) -> list[PromotionRule]:
    return list(db.session.scalars(select(PromotionRule).where(PromotionRule.promotion_id == promotion_id)
                                   .order_by(PromotionRule.priority.desc().nulls_last(), PromotionRule.id)))


def rules_match(promotion: Promotion, rules: list[PromotionRule]) -> bool:
    """True when the stored rules are exactly those of its configuration (in any order)."""
    if not readable(promotion.configuration) or not rules:
        return False
    try:
        wanted = rules_for(promotion.type, promotion.configuration)
    except (KeyError, TypeError, ValueError):
        return False
    return Counter(map(_rule_key, wanted)) == Counter(map(_rule_key, rules))


# --- reading -------------------------------------------------------------------------------

def find(promotion_id: str) -> Promotion | None:
    if not promotion_id or len(promotion_id) > 200 or not promotion_id.isprintable():
        return None
    with database("discount"):
        return db.session.get(Promotion, promotion_id)


def past_end(promotion: Promotion, now: datetime | None = None) -> bool:
    """An active or paused promotion whose end has passed: it shows as expired."""
    now = now or utcnow()
    return promotion.status in (STATUSES.ACTIVE, STATUSES.PAUSED) and promotion.ends_at is not None and promotion.ends_at <= now


def shown_status(promotion: Promotion, now: datetime | None = None) -> str:
    return STATUSES.EXPIRED if past_end(promotion, now) else (promotion.status or STATUSES.DRAFT)


def snapshot(promotion: Promotion, rules: list | None = None) -> dict:
    data = {"name": promotion.name, "description": promotion.description, "type": promotion.type,
            "status": promotion.status, "starts_at": promotion.starts_at, "ends_at": promotion.ends_at,
            "is_active": promotion.is_active, "configuration": promotion.configuration}
    if rules is not None:
        data["rules"] = [{"rule_type": r["rule_type"] if isinstance(r, dict) else r.rule_type,
                          "conditions": r["conditions"] if isinstance(r, dict) else r.conditions,
                          "actions": r["actions"] if isinstance(r, dict) else r.actions}
                         for r in rules]
    return data


# --- writing -------------------------------------------------------------------------------

def _common(errors: dict, data: PromotionInput) -> dict:
    name = check_text(errors, "name", data.name, "name", NAME_MAX, required=True)
    description = check_text(errors, "description", data.description, "description", DESCRIPTION_MAX, multiline=True)
    check_window(errors, data.starts_at, data.ends_at)
    return {"name": name, "description": description, "starts_at": data.starts_at, "ends_at": data.ends_at}


def _validated(data: PromotionInput, kept: set[str]) -> tuple[dict, dict]:
    errors: dict[str, str] = {}
    values = _common(errors, data)
    try:
        config = configuration_for(data, kept)
    except Invalid as exc:
        errors.update(exc.errors)
        config = None
    if errors:
        raise Invalid(errors)
    return values, config


def problems(data: PromotionInput, promotion: Promotion | None = None) -> dict[str, str]:
    """What saving ``data`` would refuse, by field, without writing."""
    try:
        with database("discount"):
            _validated(data, _stored_ids(promotion.configuration) if promotion is not None else set())
    except Invalid as exc:
        return exc.errors
    return {}


def _write_rules(promotion: Promotion, rules: list[dict], now: datetime) -> None:
    db.session.execute(delete(PromotionRule).where(PromotionRule.promotion_id == promotion.id))
    for priority, rule in zip(priorities(len(rules)), rules):
        db.session.add(PromotionRule(id=new_id(), promotion_id=promotion.id, rule_type=rule["rule_type"],
                                     conditions=rule["conditions"], actions=rule["actions"], priority=priority,
                                     created_at=now, updated_at=now))


def create_promotion(actor, data: PromotionInput) -> Promotion:
    """A new promotion in draft with its configuration and rules."""
    with database("discount"):
        values, config = _validated(data, set())
        now = utcnow()
        promotion = Promotion(id=new_id(), type=data.type, status=STATUSES.DRAFT, is_active=False, configuration=config,
                              metadata_={}, created_at=now, updated_at=now, **values)
        db.session.add(promotion)
        db.session.flush()
        rules = rules_for(data.type, config)
        _write_rules(promotion, rules, now)
        audit.record(actor, "promotion.created", "promotion", promotion.id, after=snapshot(promotion, rules))
        db.session.commit()
    return promotion


def _locked(promotion_id: str) -> Promotion:
    promotion = db.session.scalar(select(Promotion).where(Promotion.id == promotion_id).with_for_update())
    if promotion is None:
        db.session.rollback()
        raise WorkflowError("That promotion does not exist (any more).", 404)
    return promotion


def _refuse(message: str, status: int = 409):
    db.session.rollback()
    raise WorkflowError(message, status)


def update_promotion(actor, promotion_id: str, data: PromotionInput) -> Promotion:
    """Save the form. The type changes only while draft; an expired promotion is final.
    Rules are rewritten when the offer changed (in their default order), else kept with
    their priorities."""
    with database("discount"):
        promotion = _locked(promotion_id)
        if promotion.status == STATUSES.EXPIRED:
            _refuse(f"“{promotion.name}” has expired: it can't be edited any more. Create a new promotion.")
        if data.type != promotion.type and promotion.status != STATUSES.DRAFT:
            _refuse(f"The type of a promotion changes only while it is a draft (this one is {promotion.status}).")
        try:
            values, config = _validated(data, _stored_ids(promotion.configuration))
        except Invalid:
            db.session.rollback()
            raise
        stored = rules_of(promotion.id)
        rules = rules_for(data.type, config)
        rewrite = Counter(map(_rule_key, rules)) != Counter(map(_rule_key, stored))
        before = snapshot(promotion, stored)
        for name, value in values.items():
            setattr(promotion, name, value)
        promotion.type, promotion.configuration = data.type, config
        before, after = changes(before, snapshot(promotion, rules if rewrite else stored))
        if not after:
            _refuse("Nothing changed: every field is as it was.")
        now = utcnow()
        promotion.updated_at = now
        if rewrite:
            _write_rules(promotion, rules, now)
        audit.record(actor, "promotion.updated", "promotion", promotion.id, before=before, after=after)
        db.session.commit()
    return promotion


def activation_problems(promotion: Promotion, rules: list[PromotionRule], now: datetime) -> list[str]:
    problems = []
    if promotion.ends_at is not None and promotion.ends_at <= now:
        problems.append("its end has passed: move the end date later, or expire it")
    if promotion.starts_at is not None and promotion.ends_at is not None and promotion.starts_at >= promotion.ends_at:
        problems.append("it ends before it starts")
    if not rules:
        problems.append("it has no rules: save its form first")
    elif not rules_match(promotion, rules):
        problems.append("its rules are not those of its configuration: open Edit and save the form")
    return problems


def change_status(actor, promotion_id: str, status: str) -> Promotion:
    """Move along TRANSITIONS; activating checks the window and the rules."""
    if status not in STATUSES:
        raise WorkflowError(f"Choose a status: {', '.join(STATUSES)}.", 422)
    with database("discount"):
        promotion = _locked(promotion_id)
        current = promotion.status or STATUSES.DRAFT
        if status not in TRANSITIONS.get(current, ()):
            allowed = TRANSITIONS.get(current, ())
            _refuse(f"“{promotion.name}” is {current}: it can't become {status}"
                    + (f" (it can become {' or '.join(allowed)})." if allowed else " (expired is final)."))
        now = utcnow()
        if status == STATUSES.ACTIVE:
            problems = activation_problems(promotion, rules_of(promotion.id), now)
            if problems:
                _refuse(f"“{promotion.name}” can't be activated: {'; '.join(problems)}.", 422)
        promotion.status, promotion.is_active, promotion.updated_at = status, status == STATUSES.ACTIVE, now
        audit.record(actor, f"promotion.{status}", "promotion", promotion.id,
                     before={"status": current}, after={"status": status}, name=promotion.name)
        db.session.commit()
    return promotion


def activate(actor, promotion_id: str) -> Promotion:
    return change_status(actor, promotion_id, STATUSES.ACTIVE)


def pause(actor, promotion_id: str) -> Promotion:
    return change_status(actor, promotion_id, STATUSES.PAUSED)


def expire(actor, promotion_id: str) -> Promotion:
    return change_status(actor, promotion_id, STATUSES.EXPIRED)


def expire_past_end(actor=None, now: datetime | None = None) -> list[Promotion]:
    """Expire every active or paused promotion whose end has passed (the cron command);
    each is locked and audited on its own, so a run that stops half-way is simply
    run again."""
    now = now or utcnow()
    expired = []
    with database("discount"):
        due = list(db.session.scalars(select(Promotion.id).where(
            Promotion.status.in_((STATUSES.ACTIVE, STATUSES.PAUSED)), Promotion.ends_at <= now)))
        for promotion_id in due:
            promotion = db.session.scalar(select(Promotion).where(Promotion.id == promotion_id).with_for_update())
            if promotion is None or not past_end(promotion, now):
                db.session.rollback()
                continue
            before = promotion.status
            promotion.status, promotion.is_active, promotion.updated_at = STATUSES.EXPIRED, False, now
            audit.record(actor, "promotion.expired", "promotion", promotion.id, before={"status": before},
                         after={"status": STATUSES.EXPIRED}, name=promotion.name, reason="past its end")
            db.session.commit()
            expired.append(promotion)
    return expired


def move_rule(actor, promotion_id: str, rule_id: str, direction: str) -> list[PromotionRule]:
    """Swap a rule's place with the one above ("up", tried earlier) or below ("down");
    priorities are renumbered n..1 so they stay unique."""
    if direction not in ("up", "down"):
        raise WorkflowError("Move a rule up or down.", 422)
    with database("discount"):
        promotion = _locked(promotion_id)
        if promotion.status == STATUSES.EXPIRED:
            _refuse(f"“{promotion.name}” has expired: its rules can't change any more.")
        rules = rules_of(promotion.id)
        index = next((i for i, r in enumerate(rules) if r.id == rule_id), None)
        if index is None:
            _refuse("That rule is not one of this promotion's (any more).", 404)
        other = index - 1 if direction == "up" else index + 1
        if not 0 <= other < len(rules):
            _refuse(f"That rule is already {'first' if direction == 'up' else 'last'}.")
        before = [r.id for r in rules]
        rules[index], rules[other] = rules[other], rules[index]
        now = utcnow()
        for priority, rule in zip(priorities(len(rules)), rules):
            if rule.priority != priority:
                rule.priority, rule.updated_at = priority, now
        promotion.updated_at = now
        audit.record(actor, "promotion.rules_reordered", "promotion", promotion.id,
                     before={"order": before}, after={"order": [r.id for r in rules]}, name=promotion.name)
        db.session.commit()
    return rules


def usage_count(promotion_id: str) -> int:
    return db.session.scalar(select(func.count()).select_from(PromotionUsage)
                             .where(PromotionUsage.promotion_id == promotion_id))


def status_condition(status: str, now: datetime):
    """The SQL condition for promotions shown with ``status`` (see shown_status)."""
    past = (Promotion.status.in_((STATUSES.ACTIVE, STATUSES.PAUSED))) & Promotion.ends_at.isnot(None) & (Promotion.ends_at <= now)
    if status == STATUSES.EXPIRED:
        return or_(Promotion.status == STATUSES.EXPIRED, past)
    if status in (STATUSES.ACTIVE, STATUSES.PAUSED):
        return (Promotion.status == status) & ~past
    return Promotion.status == status
