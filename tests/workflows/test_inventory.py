"""Stock changes: adjust, set, cancel and return restock keep the three stores of stock in
step, never go below zero or below what is reserved, and leave a history row with the
staff member; twenty staff removing one unit at once on PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from console.demo.builders import make_product, make_variant
from console.extensions import db
from console.integrity import check_all
from console.models.auth import SecurityAuditLog
from console.models.product import Product, ProductInventory, ProductVariant
from console.models.returns import ReturnItem
from console.models.types import json_text
from console.workflows import WorkflowError, inventory, orders, returns
from console.workflows.inventory import HISTORY_ACTION, StockError, adjust_stock, stock_status
from tests.returns_helpers import paid_order, staff_actor
from tests.test_refunds_concurrency import run_together
from tests.workflows.test_orders import order_with_stock


def stores(product_id) -> dict:
    """The three stores of one product's stock, read fresh."""
    db.session.expire_all()
    product = db.session.get(Product, product_id)
    row = db.session.scalar(select(ProductInventory).where(ProductInventory.product_id == product_id))
    variants = list(db.session.scalars(select(ProductVariant).where(ProductVariant.product_id == product_id)))
    return {"product": product, "inventory": row, "variants": variants}


def assert_in_step(product_id) -> tuple[int, int, int]:
    """The three stores agree; returns (on hand, reserved, available)."""
    s = stores(product_id)
    row, product = s["inventory"], s["product"]
    assert row.available_quantity == row.quantity - row.reserved_quantity
    assert 0 <= row.reserved_quantity <= row.quantity
    assert product.stock_quantity == row.quantity
    assert product.stock_status == stock_status(row.available_quantity)
    if s["variants"]:
        assert sum(v.stock_quantity for v in s["variants"]) == row.quantity
        for v in s["variants"]:
            assert v.stock_quantity >= 0 and v.stock_status == stock_status(v.stock_quantity)
    return row.quantity, row.reserved_quantity, row.available_quantity


def history(product_id=None, staff_id=None) -> list[SecurityAuditLog]:
    stmt = select(SecurityAuditLog).where(SecurityAuditLog.action == HISTORY_ACTION)
    if product_id:
        stmt = stmt.where(json_text(SecurityAuditLog.metadata_, "entity_id") == product_id)
    if staff_id:
        stmt = stmt.where(SecurityAuditLog.user_id == staff_id)
    return list(db.session.scalars(stmt.order_by(SecurityAuditLog.created_at, SecurityAuditLog.id)))


def orphans() -> list[str]:
    return [f"{r.ref.name}: {r.orphans}" for r in check_all() if r.orphans or r.error]


@pytest.fixture
def actor(ctx):
    return staff_actor("warehouse")


@pytest.fixture
def plain(ctx):
    product = make_product("BOLT-10", "Bolt", "2.50", stock=10, reserved=3)
    db.session.commit()
    return product.id


@pytest.fixture
def sized(ctx):
    """A product with three variants holding 4 + 3 + 3 = 10."""
    product = make_product("TEE-1", "Tee", "15.00", stock=10)
    variants = [make_variant(product, name, {"size": name}, stock=n) for name, n in (("S", 4), ("M", 3), ("L", 3))]
    db.session.commit()
    return product.id, [v.id for v in variants]


def test_add_remove_and_set_keep_the_three_stores_in_step_with_history(actor, plain):
    change = adjust_stock(actor, plain, mode="add", quantity="5", reason="received", note="PO 4411", location="B-07")
    assert (change.quantity, change.reserved, change.available) == (15, 3, 12)
    assert assert_in_step(plain) == (15, 3, 12)
    assert stores(plain)["inventory"].location == "B-07"
    adjust_stock(actor, plain, mode="remove", quantity="2", reason="damaged")
    assert assert_in_step(plain) == (13, 3, 10)
    adjust_stock(actor, plain, mode="set", quantity="4", reason="cycle_count")
    assert assert_in_step(plain) == (4, 3, 1)
    rows = history(plain)
    assert [(r.metadata_["before"]["quantity"], r.metadata_["after"]["quantity"], r.metadata_["reason"],
             r.metadata_["kind"]) for r in rows] == [(10, 15, "received", "add"), (15, 13, "damaged", "remove"),
                                                      (13, 4, "cycle_count", "set")]
    assert all(r.user_id == actor.id for r in rows)
    assert rows[0].metadata_["note"] == "PO 4411" and rows[0].metadata_["sku"] == "BOLT-10"
    assert len(history(staff_id=actor.id)) == 3


