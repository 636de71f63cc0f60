"""The orders read side: filter parsing and the batched export."""
from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

from werkzeug.datastructures import MultiDict

from console.demo.builders import ensure_shipping_options, make_customer, make_order, make_product, make_shipment
from console.extensions import db
from console.screens.orders import ORDERS, OrderFilters

EXPORT_HEADER = list(ORDERS.export_header)


def exported(plan, **options) -> list[list[str]]:
    """The export's rows as cells: a row comes as texts joined by commas in the file, some
    of them several cells already written together."""
    return list(csv.reader(",".join(row) for row in ORDERS.export_rows(plan, **options)))


def test_filters_parse_into_typed_values_and_back():
    filters, errors = OrderFilters.parse(MultiDict({
        "q": " ORD-1 ", "status": "shipped", "created_from": "2025-01-02", "total_min": "10.5", "currency": "eur",
        "customer": "jane", "sku": "", "unknown": "ignored"}))
    assert errors == []
    assert filters.created_from == date(2025, 1, 2) and filters.total_min == Decimal("10.5")
    assert filters.currency == "EUR" and filters.q == "ORD-1"
    assert filters.as_args() == {"q": "ORD-1", "status": "shipped", "created_from": "2025-01-02",
                                 "total_min": "10.5", "currency": "EUR", "customer": "jane"}
    assert OrderFilters.parse(MultiDict())[0].filtered is False


def test_a_refused_value_is_repeated_short_and_on_one_line():
    long_date = "2025-01-01" + "x" * 9000
    _, errors = OrderFilters.parse(MultiDict({"created_from": long_date, "status": "ship\tped", "total_min": "1e309",
                                              "currency": "€€€"}))
    assert len(errors) == 4 and all(len(e) < 200 for e in errors), errors
    assert errors[0].startswith("Status “ship\N{REPLACEMENT CHARACTER}ped” is not one of")
    assert "“2025-01-01xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…” is not a date (use YYYY-MM-DD)" in errors[1]
    assert "“1e309” is not an amount such as 25 or 25.50" in errors[2]


def test_export_joins_each_batch_once(ctx, count_queries):
    options = ensure_shipping_options()
    method = options.by_service("standard")
    product = make_product("MUG-1", "Blue mug", "10.00")
    expected = {}
    for n in range(12):
        customer, _ = make_customer(f"c{n}@example.com", f"Name{n}", "Smith")
        order = make_order(customer, [(product, 1)], status="shipped").order
        make_shipment(order, options.carrier_of(method), method)
        expected[order.order_number] = f"Name{n} Smith"
    db.session.commit()
    plan = ORDERS.export_plan(OrderFilters(), ORDERS.ordering(None))
    assert plan.down == set()

    def counted(batch_size):
        count_queries.statements.clear()
        rows = exported(plan, batch_size=batch_size)
        return rows, count_queries.count

    rows, small_batches = counted(5)  # three batches
    _, one_batch = counted(50)
    name = EXPORT_HEADER.index("customer_name")
    assert {r[0]: r[name] for r in rows} == expected
    assert all(r[EXPORT_HEADER.index("carrier")] == "USPS" for r in rows)
    # Each batch costs the same handful of lookups, whatever its size.
    per_batch = (small_batches - one_batch) / 2
    assert 0 < per_batch <= 8 and small_batches == one_batch + 2 * per_batch


def _customer_lookups(statements) -> int:
    return sum(1 for s in statements if "FROM users" in s or "FROM user_profiles" in s)


def test_export_asks_about_each_customer_once_and_keeps_their_cells(ctx, count_queries):
    """Customers recur from batch to batch: their name and email are made once and kept,
    so auth_db and user_db are asked about a customer only in the first batches that
    meet them (the next batch's lookups are already under way when one is written)."""
    product = make_product("MUG-1", "Blue mug", "10.00")
    people = [make_customer(f"c{n}@example.com", f"Name{n}", "Smith")[0] for n in range(2)]
    for n in range(10):
        make_order(people[n % 2], [(product, 1)])
    db.session.commit()
    plan = ORDERS.export_plan(OrderFilters(), ORDERS.ordering(None))
    count_queries.statements.clear()
    rows = exported(plan, batch_size=2)  # five batches
    name, email = EXPORT_HEADER.index("customer_name"), EXPORT_HEADER.index("customer_email")
    assert sorted({(r[name], r[email]) for r in rows}) == [("Name0 Smith", "c0@example.com"),
                                                           ("Name1 Smith", "c1@example.com")]
    assert len(rows) == 10
    assert _customer_lookups(count_queries.statements) == 2 * 2  # two databases, the first two batches


