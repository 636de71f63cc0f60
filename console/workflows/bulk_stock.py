"""Bulk stock updates from a CSV file: a dry run first, then all rows or none.

The file is ``sku,quantity`` (set the counted quantity) or ``sku,delta`` (add, or with
a minus sign remove). A SKU is a product's (products without variants) or a variant's.

- **Dry run** (``preview``): every row with current -> new, its delta and its problem
  (unknown SKU, duplicate SKU, not a whole number, a result below zero or below what is
  reserved); nothing is written to stock. What the dry run saw (each product's on hand
  and reserved, each variant's quantity) is recorded in the audit trail as an
  ``inventory.bulk_previewed`` row, so Apply works from the server's own record, never
  from what the browser sends back.
- **Apply** (``apply``): the rows are locked, and when any of them changed since the dry
  run the whole update is refused with the rows that moved (never silently
  overwritten; a second Apply of the same dry run is refused the same way). Otherwise
  every row is written in one product_db transaction with a handful of batched
  statements (a few per thousand rows), one history row per change, and an
  ``inventory.bulk_applied`` row naming the dry run.

Files that are not CSV, too large, not UTF-8 or carrying spreadsheet formulas are
refused as a whole with a message saying what to do.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from console import audit
from console.extensions import db
from console.formatting import when
from console.lookups import chunks, database
from console.models.auth import SecurityAuditLog
from console.models.product import Product, ProductVariant
from console.models.types import json_text, new_id
from console.workflows import WorkflowError
from console.workflows.inventory import (HISTORY_ACTION, MAX_NOTE, MAX_QUANTITY, REASONS, StockError, clean_text,
                                         history_entry, lock_stock, move, save)

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MODES = {"quantity": "set", "delta": "add"}  # the second column's name -> what it does
PREVIEW_ACTION = "inventory.bulk_previewed"
APPLY_ACTION = "inventory.bulk_applied"
FORMULA_START = ("=", "@", "\t", "\r")
STALE_SHOWN = 10


class BulkFileError(WorkflowError):
    """A file refused as a whole (not CSV, too large, wrong encoding, formulas)."""

    def __init__(self, message: str):
        super().__init__(message, 422)


@dataclass
class Row:
    """One row of the file, as the dry run judged it."""

    line: int  # the line in the file (the header is line 1)
    sku: str
    value: int | None = None  # the quantity to set, or the delta
    product_id: str | None = None
    variant_id: str | None = None
    seen: list | None = None  # [on hand, reserved, variant quantity or None] before any row applied
    current: int | None = None  # of the product, or of the variant
    new: int | None = None
    problem: str | None = None

    @property
    def delta(self) -> int | None:
        return None if self.current is None or self.new is None else self.new - self.current

    def pack(self) -> list:
        return [self.line, self.sku, self.value, self.product_id, self.variant_id, self.seen, self.current,
                self.new, self.problem]

    @classmethod
    def unpack(cls, values: list) -> "Row":
        return cls(*values)


@dataclass
class Preview:
    id: str
    column: str  # "quantity" or "delta"
    reason: str
    note: str | None
    filename: str
    rows: list[Row]
    created_at: datetime | None = None
    staff_id: str | None = None
    applied: dict | None = None  # the apply's record, once applied

    @property
    def problems(self) -> list[Row]:
        return [r for r in self.rows if r.problem]

    @property
    def changes(self) -> list[Row]:
        return [r for r in self.rows if not r.problem and r.delta]

    @property
    def unchanged(self) -> int:
        return sum(1 for r in self.rows if not r.problem and not r.delta)


# --- reading the file -------------------------------------------------------------------

def _text_of(data: bytes, filename: str, columns: str = "sku,quantity or sku,delta") -> str:
    name = (filename or "").lower()
    if data[:4] == b"PK\x03\x04":
        raise BulkFileError("That is a spreadsheet workbook (.xlsx), not a CSV file. In your spreadsheet "
                            "program choose Save as → “CSV UTF-8 (comma delimited)” and upload that file.")
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise BulkFileError("That is an old Excel workbook (.xls), not a CSV file. Save it as "
                            "“CSV UTF-8 (comma delimited)” and upload that file.")
    if not name.endswith((".csv", ".txt")):
        raise BulkFileError(f"“{filename[:80] or 'The file'}” is not a CSV file. Upload a .csv file with the "
                            f"columns {columns}.")
    if len(data) > MAX_BYTES:
        raise BulkFileError(f"The file is {len(data) / 1024 / 1024:.1f} MB; at most {MAX_BYTES // 1024 // 1024} MB "
                            f"can be uploaded. Split it into smaller files.")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise BulkFileError("The file is in UTF-16. Save it as “CSV UTF-8” and upload it again.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BulkFileError(f"The file is not UTF-8 text (byte {exc.start + 1} can't be read): it is probably "
                            "in a Windows or Mac encoding, or not text at all. Save it as “CSV UTF-8” and "
                            "upload it again.") from exc
    if "\x00" in text:
        raise BulkFileError("The file holds binary data (NUL bytes), not CSV text.")
    return text


def _is_formula(cell: str) -> bool:
    if cell.startswith(FORMULA_START):
        return True
    # "+5" and "-3" are deltas; "+A1" or "-SUM(…)" are formulas.
    return cell[:1] in "+-" and cell[1:2] not in ("", " ") and not cell[1:2].isdigit()


def csv_records(data: bytes, filename: str, columns: str, check_header, max_rows: int) -> tuple[list[str], list]:
    """(header names, body) of an uploaded CSV file: the header's cells lower-cased and
    ``check_header(names, raw)`` raising BulkFileError when they are wrong; the body as
    (line, cells) without blank lines, refused as a whole when empty, too long or
    carrying spreadsheet formulas. ``columns`` is the header to ask for in messages."""
    text = _text_of(data, filename, columns)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise BulkFileError(f"The file is not valid CSV ({exc}). Check for a quote that is never closed.") from exc
    records = [(n, r) for n, r in enumerate(records, start=1) if any(c.strip() for c in r)]
    if not records:
        raise BulkFileError(f"The file is empty. Its first line must be {columns}.")
    header = records[0][1]
    names = [c.strip().lower() for c in header]
    if len(names) == 1 and ";" in names[0]:
        raise BulkFileError("The columns are separated by semicolons; save the file with commas (CSV UTF-8).")
    check_header(names, ",".join(header)[:80])
    body = records[1:]
    if not body:
        raise BulkFileError("The file has a header but no rows.")
    if len(body) > max_rows:
        raise BulkFileError(f"The file has {len(body):,} rows; at most {max_rows:,} at once. Split it.")
    formulas = [f"line {n} (“{c[:20]}”)" for n, r in body for c in r if _is_formula(c)]
    if formulas:
        raise BulkFileError("The file holds spreadsheet formulas, at " + ", ".join(formulas[:5])
                            + (f" and {len(formulas) - 5} more" if len(formulas) > 5 else "")
                            + ". Save the values instead (copy, paste as values) and upload it again.")
    return names, body


def _check_stock_header(names: list[str], raw: str) -> None:
    if len(names) != 2 or names[0] != "sku" or names[1] not in MODES:
        raise BulkFileError(f"The first line is “{raw}”; it must be sku,quantity (set the "
                            "counted quantity) or sku,delta (add, or remove with a minus sign).")


def read_file(data: bytes, filename: str) -> tuple[str, list[Row]]:
    """(column, rows) from an uploaded file: ``column`` is "quantity" or "delta"; each
    row has its value or a problem. BulkFileError for a file refused as a whole."""
    names, body = csv_records(data, filename, "sku,quantity or sku,delta", _check_stock_header, MAX_ROWS)
    column = names[1]
    rows = []
    for line, record in body:
        cells = [c.strip() for c in record]
        row = Row(line=line, sku=cells[0][:100] if cells else "")
        if len(cells) != 2:
            row.problem = f"has {len(cells)} cells; expected 2 (sku,{column})"
        elif not row.sku:
            row.problem = "no SKU"
        else:
            row.value, row.problem = _number(cells[1], column)
        rows.append(row)
    return column, rows


def _number(raw: str, column: str) -> tuple[int | None, str | None]:
    sign, digits = (raw[0], raw[1:].strip()) if raw[:1] in "+-" else ("", raw)
    if not digits or not digits.isascii() or not digits.isdigit() or (sign and column == "quantity"):
        what = "a whole number of units, 0 or more" if column == "quantity" else "a whole number such as 5 or -3"
        return None, f"“{raw[:20]}” is not {what}"
    if len(digits) > len(str(MAX_QUANTITY)) or int(digits) > MAX_QUANTITY:
        return None, f"{raw[:20]} is more than {MAX_QUANTITY:,}"
    value = int(digits)
    return (-value if sign == "-" else value), None


# --- the dry run --------------------------------------------------------------------------

def _targets(skus: list[str]) -> tuple[dict[str, tuple[str, None]], dict[str, tuple[str, str]]]:
    """SKU -> (product id, None) for products, SKU -> (product id, variant id) for variants."""
    products: dict = {}
    variants: dict = {}
    for chunk in chunks(skus):
        for pid, sku in db.session.execute(select(Product.id, Product.sku).where(Product.sku.in_(chunk))):
            products[sku] = (pid, None)
        for vid, pid, sku in db.session.execute(select(ProductVariant.id, ProductVariant.product_id,
                                                       ProductVariant.sku).where(ProductVariant.sku.in_(chunk))):
            variants[sku] = (pid, vid)
    return products, variants


def judge(column: str, rows: list[Row], *, lock: bool) -> dict:
    """Fill in each row's product, current and new values and problem, applying the rows
    in file order to the stock read (locked when ``lock``). Returns the stock by product."""
    skus = list(dict.fromkeys(r.sku for r in rows if r.sku))
    products, variants = _targets(skus)
    stocks = lock_stock({(products.get(s) or variants.get(s) or (None,))[0] for s in skus}, lock=lock)
    original = {pid: (s.quantity, s.reserved, {vid: v[1] for vid, v in s.variants.items()})
                for pid, s in stocks.items()}
    first_line: dict[str, int] = {}
    for row in rows:
        if row.sku and row.sku in first_line:
            row.problem = row.problem or f"duplicate SKU: also on line {first_line[row.sku]}"
            continue
        if row.sku:
            first_line[row.sku] = row.line
        if row.problem:
            continue
        product_id, variant_id = products.get(row.sku) or variants.get(row.sku) or (None, None)
        stock = stocks.get(product_id)
        if product_id is None:
            row.problem = "unknown SKU"
            continue
        if stock is None:
            row.problem = "this product has no inventory record"
            continue
        row.product_id, row.variant_id = product_id, variant_id
        quantity, reserved, variant_stock = original[product_id]
        row.seen = [quantity, reserved, variant_stock.get(variant_id) if variant_id else None]
        try:
            kwargs = {"set_to": row.value} if column == "quantity" else {"on_hand": row.value}
            before, after = move(stock, variant_id=variant_id, strict=True, **kwargs)
        except StockError as exc:
            row.problem = exc.message
            continue
        key = "variant_quantity" if variant_id else "quantity"
        row.current, row.new = before[key], after[key]
    return stocks


def preview(actor, data: bytes, filename: str, *, reason: str, note: str | None = None) -> Preview:
    """The dry run of an uploaded file: nothing is written to stock; what it saw is
    recorded (the audit trail) for Apply."""
    if reason not in REASONS:
        raise WorkflowError("Choose a reason from the list.", 422)
    note = clean_text(note, "the note", MAX_NOTE)
    filename = clean_text(filename or "upload.csv", "the file name", 200) or "upload.csv"
    column, rows = read_file(data, filename)
    with database("product"):
        judge(column, rows, lock=False)
        db.session.rollback()  # only read: end the read transaction before writing the record
    result = Preview(new_id(), column, reason, note, filename, rows)
    with database("auth"):
        audit.record(actor, PREVIEW_ACTION, "stock_bulk_update", result.id, column=column, reason=reason,
                     note=note, filename=filename, rows=[r.pack() for r in rows], problems=len(result.problems),
                     changes=len(result.changes))
        db.session.commit()
    result.staff_id = getattr(actor, "id", None)
    return result


def _record(preview_id: str, action: str, *, every: bool = False):
    """The first audit row of ``action`` about ``preview_id`` (or all of them, oldest first)."""
    query = select(SecurityAuditLog).where(
        json_text(SecurityAuditLog.metadata_, "entity_id") == preview_id, SecurityAuditLog.action == action
    ).order_by(SecurityAuditLog.created_at)
    if every:
        return list(db.session.scalars(query.limit(100)))
    return db.session.scalar(query.limit(1))


def load_preview(preview_id: str) -> Preview | None:
    """A dry run as recorded, with its apply record when it was applied."""
    with database("auth"):
        row = _record(preview_id, PREVIEW_ACTION)
        if row is None or not isinstance(row.metadata_, dict):
            return None
        meta = row.metadata_
        applied = _record(preview_id, APPLY_ACTION)
    return Preview(preview_id, meta.get("column", "quantity"), meta.get("reason", ""), meta.get("note"),
                   meta.get("filename", ""), [Row.unpack(r) for r in meta.get("rows", [])], row.created_at,
                   row.user_id,
                   applied={"at": applied.created_at, "staff_id": applied.user_id, **(applied.metadata_ or {})}
                   if applied is not None else None)


# --- apply ------------------------------------------------------------------------------

@dataclass
class Applied:
    preview: Preview
    changed: int
    unchanged: int
    history: int


def apply(actor, preview_id: str) -> Applied:
    """Every row of the dry run ``preview_id`` in one product_db transaction, or none:
    refused when the dry run had problems, was applied already, or when any row's stock
    changed since (those rows are named)."""
    with database("product"):
        return _apply(actor, preview_id)


def _apply(actor, preview_id: str) -> Applied:
    recorded = load_preview(preview_id)
    if recorded is None:
        raise WorkflowError("That dry run does not exist (or its record was removed). Upload the file again.", 404)
    if recorded.applied:
        raise WorkflowError(f"This file was applied already, at {when(recorded.applied['at'])}. "
                            "Nothing was changed twice.")
    if recorded.problems:
        raise WorkflowError(f"The dry run found {len(recorded.problems)} row(s) with problems, so nothing can be "
                            "applied. Correct the file and upload it again.", 422)
    fresh = [Row(line=r.line, sku=r.sku, value=r.value) for r in recorded.rows]
    db.session.rollback()
    stocks = judge(recorded.column, fresh, lock=True)
    stale = []
    for then, now in zip(recorded.rows, fresh):
        if now.problem or now.seen != then.seen or (now.product_id, now.variant_id) != (then.product_id, then.variant_id):
            stale.append(_staleness(then, now))
    if stale:
        db.session.rollback()
        shown = "; ".join(stale[:STALE_SHOWN]) + (f"; and {len(stale) - STALE_SHOWN} more" if len(stale) > STALE_SHOWN else "")
        raise WorkflowError(f"Stock changed since the dry run on {len(stale)} row(s), so nothing was applied "
                            f"(no row is overwritten without being seen): {shown}. Upload the file again for a "
                            "fresh dry run.")
    touched = {r.product_id for r in fresh if r.delta}
    save([stocks[pid] for pid in sorted(touched)])
    entries, on_hand = [], {}
    for row in fresh:
        if not row.delta:
            continue
        # Rows of one product (several of its variants) apply in file order: each history
        # row shows the product's on hand before and after its own step.
        quantity, reserved = on_hand.get(row.product_id, row.seen[0]), row.seen[1]
        on_hand[row.product_id] = quantity + row.delta
        before = {"quantity": quantity, "reserved": reserved, "available": quantity - reserved}
        after = {"quantity": quantity + row.delta, "reserved": reserved, "available": quantity + row.delta - reserved}
        if row.variant_id:
            before["variant_quantity"], after["variant_quantity"] = row.current, row.new
        entries.append(history_entry(stocks[row.product_id], before, after, row.variant_id, reason=recorded.reason,
                                     note=recorded.note, kind="bulk", bulk_id=recorded.id, line=row.line))
    audit.record_many(actor, HISTORY_ACTION, entries)
    audit.record(actor, APPLY_ACTION, "stock_bulk_update", preview_id, changed=len(entries),
                 unchanged=len(fresh) - len(entries), filename=recorded.filename, reason=recorded.reason)
    db.session.commit()
    recorded.applied = {"changed": len(entries)}
    return Applied(recorded, len(entries), len(fresh) - len(entries), len(entries))


def _staleness(then: Row, now: Row) -> str:
    if now.problem and not then.problem:
        return f"{then.sku}: {now.problem}"
    if not now.seen or not then.seen:
        return f"{then.sku}: no longer the same product"
    was, is_ = then.seen, now.seen
    if was[2] is not None and was[2] != is_[2]:
        return f"{then.sku}: {was[2]} at the dry run, now {is_[2]}"
    if was[0] != is_[0]:
        return f"{then.sku}: {was[0]} on hand at the dry run, now {is_[0]}"
    return f"{then.sku}: {was[1]} reserved at the dry run, now {is_[1]}"


def result_rows(recorded: Preview):
    """The result CSV's rows: every line with its outcome."""
    done = recorded.applied is not None
    for r in recorded.rows:
        outcome = "problem" if r.problem else ("unchanged" if not r.delta else ("applied" if done else "dry run"))
        yield [r.line, r.sku, r.value, r.current, r.new, r.delta, outcome, r.problem or ""]


RESULT_HEADER = ["line", "sku", "value", "current", "new", "delta", "outcome", "problem"]
