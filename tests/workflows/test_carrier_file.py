"""Bulk fulfilment from a carrier file: the dry run names each row's outcome and ships
nothing; Apply ships each shippable order through the order page's own workflow, once,
however often (or by however many staff at once) it is applied."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from console.demo.builders import ensure_shipping_options
from console.extensions import db
from console.models.notification import Notification
from console.models.order import Order, OrderStatusHistory
from console.models.shipping import Shipment, ShipmentTracking
from console.workflows import carrier_file, orders
from console.workflows.bulk_stock import BulkFileError
from tests.returns_helpers import staff_actor
from tests.test_refunds_concurrency import close_idle_connections, run_together  # noqa: F401 - fixture
from tests.workflows.test_orders import order_with_stock


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def day(ctx):
    """Orders of a warehouse day: two to ship, one shipped already, one cancelled."""
    ensure_shipping_options()
    db.session.commit()
    made = {name: order_with_stock(status)[0].order for name, status in (
        ("a", "processing"), ("b", "confirmed"), ("shipped", "processing"), ("cancelled", "cancelled"))}
    orders.mark_shipped(staff_actor("warehouse"), made["shipped"].id, "ups", "standard", "1ZSHIPPED0001")
    return {name: (o.id, o.order_number) for name, o in made.items()}


def the_file(day) -> bytes:
    return csv_bytes("order_number,carrier,tracking_number,service",
                     f"{day['a'][1]},ups,1ZAAAA000001,express",
                     f"{day['b'][1]},dhl,JD01460000001,",
                     f"{day['shipped'][1]},ups,1ZSHIPPED0001,standard",
                     "ORD-NOPE-0000,ups,1ZUNKNOWN0001,standard",
                     f"{day['a'][1]},ups,1ZAAAA000001,express",
                     f"{day['cancelled'][1]},ups,1ZCANCEL00001,standard")


def shipments_of(order_id):
    return db.session.scalars(select(Shipment).where(Shipment.order_id == order_id)).all()


def test_dry_run_previews_each_kind_of_row_and_ships_nothing(day):
    result = carrier_file.preview(staff_actor("warehouse"), the_file(day), "labels.csv")
    assert [(r.line, r.outcome, r.status) for r in result.rows] == [
        (2, "ship", "processing"), (3, "ship", "confirmed"), (4, "skip", "shipped"), (5, "unknown order", None),
        (6, "duplicate row", None), (7, "not shippable", "cancelled")]
    assert result.rows[1].service == "standard"  # an empty service cell means standard
    assert "line 2" in result.rows[4].detail and "cancelled" in result.rows[5].detail
    db.session.expire_all()
    assert db.session.get(Order, day["a"][0]).status == "processing" and not shipments_of(day["a"][0])
    assert carrier_file.load_preview(result.id).counts == {"ship": 2, "skip": 1, "unknown order": 1,
                                                           "duplicate row": 1, "not shippable": 1}


def test_apply_ships_as_mark_shipped_does_and_twice_ships_once(day):
    actor = staff_actor("warehouse")
    result = carrier_file.preview(actor, the_file(day), "labels.csv")
    applied = carrier_file.apply(actor, result.id)
    assert [r.outcome for r in applied.rows] == ["shipped", "shipped", "skip", "unknown order", "duplicate row",
                                                 "not shippable"]
    db.session.expire_all()
    a = db.session.get(Order, day["a"][0])
    assert (a.status, a.tracking_number) == ("shipped", "1ZAAAA000001") and a.shipped_at is not None
    [shipment] = shipments_of(a.id)
    assert shipment.tracking_number == "1ZAAAA000001"
    assert db.session.scalar(select(func.count()).select_from(ShipmentTracking)
                             .where(ShipmentTracking.shipment_id == shipment.id)) == 1
    history = db.session.scalars(select(OrderStatusHistory).where(OrderStatusHistory.order_id == a.id,
                                                                  OrderStatusHistory.status == "shipped")).all()
    assert len(history) == 1 and history[0].changed_by == actor.id and "labels.csv, line 2" in history[0].reason
    assert db.session.get(Order, day["b"][0]).tracking_number == "JD01460000001"

    again = carrier_file.apply(actor, result.id)
    assert [r.outcome for r in again.rows][:3] == ["skip", "skip", "skip"]
    db.session.expire_all()
    for name in ("a", "b", "shipped"):
        assert len(shipments_of(day[name][0])) == 1
    for name in ("a", "b"):  # one email per shipped order
        user_id = db.session.get(Order, day[name][0]).user_id
        assert len(db.session.scalars(select(Notification).where(Notification.user_id == user_id)).all()) == 1
    assert len(carrier_file.load_preview(result.id).applied) == 2
    assert db.session.get(Order, day["cancelled"][0]).status == "cancelled"


def test_a_row_refused_at_apply_does_not_stop_the_others(day):
    actor = staff_actor("warehouse")
    result = carrier_file.preview(actor, csv_bytes("order_number,carrier,tracking_number",
                                                   f"{day['a'][1]},ups,1ZAAAA000001",
                                                   f"{day['b'][1]},ups,1ZBBBB000001"), "labels.csv")
    orders.cancel(actor, day["a"][0], "customer changed their mind")  # between the dry run and Apply
    applied = carrier_file.apply(actor, result.id)
    assert [(r.outcome, r.status) for r in applied.rows] == [("not shippable", "cancelled"), ("shipped", "shipped")]


@pytest.mark.parametrize("data,filename,message", [
    (b"", "x.csv", "empty"),
    (b"order,tracking\nA,B\n", "x.csv", "order_number,carrier,tracking_number"),
    (b"order_number,carrier,tracking_number\n", "x.csv", "no rows"),
    (b"order_number;carrier;tracking_number\nA;B;C\n", "x.csv", "semicolons"),
    (b"PK\x03\x04rest", "x.xlsx", "workbook"),
    (b"order_number,carrier,tracking_number\n=HYPERLINK(1),ups,1ZAAAA\n", "x.csv", "formulas"),
    (b"order_number,carrier,tracking_number\n\xff\xfe,ups,1Z\n", "x.csv", "UTF-8"),
    (b"a,b,c\n", "labels.pdf", "not a CSV file"),
])
def test_bad_files_are_refused_whole_with_what_to_do(ctx, data, filename, message):
    with pytest.raises(BulkFileError) as refused:
        carrier_file.preview(staff_actor("warehouse"), data, filename)
    assert refused.value.status == 422 and message in refused.value.message


def test_bad_cells_are_invalid_rows(day):
    result = carrier_file.preview(staff_actor("warehouse"), csv_bytes(
        "order_number,carrier,tracking_number,service",
        f"{day['a'][1]},ups,no,standard", f"{day['b'][1]},ups,1ZBBBB000001,rocket",
        f"{day['b'][1]},nocarrier,1ZBBBB000001,standard", "only-one-cell",
        f"{day['a'][1]},ups,1ZSHIPPED0001,standard"), "labels.csv")
    assert [r.outcome for r in result.rows] == ["invalid"] * 5
    assert "not a tracking number" in result.rows[0].detail and "not a service" in result.rows[1].detail
    assert "not an active carrier" in result.rows[2].detail and "expected 4" in result.rows[3].detail
    assert "another order" in result.rows[4].detail


def test_two_thousand_rows_preview_in_a_few_batched_queries(ctx, count_queries):
    ensure_shipping_options()
    db.session.commit()
    lines = ["order_number,carrier,tracking_number"] + [f"ORD-X-{n:05d},ups,1ZX{n:09d}" for n in range(2000)]
    actor = staff_actor("warehouse")
    before = count_queries.count
    result = carrier_file.preview(actor, csv_bytes(*lines), "big.csv")
    assert result.counts == {"unknown order": 2000}
    assert count_queries.count - before <= 20


@pytest.mark.postgres_only
@pytest.mark.parametrize("count,batch", [(6, orders.SHIP_BATCH), (14, 4)])
def test_two_staff_applying_the_same_file_at_once_ship_each_order_once(app, monkeypatch, count, batch):
    monkeypatch.setattr(orders.ship_many, "__kwdefaults__", {"batch": batch})  # several batches each
    with app.app_context():
        ensure_shipping_options()
        db.session.commit()
        made = [order_with_stock("processing")[0].order for _ in range(count)]
        ids = [o.id for o in made]
        data = csv_bytes("order_number,carrier,tracking_number",
                         *[f"{o.order_number},ups,1ZCONC{n:08d}" for n, o in enumerate(made)])
        first = staff_actor("warehouse")
        preview_id = carrier_file.preview(first, data, "labels.csv").id
        second = staff_actor("warehouse")
        db.session.remove()
    results, refusals = run_together(app, lambda i: carrier_file.apply((first, second)[i], preview_id), threads=2)
    assert not refusals and len(results) == 2
    shipped = [r.outcome for result in results for r in result.rows if r.outcome == "shipped"]
    assert len(shipped) == count
    assert all(r.outcome in ("shipped", "skip") for result in results for r in result.rows)
    with app.app_context():
        for order_id in ids:
            assert db.session.scalar(select(func.count()).select_from(Shipment)
                                     .where(Shipment.order_id == order_id)) == 1
            assert db.session.scalar(select(func.count()).select_from(OrderStatusHistory).where(
                OrderStatusHistory.order_id == order_id, OrderStatusHistory.status == "shipped")) == 1


def test_apply_writes_what_mark_shipped_writes_in_a_few_queries_per_batch(ctx, count_queries, monkeypatch):
    from console.demo.builders import make_customer, make_order, make_product
    from console.models.auth import SecurityAuditLog

    ensure_shipping_options()
    product = make_product("BATCH-1", "Batch mug", "10.00", stock=500)
    people = [make_customer(f"batch{n}@example.com", f"Ann{n}", "Lee")[0] for n in range(5)]
    made = [make_order(people[n % 5], [(product, 1)], status="processing").order for n in range(25)]
    db.session.commit()
    ids = [o.id for o in made]
    data = csv_bytes("order_number,carrier,tracking_number",
                     *[f"{o.order_number},ups,1ZBATCH{n:07d}" for n, o in enumerate(made)])
    actor = staff_actor("warehouse")
    result = carrier_file.preview(actor, data, "day.csv")
    monkeypatch.setattr(orders, "SHIP_BATCH", 10)
    monkeypatch.setattr(orders.ship_many, "__kwdefaults__", {"batch": 10})
    before = count_queries.count
    applied = carrier_file.apply(actor, result.id)
    assert applied.counts == {"shipped": 25}
    # Three batches of at most 10 orders, each a fixed number of statements (plus the
    # executemany of its inserts and updates): far from Mark shipped's ~30 per order.
    assert count_queries.count - before <= 60  # 50 measured
    db.session.expire_all()
    audit = list(db.session.scalars(select(SecurityAuditLog).where(
        SecurityAuditLog.action.in_(["order.shipped", "shipment.created"]))))
    for n, order_id in enumerate(ids):
        order = db.session.get(Order, order_id)
        assert (order.status, order.tracking_number) == ("shipped", f"1ZBATCH{n:07d}")
        [shipment] = shipments_of(order_id)
        assert shipment.destination_address["city"] and shipment.cost is not None
        assert db.session.scalar(select(func.count()).select_from(ShipmentTracking)
                                 .where(ShipmentTracking.shipment_id == shipment.id)) == 1
        [history] = db.session.scalars(select(OrderStatusHistory).where(
            OrderStatusHistory.order_id == order_id, OrderStatusHistory.status == "shipped")).all()
        assert history.changed_by == actor.id and f"line {n + 2}" in history.reason
        mine = [a for a in audit if a.metadata_["entity_id"] in (order_id, shipment.id)]
        assert sorted(a.action for a in mine) == ["order.shipped", "shipment.created"]
        assert all(a.user_id == actor.id for a in mine)
        emails = [m for m in db.session.scalars(select(Notification).where(Notification.user_id == order.user_id))
                  if (m.metadata_ or {}).get("key") == f"order_shipped:{order_id}"]
        assert len(emails) == 1 and f"1ZBATCH{n:07d}" in emails[0].body and "Ann" in emails[0].body


def test_ship_many_refuses_a_tracking_number_of_another_order_and_ships_the_rest(day):
    actor = staff_actor("warehouse")
    outcomes = orders.ship_many(actor, [
        orders.ShipRequest(day["a"][0], "ups", "standard", "1ZSHIPPED0001"),  # the shipped order's number
        orders.ShipRequest(day["b"][0], "ups", "standard", "1ZBBBB000009"),
        orders.ShipRequest(day["cancelled"][0], "ups", "standard", "1ZCANC000009"),
        orders.ShipRequest(day["shipped"][0], "ups", "standard", "1ZSHIPPED0001"),
    ])
    assert outcomes[day["a"][0]][0] == "refused" and "already used by another shipment" in outcomes[day["a"][0]][1]
    assert outcomes[day["b"][0]] == ("shipped", "")
    assert outcomes[day["cancelled"][0]][0] == "refused" and "cancelled" in outcomes[day["cancelled"][0]][1]
    assert outcomes[day["shipped"][0]][0] == "skip"
