"""Bulk stock updates from CSV: the dry run judges every row and writes no stock; Apply
writes all rows in one transaction or none, refuses a stale dry run, and stays a few
statements per thousand rows."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from console.demo.builders import make_product, make_variant
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.product import Product, ProductInventory
from console.workflows import WorkflowError
from console.workflows import bulk_stock
from console.workflows.bulk_stock import BulkFileError, apply, preview, read_file
from console.workflows.inventory import adjust_stock
from tests.returns_helpers import staff_actor
from tests.workflows.test_inventory import assert_in_step, history, orphans

pytestmark = pytest.mark.usefixtures("ctx")


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def shelf():
    """Three plain products (10 on hand, 2 reserved) and one with two variants (5 + 5)."""
    ids = {}
    for sku in ("A-1", "A-2", "A-3"):
        ids[sku] = make_product(sku, f"Item {sku}", "5.00", stock=10, reserved=2).id
    shirt = make_product("SHIRT", "Shirt", "20.00", stock=10)
    ids["SHIRT"] = shirt.id
    ids["SHIRT-S"] = make_variant(shirt, "S", {"size": "S"}, sku="SHIRT-S", stock=5).id
    ids["SHIRT-L"] = make_variant(shirt, "L", {"size": "L"}, sku="SHIRT-L", stock=5).id
    db.session.commit()
    return ids


@pytest.fixture
def actor():
    return staff_actor("warehouse")


def test_dry_run_shows_current_new_and_delta_and_writes_no_stock(actor, shelf):
    result = preview(actor, csv_bytes("sku,quantity", "A-1,25", "A-2,10", "SHIRT-S,8"), "count.csv",
                     reason="cycle_count")
    assert [(r.sku, r.current, r.new, r.delta, r.problem) for r in result.rows] == [
        ("A-1", 10, 25, 15, None), ("A-2", 10, 10, 0, None), ("SHIRT-S", 5, 8, 3, None)]
    assert assert_in_step(shelf["A-1"]) == (10, 2, 8)
    assert history() == []
    assert bulk_stock.load_preview(result.id).rows[0].new == 25


def test_dry_run_names_every_problem(actor, shelf):
    result = preview(actor, csv_bytes("sku,delta", "A-1,+5", "NOPE,1", "A-1,2", "A-2,lots", "A-3,-9", "SHIRT,3",
                                      "SHIRT-L,-6", "A-2", "SHIRT-S,-2"), "moves.csv", reason="correction")
    problems = {r.line: r.problem for r in result.rows}
    assert problems[2] is None
    assert problems[3] == "unknown SKU"
    assert problems[4] == "duplicate SKU: also on line 2"
    assert "not a whole number" in problems[5]
    assert "below the 2 reserved" in problems[6]
    assert "has variants" in problems[7]
    assert "below zero" in problems[8]
    assert "expected 2" in problems[9]
    assert problems[10] is None
    with pytest.raises(WorkflowError) as refused:
        apply(actor, result.id)
    assert refused.value.status == 422 and "problems" in refused.value.message
    # one bad row: nothing applied at all
    assert assert_in_step(shelf["A-1"]) == (10, 2, 8) and assert_in_step(shelf["SHIRT"]) == (10, 0, 10)
    assert history() == []


def test_apply_writes_every_row_in_step_with_history_and_a_result(actor, shelf):
    result = preview(actor, csv_bytes("sku,delta", "A-1,5", "A-2,-3", "SHIRT-S,2", "SHIRT-L,-1", "A-3,0"),
                     "moves.csv", reason="received", note="delivery 77")
    applied = apply(actor, result.id)
    assert (applied.changed, applied.unchanged) == (4, 1)
    assert assert_in_step(shelf["A-1"]) == (15, 2, 13)
    assert assert_in_step(shelf["A-2"]) == (7, 2, 5)
    assert assert_in_step(shelf["SHIRT"]) == (11, 0, 11)
    shirt = [(r.metadata_["before"]["quantity"], r.metadata_["after"]["quantity"])
             for r in sorted(history(shelf["SHIRT"]), key=lambda r: r.metadata_["line"])]
    assert shirt == [(10, 12), (12, 11)]  # the two variant rows chain on the product
    entry = history(shelf["A-1"])[0].metadata_
    assert entry["kind"] == "bulk" and entry["bulk_id"] == result.id and entry["note"] == "delivery 77"
    recorded = bulk_stock.load_preview(result.id)
    assert recorded.applied and recorded.applied["changed"] == 4
    outcomes = [row[6] for row in bulk_stock.result_rows(recorded)]
    assert outcomes == ["applied", "applied", "applied", "applied", "unchanged"]
    assert orphans() == []


def test_apply_twice_changes_once(actor, shelf):
    result = preview(actor, csv_bytes("sku,delta", "A-1,5"), "m.csv", reason="received")
    apply(actor, result.id)
    with pytest.raises(WorkflowError) as refused:
        apply(actor, result.id)
    assert "applied already" in refused.value.message
    assert assert_in_step(shelf["A-1"]) == (15, 2, 13)


def test_a_stale_dry_run_is_refused_naming_the_rows(actor, shelf):
    result = preview(actor, csv_bytes("sku,quantity", "A-1,20", "A-2,20"), "c.csv", reason="cycle_count")
    adjust_stock(actor, shelf["A-2"], mode="remove", quantity="1", reason="damaged")  # someone meanwhile
    with pytest.raises(WorkflowError) as refused:
        apply(actor, result.id)
    assert "A-2: 10 on hand at the dry run, now 9" in refused.value.message
    assert "nothing was applied" in refused.value.message
    assert assert_in_step(shelf["A-1"]) == (10, 2, 8)  # the fresh row was not applied either
    assert assert_in_step(shelf["A-2"]) == (9, 2, 7)


def test_a_reservation_made_since_the_dry_run_makes_it_stale(actor, shelf):
    result = preview(actor, csv_bytes("sku,quantity", "A-1,3"), "c.csv", reason="cycle_count")
    from console.workflows.inventory import change_stock

    change_stock(actor, shelf["A-1"], reserved=1, reason="order placed")
    with pytest.raises(WorkflowError) as refused:
        apply(actor, result.id)
    assert "A-1: 2 reserved at the dry run, now 3" in refused.value.message


@pytest.mark.parametrize("data,name,message", [
    (b"PK\x03\x04rest-of-a-zip", "stock.xlsx", "spreadsheet workbook"),
    (b"\xd0\xcf\x11\xe0rest", "stock.xls", "old Excel"),
    (b"sku,quantity\nA-1,2\n", "stock.pdf", "not a CSV file"),
    (b"sku,quantity\n" + b"A-1,2\n" * 900_000, "big.csv", "at most 5 MB"),
    ("sku,quantity\nCAFÉ-1,2\n".encode("latin-1"), "latin.csv", "not UTF-8"),
    ("sku,quantity\nA-1,2\n".encode("utf-16"), "wide.csv", "UTF-16"),
    (b"sku,quantity\nA-1,=1+1\n", "f.csv", "spreadsheet formulas, at line 2"),
    (b"sku,delta\n=HYPERLINK(\"x\"),2\n", "f.csv", "spreadsheet formulas"),
    (b"sku,delta\nA-1,-SUM(A1)\n", "f.csv", "spreadsheet formulas"),
    (b"sku,qty\nA-1,2\n", "h.csv", "must be sku,quantity"),
    (b"sku;quantity\nA-1;2\n", "h.csv", "semicolons"),
    (b"", "e.csv", "empty"),
    (b"sku,quantity\n", "e.csv", "no rows"),
    (b"sku,quantity\n\"A-1,2\n", "q.csv", "not valid CSV"),
    (b"sku,quantity\nA\x00,2\n", "n.csv", "binary"),
])
def test_files_refused_as_a_whole_say_why(data, name, message):
    with pytest.raises(BulkFileError) as refused:
        read_file(data, name)
    assert message in refused.value.message and refused.value.status == 422


def test_a_file_with_a_bom_and_windows_lines_reads(shelf):
    column, rows = read_file("\ufeffsku,delta\r\nA-1,-2\r\n\r\nA-2,+3\r\n".encode(), "x.CSV")
    assert column == "delta" and [(r.sku, r.value) for r in rows] == [("A-1", -2), ("A-2", 3)]


def test_preview_refuses_a_reason_not_on_the_list(actor, shelf):
    with pytest.raises(WorkflowError) as refused:
        preview(actor, csv_bytes("sku,delta", "A-1,1"), "x.csv", reason="whim")
    assert refused.value.status == 422


def test_ten_thousand_rows_apply_in_one_transaction_with_batched_statements(actor, count_queries):
    rows = [{"sku": f"BULK-{n:05d}", "name": f"Bulk {n}", "slug": f"bulk-{n:05d}", "price": 1, "stock_quantity": 5, "stock_status": "in_stock",
             "status": "active"} for n in range(10_000)]
    db.session.execute(Product.__table__.insert(), [{"id": f"p{n:05d}", **r} for n, r in enumerate(rows)])
    db.session.execute(ProductInventory.__table__.insert(), [
        {"id": f"i{n:05d}", "product_id": f"p{n:05d}", "quantity": 5, "reserved_quantity": 1, "available_quantity": 4}
        for n in range(10_000)])
    db.session.commit()
    data = csv_bytes("sku,delta", *[f"BULK-{n:05d},{n % 7 + 1}" for n in range(10_000)])
    count_queries.statements.clear()
    result = preview(actor, data, "big.csv", reason="received")
    previewed = count_queries.count
    assert not result.problems and len(result.changes) == 10_000
    count_queries.statements.clear()
    applied = apply(actor, result.id)
    assert applied.changed == 10_000
    # Per thousand rows a few statements (IN chunks, executemany, batched inserts), not one per row.
    assert previewed <= 60 and count_queries.count <= 80, (previewed, count_queries.count)
    db.session.expire_all()
    assert db.session.get(ProductInventory, "i00006").quantity == 5 + 7
    assert db.session.get(Product, "p00006").stock_quantity == 12
    assert db.session.scalar(select(db.func.count()).select_from(SecurityAuditLog)
                             .where(SecurityAuditLog.action == "inventory.changed")) == 10_000


@pytest.mark.postgres_only
def test_four_staff_applying_one_dry_run_at_once_apply_it_once(app):
    with app.app_context():
        ids = [make_product(f"C-{n}", "Crate", "3.00", stock=10).id for n in range(3)]
        db.session.commit()
        actor = staff_actor("warehouse")
        result = preview(actor, csv_bytes("sku,delta", "C-0,4", "C-1,-2", "C-2,1"), "c.csv", reason="received")
        db.session.remove()
    from tests.test_refunds_concurrency import run_together

    try:
        done, refused = run_together(app, lambda i: apply(actor, result.id), threads=4)
        with app.app_context():
            assert len(done) == 1 and len(refused) == 3
            assert [assert_in_step(i)[0] for i in ids] == [14, 8, 11]
            assert len(history()) == 3
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