def test_stock_status_is_the_product_services_own(actor, ctx):
    """in_stock, out_of_stock or backorder, never a status of the console's own: a product
    sold on backorder stays so while it has none, and is in stock once some arrive."""
    assert {stock_status(q) for q in (0, 1, 3, 500)} == {"in_stock", "out_of_stock"}
    product = make_product("PRE-1", "Preorder", "9.00", stock=0)
    product.stock_status = "backorder"
    db.session.commit()
    adjust_stock(actor, product.id, mode="set", quantity="0", reason="cycle_count")
    assert stores(product.id)["product"].stock_status == "backorder"
    adjust_stock(actor, product.id, mode="add", quantity="2", reason="received")
    assert stores(product.id)["product"].stock_status == "in_stock"
    adjust_stock(actor, product.id, mode="remove", quantity="2", reason="damaged")
    assert stores(product.id)["product"].stock_status == "out_of_stock"


@pytest.mark.parametrize("mode,quantity,message", [
    ("remove", "8", "below the 3 reserved"),
    ("set", "2", "below the 3 reserved"),
    ("remove", "11", "below zero"),
])
def test_refused_below_reserved_or_zero_writes_nothing(actor, plain, mode, quantity, message):
    with pytest.raises(StockError) as refused:
        adjust_stock(actor, plain, mode=mode, quantity=quantity, reason="correction")
    assert message in refused.value.message and refused.value.status == 409
    assert assert_in_step(plain) == (10, 3, 7)
    assert history(plain) == []


@pytest.mark.parametrize("fields,message", [
    ({"quantity": "1e3"}, "digits 0-9"), ({"quantity": "１２"}, "digits 0-9"), ({"quantity": "-4"}, "digits 0-9"),
    ({"quantity": "2.5"}, "digits 0-9"), ({"quantity": "9" * 40}, "out of range"), ({"quantity": ""}, "Enter the quantity"),
    ({"quantity": "0"}, "1 or more"), ({"reason": "because"}, "reason"), ({"mode": "double"}, "add, remove or set"),
    ({"note": "x\x00y"}, "control characters"), ({"note": "n" * 100_000}, "500 characters"),
    ({"location": "L" * 65}, "64 characters"),
])
def test_bad_input_is_refused_with_a_message(actor, plain, fields, message):
    args = {"mode": "add", "quantity": "1", "reason": "correction", **fields}
    with pytest.raises(WorkflowError) as refused:
        adjust_stock(actor, plain, **args)
    assert refused.value.status == 422 and message in refused.value.message
    assert assert_in_step(plain) == (10, 3, 7)


def test_unknown_product_is_404(actor):
    with pytest.raises(StockError) as refused:
        adjust_stock(actor, "no-such-product", mode="add", quantity="1", reason="correction")
    assert refused.value.status == 404


def test_variants_move_with_their_product(actor, sized):
    product_id, (small, medium, large) = sized
    with pytest.raises(StockError) as refused:
        adjust_stock(actor, product_id, mode="add", quantity="1", reason="received")
    assert "has variants" in refused.value.message
    adjust_stock(actor, product_id, mode="add", quantity="6", reason="received", variant_id=small)
    assert assert_in_step(product_id) == (16, 0, 16)
    adjust_stock(actor, product_id, mode="set", quantity="0", reason="cycle_count", variant_id=medium)
    assert assert_in_step(product_id) == (13, 0, 13)
    with pytest.raises(StockError) as refused:
        adjust_stock(actor, product_id, mode="remove", quantity="4", reason="damaged", variant_id=large)
    assert "below zero" in refused.value.message
    assert [v.stock_quantity for v in sorted(stores(product_id)["variants"], key=lambda v: v.name)] == [3, 0, 10]
    entry = history(product_id)[-1].metadata_
    assert entry["variant_id"] == medium and (entry["before"]["variant_quantity"], entry["after"]["variant_quantity"]) == (3, 0)


