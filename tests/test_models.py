"""The 70 tables of the master ER diagram, each in its own database with exactly
the diagram's columns, on the backend under test; plus spot checks of the types."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select

from config import BIND_KEYS
from console.extensions import db
from console.models import all_models, model_for_table, models_of

# Transcribed from the diagram's entity blocks: bind key -> table -> columns (snake_case,
# AUTH_ prefix dropped), in the diagram's order.
EXPECTED = {
    "auth": {
        "users": "id email password_hash email_verified is_active failed_login_attempts locked_until mfa_enabled mfa_secret created_at updated_at",
        "roles": "id name description created_at updated_at",
        "user_roles": "id user_id role_id created_at",
        "refresh_tokens": "id token user_id device_id expires_at revoked created_at",
        "devices": "id user_id device_id device_name device_type os browser is_trusted last_used_at created_at",
        "user_sessions": "id user_id session_token refresh_token_id device_id is_active expires_at created_at",
        "login_history": "id user_id device_id status ip_address created_at",
        "security_audit_logs": "id user_id action ip_address metadata created_at",
        "password_reset_tokens": "id token user_id expires_at used created_at",
        "email_verification_tokens": "id token user_id expires_at verified created_at",
        "mfa_backup_codes": "id user_id code used expires_at created_at",
        "rate_limits": "id key count expires_at created_at",
    },
    "user": {
        "user_profiles": "id user_id email first_name last_name phone avatar_url date_of_birth gender preferred_currency preferred_language newsletter_subscribed is_active profile_completion_score created_at updated_at",
        "user_addresses": "id user_id type is_default first_name last_name address_line1 city postal_code country created_at updated_at",
        "user_payment_methods": "id user_id type is_default card_type last4 provider_token created_at updated_at",
        "user_preferences": "id user_id key value created_at updated_at",
        "user_wishlist_items": "id user_id product_id product_name product_image_url product_price notes created_at updated_at",
        "user_recently_viewed_products": "id user_id product_id product_name product_price viewed_at",
        "user_activities": "id user_id activity_type entity_type entity_id metadata created_at",
        "user_notification_preferences": "id user_id channel category enabled frequency created_at updated_at",
        "user_event_logs": "id event_id event_type source payload processed created_at",
    },
    "product": {
        "products": "id sku name slug description price compare_at_price status is_visible stock_quantity stock_status weight badges view_count purchase_count created_at updated_at",
        "product_variants": "id product_id sku name price stock_quantity stock_status attributes created_at updated_at",
        "product_images": "id product_id url alt_text sort_order is_primary created_at",
        "categories": "id name slug parent_id level sort_order image_url is_active created_at updated_at",
        "product_categories": "id product_id category_id created_at",
        "product_inventory": "id product_id variant_id quantity reserved_quantity available_quantity location last_restocked_at created_at updated_at",
        "product_reviews": "id product_id user_id rating title comment is_verified_purchase is_approved helpful_count created_at updated_at",
        "product_tags": "id product_id tag created_at",
        "product_questions": "id product_id user_id question answer answered_by upvotes is_approved created_at updated_at",
        "product_stock_alerts": "id product_id user_id email variant_id notified expires_at created_at",
        "product_recently_viewed": "id product_id user_id viewed_at",
        "product_comparisons": "id user_id name product_ids created_at updated_at",
        "product_price_history": "id product_id price compare_at_price changed_by reason created_at",
        "product_search_history": "id product_id user_id query filters results_count created_at",
    },
    "cart": {
        "carts": "id user_id session_id status currency subtotal tax_amount shipping_amount discount_amount total_amount coupon_code expires_at converted_at created_at updated_at",
        "cart_items": "id cart_id product_id variant_id product_name product_sku product_image_url unit_price quantity total_price metadata created_at updated_at",
    },
    "order": {
        "orders": "id order_number user_id status payment_status subtotal tax_amount shipping_amount discount_amount total_amount currency payment_method_id shipping_method tracking_number estimated_delivery_date shipped_at delivered_at cancelled_at metadata created_at updated_at",
        "order_items": "id order_id product_id variant_id product_name product_sku product_image_url unit_price quantity total_price created_at",
        "order_status_history": "id order_id status previous_status changed_by reason created_at",
        "order_shipping_addresses": "id order_id first_name last_name address_line1 city postal_code country created_at",
        "order_notes": "id order_id note created_by is_internal created_at",
    },
    "payment": {
        "payments": "id order_id user_id payment_method_id status payment_provider provider_payment_id amount currency description metadata processed_at created_at updated_at",
        "payment_transactions": "id payment_id transaction_type status provider_transaction_id amount currency provider_response processed_at created_at",
        "payment_refunds": "id payment_id order_id reason amount currency status provider_refund_id metadata processed_at created_at updated_at",
        "payment_methods": "id user_id type provider provider_token last4 card_type expiry_month expiry_year is_default created_at updated_at",
        "payment_webhooks": "id provider event_type provider_event_id payload status payment_id error processed_at created_at",
        "payment_idempotency_keys": "id key payment_id user_id expires_at created_at",
        "payment_audit_logs": "id event_type user_id payment_id order_id amount currency ip_address success error timestamp",
    },
    "shipping": {
        "shipping_zones": "id name type countries states postal_codes is_active created_at updated_at",
        "shipping_methods": "id zone_id name carrier service_type base_price price_per_kg price_per_item estimated_days is_active configuration created_at updated_at",
        "shipping_rates": "id method_id min_weight max_weight min_amount max_amount rate created_at updated_at",
        "shipments": "id order_id carrier_id method_id tracking_number status weight cost origin_address destination_address shipped_at estimated_delivery_date delivered_at carrier_response created_at updated_at",
        "shipment_tracking": "id shipment_id status location description timestamp carrier_data created_at",
        "carriers": "id name code api_endpoint api_key is_active configuration created_at updated_at",
    },
    "return": {
        "return_requests": "id order_id user_id rma_number status return_reason return_notes refund_method refund_amount currency requested_at approved_at rejected_at received_at processed_at closed_at metadata created_at updated_at",
        "return_items": "id return_request_id order_item_id product_id variant_id product_name product_sku quantity unit_price refund_amount return_reason condition created_at updated_at",
        "return_authorizations": "id return_request_id rma_number return_address return_instructions tracking_number expires_at created_at updated_at",
        "return_status_history": "id return_request_id status previous_status changed_by notes created_at",
        "return_tracking": "id authorization_id status location description timestamp carrier_data created_at",
        "return_refunds": "id return_request_id payment_id order_id user_id refund_method amount currency status reason processed_at created_at updated_at",
    },
    "discount": {
        "coupons": "id code name description type discount_value minimum_amount maximum_discount currency usage_limit usage_count usage_limit_per_user starts_at ends_at is_active applicable_products applicable_categories excluded_products metadata created_at updated_at",
        "coupon_usage": "id coupon_id user_id order_id discount_amount used_at created_at",
        "promotions": "id name description type status starts_at ends_at is_active configuration metadata created_at updated_at",
        "promotion_rules": "id promotion_id rule_type conditions actions priority created_at updated_at",
        "promotion_usage": "id promotion_id user_id order_id discount_amount used_at created_at",
    },
    "notification": {
        "notifications": "id user_id type template_id subject body status metadata scheduled_at sent_at delivered_at created_at updated_at",
        "email_templates": "id name subject body_html body_text variables is_active created_at updated_at",
        "notification_preferences": "id user_id notification_type email_enabled sms_enabled push_enabled created_at updated_at",
        "notification_logs": "id notification_id status provider provider_message_id provider_response error created_at",
    },
}


def columns_of(table: str, bind: str) -> list[str]:
    return EXPECTED[bind][table].split()


def test_the_diagram_has_70_tables_and_659_columns():
    assert sum(len(tables) for tables in EXPECTED.values()) == 70
    assert sum(len(cols.split()) for tables in EXPECTED.values() for cols in tables.values()) == 659
    assert list(EXPECTED) == list(BIND_KEYS)


def test_models_declare_exactly_the_diagram():
    declared = {key: {m.__tablename__: [c.name for c in m.__table__.columns] for m in models_of(key)}
                for key in BIND_KEYS}
    for key in BIND_KEYS:
        assert set(declared[key]) == set(EXPECTED[key]), key
        for table in EXPECTED[key]:
            assert declared[key][table] == columns_of(table, key), f"{key}.{table}"
    assert len(all_models()) == 70
    # every model carries its bind; there is no default database
    assert all(m.__bind_key__ in BIND_KEYS for m in all_models())


def test_each_table_lives_in_its_own_database_only(app):
    with app.app_context():
        for key in BIND_KEYS:
            inspector = inspect(db.engines[key])
            live = set(inspector.get_table_names())
            # exactly this database's tables: so none of another database's tables
            assert live == set(EXPECTED[key]), key
            for table in EXPECTED[key]:
                live_columns = [c["name"] for c in inspector.get_columns(table)]
                assert sorted(live_columns) == sorted(columns_of(table, key)), f"{key}.{table}"


def test_string_ids_unique_keys_and_foreign_keys_inside_one_database(app):
    with app.app_context():
        product = inspect(db.engines["product"])
        variant_fks = product.get_foreign_keys("product_variants")
        assert [(fk["referred_table"], fk["constrained_columns"]) for fk in variant_fks] == [("products", ["product_id"])]
        uniques = {tuple(u["column_names"]) for u in product.get_unique_constraints("products")}
        indexes = {tuple(i["column_names"]) for i in product.get_indexes("products") if i.get("unique")}
        assert ("sku",) in uniques | indexes and ("slug",) in uniques | indexes
        # a logical reference is never a database foreign key
        assert inspect(db.engines["order"]).get_foreign_keys("orders") == []
        # ...but it is indexed, so lookups by it are cheap
        indexed = {tuple(i["column_names"]) for i in inspect(db.engines["order"]).get_indexes("orders")}
        assert ("user_id",) in indexed and ("created_at",) in indexed and ("status",) in indexed


def test_decimal_and_aware_datetime_round_trip(ctx):
    from console.models.order import Order

    when = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    order = Order(order_number="ORD-TYPES-1", subtotal=Decimal("1234567.89"), total_amount=Decimal("0.10"),
                  metadata_={"gift": True, "tags": ["a", "b"]}, created_at=when)
    db.session.add(order)
    db.session.commit()
    db.session.expire_all()
    loaded = db.session.scalar(select(Order).where(Order.order_number == "ORD-TYPES-1"))
    assert loaded.subtotal == Decimal("1234567.89") and isinstance(loaded.subtotal, Decimal)
    assert loaded.total_amount == Decimal("0.10")
    assert loaded.created_at == when
    assert loaded.created_at.utcoffset() == timedelta(0)  # handed out as UTC
    assert loaded.metadata_ == {"gift": True, "tags": ["a", "b"]}


def test_naive_datetimes_are_refused(ctx):
    from sqlalchemy.exc import StatementError

    from console.models.order import Order

    db.session.add(Order(order_number="ORD-NAIVE", created_at=datetime(2026, 1, 1)))
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.flush()
    db.session.rollback()


def test_text_array_round_trip(ctx):
    from console.models.product import Product, ProductComparison

    db.session.add(Product(sku="ARR-1", badges=["new", "sale"]))
    db.session.add(ProductComparison(name="c", product_ids=["p1", "p2", "p3"]))
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
    assert (product["price"].precision, product["price"].scale) == (12, 2)
    if dialect == "postgresql":
        assert order["created_at"].timezone is True
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
    assert order_types["created_at"] == "timestamp with time zone"


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
        wanted = {c.name for c in table.columns if c.foreign_keys or c.name in SCREEN_COLUMNS}
        needed[f"{model.__bind_key__}.{table.name}"] = wanted
    for ref in REFERENCES:
        needed[f"{ref.source_bind}.{ref.source_table}"].add(ref.source_column)
    return needed


def test_every_reference_and_screen_column_is_indexed_in_the_models():
    unindexed = []
    for name, wanted in columns_needing_an_index().items():
        table = model_for_table(*name.split(".")).__table__
        leading = {next(iter(index.columns)).name for index in table.indexes if len(index.columns)}  # not expressions
        leading |= {next(iter(c.columns)).name for c in table.constraints if len(c.columns)}  # PK, unique
        unindexed += [f"{name}.{column}" for column in sorted(wanted - leading)]
    assert unindexed == []


def test_every_reference_and_screen_column_is_indexed_in_the_live_databases(app):
    unindexed = []
    with app.app_context():
        inspectors = {key: inspect(db.engines[key]) for key in BIND_KEYS}
    for name, wanted in columns_needing_an_index().items():
        bind, table = name.split(".")
        inspector = inspectors[bind]
        leading = {i["column_names"][0] for i in inspector.get_indexes(table)}
        leading |= {u["column_names"][0] for u in inspector.get_unique_constraints(table)}
        leading |= set(inspector.get_pk_constraint(table)["constrained_columns"][:1])
        unindexed += [f"{name}.{column}" for column in sorted(wanted - leading)]
    assert unindexed == []
