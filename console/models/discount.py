"""discount_db: the discount service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, func, select, text
from sqlalchemy.orm import Mapped, column_property, mapped_column

from console.extensions import db
from console.models.indexing import plain_index, prefix_index, service_index
from console.models.types import (JSONType, Money, UTCDateTime, Vocabulary, foreign_key, json_text, new_id,
                                  sort_indexes, utcnow)


class DiscountModel(db.Model):
    __abstract__ = True
    __bind_key__ = "discount"


# The discount service's vocabularies, as its schema's comments give them (lower case).
COUPON_TYPES = Vocabulary("percentage", "fixed_amount", "free_shipping")
PROMOTION_TYPES = Vocabulary("buy_x_get_y", "bundle", "volume_discount")
PROMOTION_STATUSES = Vocabulary("draft", "active", "paused", "expired")
RULE_TYPES = Vocabulary("buy_quantity", "spend_amount", "product_match", "category_match")


class Coupon(DiscountModel):
    __tablename__ = "coupons"
    # The coupons list's sort columns (console/screens/coupons.py).
    __table_args__ = sort_indexes("coupons", "created_at", "code", "usage_count", "ends_at", screen="the coupons list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)  # COUPON_TYPES
    discount_value: Mapped[Decimal] = mapped_column("discountValue", Money, key="discount_value")
    minimum_amount: Mapped[Decimal] = mapped_column(
        "minimumAmount", Money, key="minimum_amount", server_default=text("0"))
    maximum_discount: Mapped[Decimal | None] = mapped_column("maximumDiscount", Money, key="maximum_discount")
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    usage_limit: Mapped[int | None] = mapped_column("usageLimit", Integer, key="usage_limit")
    usage_count: Mapped[int] = mapped_column(
        "usageCount", Integer, key="usage_count", server_default=text("0"))
    usage_limit_per_user: Mapped[int | None] = mapped_column(
        "usageLimitPerUser", Integer, key="usage_limit_per_user")
    starts_at: Mapped[datetime | None] = mapped_column("startsAt", UTCDateTime, key="starts_at")
    ends_at: Mapped[datetime | None] = mapped_column("endsAt", UTCDateTime, key="ends_at")
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    applicable_products: Mapped[Any | None] = mapped_column(
        "applicableProducts", JSONType, key="applicable_products")
    applicable_categories: Mapped[Any | None] = mapped_column(
        "applicableCategories", JSONType, key="applicable_categories")
    excluded_products: Mapped[Any | None] = mapped_column(
        "excludedProducts", JSONType, key="excluded_products")
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The discount service's own indexes on coupons (its schema's @@index and @unique).
service_index("coupons_code_key", Coupon.code, unique=True)
service_index("coupons_code_idx", Coupon.code)
service_index("coupons_isActive_idx", Coupon.is_active)
service_index("coupons_startsAt_idx", Coupon.starts_at)
service_index("coupons_endsAt_idx", Coupon.ends_at)


# Codes are unique ignoring case: the console looks them up and filters them by prefix on
# upper(code); text_pattern_ops serves both = and LIKE 'PREFIX%' under any collation.
Index("ix_coupons_code_upper", func.upper(Coupon.code).label("code_upper"),
      postgresql_ops={"code_upper": "text_pattern_ops"},
      info={"serves": "coupon lookups by code in any case, and the coupons list's code filter"})

# A bulk generation writes its id into each coupon's metadata (console/workflows/coupons.py).
# The coupons list shows the coupons made by hand unless asked otherwise: its sorts have
# partial indexes over those alone, so thousands of generated codes newer than them are
# never walked past; one generation's codes are found through the id itself.
COUPON_BATCH = json_text(Coupon.metadata_, "batch")
Index("ix_coupons_batch", COUPON_BATCH, info={"serves": "the coupons list, one bulk generation"})
for _column in ("created_at", "code", "usage_count", "ends_at"):
    Index(f"ix_coupons_by_hand_{_column}_id", Coupon.__table__.c[_column], Coupon.id,
          postgresql_where=COUPON_BATCH.is_(None), sqlite_where=COUPON_BATCH.is_(None),
          info={"serves": f"the coupons list (made by hand), sorted by {_column}"})


class CouponUsage(DiscountModel):
    __tablename__ = "coupon_usage"
    # A coupon's uses, newest first (the usage report pages them by keyset); the discount
    # rides along so a coupon's discount given is read from the index alone.
    __table_args__ = (Index("ix_coupon_usage_coupon_used", "coupon_id", "used_at", "id",
                            postgresql_include=["discount_amount"],
                            info={"serves": "a coupon's usage report, newest first, and its discount given"}),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    coupon_id: Mapped[str] = mapped_column(
        "couponId", Text, foreign_key("coupons.id", "coupon_usage_couponId_fkey", on_delete="CASCADE"),
        key="coupon_id")
    # references auth.users.id *logical*
    user_id: Mapped[str | None] = mapped_column("userId", Text, key="user_id")
    # references order.orders.id *logical*
    order_id: Mapped[str | None] = mapped_column("orderId", Text, key="order_id")
    discount_amount: Mapped[Decimal] = mapped_column("discountAmount", Money, key="discount_amount")
    used_at: Mapped[datetime] = mapped_column(
        "usedAt", UTCDateTime, key="used_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The discount service's own indexes on coupon_usage (its schema's @@index and @unique).
service_index("coupon_usage_couponId_idx", CouponUsage.coupon_id)
service_index("coupon_usage_userId_idx", CouponUsage.user_id)
service_index("coupon_usage_usedAt_idx", CouponUsage.used_at)
service_index("coupon_usage_couponId_userId_idx", CouponUsage.coupon_id, CouponUsage.user_id)
service_index("coupon_usage_couponId_usedAt_idx", CouponUsage.coupon_id, CouponUsage.used_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_coupon_usage_order_id", CouponUsage.order_id,
            serves="logical reference lookups by order_id (batch loader, check-refs)")


class Promotion(DiscountModel):
    __tablename__ = "promotions"
    # The promotions list's sort columns (console/screens/promotions.py).
    __table_args__ = sort_indexes("promotions", "created_at", "name", "starts_at", "ends_at", screen="the promotions list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(50))  # PROMOTION_TYPES
    status: Mapped[str] = mapped_column(String(20), server_default="draft")  # PROMOTION_STATUSES
    starts_at: Mapped[datetime | None] = mapped_column("startsAt", UTCDateTime, key="starts_at")
    ends_at: Mapped[datetime | None] = mapped_column("endsAt", UTCDateTime, key="ends_at")
    is_active: Mapped[bool] = mapped_column(
        "isActive", Boolean, key="is_active", server_default=text("false"))
    configuration: Mapped[Any] = mapped_column(JSONType)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The discount service's own indexes on promotions (its schema's @@index and @unique).
service_index("promotions_status_idx", Promotion.status)
service_index("promotions_isActive_idx", Promotion.is_active)
service_index("promotions_startsAt_idx", Promotion.starts_at)
service_index("promotions_endsAt_idx", Promotion.ends_at)


class PromotionRule(DiscountModel):
    __tablename__ = "promotion_rules"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    promotion_id: Mapped[str] = mapped_column(
        "promotionId", Text,
        foreign_key("promotions.id", "promotion_rules_promotionId_fkey", on_delete="CASCADE"),
        key="promotion_id")
    rule_type: Mapped[str] = mapped_column("ruleType", String(50), key="rule_type")  # RULE_TYPES
    conditions: Mapped[Any] = mapped_column(JSONType)
    actions: Mapped[Any] = mapped_column(JSONType)
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The discount service's own indexes on promotion_rules (its schema's @@index and @unique).
service_index("promotion_rules_promotionId_idx", PromotionRule.promotion_id)
service_index("promotion_rules_promotionId_priority_idx", PromotionRule.promotion_id, PromotionRule.priority)


class PromotionUsage(DiscountModel):
    __tablename__ = "promotion_usage"
    __table_args__ = (Index("ix_promotion_usage_promotion_used", "promotion_id", "used_at", "id",
                            postgresql_include=["discount_amount"],
                            info={"serves": "a promotion's usage report, newest first, and its discount given"}),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    promotion_id: Mapped[str] = mapped_column(
        "promotionId", Text,
        foreign_key("promotions.id", "promotion_usage_promotionId_fkey", on_delete="CASCADE"),
        key="promotion_id")
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    # references order.orders.id *logical*
    order_id: Mapped[str | None] = mapped_column("orderId", Text, key="order_id")
    discount_amount: Mapped[Decimal] = mapped_column("discountAmount", Money, key="discount_amount")
    used_at: Mapped[datetime] = mapped_column(
        "usedAt", UTCDateTime, key="used_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The discount service's own indexes on promotion_usage (its schema's @@index and @unique).
service_index("promotion_usage_promotionId_idx", PromotionUsage.promotion_id)
service_index("promotion_usage_userId_idx", PromotionUsage.user_id)
service_index("promotion_usage_usedAt_idx", PromotionUsage.used_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_promotion_usage_order_id", PromotionUsage.order_id,
            serves="logical reference lookups by order_id (batch loader, check-refs)")


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_coupons_code_prefix", Coupon.code, "search: coupon code prefix")


def _discount_given(usage, owner_id, owner):
    # Labelled, so a subquery of the entity (keyset paging's UNION) names it too.
    return column_property(
        select(func.coalesce(func.sum(usage.discount_amount), 0)).where(owner_id == owner.id)
        .correlate_except(usage).scalar_subquery().label("discount_given"))


# What each coupon and promotion gave, summed over its uses: read-only, shown and sorted by
# on their lists. Each row's sum is an index-only read of its usage index above, so a
# list sorted by it costs the same on every page (one probe per coupon matching the filters).
Coupon.discount_given = _discount_given(CouponUsage, CouponUsage.coupon_id, Coupon)
Promotion.discount_given = _discount_given(PromotionUsage, PromotionUsage.promotion_id, Promotion)
