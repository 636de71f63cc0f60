"""The 70 tables of the services' databases, each in its own database with exactly the
modelled columns, on the backend under test; plus spot checks of the types."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Column, inspect, select

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


# --- indexes ------------------------------------------------------------------------------
# The services' schemas declare their own indexes (``service_index``); the console declares
# only what its screens and lookups need beyond them, each saying what it serves.


def list_screens():
    """Every list screen of the console (console/screens/*.py)."""
    import importlib
    import pkgutil

    import console.screens
    from console.screens.lists import ListScreen

    screens = []
    for module in pkgutil.iter_modules(console.screens.__path__):
        found = vars(importlib.import_module(f"console.screens.{module.name}")).values()
        screens += [value for value in found if isinstance(value, ListScreen)]
    return screens


def table_column(attribute):
    """The table column behind a mapped attribute (None for a computed one)."""
    columns = getattr(getattr(attribute, "property", None), "columns", ())
    column = columns[0] if len(columns) == 1 else None
    return column if column is not None and getattr(column, "table", None) is not None else None


# The lists' filters on a column of their own table (console/screens/*.py).
LIST_FILTERS = {
    "orders": ("status", "payment_status", "created_at", "user_id", "total_amount"),
    "returns": ("status", "return_reason", "refund_method", "requested_at", "user_id", "order_id"),
    "refunds": ("status", "order_id", "payment_id"),
    "notifications": ("type", "status", "template_id", "user_id", "created_at"),
    "products": ("status",),
}
# Sorts the screen ranks itself: units sold comes from order_db's figures
# (ix_order_items_product_id_created_at), not from a column of products.
COMPUTED_SORTS = {("products", "sold")}


def columns_needing_an_index() -> dict[str, dict[str, str]]:
    """bind.table -> {column key: what needs it}: every foreign key and every logical
    reference of the registry (the batch loader and check-refs look rows up by them),
    every list's sort columns and the columns its filters compare."""
    from console.references import REFERENCES

    needed: dict[str, dict[str, str]] = {}
    for model in all_models():
        table = model.__table__
        needed[f"{model.__bind_key__}.{table.name}"] = {c.key: "foreign key" for c in table.columns if c.foreign_keys}
    for ref in REFERENCES:
        needed[f"{ref.source_bind}.{ref.source_table}"].setdefault(ref.source_column, f"reference {ref.name}")
    for screen in list_screens():
        table = table_column(screen.id_column).table
        name = f"{screen.home}.{table.name}"
        for sort in screen.sorts:
            column = table_column(sort.column)
            if column is not None and (screen.name, sort.key) not in COMPUTED_SORTS:
                needed[f"{screen.home}.{column.table.name}"].setdefault(column.key, f"the {screen.name} list's sort")
        for key in LIST_FILTERS.get(screen.name, ()):
            needed[name].setdefault(key, f"the {screen.name} list's filter")
    return needed


def leading_columns(table) -> set[str]:
    leading = {next(iter(index.columns)).key for index in table.indexes if len(index.columns)}
    leading |= {next(iter(c.columns)).key for c in table.constraints if len(c.columns)}  # PK, unique
    return leading


def test_every_reference_sort_and_filter_column_leads_an_index_of_the_service_or_the_console():
    unindexed = []
    for name, wanted in columns_needing_an_index().items():
        table = model_for_table(*name.split(".")).__table__
        unindexed += [f"{name}.{column} ({why})" for column, why in sorted(wanted.items())
                      if column not in leading_columns(table)]
    assert unindexed == []


def plain_columns(index) -> tuple | None:
    """An index's columns when it is a plain btree on columns, else None."""
    options = {key: value for key, value in index.dialect_kwargs.items() if value is not None and value != {}}
    if options or not all(isinstance(e, Column) for e in index.expressions):
        return None
    return tuple(c.key for c in index.columns)


def test_the_console_declares_only_what_the_services_indexes_lack_and_what_each_serves():
    """create-indexes and the Databases page list the console's own indexes: each says
    which screen or lookup it serves, and none repeats (or merely starts) one of the
    service's own."""
    from console.schema_check import declared_indexes

    unexplained, repeated = [], []
    for bind in BIND_KEYS:
        for index in declared_indexes(bind):
            assert not index.info.get("service")
            if not index.info.get("serves"):
                unexplained.append(index.name)
            own = plain_columns(index)
            services = [plain_columns(i) for i in index.table.indexes if i.info.get("service")]
            if own and any(s and s[:len(own)] == own for s in services):
                repeated.append(index.name)
    assert unexplained == [] and repeated == []
    # the service's own indexes stay out of the console's list
    assert "orders_status_idx" not in {i.name for i in declared_indexes("order")}
    assert "ix_orders_created_at_id" in {i.name for i in declared_indexes("order")}


def test_every_index_of_the_services_and_the_console_is_in_the_live_databases(app):
    from console.schema_check import applies, live_index_names

    absent = []
    with app.app_context():
        for bind in BIND_KEYS:
            with db.engines[bind].connect() as conn:
                live, dialect = live_index_names(conn), conn.dialect.name
            for model in models_of(bind):
                absent += [f"{bind}.{index.name}" for index in model.__table__.indexes
                           if applies(index, dialect) and index.name not in live]
    assert absent == []