def test_export_beyond_the_customers_it_keeps_makes_their_cells_per_batch(ctx, count_queries, monkeypatch):
    from console.screens import orders as screen

    monkeypatch.setattr(screen, "CUSTOMERS_KEPT", 1)
    product = make_product("MUG-1", "Blue mug", "10.00")
    people = [make_customer(f"c{n}@example.com", f"Name{n}", "Smith")[0] for n in range(3)]
    made = {make_order(people[n % 3], [(product, 1)]).order.order_number: n % 3 for n in range(9)}
    db.session.commit()
    plan = ORDERS.export_plan(OrderFilters(), ORDERS.ordering(None))
    count_queries.statements.clear()
    rows = exported(plan, batch_size=2)
    name, email = EXPORT_HEADER.index("customer_name"), EXPORT_HEADER.index("customer_email")
    assert {r[0]: (r[name], r[email]) for r in rows} == {
        number: (f"Name{n} Smith", f"c{n}@example.com") for number, n in made.items()}
    assert _customer_lookups(count_queries.statements) > 2 * 2  # asked again: only one kept


def test_export_of_an_order_with_several_payments_writes_the_one_it_names_else_the_newest(ctx):
    """Most orders have one payment and the export reads those in bulk; an order with
    several (a retry) shows the one orders.payment_method_id names, else the newest."""
    from datetime import timedelta

    from console.demo.builders import make_payment
    from console.models.payment import PAYMENT_PROVIDERS

    stripe, paypal = PAYMENT_PROVIDERS.STRIPE, PAYMENT_PROVIDERS.PAYPAL
    product = make_product("MUG-1", "Blue mug", "10.00")
    customer, _ = make_customer("c@example.com", "Name", "Smith")
    named, unnamed, single = (make_order(customer, [(product, 1)], with_payment=False).order for _ in range(3))
    first = make_payment(named, provider=stripe)
    later = make_payment(named, provider=paypal, captured=False)
    later.created_at = first.created_at + timedelta(minutes=5)
    named.payment_method_id = first.id  # the order names the older one
    older = make_payment(unnamed, provider=stripe, captured=False)
    newer = make_payment(unnamed, provider=paypal)
    newer.created_at = older.created_at + timedelta(minutes=5)
    unnamed.payment_method_id = None
    only = make_payment(single, provider=paypal)
    db.session.commit()
    assert first.status != later.status and older.status != newer.status
    expected = {named.order_number: (stripe, first.status), unnamed.order_number: (paypal, newer.status),
                single.order_number: (paypal, only.status)}
    rows = exported(ORDERS.export_plan(OrderFilters(), ORDERS.ordering(None)), batch_size=2)
    provider, state = EXPORT_HEADER.index("payment_provider"), EXPORT_HEADER.index("payment_state")
    assert {r[0]: (r[provider], r[state]) for r in rows} == expected


def test_export_goes_on_when_a_database_fails_part_way(ctx, monkeypatch):
    """A side database that stops answering during the export: its cells say
    "unavailable" from then on, the other databases' cells stay filled, every row is written."""
    from sqlalchemy.exc import OperationalError

    from console import exports

    options = ensure_shipping_options()
    method = options.by_service("standard")
    product = make_product("MUG-1", "Blue mug", "10.00")
    for n in range(6):
        customer, _ = make_customer(f"c{n}@example.com", f"Name{n}", "Smith")
        order = make_order(customer, [(product, 1)], status="shipped").order
        make_shipment(order, options.carrier_of(method), method)
    db.session.commit()
    plain_rows = exports._plain_rows

    def payment_db_gone(connection, stmt):
        if "FROM payments" in str(stmt):
            raise OperationalError(str(stmt), {}, Exception("server closed the connection"))
        return plain_rows(connection, stmt)

    monkeypatch.setattr(exports, "_plain_rows", payment_db_gone)
    plan = ORDERS.export_plan(OrderFilters(), ORDERS.ordering(None))
    rows = exported(plan, batch_size=2)
    assert len(rows) == 6
    assert {r[EXPORT_HEADER.index("payment_state")] for r in rows} == {"unavailable"}
    assert {r[EXPORT_HEADER.index("carrier")] for r in rows} == {"USPS"}
    assert all(r[EXPORT_HEADER.index("customer_name")].startswith("Name") for r in rows)


def test_export_dates_read_as_the_row_by_row_path_writes_them(ctx):
    """The fast path's dates (written by PostgreSQL, or by Python elsewhere) are
    datetime.isoformat() in UTC: fractions of a second only when there are any."""
    from datetime import datetime, timezone

    product = make_product("MUG-1", "Blue mug", "10.00")
    customer, _ = make_customer("c@example.com", "Cy", "Smith")
    moments = [datetime(2026, 11, 1, 11, 31, tzinfo=timezone.utc),
               datetime(2026, 11, 1, 11, 32, 7, 5000, tzinfo=timezone.utc)]  # TIMESTAMP(3): milliseconds
    for moment in moments:
        make_order(customer, [(product, 1)], created_at=moment)
    db.session.commit()
    plan = ORDERS.export_plan(OrderFilters(), ORDERS.ordering("created"))
    dates = [row[EXPORT_HEADER.index("created_at")] for row in exported(plan)]
    assert dates == ["2026-11-01T11:31:00+00:00", "2026-11-01T11:32:07.005000+00:00"]
