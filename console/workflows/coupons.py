"""Coupons in discount_db: create and edit with every field checked, disable, enable,
delete one never used, recount its uses, and generate codes in bulk.

Codes are upper-case letters, digits and dashes, unique ignoring case. Every writer of
codes here (create, edit, bulk generation) first takes one PostgreSQL advisory lock for
the duration of its transaction, so the case-insensitive check and the write that
follows cannot interleave with another staff member's; the unique index on ``code``
and ``ON CONFLICT DO NOTHING`` cover writers outside the console.

A coupon's state (scheduled, active, expired, exhausted, disabled) is derived from its
row, never stored: ``state_of`` for one row, ``state_condition`` for a list filter.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, and_, bindparam, func, literal, or_, select, text, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from console import audit
from console.extensions import db
from console.lookups import chunks, database
from console.models.discount import COUPON_BATCH, COUPON_TYPES, Coupon, CouponUsage
from console.models.types import MAX_MONEY, new_id, utcnow
from console.workflows import WorkflowError
from console.workflows.discounts import (
    DESCRIPTION_MAX, NAME_MAX, Invalid, changes, check_metadata, check_percent, check_text, check_window,
    category_ids, chosen, product_ids,
)

TYPES = COUPON_TYPES
NOTHING = Decimal("0.00")
TYPE_LABELS = {TYPES.PERCENTAGE: "percentage off", TYPES.FIXED_AMOUNT: "fixed amount off", TYPES.FREE_SHIPPING: "free shipping"}
STATES = ("scheduled", "active", "expired", "exhausted", "disabled")
CODE_MAX = 50
CODE_PATTERN = re.compile(r"[A-Z0-9-]+", re.ASCII)
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}", re.ASCII)
MAX_INT = 2_147_483_647  # integer columns

# Bulk generation: no look-alikes (0/O, 1/I/L), so a code read aloud or off paper is typed right.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MAX_GENERATED = 10_000
LENGTHS = range(4, 17)
PREFIX_MAX = 20
# The random part must leave room: at most one code in HEADROOM of the possible ones is
# generated at once, so clashes stay rare and a retry always finds free codes.
HEADROOM = 100
INSERT_CHUNK = 5000
# One number for the advisory lock that every writer of coupon codes takes.
CODE_LOCK = 0x636F75706F6E  # "coupon"


# --- state --------------------------------------------------------------------------------

def state_of(coupon: Coupon, now: datetime | None = None) -> str:
    """disabled, expired, exhausted, scheduled or active, in that order of precedence."""
    now = now or utcnow()
    if not coupon.is_active:
        return "disabled"
    if coupon.ends_at is not None and coupon.ends_at <= now:
        return "expired"
    if coupon.usage_limit is not None and (coupon.usage_count or 0) >= coupon.usage_limit:
        return "exhausted"
    if coupon.starts_at is not None and coupon.starts_at > now:
        return "scheduled"
    return "active"


def state_condition(state: str, now: datetime):
    """The SQL condition for coupons in ``state`` (the same precedence as state_of)."""
    enabled = Coupon.is_active.is_(True)
    not_ended = or_(Coupon.ends_at.is_(None), Coupon.ends_at > now)
    exhausted = and_(Coupon.usage_limit.isnot(None), func.coalesce(Coupon.usage_count, 0) >= Coupon.usage_limit)
    if state == "disabled":
        return or_(Coupon.is_active.is_(None), Coupon.is_active.is_(False))
    if state == "expired":
        return and_(enabled, Coupon.ends_at <= now)
    if state == "exhausted":
        return and_(enabled, not_ended, exhausted)
    if state == "scheduled":
        return and_(enabled, not_ended, ~exhausted, Coupon.starts_at > now)
    if state == "active":
        return and_(enabled, not_ended, ~exhausted, or_(Coupon.starts_at.is_(None), Coupon.starts_at <= now))
    raise ValueError(f"unknown coupon state {state!r}")


# --- input --------------------------------------------------------------------------------

@dataclass
class CouponInput:
    """A coupon as the form gives it: amounts already parsed, products as SKUs and
    categories as slugs (as typed), metadata as (key, value) pairs."""

    code: str = ""
    name: str = ""
    description: str | None = None
    type: str = TYPES.PERCENTAGE
    discount_value: Decimal | None = None
    minimum_amount: Decimal | None = None
    maximum_discount: Decimal | None = None
    currency: str | None = None
    usage_limit: int | None = None
    usage_limit_per_user: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    is_active: bool = True
    applicable_products: list[str] = field(default_factory=list)
    applicable_categories: list[str] = field(default_factory=list)
    excluded_products: list[str] = field(default_factory=list)
    metadata: list[tuple[str, str]] = field(default_factory=list)


def input_of(coupon: Coupon) -> CouponInput:
    """What the edit form shows for ``coupon``: ids back as SKUs and slugs (a product that
    has gone keeps its id, so saving again keeps it unless removed)."""
    return CouponInput(
        code=coupon.code or "", name=coupon.name or "", description=coupon.description, type=coupon.type or TYPES.PERCENTAGE,
        discount_value=None if coupon.type == TYPES.FREE_SHIPPING else coupon.discount_value,
        minimum_amount=coupon.minimum_amount, maximum_discount=coupon.maximum_discount, currency=coupon.currency,
        usage_limit=coupon.usage_limit, usage_limit_per_user=coupon.usage_limit_per_user,
        starts_at=coupon.starts_at, ends_at=coupon.ends_at, is_active=bool(coupon.is_active),
        applicable_products=[c.key for c in chosen("products", coupon.applicable_products)],
        applicable_categories=[c.key for c in chosen("categories", coupon.applicable_categories)],
        excluded_products=[c.key for c in chosen("products", coupon.excluded_products)],
        metadata=[(str(k), "" if v is None else str(v)) for k, v in (coupon.metadata_ or {}).items()])


def normalise_code(code: str | None) -> str:
    return (code or "").strip().upper()


def _check_code(errors: dict, code: str) -> None:
    if not code:
        errors["code"] = "Enter a code: letters, digits and dashes, like SPRING-10."
    elif len(code) > CODE_MAX:
        errors["code"] = f"Keep the code to {CODE_MAX} characters (it has {len(code):,})."
    elif not CODE_PATTERN.fullmatch(code):
        errors["code"] = "Use only letters A-Z, digits and dashes in the code, like SPRING-10."


def _money(errors: dict, field_name: str, value: Decimal | None, label: str, *, positive: bool = False) -> None:
    if value is None:
        return
    if not value.is_finite() or value < 0 or (positive and value == 0):
        errors[field_name] = f"The {label} must be {'more than' if positive else 'at least'} 0."
    elif value > MAX_MONEY:
        errors[field_name] = f"The {label} can be at most {MAX_MONEY}."


def _count(errors: dict, field_name: str, value: int | None, label: str, minimum: int) -> None:
    if value is not None and not minimum <= value <= MAX_INT:
        errors[field_name] = f"The {label} must be at least {minimum}{' (or empty for no limit)' if minimum else ''}."


def _chosen_ids(typed: list[str], kept, resolve, errors: dict, field_name: str) -> list[str]:
    """Ids for the SKUs or slugs typed; ids already stored on the coupon (shown as such
    when their product has gone) are kept as they are."""
    kept_set = {str(i) for i in kept or []}
    new = [v for v in typed if v not in kept_set]
    resolved = dict(zip(new, resolve(new, errors, field_name))) if new else {}
    if field_name in errors:
        return []
    return list(dict.fromkeys(v if v in kept_set else resolved[v] for v in typed))


def _validate(data: CouponInput, coupon: Coupon | None) -> dict:
    """The column values to write, or Invalid naming every field that can't be saved."""
    errors: dict[str, str] = {}
    code = normalise_code(data.code)
    _check_code(errors, code)
    name = check_text(errors, "name", data.name, "name", NAME_MAX, required=True)
    description = check_text(errors, "description", data.description, "description", DESCRIPTION_MAX, multiline=True)
    kind = data.type if data.type in TYPES else None
    if kind is None:
        errors["type"] = f"Choose the type: {', '.join(TYPES)}."
    value = data.discount_value
    if kind == TYPES.PERCENTAGE:
        check_percent(errors, "discount_value", value)
    elif kind == TYPES.FIXED_AMOUNT:
        if value is None:
            errors["discount_value"] = "Enter the amount off, more than 0, like 15.00."
        else:
            _money(errors, "discount_value", value, "amount off", positive=True)
    elif kind == TYPES.FREE_SHIPPING and value not in (None, Decimal(0)):
        errors["discount_value"] = "Free shipping takes no value: leave the value empty."
    currency = (data.currency or "").strip().upper() or None
    if currency and not CURRENCY_PATTERN.fullmatch(currency):
        errors["currency"] = "Write the currency as three letters, like USD."
    elif kind == TYPES.FIXED_AMOUNT and not currency:
        errors["currency"] = "A fixed amount needs its currency (three letters, like USD)."
    _money(errors, "minimum_amount", data.minimum_amount, "minimum order amount")
    _money(errors, "maximum_discount", data.maximum_discount, "maximum discount")
    used = (coupon.usage_count or 0) if coupon is not None else 0
    _count(errors, "usage_limit", data.usage_limit, "usage limit", 1)
    if "usage_limit" not in errors and data.usage_limit is not None and data.usage_limit < used:
        errors["usage_limit"] = (f"The usage limit can't be below the {used:,} times the coupon has already been "
                                 f"used: set it to {used:,} or more, or leave it empty for no limit.")
    _count(errors, "usage_limit_per_user", data.usage_limit_per_user, "limit per customer", 1)
    check_window(errors, data.starts_at, data.ends_at)
    applicable = _chosen_ids(data.applicable_products, coupon.applicable_products if coupon else [],
                             product_ids, errors, "applicable_products")
    categories = _chosen_ids(data.applicable_categories, coupon.applicable_categories if coupon else [],
                             category_ids, errors, "applicable_categories")
    excluded = _chosen_ids(data.excluded_products, coupon.excluded_products if coupon else [],
                           product_ids, errors, "excluded_products")
    both = set(applicable) & set(excluded)
    if both and "excluded_products" not in errors:
        errors["excluded_products"] = (f"{len(both)} product(s) are both applicable and excluded: "
                                       "remove them from one of the two lists.")
    metadata = check_metadata(errors, data.metadata)
    if coupon is not None and code != (coupon.code or "") and "code" not in errors and _is_used(coupon):
        errors["code"] = (f"{coupon.code} has been used, so its code can't change (orders and carts refer to it). "
                          "Create a new coupon instead.")
    if errors:
        raise Invalid(errors)
    return {"code": code, "name": name, "description": description, "type": kind,
            # Both columns are NOT NULL: free shipping has no value of its own, and no
            # minimum is a minimum of nothing.
            "discount_value": NOTHING if kind == TYPES.FREE_SHIPPING else value,
            "minimum_amount": NOTHING if data.minimum_amount is None else data.minimum_amount,
            "maximum_discount": data.maximum_discount, "currency": currency,
            "usage_limit": data.usage_limit, "usage_limit_per_user": data.usage_limit_per_user,
            "starts_at": data.starts_at, "ends_at": data.ends_at, "is_active": bool(data.is_active),
            "applicable_products": applicable, "applicable_categories": categories, "excluded_products": excluded,
            "metadata_": metadata}


