"""The batch loader: one IN query per target database for a page of rows, missing
targets marked, an unreachable database named."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from console.extensions import db
from console.lookups import (
    CHUNK_SIZE, DatabaseUnavailable, Missing, existing_values, fetch_in, referrers, resolve, target_or_missing,
)
from console.models.auth import User
from console.models.order import Order, OrderStatusHistory
from console.models.payment import Payment
from console.models.product import Product, ProductComparison
from console.workflows.signin import NO_PASSWORD
from tests.second_app import app_with_unreachable


@pytest.fixture
def orders_500(ctx):
    """500 orders of 200 customers, each with a payment; the last 10 name users that are gone."""
    users = [User(email=f"c{i}@shop.test", password_hash=NO_PASSWORD) for i in range(200)]
    db.session.add_all(users)
    db.session.flush()
    orders = []
    for i in range(500):
        user_id = f"gone-{i}" if i >= 490 else users[i % 200].id
        orders.append(Order(order_number=f"ORD-{i:04d}", user_id=user_id, subtotal=Decimal("10.00"),
                            total_amount=Decimal("10.00")))
    db.session.add_all(orders)
    db.session.flush()
    payments = [Payment(order_id=o.id, user_id=o.user_id, payment_provider="STRIPE", amount=o.total_amount)
                for o in orders]
    db.session.add_all(payments)
    db.session.flush()
    for order, payment in zip(orders, payments):
        order.payment_method_id = payment.id
    db.session.commit()
    return db.session.scalars(select(Order).order_by(Order.order_number)).all()


def test_500_rows_resolve_with_one_query_per_target_database(orders_500, count_queries):
    before = count_queries.count
    users = resolve("order.orders.user_id", [o.user_id for o in orders_500])
    payments = resolve("order.orders.payment_method_id", [o.payment_method_id for o in orders_500])
    statements = count_queries.statements[before:]
    assert len(statements) == 2
    assert "FROM users" in statements[0] and "FROM payments" in statements[1]
    assert len(users) == 200 and len(payments) == 500

    first = orders_500[1]
    assert target_or_missing(users, first.user_id).email.endswith("@shop.test")
    gone = target_or_missing(users, orders_500[-1].user_id)
    assert isinstance(gone, Missing) and not gone
    assert str(gone) == "missing (id gone-499)"
    assert target_or_missing(users, None) is None and target_or_missing(users, "") is None
    assert sum(isinstance(target_or_missing(users, o.user_id), Missing) for o in orders_500) == 10


def test_large_lists_are_chunked(ctx, count_queries):
    values = [f"id-{i}" for i in range(2 * CHUNK_SIZE + 500)]
    before = count_queries.count
    assert resolve("order.orders.user_id", values + values) == {}  # duplicates are asked once
    assert count_queries.count - before == 3


def test_nothing_to_resolve_costs_no_query(ctx, count_queries):
    before = count_queries.count
    assert resolve("order.orders.user_id", [None, "", None]) == {}
    assert fetch_in("auth", "users", "id", []) == []
    assert count_queries.count == before


def test_referrers_group_source_rows_by_target(orders_500, count_queries):
    some = orders_500[:30]
    before = count_queries.count
    by_order = referrers("payment.payments.order_id", [o.id for o in some])
    assert count_queries.count - before == 1
    assert set(by_order) == {o.id for o in some}
    assert all(len(rows) == 1 and rows[0].amount == Decimal("10.00") for rows in by_order.values())
    with pytest.raises(ValueError):
        referrers("product.product_comparisons.product_ids", ["x"])


def test_list_references_and_non_references(ctx, count_queries):
    products = [Product(sku=f"SKU-{i}", name=f"Product {i}", slug=f"sku-{i}", price=Decimal("5.00"))
                for i in range(3)]
    db.session.add_all(products)
    db.session.add(User(email="staff@shop.test", id="staff-1", password_hash=NO_PASSWORD))
    db.session.commit()
    ids = [p.id for p in products]
    found = resolve("product.product_comparisons.product_ids", [[ids[0], ids[1]], [ids[2], "deleted"]])
    assert set(found) == set(ids)
    before = count_queries.count
    resolved = resolve("order.order_status_history.changed_by", ["system", "staff-1", "system"])
    assert list(resolved) == ["staff-1"]
    assert "system" not in str(count_queries.statements[before:])  # "system" is never looked up
    assert existing_values("product", "products", "id", ids + ["deleted"]) == set(ids)


def test_unreachable_database_is_named(app, database_urls):
    with app_with_unreachable(database_urls, "payment") as broken, broken.app_context():
        with pytest.raises(DatabaseUnavailable) as raised:
            resolve("order.orders.payment_method_id", ["p-1"])
        assert raised.value.bind_key == "payment"
        assert str(raised.value) == "payment_db is unavailable"
        # the other databases still answer
        assert resolve("order.orders.user_id", ["nobody"]) == {}


@pytest.mark.postgres_only
def test_a_query_past_the_statement_timeout_says_its_database_is_unavailable(app, database_urls):
    """Every PostgreSQL connection carries a statement timeout (config.py), so a screen
    whose index is missing answers "order_db unavailable" instead of hanging."""
    import config
    from sqlalchemy import text

    from console.lookups import DatabaseUnavailable, database
    from tests.conftest import make_app

    assert "statement_timeout" in config.POSTGRES_OPTIONS["connect_args"]["options"]
    binds = {key: config.bind_config(url) for key, url in database_urls.items()}
    binds["order"]["connect_args"] = {**binds["order"]["connect_args"], "options": "-c statement_timeout=200"}
    impatient = make_app(database_urls, SQLALCHEMY_BINDS=binds)
    try:
        with impatient.app_context():
            with pytest.raises(DatabaseUnavailable) as raised:
                with database("order"):
                    db.session.execute(text("SELECT pg_sleep(2)"), bind_arguments={"bind": db.engines["order"]})
            assert raised.value.bind_key == "order" and "statement timeout" in raised.value.detail
    finally:
        with impatient.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.mark.postgres_only
def test_a_database_with_no_free_connection_answers_503_and_when_to_try_again(app, auth, database_urls):
    """Every connection of the pool to order_db held elsewhere (by other requests, by an
    export's lookups): after the pool's timeout the page says busy, never 500."""
    import config
    from tests.conftest import make_app
    from tests.test_auth import sign_in

    auth.create("support")
    binds = {key: config.bind_config(url) for key, url in database_urls.items()}
    binds["order"] = {**binds["order"], "pool_size": 1, "max_overflow": 0, "pool_timeout": 0.3}
    busy = make_app(database_urls, SQLALCHEMY_BINDS=binds)
    client = busy.test_client()
    try:
        assert sign_in(client, "support@staff.test").status_code == 302
        with busy.app_context():
            held = db.engines["order"].connect()  # the pool's only connection
            try:
                page = client.get("/orders")
                detail = client.get("/orders/o-1")
            finally:
                held.close()
        for response in (page, detail):
            assert response.status_code == 503, response.status_code
            assert response.headers["Retry-After"] == "5"
            assert "order_db" in response.get_data(as_text=True)
        assert client.get("/orders").status_code == 200  # given back: served again
    finally:
        with busy.app_context():
            for engine in db.engines.values():
                engine.dispose()


AWKWARD_IDS = ["c1", "a,b", '"quoted"', "back\\slash", "{brace}", " spaced ", "NULL", "", "ünï", 'x\\"y']


def test_text_array_writes_each_value_as_plain_text():
    from console.lookups import text_array

    assert text_array([]) == "{}"
    assert text_array(["c1", "c2"]) == '{"c1","c2"}'
    assert text_array(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'


def test_an_ids_parameter_finds_exactly_its_ids_whatever_they_hold(ctx):
    """The ids go to PostgreSQL as one text array literal: commas, quotes, backslashes,
    braces, spaces and the word NULL are matched as the values they are."""
    from console.lookups import ids_parameter, one_of, plain_rows

    for n, value in enumerate(AWKWARD_IDS):
        db.session.add(Order(id=value, order_number=f"N-{n}", user_id="u", subtotal=0, tax_amount=0,
                             shipping_amount=0, discount_amount=0, total_amount=0))
    db.session.flush()
    asked = [*AWKWARD_IDS[:5], "NULL", 'x\\"y', "missing"]
    stmt = select(Order.id).where(ids_parameter(Order.id, db.engines["order"].dialect.name))
    assert {row.id for row in plain_rows("order", stmt, {"ids": asked})} == {*AWKWARD_IDS[:5], "NULL", 'x\\"y'}
    assert plain_rows("order", stmt, {"ids": []}) == []
    # An export's batch of ids: split at commas when none holds one, else as above.
    dialect = db.engines["order"].dialect.name
    for batch in (["c1", "NULL", "missing"], asked):
        found = plain_rows("order", select(Order.id).where(one_of(Order.id, batch, dialect)))
        assert {row.id for row in found} == set(batch) - {"missing"}
