"""Bulk fulfilment from a carrier file: a dry run per row, then Apply.

The file is the one a carrier's label tool exports: ``order_number,carrier,
tracking_number`` and optionally ``service`` (standard, express, overnight; standard
when absent). ``carrier`` is the carrier's code as in shipping_db's carriers.

- **Dry run** (``preview``): each row's order, its current status and what will happen:
  ``ship``, ``skip`` (already shipped with that tracking number), ``not shippable``
  (the order's status does not allow it, or the order is shipped with another
  tracking number), ``unknown order``, ``duplicate row`` (the order appears earlier in
  the file), ``invalid`` (a cell that is not a carrier, service or tracking number).
  Orders, shipments and carriers are read in one batched query per database per
  thousand rows. The rows are recorded in the audit trail (``orders.ship_file_previewed``)
  so Apply works from the server's own record.
- **Apply** (``apply``): the recorded rows are judged again, and the shippable orders are
  marked shipped through ``console.workflows.orders.ship_many``, which does for each
  order what the order page's Mark shipped does (shipment, first tracking event, status
  history, audit row, customer email) in transactions of a few hundred orders: one
  refused order does not stop the others. Repeating it is safe: an order already
  shipped with the row's tracking number is skipped, so applying the same file twice
  (or two staff applying it at once: each batch locks its orders in id order, and
  shipping_db's unique tracking number refuses a second shipment) ships each order once.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from console import audit
from console.extensions import db
from console.lookups import chunks, database
from console.models.order import Order
from console.models.shipping import Carrier, Shipment
from console.models.types import new_id
from console.workflows import WorkflowError
from console.workflows.bulk_stock import BulkFileError, _record, csv_records
from console.workflows.orders import SERVICE_TYPES, TRACKING_NUMBER, ShipRequest, can_ship, ship_many

MAX_ROWS = 5_000
COLUMNS = ("order_number", "carrier", "tracking_number")
OPTIONAL = "service"
PREVIEW_ACTION = "orders.ship_file_previewed"
APPLY_ACTION = "orders.ship_file_applied"

# What the dry run says will happen to a row; Apply adds "shipped" and "refused".
SHIP, SKIP, NOT_SHIPPABLE, UNKNOWN, DUPLICATE, INVALID = (
    "ship", "skip", "not shippable", "unknown order", "duplicate row", "invalid")
OUTCOME_LABELS = {
    SHIP: "will be shipped", SKIP: "already shipped with this tracking number: skipped",
    NOT_SHIPPABLE: "not shippable", UNKNOWN: "unknown order", DUPLICATE: "duplicate row",
    INVALID: "invalid row", "shipped": "shipped", "refused": "refused",
}


@dataclass
class Row:
    line: int
    order_number: str
    carrier: str = ""
    tracking_number: str = ""
    service: str = "standard"
    order_id: str | None = None
    status: str | None = None  # the order's status when judged
    outcome: str = INVALID
    detail: str = ""

    def pack(self) -> list:
        return [self.line, self.order_number, self.carrier, self.tracking_number, self.service, self.order_id,
                self.status, self.outcome, self.detail]

    @classmethod
    def unpack(cls, values: list) -> "Row":
        return cls(*values)


@dataclass
class Preview:
    id: str
    filename: str
    rows: list[Row]
    created_at: object = None
    staff_id: str | None = None
    applied: list[dict] | None = None  # each Apply's record, oldest first

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r.outcome for r in self.rows))


# --- reading the file -------------------------------------------------------------------

def _check_header(names: list[str], raw: str) -> None:
    if tuple(names[:3]) != COLUMNS or len(names) > 4 or (len(names) == 4 and names[3] != OPTIONAL):
        raise BulkFileError(f"The first line is “{raw}”; it must be order_number,carrier,tracking_number"
                            ",service (the service column is optional).")


def read_file(data: bytes, filename: str) -> list[Row]:
    """The rows of an uploaded carrier file, each with its cells; BulkFileError for a
    file refused as a whole."""
    header, body = csv_records(data, filename, "order_number,carrier,tracking_number[,service]", _check_header,
                               MAX_ROWS)
    rows = []
    for line, record in body:
        cells = [c.strip() for c in record]
        row = Row(line=line, order_number=(cells[0] if cells else "")[:64])
        if len(cells) != len(header):
            row.detail = f"has {len(cells)} cells; expected {len(header)} ({','.join(header)})"
        else:
            row.carrier, row.tracking_number = cells[1][:64], cells[2][:64]
            row.service = (cells[3].lower()[:32] if len(cells) == 4 else "") or "standard"
            if not row.order_number:
                row.detail = "no order number"
            elif not TRACKING_NUMBER.match(row.tracking_number):
                row.detail = f"“{row.tracking_number[:40]}” is not a tracking number (5 to 40 letters, digits or dashes)"
            elif row.service not in SERVICE_TYPES:
                row.detail = f"“{row.service}” is not a service; use {', '.join(SERVICE_TYPES)}"
            else:
                row.outcome = ""
        rows.append(row)
    return rows


# --- the dry run --------------------------------------------------------------------------

def judge(rows: list[Row]) -> None:
    """Fill in each row's order, status and outcome from what the databases hold now."""
    numbers = list(dict.fromkeys(r.order_number for r in rows if not r.outcome))
    trackings = list(dict.fromkeys(r.tracking_number for r in rows if not r.outcome))
    carriers = {r.carrier for r in rows if not r.outcome}
    orders: dict[str, tuple[str, str, str | None]] = {}
    with database("order"):
        for chunk in chunks(numbers):
            for oid, number, status, tracking in db.session.execute(
                    select(Order.id, Order.order_number, Order.status, Order.tracking_number)
                    .where(Order.order_number.in_(chunk))):
                orders[number] = (oid, status, tracking)
        db.session.rollback()
    shipments: dict[str, str | None] = {}
    with database("shipping"):
        for chunk in chunks(trackings):
            for tracking, order_id in db.session.execute(
                    select(Shipment.tracking_number, Shipment.order_id).where(Shipment.tracking_number.in_(chunk))):
                shipments[tracking] = order_id
        active = {code for code, in db.session.execute(
            select(Carrier.code).where(Carrier.code.in_(list(carriers)), Carrier.is_active.is_(True)))} if carriers else set()
        db.session.rollback()
    seen_orders: dict[str, int] = {}
    seen_tracking: dict[str, int] = {}
    for row in rows:
        if row.outcome == INVALID:
            continue
        row.outcome, row.detail, row.order_id, row.status = "", "", None, None
        if row.order_number in seen_orders:
            row.outcome, row.detail = DUPLICATE, f"order also on line {seen_orders[row.order_number]}"
            continue
        seen_orders[row.order_number] = row.line
        found = orders.get(row.order_number)
        if found is None:
            row.outcome, row.detail = UNKNOWN, "no order has this number"
            continue
        row.order_id, row.status, current_tracking = found
        if row.tracking_number in seen_tracking:
            row.outcome, row.detail = DUPLICATE, f"tracking number also on line {seen_tracking[row.tracking_number]}"
            continue
        seen_tracking[row.tracking_number] = row.line
        if row.status in ("shipped", "delivered") and current_tracking == row.tracking_number:
            row.outcome, row.detail = SKIP, f"{row.status} with tracking {row.tracking_number}"
        elif row.status in ("shipped", "delivered"):
            row.outcome = NOT_SHIPPABLE
            row.detail = f"already {row.status} with tracking {current_tracking or 'none'}"
        elif not can_ship(row.status):
            row.outcome, row.detail = NOT_SHIPPABLE, f"the order is {row.status}"
        elif row.carrier not in active:
            row.outcome, row.detail = INVALID, f"“{row.carrier[:40]}” is not an active carrier code"
        elif row.tracking_number in shipments and shipments[row.tracking_number] != row.order_id:
            row.outcome, row.detail = INVALID, "this tracking number belongs to another order's shipment"
        else:
            row.outcome, row.detail = SHIP, f"{row.carrier} {row.service}, tracking {row.tracking_number}"