def problems(data: CouponInput, coupon: Coupon | None = None) -> dict[str, str]:
    """What ``_validate`` would refuse, by field, without writing (so a form that failed
    to parse one field can still show every other refusal at once)."""
    try:
        with database("discount"):
            _validate(data, coupon)
    except Invalid as exc:
        return exc.errors
    return {}


# --- reading -------------------------------------------------------------------------------

def find(key: str) -> Coupon | None:
    """A coupon by id or by code (any case)."""
    key = (key or "").strip()
    if not key or len(key) > 200 or not key.isprintable():
        return None
    with database("discount"):
        coupon = db.session.get(Coupon, key)
        if coupon is None:
            coupon = db.session.scalar(select(Coupon).where(func.upper(Coupon.code) == key.upper()).limit(1))
    return coupon


def usage_rows(coupon_id: str) -> int:
    return db.session.scalar(select(func.count()).select_from(CouponUsage).where(CouponUsage.coupon_id == coupon_id))


def _is_used(coupon: Coupon) -> bool:
    return bool(coupon.usage_count) or db.session.scalar(
        select(CouponUsage.id).where(CouponUsage.coupon_id == coupon.id).limit(1)) is not None


def snapshot(coupon: Coupon) -> dict:
    """The coupon's columns as the audit trail records them."""
    return {"code": coupon.code, "name": coupon.name, "description": coupon.description, "type": coupon.type,
            "discount_value": coupon.discount_value, "minimum_amount": coupon.minimum_amount,
            "maximum_discount": coupon.maximum_discount, "currency": coupon.currency,
            "usage_limit": coupon.usage_limit, "usage_count": coupon.usage_count,
            "usage_limit_per_user": coupon.usage_limit_per_user, "starts_at": coupon.starts_at,
            "ends_at": coupon.ends_at, "is_active": coupon.is_active,
            "applicable_products": coupon.applicable_products, "applicable_categories": coupon.applicable_categories,
            "excluded_products": coupon.excluded_products, "metadata": coupon.metadata_}


