"""Keyset paging itself: both directions, equal sort values across a page boundary,
NULLs last in both directions, cursors tied to their sort, constant statements."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from console.extensions import db
from console.models.product import Product
from console.models.types import utcnow
from console.screens.keyset import BadCursor, encode_cursor, keyset_page

# 11 products: "was" prices (compare-at, a nullable money column) with ties (three at 20.00
# and two at 5.00), and two not on sale, without one.
TOTALS = ["20.00", "5.00", None, "20.00", "7.50", "20.00", "5.00", None, "99.99", "1.00", "42.00"]


@pytest.fixture
def products(ctx):
    start = utcnow() - timedelta(days=1)
    made = []
    for n, total in enumerate(TOTALS):
        product = Product(id=f"id-{n:02d}", sku=f"SKU-{n:02d}", name=f"Product {n}", slug=f"product-{n:02d}",
                          price=Decimal("1.00"), compare_at_price=None if total is None else Decimal(total),
                          created_at=start + timedelta(minutes=n))
        db.session.add(product)
        made.append(product)
    db.session.commit()
    return made


def expected_order(products, descending: bool) -> list[str]:
    """Rows with a value by (value, id) in the direction, then those without by id."""
    valued = sorted((p for p in products if p.compare_at_price is not None),
                    key=lambda p: (p.compare_at_price, p.id), reverse=descending)
    empty = sorted((p for p in products if p.compare_at_price is None), key=lambda p: p.id, reverse=descending)
    return [p.id for p in valued + empty]


def page(size, descending, after=None, before=None, count=False):
    return keyset_page(select(Product), Product.compare_at_price, Product.id, sort_key="total",
                       descending=descending, size=size, after=after, before=before, count=count)


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 11, 12])
def test_next_then_previous_walk_every_row_once_nulls_last(products, descending, size):
    want = expected_order(products, descending)
    pages, current = [], page(size, descending)
    assert current.previous_cursor is None
    while True:
        pages.append([o.id for o in current.rows])
        if current.next_cursor is None:
            break
        current = page(size, descending, after=current.next_cursor)
    assert [i for p in pages for i in p] == want  # equal totals across page boundaries: none lost or repeated
    assert all(len(p) == size for p in pages[:-1])
    # And back again with Previous from the last page to the first.
    back = [pages[-1]]
    while current.previous_cursor is not None:
        current = page(size, descending, before=current.previous_cursor)
        back.append([o.id for o in current.rows])
        assert current.next_cursor is not None
    assert back[::-1] == pages


def test_previous_from_a_middle_page_gives_the_page_before(products):
    want = expected_order(products, True)
    first = page(3, True)
    second = page(3, True, after=first.next_cursor)
    third = page(3, True, after=second.next_cursor)
    assert [o.id for o in third.rows] == want[6:9]  # the NULL run starts on this page
    again = page(3, True, before=third.previous_cursor)
    assert [o.id for o in again.rows] == want[3:6]
    assert again.previous_cursor and again.next_cursor


def test_previous_across_the_null_boundary(products):
    want = expected_order(products, False)
    last = page(2, False, after=encode_cursor("total", None, want[-2]))  # a cursor inside the NULL run
    assert [o.id for o in last.rows] == want[-1:] and last.next_cursor is None
    before = page(2, False, before=last.previous_cursor)
    assert [o.id for o in before.rows] == want[-3:-1]  # the last valued row and the first NULL


def test_count_is_capped_and_optional(products):
    assert page(3, True, count=True).total == len(TOTALS)
    assert page(3, True).total is None


def test_an_unfiltered_count_past_its_cap_is_kept_a_while(products, count_queries, monkeypatch):
    from console.lookups import database
    from console.screens import keyset

    clock = [1000.0]
    monkeypatch.setattr(keyset.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(keyset, "_capped_until", {})
    ids = select(Product.id)

    def count(cap, reuse=("products-test",)):
        count_queries.statements.clear()
        with database("product"):
            result = keyset.capped_count(ids, cap=cap, bind="product", reuse=reuse)
        return result, len(count_queries.statements)

    assert count(3) == ((3, True), 1)
    assert count(3) == ((3, True), 0)  # past the cap a moment ago: not walked again
    clock[0] += keyset.CAPPED_KEPT_SECONDS - 1
    assert count(3) == ((3, True), 0)
    clock[0] += 2
    assert count(3) == ((3, True), 1)  # kept no longer: counted again
    # A count under its cap, or of a filtered list (no reuse key), is taken every time.
    assert count(50) == ((len(TOTALS), False), 1)
    assert count(50) == ((len(TOTALS), False), 1)
    assert count(3, reuse=None) == ((3, True), 1)
    assert count(3, reuse=None) == ((3, True), 1)


@pytest.mark.parametrize("cursor", [
    "not-a-cursor", encode_cursor("created", "x", "id-01"),  # another sort's cursor
    encode_cursor("total", "twenty", "id-01"),  # text where a number belongs
    encode_cursor("total", Decimal("1"), None)])
def test_tampered_cursors_are_refused(products, cursor):
    with pytest.raises(BadCursor):
        page(3, True, after=cursor)
    with pytest.raises(BadCursor):
        page(3, True, before=cursor)


def test_one_statement_per_page_at_every_depth_and_size(products, count_queries):
    counts = set()
    for size in (1, 3, 5):
        current = page(size, True)
        while True:
            count_queries.statements.clear()
            current = page(size, True, after=current.next_cursor) if current.next_cursor else None
            if current is None:
                break
            counts.add(count_queries.count)
            count_queries.statements.clear()
            page(size, True, before=current.previous_cursor) if current.previous_cursor else None
            if current.previous_cursor:
                counts.add(count_queries.count)
    assert counts == {1}


def test_datetime_sort_pages_by_time(products):
    first = keyset_page(select(Product), Product.created_at, Product.id, sort_key="created", descending=True, size=4)
    assert [o.id for o in first.rows] == ["id-10", "id-09", "id-08", "id-07"]
    second = keyset_page(select(Product), Product.created_at, Product.id, sort_key="created", descending=True, size=4,
                         after=first.next_cursor)
    assert [o.id for o in second.rows] == ["id-06", "id-05", "id-04", "id-03"]


@pytest.mark.postgres_only
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("sort", ["created", "number", "total", "status"])
def test_an_orders_export_reads_its_rows_in_order_from_an_index(ctx, sort, descending):
    """Every order in the list's order, as the export reads them: from the sort's (sort,
    id) index, never after sorting all of them first (which held back the first row of a
    million-order file for seconds). The columns are NOT NULL, so no NULLS LAST is asked
    for, which no index could serve; with sorting made a last resort, none is planned,
    whatever rows the table holds."""
    from sqlalchemy import text

    from console.lookups import Lookups
    from console.screens.keyset import ordered
    from console.screens.orders import ORDERS

    filters, errors = ORDERS.filters.parse({})
    assert errors == []
    column = next(s for s in ORDERS.sorts if s.key == sort).column
    stmt = ordered(ORDERS.statement(filters, Lookups()), column, ORDERS.id_column, descending)
    compiled = stmt.compile(dialect=db.engines["order"].dialect, compile_kwargs={"literal_binds": True})
    connection = db.session.connection(bind_arguments={"bind": db.engines["order"]})
    # A last resort, incremental sorts included (a sort of rows already in the order of
    # their first column: a narrower index would leave the ids to sort).
    connection.execute(text("SET LOCAL enable_sort = off"))
    connection.execute(text("SET LOCAL enable_incremental_sort = off"))
    plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {compiled}")))
    assert "Sort" not in plan and "Index" in plan, plan