def preview(actor, data: bytes, filename: str) -> Preview:
    """The dry run of an uploaded carrier file: nothing is shipped; the rows are recorded."""
    filename = (filename or "carrier.csv").replace("\x00", "")[:200] or "carrier.csv"
    rows = read_file(data, filename)
    judge(rows)
    result = Preview(new_id(), filename, rows)
    with database("auth"):
        audit.record(actor, PREVIEW_ACTION, "carrier_file", result.id, filename=filename,
                     rows=[r.pack() for r in rows], counts=result.counts)
        db.session.commit()
    result.staff_id = getattr(actor, "id", None)
    return result


def load_preview(preview_id: str) -> Preview | None:
    """A dry run as recorded, with the record of each Apply."""
    with database("auth"):
        row = _record(preview_id, PREVIEW_ACTION)
        if row is None or not isinstance(row.metadata_, dict):
            return None
        meta = row.metadata_
        applied = _record(preview_id, APPLY_ACTION, every=True)
    return Preview(preview_id, meta.get("filename", ""), [Row.unpack(r) for r in meta.get("rows", [])],
                   row.created_at, row.user_id,
                   applied=[{"at": a.created_at, "staff_id": a.user_id, **(a.metadata_ or {})} for a in applied] or None)


# --- apply ------------------------------------------------------------------------------

def apply(actor, preview_id: str) -> Preview:
    """Ship every order the file still allows, through ``ship_many``. Returns
    the rows with their outcomes: ``shipped``, ``refused`` (with the workflow's
    message), or the dry run's outcome for rows not shippable now (``skip`` for an order
    already shipped with this tracking number, as after a first Apply)."""
    recorded = load_preview(preview_id)
    if recorded is None:
        raise WorkflowError("That dry run does not exist (or its record was removed). Upload the file again.", 404)
    # Rows refused by the file's own cells stay refused; every other row is judged afresh.
    rows = [Row(r.line, r.order_number, r.carrier, r.tracking_number, r.service,
                outcome=INVALID if r.outcome == INVALID and r.order_id is None else "",
                detail=r.detail if r.outcome == INVALID and r.order_id is None else "")
            for r in recorded.rows]
    judge(rows)
    shippable = [r for r in rows if r.outcome == SHIP]
    outcomes = ship_many(actor, [ShipRequest(r.order_id, r.carrier, r.service, r.tracking_number,
                                             f"Shipped from carrier file {recorded.filename}, line {r.line}")
                                 for r in shippable])
    for row in shippable:
        row.outcome, row.detail = outcomes[row.order_id]
        if row.outcome == "shipped":
            row.status = "shipped"
    counts = dict(Counter(r.outcome for r in rows))
    with database("auth"):
        audit.record(actor, APPLY_ACTION, "carrier_file", preview_id, filename=recorded.filename, counts=counts,
                     rows=[[r.line, r.outcome, r.detail] for r in rows if r.outcome in ("shipped", "refused")])
        db.session.commit()
    recorded.rows = rows
    recorded.applied = (recorded.applied or []) + [{"counts": counts}]
    return recorded


RESULT_HEADER = ["line", "order_number", "carrier", "tracking_number", "service", "status", "outcome", "detail"]


def result_rows(recorded: Preview):
    for r in recorded.rows:
        yield [r.line, r.order_number, r.carrier, r.tracking_number, r.service, r.status or "",
               OUTCOME_LABELS.get(r.outcome, r.outcome), r.detail]
