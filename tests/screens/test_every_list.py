"""Every declared list, every sort, both directions, over the demo data: Next from the
first page to the last and Previous back again read each row exactly once, in the
order of the list's own ORDER BY (NULLs last), with equal sort values across page
boundaries and rows without a value; over HTTP each sort answers in both directions
with Previous and Next on a middle page; a page costs the same statements at every
depth and size."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from console import audit
from console.demo.seed import seed_demo
from console.extensions import db
from console.lookups import database
from console.models.auth import User
from console.screens.keyset import ordered
from console.screens.lists import Ordering

LISTS = ("orders.list_orders", "customers.list_customers", "returns.list_returns", "refunds.list_refunds",
         "activity.list_activity", "staff.list_staff")
URLS = {"orders.list_orders": "/orders", "customers.list_customers": "/customers", "returns.list_returns": "/returns",
        "refunds.list_refunds": "/refunds", "activity.list_activity": "/activity", "staff.list_staff": "/staff"}


@pytest.fixture
def demo(ctx):
    seed_demo(customers=8, orders=24, seed=3)
    staff = db.session.scalar(select(User).where(User.email.like("admin%")))
    for n in range(9):
        audit.record(staff, "order.noted" if n % 2 else "staff.locked", "order", f"id-{n}", after={"n": n})
    db.session.commit()


def screen_of(app, endpoint):
    return app.extensions["list_screens"][endpoint]


def with_nulls(screen, column) -> None:
    """Two listed rows lose their sort value, so the walk crosses into the NULL run."""
    model = screen.id_column.class_
    with database(screen.home):
        ids = list(db.session.scalars(select(screen.id_column).limit(2)))
        if not column.nullable:  # pragma: no cover - every sortable column is nullable today
            return
        db.session.execute(update(model).where(screen.id_column.in_(ids)).values({column.key: None}))
        db.session.commit()


def expected(screen, ordering: Ordering) -> list[str]:
    stmt = ordered(screen.statement(screen.filters(), _no_lookups()), ordering.sort.column, screen.id_column,
                   ordering.descending)
    return [row.id for row in db.session.scalars(stmt)]


def _no_lookups():
    from console.lookups import Lookups
    return Lookups()


def walk(screen, ordering: Ordering, size: int):
    pages, result = [], screen.load(screen.filters(), ordering, size=size)
    assert result.page.previous_cursor is None
    while True:
        pages.append([row.id for row in result.page.rows])
        if result.page.next_cursor is None:
            break
        result = screen.load(screen.filters(), ordering, size=size, after=result.page.next_cursor)
    back = [pages[-1]]
    while result.page.previous_cursor is not None:
        result = screen.load(screen.filters(), ordering, size=size, before=result.page.previous_cursor)
        back.append([row.id for row in result.page.rows])
    return pages, back[::-1]


@pytest.mark.parametrize("endpoint", LISTS)
def test_every_sort_walks_forward_and_back(app, demo, endpoint):
    screen = screen_of(app, endpoint)
    for sort in screen.sorts:
        with_nulls(screen, sort.column)
        for descending in (True, False):
            ordering = Ordering(sort, descending)
            want = expected(screen, ordering)
            assert len(want) >= 5, endpoint  # enough for a first, middle and last page
            for size in (2, 3):
                forward, backward = walk(screen, ordering, size)
                assert [i for p in forward for i in p] == want, (endpoint, sort.key, descending, size)
                assert backward == forward, (endpoint, sort.key, descending, size)


@pytest.mark.parametrize("endpoint", LISTS)
def test_every_sort_answers_over_http_with_previous_and_next(app, demo, auth, client, endpoint):
    auth.login("admin")
    screen = screen_of(app, endpoint)
    for sort in screen.sorts:
        for arg in (sort.key, "-" + sort.key):
            first = client.get(f"{URLS[endpoint]}?sort={arg}&size=2")
            assert first.status_code == 200, (endpoint, arg)
            html = first.get_data(as_text=True)
            assert "Previous" not in html and "Next 2" in html
            next_url = _href(html, "Next 2 »")
            assert f"sort={arg}" in next_url if arg != screen.default_sort else "sort=" not in next_url
            middle = client.get(next_url).get_data(as_text=True)
            assert "‹ Previous 2" in middle and "Next 2 »" in middle and "« First page" in middle
            assert "3–4 of" in middle
            back = client.get(_href(middle, "‹ Previous 2")).get_data(as_text=True)
            assert "1–2 of" in back and "Previous" not in back


def _href(html: str, label: str) -> str:
    import re
    found = re.search(rf'href="([^"]+)"[^>]*>{re.escape(label)}', html)
    assert found, label
    return found.group(1).replace("&amp;", "&")


# The lists above and the discount and notification lists. (The products lists read
# their runs one statement each, and a page of stock alerts reads variants only when it
# shows one: their counts vary with the rows, not with the depth.)
EVERY_LIST = LISTS + ("coupons.list_coupons", "promotions.list_promotions",
                      "notifications.list_notifications", "email_templates.list_templates")


@pytest.mark.parametrize("endpoint", EVERY_LIST)
def test_statements_per_page_are_the_same_at_every_depth_and_size(app, demo, count_queries, endpoint):
    screen = screen_of(app, endpoint)
    counts = {}
    with app.app_context():
        for sort in screen.sorts:
            ordering = Ordering(sort, True)
            for size in (2, 5):
                result, depth = None, 0
                while depth == 0 or result.page.next_cursor:
                    after = result.page.next_cursor if result else None
                    count_queries.statements.clear()
                    result = screen.load(screen.filters(), ordering, size=size, after=after)
                    counts[(sort.key, size, depth)] = count_queries.count
                    if result.page.previous_cursor:
                        count_queries.statements.clear()
                        screen.load(screen.filters(), ordering, size=size, before=result.page.previous_cursor)
                        counts[(sort.key, size, depth, "back")] = count_queries.count
                    depth += 1
    if endpoint == "activity.list_activity":
        # Each page names what its rows were done to: one query per table those rows
        # point at (orders, returns, payments, …), so a page of refunds reads a table
        # that a page of staff changes does not; never one query per row.
        from console.screens.activity import DETAIL_TABLES, ENTITY_TABLES

        tables = len(set(ENTITY_TABLES.values()) | set(DETAIL_TABLES.values()))
        assert max(counts.values()) - min(counts.values()) <= tables, counts
        return
    assert len(set(counts.values())) == 1, counts


def test_staff_created_together_page_by_id(app, demo):
    # seed-demo creates every staff member at the same moment: one sort value across
    # every page boundary.
    screen = screen_of(app, "staff.list_staff")
    with app.app_context():
        times = {u.created_at for u in db.session.scalars(screen.statement(screen.filters(), _no_lookups()))}
        assert len(times) == 1
        forward, backward = walk(screen, screen.ordering(None), 2)
    assert len(forward) >= 3 and backward == forward
    assert [i for p in forward for i in p] == sorted((i for p in forward for i in p), reverse=True)




def test_export_statements_are_bounded_per_batch(app, demo, count_queries):
    """Every list's export: the statements grow with the batches, never with the rows."""
    with app.app_context():
        for endpoint, screen in app.extensions["list_screens"].items():
            if screen.export_row is None:
                continue
            plan = screen.export_plan(screen.filters(), screen.ordering(None))
            counts = {}
            for batch in (2, 1000):
                count_queries.statements.clear()
                rows = list(screen.export_rows(plan, batch))
                counts[batch] = (count_queries.count, len(rows))
            small, large = counts[2], counts[1000]
            batches = max(1, -(-small[1] // 2))
            assert large[0] <= small[0], (endpoint, counts)
            assert small[0] <= large[0] * batches, (endpoint, counts)