# --- writing -------------------------------------------------------------------------------

def _lock_codes() -> None:
    """Serialise the console's writers of coupon codes until this transaction ends
    (PostgreSQL; SQLite has one writer at a time anyway)."""
    engine = db.engines["discount"]
    if engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CODE_LOCK},
                           bind_arguments={"bind": engine})


def _code_taken(code: str, except_id: str | None = None) -> str | None:
    """The existing code equal to ``code`` ignoring case, if any."""
    stmt = select(Coupon.code).where(func.upper(Coupon.code) == code.upper())
    if except_id:
        stmt = stmt.where(Coupon.id != except_id)
    return db.session.scalar(stmt.limit(1))


def _locked(coupon_id: str) -> Coupon:
    coupon = db.session.scalar(select(Coupon).where(Coupon.id == coupon_id).with_for_update())
    if coupon is None:
        db.session.rollback()
        raise WorkflowError("That coupon does not exist (any more).", 404)
    return coupon


def _taken_message(code: str, existing: str) -> str:
    same = existing == code
    return (f"The code {code} is already taken{'' if same else f' (as {existing}: codes are compared ignoring case)'}: "
            "choose another.")


def create_coupon(actor, data: CouponInput) -> Coupon:
    with database("discount"):
        values = _validate(data, None)
        _lock_codes()
        existing = _code_taken(values["code"])
        if existing is not None:
            db.session.rollback()
            raise Invalid({"code": _taken_message(values["code"], existing)})
        now = utcnow()
        coupon = Coupon(id=new_id(), usage_count=0, created_at=now, updated_at=now, **values)
        db.session.add(coupon)
        try:
            db.session.flush()
        except IntegrityError:  # a writer outside the console took it meanwhile
            db.session.rollback()
            raise Invalid({"code": _taken_message(values["code"], values["code"])}) from None
        audit.record(actor, "coupon.created", "coupon", coupon.id, after=snapshot(coupon))
        db.session.commit()
    return coupon


