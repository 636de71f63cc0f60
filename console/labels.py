"""What a row is, in the words staff know it by: an order's number, a return's RMA
number, a product's SKU and name, a coupon's code, a person's email.

``TABLE_LABELS`` says, per table, which columns make the label. ``LabelBatch`` collects
the ids a page shows (an activity page, a data-browser page), then reads each table
once for the whole page through the batch loader (console/lookups.py: one ``IN (...)``
query per table, chunked; a database that is down leaves its ids unlabelled instead of
failing the page), and answers ``label(bind, table, id)`` with the row's label, or
``Missing(id)`` when the row is gone.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from console.email_templates import shown_subject
from console.lookups import Lookups, Missing, fetch_in
from console.references import REFERENCES


def _joined(*parts) -> str:
    return " · ".join(str(p) for p in parts if p not in (None, ""))


def _money(row) -> str:
    return f"{row.amount} {row.currency or ''}".strip() if row.amount is not None else ""


def _short(text: str | None, limit: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# (bind, table) -> the row's label. Tables whose rows staff name by something other than an id.
TABLE_LABELS: dict[tuple[str, str], Callable[[object], str]] = {
    ("auth", "users"): lambda r: r.email,
    ("user", "user_profiles"): lambda r: _joined(" ".join(filter(None, (r.first_name, r.last_name))), r.email),
    ("product", "products"): lambda r: _joined(r.sku, r.name),
    ("product", "product_variants"): lambda r: _joined(r.sku, r.name),
    ("product", "categories"): lambda r: r.name,
    ("product", "product_reviews"): lambda r: _joined(f"{r.rating}★" if r.rating else None, _short(r.title)),
    ("product", "product_questions"): lambda r: _short(r.question),
    ("order", "orders"): lambda r: r.order_number,
    ("order", "order_items"): lambda r: _joined(r.product_sku, r.product_name),
    ("payment", "payments"): lambda r: _joined(r.payment_provider, _money(r)),
    ("payment", "refunds"): lambda r: f"refund {_money(r)}".strip(),
    ("shipping", "shipments"): lambda r: r.tracking_number,
    ("shipping", "carriers"): lambda r: r.name,
    ("return", "return_requests"): lambda r: r.rma_number,
    ("discount", "coupons"): lambda r: r.code,
    ("discount", "promotions"): lambda r: r.name,
    ("notification", "email_templates"): lambda r: r.name,
    ("notification", "notifications"): lambda r: _short(shown_subject(r)),
}


@dataclass(frozen=True)
class Label:
    """A row's label, its id, and the row itself (for links built from its columns)."""

    text: str
    id: str
    row: object

    def __str__(self) -> str:
        return self.text or self.id


class LabelBatch:
    """Ids wanted on one page, read once per table: ``want`` them all, then ``load()``,
    then ask ``label()`` for each."""

    def __init__(self, lookups: Lookups | None = None):
        self.lookups = lookups or Lookups()
        self.wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.rows: dict[tuple[str, str], dict[str, object]] = {}

    def want(self, bind: str, table: str, values: Iterable) -> None:
        if (bind, table) not in TABLE_LABELS:
            return
        self.wanted[(bind, table)].update(str(v) for v in values if v not in (None, ""))

    def load(self) -> LabelBatch:
        for (bind, table), ids in self.wanted.items():
            if not ids or (bind, table) in self.rows:
                continue
            self.rows[(bind, table)] = self.lookups.run(
                bind, lambda bind=bind, table=table, ids=ids: {str(r.id): r for r in fetch_in(bind, table, "id", ids)},
                None)
        return self

    def label(self, bind: str, table: str, value) -> Label | Missing | None:
        """The label of ``bind.table`` row ``value``; Missing when it is gone; None when
        there is no value, the table has no label, or its database is down."""
        if value in (None, ""):
            return None
        rows = self.rows.get((bind, table))
        if rows is None:
            return None
        row = rows.get(str(value))
        if row is None:
            return Missing(str(value))
        return Label(TABLE_LABELS[(bind, table)](row) or "", str(value), row)


def referenced_tables(bind: str, table) -> dict[str, tuple[str, str]]:
    """{column key: (target bind, target table)} for the columns of ``table`` (a Table)
    that point at a labelled table's id: the logical references of the registry and
    the database's own foreign keys."""
    targets: dict[str, tuple[str, str]] = {}
    for ref in REFERENCES:
        if (ref.source_bind, ref.source_table) == (bind, table.name) and not ref.many and ref.target_column == "id":
            targets[ref.source_column] = (ref.target_bind, ref.target_table)
    for column in table.columns:
        for fk in column.foreign_keys:
            if fk.column.key == "id":
                targets.setdefault(column.key, (bind, fk.column.table.name))
    return {column: target for column, target in targets.items() if target in TABLE_LABELS}