def test_cancel_and_return_restock_keep_the_stores_in_step_and_record_their_source(ctx):
    bundle, products = order_with_stock("pending", quantities=(2,))
    actor = staff_actor("support")
    assert assert_in_step(products[0].id) == (10, 2, 8)
    orders.cancel(actor, bundle.order.id, "customer asked")
    assert assert_in_step(products[0].id) == (10, 0, 10)
    entry = history(products[0].id)[-1].metadata_
    assert entry["kind"] == "cancel" and entry["order_number"] == bundle.order.order_number

    data = paid_order(stock=10)
    item = data.items[0]
    request = returns.create_return(data.actor, data.order.id, [(item.id, 1)], "changed_mind")
    returns.approve(data.actor, request.id)
    returned = db.session.scalar(select(ReturnItem).where(ReturnItem.return_request_id == request.id))
    returns.receive(data.actor, request.id, {returned.id: "new"})
    assert assert_in_step(item.product_id) == (11, 0, 11)
    entry = history(item.product_id)[-1].metadata_
    assert entry["kind"] == "return" and entry["rma_number"] == request.rma_number
    assert orphans() == []


def test_a_workflow_change_on_a_product_with_variants_can_still_name_none(actor, sized):
    # Releasing a reservation touches no variant: the variants' sum still matches.
    product_id, _ = sized
    inventory.change_stock(actor, product_id, reserved=2, reason="test hold")
    inventory.change_stock(actor, product_id, reserved=-2, reason="test release")
    assert assert_in_step(product_id) == (10, 0, 10)


@pytest.mark.postgres_only
def test_twenty_concurrent_removals_of_one_on_ten_available_accept_exactly_ten(app):
    with app.app_context():
        product = make_product("HOT-1", "Hot item", "9.00", stock=13, reserved=3)
        db.session.commit()
        product_id = product.id
        actor = staff_actor("warehouse")
        db.session.remove()
    try:
        done, refused = run_together(app, lambda i: adjust_stock(actor, product_id, mode="remove", quantity="1",
                                                                 reason="damaged"))
        with app.app_context():
            assert len(done) == 10 and len(refused) == 10
            assert all("below the 3 reserved" in exc.message for exc in refused)
            assert assert_in_step(product_id) == (3, 3, 0)
            rows = history(product_id)
            assert len(rows) == 10  # the refused ones are not history
            assert sorted(r.metadata_["after"]["available"] for r in rows) == list(range(10))
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def test_the_shop_status_and_the_console_level_read_what_is_available(app, ctx):
    """stockStatus takes the shop's values only, from what is available (backorder kept
    while nothing is); the console's level is one rule: out at none, low up to the
    threshold, in above it."""
    from console.workflows.inventory import STOCK_STATUSES, stock_level, stock_level_bounds
    assert [stock_status(n) for n in (-1, 0, 1, 7)] == ["out_of_stock", "out_of_stock", "in_stock", "in_stock"]
    assert stock_status(0, "backorder") == "backorder" and stock_status(3, "backorder") == "in_stock"
    assert {stock_status(n, current) for n in (0, 1) for current in (None, "backorder")} <= set(STOCK_STATUSES)
    threshold = app.config.get("LOW_STOCK_THRESHOLD", 5)
    assert [stock_level(n) for n in (None, -2, 0, 1, threshold, threshold + 1)] == [None, "out", "out", "low", "low", "in"]
    assert stock_level_bounds("low") == (None, threshold) and stock_level_bounds("in") == (threshold, None)


def test_a_product_with_units_on_hand_all_reserved_is_out_of_stock_in_the_shop(actor):
    pid = make_product("HELD-1", "Held", "5.00", stock=4).id
    db.session.commit()
    adjust_stock(actor, pid, mode="remove", quantity="4", reason="damaged")
    assert stores(pid)["product"].stock_status == "out_of_stock"
    adjust_stock(actor, pid, mode="add", quantity="7", reason="received")
    assert stores(pid)["product"].stock_status == "in_stock"
