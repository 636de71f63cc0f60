"""The registry names every logical reference of the master ER diagram, once."""
from __future__ import annotations

import pytest

from console.models import model_for_table
from console.references import REFERENCES, as_table, get

# Every `references x.y.z *logical*` annotation of the diagram's entity blocks.
ANNOTATED = {
    ("user.user_profiles.user_id", "auth.users.id"),
    ("user.wishlist_items.product_id", "product.products.id"),
    ("user.recently_viewed_products.product_id", "product.products.id"),
    ("product.product_reviews.user_id", "auth.users.id"),
    ("product.product_questions.user_id", "auth.users.id"),
    ("product.stock_alerts.user_id", "auth.users.id"),
    ("product.recently_viewed_products.user_id", "auth.users.id"),
    ("product.product_comparisons.user_id", "auth.users.id"),
    ("product.product_search_history.user_id", "auth.users.id"),
    ("cart.carts.user_id", "auth.users.id"),
    ("cart.carts.coupon_code", "discount.coupons.code"),
    ("cart.cart_items.product_id", "product.products.id"),
    ("cart.cart_items.variant_id", "product.product_variants.id"),
    ("order.orders.user_id", "auth.users.id"),
    ("order.orders.payment_method_id", "payment.payments.id"),
    ("order.order_items.product_id", "product.products.id"),
    ("order.order_items.variant_id", "product.product_variants.id"),
    ("payment.payments.order_id", "order.orders.id"),
    ("payment.payments.user_id", "auth.users.id"),
    ("payment.refunds.order_id", "order.orders.id"),
    ("payment.payment_methods.user_id", "auth.users.id"),
    ("shipping.shipments.order_id", "order.orders.id"),
    ("return.return_requests.order_id", "order.orders.id"),
    ("return.return_requests.user_id", "auth.users.id"),
    ("return.return_items.order_item_id", "order.order_items.id"),
    ("return.return_items.product_id", "product.products.id"),
    ("return.return_items.variant_id", "product.product_variants.id"),
    ("return.refunds.payment_id", "payment.payments.id"),
    ("return.refunds.order_id", "order.orders.id"),
    ("return.refunds.user_id", "auth.users.id"),
    ("discount.coupon_usage.user_id", "auth.users.id"),
    ("discount.coupon_usage.order_id", "order.orders.id"),
    ("discount.promotion_usage.user_id", "auth.users.id"),
    ("discount.promotion_usage.order_id", "order.orders.id"),
    ("notification.notifications.user_id", "auth.users.id"),
    ("notification.notification_preferences.user_id", "auth.users.id"),
}

# Drawn without an annotation (or without an FK inside one database), documented by the registry.
UNANNOTATED = {
    ("product.product_questions.answered_by", "auth.users.id"),
    ("product.stock_alerts.variant_id", "product.product_variants.id"),
    ("product.product_comparisons.product_ids", "product.products.id"),
    ("product.price_history.changed_by", "auth.users.id"),
    ("order.order_status_history.changed_by", "auth.users.id"),
    ("order.order_notes.created_by", "auth.users.id"),
    ("payment.idempotency_keys.payment_id", "payment.payments.id"),
    ("payment.idempotency_keys.user_id", "auth.users.id"),
    ("payment.audit_logs.user_id", "auth.users.id"),
    ("payment.audit_logs.payment_id", "payment.payments.id"),
    ("payment.audit_logs.order_id", "order.orders.id"),
    ("return.return_status_history.changed_by", "auth.users.id"),
    ("auth.mfa_backup_codes.user_id", "auth.users.id"),
}

# The diagram's "CROSS-SERVICE LOGICAL REFERENCES" relationships: (target table, source table).
CROSS_SERVICE = {
    ("users", "user_profiles"), ("users", "orders"), ("users", "carts"), ("users", "payments"),
    ("users", "return_requests"), ("users", "product_reviews"), ("users", "notifications"),
    ("users", "coupon_usage"),
    ("products", "order_items"), ("products", "cart_items"), ("products", "return_items"),
    ("products", "wishlist_items"),
    ("orders", "payments"), ("orders", "shipments"), ("orders", "return_requests"), ("orders", "coupon_usage"),
    ("payments", "refunds"),
}


def test_registry_is_exactly_the_diagram():
    declared = {(ref.name, ref.target) for ref in REFERENCES}
    assert len(ANNOTATED) == 36 and len(UNANNOTATED) == 13
    assert declared == ANNOTATED | UNANNOTATED
    assert len(REFERENCES) == len(declared)  # each declared once


def test_cross_service_relationships_are_covered():
    pairs = {(ref.target_table, ref.source_table) for ref in REFERENCES if ref.crosses_databases}
    assert CROSS_SERVICE <= pairs


def test_every_reference_names_real_columns():
    for ref in REFERENCES:
        source = model_for_table(ref.source_bind, ref.source_table)
        target = model_for_table(ref.target_bind, ref.target_table)
        assert ref.source_column in source.__table__.columns, ref.name
        assert ref.target_column in target.__table__.columns, ref.target


def test_list_references_and_non_reference_values():
    assert get("product.product_comparisons.product_ids").many is True
    assert all(not ref.many for ref in REFERENCES if ref.name != "product.product_comparisons.product_ids")
    assert "system" in get("order.order_status_history.changed_by").not_references


def test_get_unknown_reference():
    with pytest.raises(KeyError, match="no logical reference named 'order.orders.nope'"):
        get("order.orders.nope")


def test_refs_command_prints_the_registry(app):
    result = app.test_cli_runner().invoke(args=["console", "refs"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["reference", "target", "note"]
    assert len(lines) == 1 + len(REFERENCES) == len(as_table()) + 1
    assert any(line.startswith("product.product_comparisons.product_ids[]") for line in lines)
    assert any("cart.carts.coupon_code" in line and "discount.coupons.code" in line for line in lines)
