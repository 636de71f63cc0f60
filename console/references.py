"""The registry of logical references: every reference between tables that is not
a database foreign key, declared once, as data.

Most cross the boundary between two service databases (the diagram's
``references x.y.z *logical*`` annotations and its cross-service table); a few stay
inside one database but were drawn without an FK (``mfa_backup_codes.user_id``,
``payment_idempotency_keys.payment_id``). Judgement calls are noted beside them.

Everything that follows a reference goes through this module: the batch loader
used by list and detail pages (``resolve``/``referrers``), the integrity report
(``console check-refs``) and the printed table (``console refs``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    source_bind: str
    source_table: str
    source_column: str
    target_bind: str
    target_table: str
    target_column: str
    note: str = ""
    # True when the source column holds a list of ids (string[]).
    many: bool = False
    # Values that are not references at all (a service writes "system" for its own actions).
    not_references: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.source_bind}.{self.source_table}.{self.source_column}"

    @property
    def target(self) -> str:
        return f"{self.target_bind}.{self.target_table}.{self.target_column}"

    @property
    def crosses_databases(self) -> bool:
        return self.source_bind != self.target_bind


def _ref(source: str, target: str, note: str = "", **options) -> Reference:
    sb, st, sc = source.split(".")
    tb, tt, tc = target.split(".")
    return Reference(sb, st, sc, tb, tt, tc, note, **options)


AUTH_USER = "auth.users.id"
PRODUCT = "product.products.id"
VARIANT = "product.product_variants.id"
ORDER = "order.orders.id"
PAYMENT = "payment.payments.id"
STAFF_OR_SYSTEM = ("system",)

REFERENCES: tuple[Reference, ...] = (
    # user_db
    _ref("user.user_profiles.user_id", AUTH_USER, "annotated"),
    _ref("user.wishlist_items.product_id", PRODUCT, "annotated"),
    _ref("user.recently_viewed_products.product_id", PRODUCT, "annotated"),
    # product_db
    _ref("product.product_reviews.user_id", AUTH_USER, "annotated"),
    _ref("product.product_questions.user_id", AUTH_USER, "annotated"),
    _ref("product.product_questions.answered_by", AUTH_USER, "unannotated: the staff user who answered",
         not_references=STAFF_OR_SYSTEM),
    _ref("product.stock_alerts.user_id", AUTH_USER, "annotated"),
    _ref("product.stock_alerts.variant_id", VARIANT, "same database, drawn without FK"),
    _ref("product.recently_viewed_products.user_id", AUTH_USER, "annotated"),
    _ref("product.product_comparisons.user_id", AUTH_USER, "annotated"),
    _ref("product.product_comparisons.product_ids", PRODUCT, "same database, a list of product ids", many=True),
    _ref("product.price_history.changed_by", AUTH_USER, "unannotated: the staff user",
         not_references=STAFF_OR_SYSTEM),
    _ref("product.product_search_history.user_id", AUTH_USER, "annotated"),
    # cart_db
    _ref("cart.carts.user_id", AUTH_USER, "annotated"),
    _ref("cart.carts.coupon_code", "discount.coupons.code", "annotated; by code, not id"),
    _ref("cart.cart_items.product_id", PRODUCT, "annotated"),
    _ref("cart.cart_items.variant_id", VARIANT, "annotated"),
    # order_db (the order's coupon is reached through discount.coupon_usage.order_id:
    # orders have no coupon column in the diagram)
    _ref("order.orders.user_id", AUTH_USER, "annotated"),
    _ref("order.orders.payment_method_id", PAYMENT,
         "annotated as payment.payments.id although named like payment_methods; the entity block is followed"),
    _ref("order.order_items.product_id", PRODUCT, "annotated"),
    _ref("order.order_items.variant_id", VARIANT, "annotated"),
    _ref("order.order_status_history.changed_by", AUTH_USER, "unannotated: the staff user",
         not_references=STAFF_OR_SYSTEM),
    _ref("order.order_notes.created_by", AUTH_USER, "unannotated: the staff user",
         not_references=STAFF_OR_SYSTEM),
    # payment_db
    _ref("payment.payments.order_id", ORDER, "annotated"),
    _ref("payment.payments.user_id", AUTH_USER, "annotated"),
    _ref("payment.refunds.order_id", ORDER, "annotated"),
    _ref("payment.payment_methods.user_id", AUTH_USER, "annotated"),
    _ref("payment.idempotency_keys.payment_id", PAYMENT, "same database, drawn without FK"),
    _ref("payment.idempotency_keys.user_id", AUTH_USER, "unannotated"),
    _ref("payment.audit_logs.user_id", AUTH_USER, "unannotated", not_references=STAFF_OR_SYSTEM),
    _ref("payment.audit_logs.payment_id", PAYMENT, "same database, drawn without FK"),
    _ref("payment.audit_logs.order_id", ORDER, "unannotated"),
    # shipping_db
    _ref("shipping.shipments.order_id", ORDER, "annotated"),
    # return_db
    _ref("return.return_requests.order_id", ORDER, "annotated"),
    _ref("return.return_requests.user_id", AUTH_USER, "annotated"),
    _ref("return.return_items.order_item_id", "order.order_items.id", "annotated"),
    _ref("return.return_items.product_id", PRODUCT, "annotated"),
    _ref("return.return_items.variant_id", VARIANT, "annotated"),
    _ref("return.return_status_history.changed_by", AUTH_USER, "unannotated: the staff user",
         not_references=STAFF_OR_SYSTEM),
    _ref("return.refunds.payment_id", PAYMENT, "annotated"),
    _ref("return.refunds.order_id", ORDER, "annotated"),
    _ref("return.refunds.user_id", AUTH_USER, "annotated"),
    # discount_db
    _ref("discount.coupon_usage.user_id", AUTH_USER, "annotated"),
    _ref("discount.coupon_usage.order_id", ORDER, "annotated"),
    _ref("discount.promotion_usage.user_id", AUTH_USER, "annotated"),
    _ref("discount.promotion_usage.order_id", ORDER, "annotated"),
    # notification_db
    _ref("notification.notifications.user_id", AUTH_USER, "annotated"),
    _ref("notification.notification_preferences.user_id", AUTH_USER, "annotated"),
    # auth_db
    _ref("auth.mfa_backup_codes.user_id", AUTH_USER, "same database, drawn without FK"),
)

BY_NAME: dict[str, Reference] = {ref.name: ref for ref in REFERENCES}


def get(name: str) -> Reference:
    """A reference by its source, e.g. ``get("order.orders.user_id")``."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no logical reference named {name!r}") from None


def as_table() -> list[tuple[str, str, str]]:
    return [(ref.name + ("[]" if ref.many else ""), ref.target, ref.note) for ref in REFERENCES]