def update_coupon(actor, coupon_id: str, data: CouponInput) -> Coupon:
    with database("discount"):
        _lock_codes()
        coupon = _locked(coupon_id)
        try:
            values = _validate(data, coupon)
        except Invalid:
            db.session.rollback()
            raise
        if values["code"] != coupon.code:
            existing = _code_taken(values["code"], coupon.id)
            if existing is not None:
                db.session.rollback()
                raise Invalid({"code": _taken_message(values["code"], existing)})
        before = snapshot(coupon)
        for name, value in values.items():
            setattr(coupon, name, value)
        before, after = changes(before, snapshot(coupon))
        if not after:
            db.session.rollback()
            raise WorkflowError("Nothing changed: every field is as it was.", 409)
        coupon.updated_at = utcnow()
        audit.record(actor, "coupon.updated", "coupon", coupon.id, before=before, after=after)
        db.session.commit()
    return coupon


def _set_active(actor, coupon_id: str, active: bool) -> Coupon:
    with database("discount"):
        coupon = _locked(coupon_id)
        if bool(coupon.is_active) == active:
            db.session.rollback()
            raise WorkflowError(f"{coupon.code} is already {'enabled' if active else 'disabled'}.", 409)
        coupon.is_active, coupon.updated_at = active, utcnow()
        audit.record(actor, f"coupon.{'enabled' if active else 'disabled'}", "coupon", coupon.id,
                     before={"is_active": not active}, after={"is_active": active}, code=coupon.code)
        db.session.commit()
    return coupon


def disable(actor, coupon_id: str) -> Coupon:
    return _set_active(actor, coupon_id, False)


def enable(actor, coupon_id: str) -> Coupon:
    return _set_active(actor, coupon_id, True)


