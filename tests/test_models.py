"""The 70 tables of the services' databases, each in its own database with exactly the
modelled columns, on the backend under test; plus spot checks of the types."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select

from config import BIND_KEYS
from console.extensions import db
from console.models import all_models, model_for_table, models_of

def test_seventy_tables_each_in_its_own_database():
    # (names, types and nullability against the services' DDL: tests/test_platform_schema.py)
    assert len(all_models()) == 70
    assert sum(len(m.__table__.columns) for m in all_models()) == 726
    # every model carries its bind; there is no default database
    assert all(m.__bind_key__ in BIND_KEYS for m in all_models())


def test_each_table_lives_in_its_own_database_only(app):
    with app.app_context():
        for key in BIND_KEYS:
            inspector = inspect(db.engines[key])
            live = set(inspector.get_table_names())
            # exactly this database's tables: so none of another database's tables
            assert live == {m.__tablename__ for m in models_of(key)}, key
            for model in models_of(key):
                live_columns = [c["name"] for c in inspector.get_columns(model.__tablename__)]
                assert sorted(live_columns) == sorted(c.name for c in model.__table__.columns), model.__tablename__


def test_string_ids_unique_keys_and_foreign_keys_inside_one_database(app):
    with app.app_context():
        product = inspect(db.engines["product"])
        variant_fks = product.get_foreign_keys("product_variants")
        assert [(fk["referred_table"], fk["constrained_columns"]) for fk in variant_fks] == [("products", ["productId"])]
        uniques = {tuple(u["column_names"]) for u in product.get_unique_constraints("products")}
        indexes = {tuple(i["column_names"]) for i in product.get_indexes("products") if i.get("unique")}
        assert ("sku",) in uniques | indexes and ("slug",) in uniques | indexes
        # a logical reference is never a database foreign key
        assert inspect(db.engines["order"]).get_foreign_keys("orders") == []
        # ...but it is indexed, so lookups by it are cheap
        indexed = {tuple(i["column_names"]) for i in inspect(db.engines["order"]).get_indexes("orders")}
        assert ("userId",) in indexed and ("createdAt",) in indexed and ("status",) in indexed


def test_decimal_and_aware_datetime_round_trip(ctx):
    from console.models.order import Order

    when = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    order = Order(order_number="ORD-TYPES-1", user_id="u1", subtotal=Decimal("12345678.99"), total_amount=Decimal("0.10"),
                  metadata_={"gift": True, "tags": ["a", "b"]}, created_at=when)
    db.session.add(order)
    db.session.commit()
    db.session.expire_all()
    loaded = db.session.scalar(select(Order).where(Order.order_number == "ORD-TYPES-1"))
    assert loaded.subtotal == Decimal("12345678.99") and isinstance(loaded.subtotal, Decimal)
    assert loaded.total_amount == Decimal("0.10")
    assert loaded.created_at == when
    assert loaded.created_at.utcoffset() == timedelta(0)  # handed out as UTC
    assert loaded.metadata_ == {"gift": True, "tags": ["a", "b"]}


def test_naive_datetimes_are_refused(ctx):
    from sqlalchemy.exc import StatementError

    from console.models.order import Order

    db.session.add(Order(order_number="ORD-NAIVE", user_id="u1", subtotal=Decimal("1"), total_amount=Decimal("1"),
                         created_at=datetime(2026, 1, 1)))
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.flush()
    db.session.rollback()


def test_text_array_round_trip(ctx):
    from console.models.product import Product, ProductComparison

    db.session.add(Product(sku="ARR-1", name="Array", slug="array", price=Decimal("1.00"), badges=["new", "sale"]))
    db.session.add(ProductComparison(user_id="u1", name="c", product_ids=["p1", "p2", "p3"]))
    db.session.commit()
    db.session.expire_all()
    assert db.session.scalar(select(Product.badges).where(Product.sku == "ARR-1")) == ["new", "sale"]
    assert db.session.scalar(select(ProductComparison.product_ids)) == ["p1", "p2", "p3"]


def test_live_column_types(app):
    with app.app_context():
        product = {c["name"]: c["type"] for c in inspect(db.engines["product"]).get_columns("products")}
        order = {c["name"]: c["type"] for c in inspect(db.engines["order"]).get_columns("orders")}
        dialect = db.engines["product"].dialect.name
    assert product["price"].__visit_name__.lower() in ("numeric", "decimal")
    assert (product["price"].precision, product["price"].scale) == (10, 2)
    if dialect == "postgresql":
        assert order["createdAt"].timezone is False and order["createdAt"].precision == 3
        assert order["metadata"].__visit_name__ == "JSONB"
        assert product["badges"].__visit_name__ == "ARRAY"
    else:
        assert order["metadata"].__visit_name__ == "JSON"


@pytest.mark.postgres_only
def test_postgres_types_are_native(app):
    """JSONB and text[] on PostgreSQL, so the services' own queries keep working."""
    from sqlalchemy import text

    with app.app_context():
        with db.engines["product"].connect() as conn:
            types = dict(conn.execute(text(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'products'")).all())
        with db.engines["order"].connect() as conn:
            order_types = dict(conn.execute(text(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'")).all())
    assert types["badges"] == "ARRAY"
    assert types["price"] == "numeric"
    assert order_types["metadata"] == "jsonb"
    assert order_types["createdAt"] == "timestamp without time zone"


def test_model_for_table():
    assert model_for_table("return", "return_requests").__name__ == "ReturnRequest"
    with pytest.raises(KeyError):
        model_for_table("order", "payments")


# The columns the screens sort, filter and search by; each must lead an index.
SCREEN_COLUMNS = {"created_at", "status", "order_number", "email", "sku", "code", "rma_number", "tracking_number"}


def columns_needing_an_index() -> dict[str, set[str]]:
    """bind.table -> the columns that must lead an index: every foreign key, every
    logical reference of the registry, and the screens' sort and filter columns."""
    from console.references import REFERENCES

    needed: dict[str, set[str]] = {}
    for model in all_models():
        table = model.__table__
        wanted = {c.key for c in table.columns if c.foreign_keys or c.key in SCREEN_COLUMNS}
        needed[f"{model.__bind_key__}.{table.name}"] = wanted
    for ref in REFERENCES:
        needed[f"{ref.source_bind}.{ref.source_table}"].add(ref.source_column)
    return needed


def test_every_reference_and_screen_column_is_indexed_in_the_models():
    unindexed = []
    for name, wanted in columns_needing_an_index().items():
        table = model_for_table(*name.split(".")).__table__
        # (an index on an expression only, such as upper(code), has no leading column)
        leading = {next(iter(index.columns)).key for index in table.indexes if len(index.columns)}
        leading |= {next(iter(c.columns)).key for c in table.constraints if len(c.columns)}  # PK, unique
        unindexed += [f"{name}.{column}" for column in sorted(wanted - leading)]
    assert unindexed == []


def test_every_reference_and_screen_column_is_indexed_in_the_live_databases(app):
    unindexed = []
    with app.app_context():
        inspectors = {key: inspect(db.engines[key]) for key in BIND_KEYS}
    for name, wanted in columns_needing_an_index().items():
        bind, table = name.split(".")
        inspector = inspectors[bind]
        columns = model_for_table(bind, table).__table__.c
        wanted = {columns[key].name for key in wanted}
        leading = {i["column_names"][0] for i in inspector.get_indexes(table)}
        leading |= {u["column_names"][0] for u in inspector.get_unique_constraints(table)}
        leading |= set(inspector.get_pk_constraint(table)["constrained_columns"][:1])
        unindexed += [f"{name}.{column}" for column in sorted(wanted - leading)]
    assert unindexed == []
