"""What coupons and promotions share: refusals that name their field, products and
categories chosen by SKU or slug and checked against product_db, percentages, windows
and the audit's before/after of a changed row.

Coupons and promotions store products and categories as the ids the discount service
reads (lists of ``products.id`` / ``categories.id``); staff type SKUs and slugs, and
see them again as SKUs and names ("missing" when a product has since gone).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from console.extensions import db
from console.lookups import Missing, chunks, database, fetch_in
from console.models.product import Category, Product
from console.workflows import WorkflowError

HUNDRED = Decimal("100")
CENTS = Decimal("0.01")
# A coupon or promotion names at most this many products or categories per list.
MAX_CHOSEN = 500
NAME_MAX = 200
DESCRIPTION_MAX = 2000
META_KEY_MAX = 100
META_VALUE_MAX = 500
META_MAX_PAIRS = 50
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SEPARATORS = re.compile(r"[\s,;]+")


class Invalid(WorkflowError):
    """Input that can't be saved: ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(" ".join(errors.values()), 422)
        self.errors = dict(errors)


def split_list(text: str | None) -> list[str]:
    """SKUs or slugs as typed: separated by commas, semicolons, spaces or lines; each once."""
    return list(dict.fromkeys(v for v in _SEPARATORS.split(text or "") if v))


def check_text(errors: dict, field: str, value: str | None, label: str, maximum: int, *,
               required: bool = False, multiline: bool = False) -> str | None:
    """``value`` stripped, or None when empty; a refusal in ``errors`` when it is missing,
    too long or holds control characters (psycopg refuses NUL outright)."""
    text = (value or "").strip()
    if not text:
        if required:
            errors[field] = f"Enter the {label}."
        return None
    bad = _CONTROL.search(text) if multiline else re.search(r"[\x00-\x1f\x7f-\x9f]", text)
    if bad:
        errors[field] = f"The {label} contains a control character (U+{ord(bad.group()):04X}): type plain text."
    elif len(text) > maximum:
        errors[field] = f"The {label} is {len(text):,} characters long: keep it to {maximum:,}."
    return text


def check_percent(errors: dict, field: str, value: Decimal | None, label: str = "percentage") -> None:
    if value is None:
        errors[field] = f"Enter the {label}, more than 0 and at most 100, like 15."
    elif not Decimal(0) < value <= HUNDRED:
        errors[field] = f"The {label} must be more than 0 and at most 100 (it is {value})."


def check_window(errors: dict, starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and starts_at >= ends_at:
        errors["ends_at"] = "The end must come after the start."


def check_metadata(errors: dict, pairs) -> dict[str, str]:
    """Key/value pairs as a dict: keys unique and non-empty, both plain text."""
    result: dict[str, str] = {}
    for key, value in pairs or ():
        key, value = (key or "").strip(), (value or "").strip()
        if not key and not value:
            continue
        if not key:
            errors["metadata"] = f"Give the value “{value[:40]}” a key."
        elif key in result:
            errors["metadata"] = f"The key “{key[:40]}” appears twice: keep one."
        elif len(key) > META_KEY_MAX or len(value) > META_VALUE_MAX:
            errors["metadata"] = f"Keep keys to {META_KEY_MAX} and values to {META_VALUE_MAX} characters."
        elif re.search(r"[\x00-\x1f\x7f-\x9f]", key + value):
            errors["metadata"] = "Metadata keys and values must be plain text (no control characters)."
        else:
            result[key] = value
    if len(result) > META_MAX_PAIRS:
        errors["metadata"] = f"Keep to {META_MAX_PAIRS} metadata pairs."
    return result


# --- products and categories, by SKU or slug ---------------------------------------------

def _ids_for(model, column, typed: list[str], upper: bool, errors: dict, field: str, noun: str) -> list[str]:
    """Ids of the rows whose ``column`` is one of ``typed``, as typed or in the catalog's
    usual case (SKUs upper-case, slugs lower-case), so the unique index answers; unknown
    values are refused all together."""
    if len(typed) > MAX_CHOSEN:
        errors[field] = f"Choose at most {MAX_CHOSEN} {noun}s here (you typed {len(typed):,})."
        return []
    bad = next((v for v in typed if len(v) > 100 or re.search(r"[\x00-\x1f\x7f-\x9f]", v)), None)
    if bad is not None:
        errors[field] = f"“{bad[:40]}” is not a {noun}: type {noun}s separated by commas or spaces."
        return []
    fold = str.upper if upper else str.lower
    candidates = list(dict.fromkeys([*typed, *map(fold, typed)]))
    found: dict[str, str] = {}
    with database("product"):
        for chunk in chunks(candidates):
            found.update(db.session.execute(select(column, model.id).where(column.in_(chunk))).tuples().all())
    ids, unknown = [], []
    for value in typed:
        row_id = found.get(value) or found.get(fold(value))
        (ids if row_id else unknown).append(row_id or value)
    if unknown:
        shown = ", ".join(f"“{v}”" for v in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        errors[field] = f"No {noun} {shown} in the catalog (product_db): check the spelling."
        return []
    return ids


def product_ids(typed: list[str], errors: dict, field: str) -> list[str]:
    """Product ids for SKUs (any case), one per SKU in order, or a refusal in ``errors``
    naming the unknown ones (and [])."""
    return _ids_for(Product, Product.sku, typed, True, errors, field, "product with SKU")


def category_ids(typed: list[str], errors: dict, field: str) -> list[str]:
    """Category ids for slugs (any case), one per slug in order, or a refusal in ``errors``."""
    return _ids_for(Category, Category.slug, typed, False, errors, field, "category with slug")


@dataclass(frozen=True)
class Chosen:
    """A stored product or category id as staff see it: its SKU or slug and name, or
    Missing when it has gone from the catalog."""

    id: str
    row: Product | Category | Missing

    @property
    def key(self) -> str:
        """What the form shows and staff type: the SKU or slug (the id when missing)."""
        if isinstance(self.row, Product):
            return self.row.sku or self.id
        if isinstance(self.row, Category):
            return self.row.slug or self.id
        return self.id

    @property
    def name(self) -> str:
        return str(self.row) if isinstance(self.row, Missing) else (self.row.name or "")

    @property
    def missing(self) -> bool:
        return isinstance(self.row, Missing)


def chosen(table: str, ids) -> list[Chosen]:
    """Stored ids of ``products`` or ``categories`` as Chosen, in their stored order
    (one query; raises DatabaseUnavailable when product_db is down)."""
    ids = [str(i) for i in (ids or []) if i]
    rows = {row.id: row for row in fetch_in("product", table, "id", ids)}
    return [Chosen(i, rows.get(i) or Missing(i)) for i in ids]


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """The audit's before/after: only the keys whose value changed."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