def delete_coupon(actor, coupon_id: str) -> str:
    """Delete a coupon that was never used; a used one is disabled instead. Returns its code."""
    with database("discount"):
        coupon = _locked(coupon_id)
        if _is_used(coupon):
            db.session.rollback()
            raise WorkflowError(f"{coupon.code} has been used, so it is kept for the orders that used it: "
                                "disable it instead.", 409)
        before = snapshot(coupon)
        code = coupon.code
        db.session.delete(coupon)
        audit.record(actor, "coupon.deleted", "coupon", coupon_id, before=before, code=code)
        db.session.commit()
    return code


@dataclass
class Recount:
    coupon: Coupon
    before: int | None
    after: int


def recount(actor, coupon_id: str) -> Recount:
    """Set usage_count to the number of its coupon_usage rows (row locked meanwhile)."""
    with database("discount"):
        coupon = _locked(coupon_id)
        rows = usage_rows(coupon.id)
        if coupon.usage_count == rows:
            db.session.rollback()
            raise WorkflowError(f"{coupon.code}'s usage count already matches its {rows:,} uses.", 409)
        before = coupon.usage_count
        coupon.usage_count, coupon.updated_at = rows, utcnow()
        audit.record(actor, "coupon.recounted", "coupon", coupon.id, before={"usage_count": before},
                     after={"usage_count": rows}, code=coupon.code)
        db.session.commit()
    return Recount(coupon, before, rows)


# --- bulk generation ----------------------------------------------------------------------

@dataclass
class Generated:
    template: Coupon
    batch: str
    prefix: str
    codes: list[str]


def check_generation(count, prefix: str | None, length) -> tuple[dict, str]:
    """Refusals for a generation request (by field) and the normalised prefix."""
    errors: dict[str, str] = {}
    prefix = normalise_code(prefix)
    if not isinstance(count, int) or not 1 <= count <= MAX_GENERATED:
        errors["count"] = f"Generate from 1 to {MAX_GENERATED:,} codes at a time."
    if prefix and not CODE_PATTERN.fullmatch(prefix):
        errors["prefix"] = "Use only letters A-Z, digits and dashes in the prefix, like SPRING-."
    elif len(prefix) > PREFIX_MAX:
        errors["prefix"] = f"Keep the prefix to {PREFIX_MAX} characters."
    if not isinstance(length, int) or length not in LENGTHS:
        errors["length"] = f"The random part is {LENGTHS.start} to {LENGTHS.stop - 1} characters long."
    elif "count" not in errors and len(ALPHABET) ** length < count * HEADROOM:
        errors["length"] = (f"{length} random characters give too few different codes for {count:,}: "
                            "choose a longer length.")
    return errors, prefix


_RANDOM = secrets.SystemRandom()


def _random_code(prefix: str, length: int) -> str:
    return prefix + "".join(_RANDOM.choices(ALPHABET, k=length))


def _taken_among(codes: list[str]) -> set[str]:
    taken: set[str] = set()
    for chunk in chunks(codes):
        taken.update(db.session.scalars(select(func.upper(Coupon.code)).where(func.upper(Coupon.code).in_(chunk))))
    return taken


def _insert_new(pairs: list[tuple[str, str]], settings: dict) -> set[str]:
    """Insert one coupon per (id, code) with ``settings`` (column key -> value), skipping
    any code that exists meanwhile; returns the codes written.

    One INSERT … SELECT per INSERT_CHUNK codes, whose only per-row values are the id and
    the code (an array pair unnested on PostgreSQL, a JSON list on SQLite); the settings
    are bound once. A plain multi-row INSERT would bind some twenty values a row, and
    binding 200,000 parameters costs more than the writing."""
    engine = db.engines["discount"]
    table = Coupon.__table__
    constants = [literal(value, type_=table.c[name].type) for name, value in settings.items()]
    if engine.dialect.name == "postgresql":
        source = func.unnest(bindparam("ids", type_=ARRAY(String)), bindparam("codes", type_=ARRAY(String))) \
            .table_valued("id", "code").render_derived()
        rows = select(source.c.id, source.c.code, *constants)
        insert = postgresql.insert
        params = lambda chunk: {"ids": [i for i, _ in chunk], "codes": [c for _, c in chunk]}  # noqa: E731
    else:
        source = func.json_each(bindparam("pairs")).table_valued("value")
        # WHERE true: SQLite reads "FROM … ON CONFLICT" as a join without it.
        rows = select(func.json_extract(source.c.value, "$[0]"), func.json_extract(source.c.value, "$[1]"),
                      *constants).where(true())
        insert = sqlite.insert
        params = lambda chunk: {"pairs": json.dumps(chunk)}  # noqa: E731
    stmt = insert(table).from_select([table.c.id, table.c.code, *(table.c[key] for key in settings)], rows) \
        .on_conflict_do_nothing(index_elements=["code"]).returning(table.c.code)
    written: set[str] = set()
    for chunk in chunks(pairs, INSERT_CHUNK):
        written.update(db.session.execute(stmt, params(chunk), bind_arguments={"bind": engine}).scalars())
    return written


def generate_codes(actor, coupon_id: str, count: int, prefix: str = "", length: int = 8, *,
                   uses_per_code: int | None = 1) -> Generated:
    """``count`` new coupons with ``coupon_id``'s settings and codes ``prefix`` + ``length``
    random characters, unique against every code, written in one transaction (all or
    none). ``uses_per_code`` is each new code's usage limit (None: the template's)."""
    errors, prefix = check_generation(count, prefix, length)
    if uses_per_code is not None and not 1 <= uses_per_code <= MAX_INT:
        errors["uses_per_code"] = "Each code must allow at least 1 use."
    if len(prefix) + (length if isinstance(length, int) else 0) > CODE_MAX:
        errors["prefix"] = f"Prefix and random part together can be at most {CODE_MAX} characters."
    if errors:
        raise Invalid(errors)
    batch = new_id()
    with database("discount"):
        _lock_codes()
        template = db.session.get(Coupon, coupon_id)
        if template is None:
            db.session.rollback()
            raise WorkflowError("That coupon does not exist (any more).", 404)
        now = utcnow()
        settings = {
            "name": template.name, "description": template.description, "type": template.type,
            "discount_value": template.discount_value, "minimum_amount": template.minimum_amount,
            "maximum_discount": template.maximum_discount, "currency": template.currency,
            "usage_limit": uses_per_code if uses_per_code is not None else template.usage_limit, "usage_count": 0,
            "usage_limit_per_user": template.usage_limit_per_user, "starts_at": template.starts_at,
            "ends_at": template.ends_at, "is_active": template.is_active,
            "applicable_products": template.applicable_products or [],
            "applicable_categories": template.applicable_categories or [],
            "excluded_products": template.excluded_products or [],
            "metadata_": {**(template.metadata_ or {}), "batch": batch, "generated_from": template.code},
            "created_at": now, "updated_at": now,
        }
        written: list[str] = []
        tried: set[str] = set()
        for _ in range(20):
            wanted = count - len(written)
            fresh: list[str] = []
            while len(fresh) < wanted:
                code = _random_code(prefix, length)
                if code not in tried:
                    tried.add(code)
                    fresh.append(code)
            taken = _taken_among(fresh)
            fresh = [c for c in fresh if c not in taken]
            if fresh:
                got = _insert_new([(new_id(), c) for c in fresh], settings)
                written.extend(c for c in fresh if c in got)
            if len(written) == count:
                break
        else:
            db.session.rollback()
            raise WorkflowError(f"Could not find {count:,} free codes with the prefix {prefix or '(none)'}: "
                                "nothing was written. Choose a longer length or another prefix.", 409)
        audit.record(actor, "coupon.codes_generated", "coupon", template.id, after={
            "count": count, "prefix": prefix, "length": length, "batch": batch, "usage_limit": settings["usage_limit"],
            "first": written[0], "last": written[-1]}, code=template.code)
        db.session.commit()
    return Generated(template, batch, prefix, written)


def batch_condition(batch: str):
    """Coupons written by one bulk generation (its id is in their metadata)."""
    return COUPON_BATCH == batch


def generated_condition():
    """Coupons written by any bulk generation."""
    return COUPON_BATCH.is_not(None)


def made_by_hand_condition():
    """Coupons no bulk generation wrote: the condition of the list's partial indexes
    (console/models/discount.py), written as they are so the planner matches them."""
    return COUPON_BATCH.is_(None)


def code_prefix_condition(prefix: str):
    """Codes starting with ``prefix``, ignoring case (uses ix_coupons_code_upper on PostgreSQL)."""
    escaped = prefix.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.upper(Coupon.code).like(escaped + "%", escape="\\")

