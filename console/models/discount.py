"""discount_db: the discount service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text, func, select
from sqlalchemy.orm import Mapped, column_property, mapped_column

from console.extensions import db
from console.models.indexing import prefix_index
from console.models.types import JSONType, TextArray, UTCDateTime, Vocabulary, new_id, sort_indexes, utcnow


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
    __table_args__ = sort_indexes("coupons", "created_at", "code", "usage_count", "ends_at")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    code: Mapped[str | None] = mapped_column(String, unique=True)
    name: Mapped[str | None] = mapped_column(String, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String)  # COUPON_TYPES
    discount_value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    minimum_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    maximum_discount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String)
    usage_limit: Mapped[int | None] = mapped_column(Integer)
    usage_count: Mapped[int | None] = mapped_column(Integer)
    usage_limit_per_user: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    applicable_products: Mapped[Any | None] = mapped_column(JSONType)
    applicable_categories: Mapped[Any | None] = mapped_column(JSONType)
    excluded_products: Mapped[Any | None] = mapped_column(JSONType)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# Codes are unique ignoring case: the console looks them up and filters them by prefix on
# upper(code); text_pattern_ops serves both = and LIKE 'PREFIX%' under any collation.
Index("ix_coupons_code_upper", func.upper(Coupon.code).label("code_upper"),
      postgresql_ops={"code_upper": "text_pattern_ops"})


class CouponUsage(DiscountModel):
    __tablename__ = "coupon_usage"
    # A coupon's uses, newest first (the usage report pages them by keyset); the discount
    # rides along so a coupon's discount given is read from the index alone.
    __table_args__ = (Index("ix_coupon_usage_coupon_used", "coupon_id", "used_at", "id",
                            postgresql_include=["discount_amount"]),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    coupon_id: Mapped[str | None] = mapped_column(String, ForeignKey("coupons.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    order_id: Mapped[str | None] = mapped_column(String, index=True)  # references order.orders.id *logical*
    discount_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class Promotion(DiscountModel):
    __tablename__ = "promotions"
    # The promotions list's sort columns (console/screens/promotions.py).
    __table_args__ = sort_indexes("promotions", "created_at", "name", "starts_at", "ends_at")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String)  # PROMOTION_TYPES
    status: Mapped[str | None] = mapped_column(String, index=True)  # PROMOTION_STATUSES
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    configuration: Mapped[Any | None] = mapped_column(JSONType)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PromotionRule(DiscountModel):
    __tablename__ = "promotion_rules"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    promotion_id: Mapped[str | None] = mapped_column(String, ForeignKey("promotions.id"), index=True)
    rule_type: Mapped[str | None] = mapped_column(String)  # RULE_TYPES
    conditions: Mapped[Any | None] = mapped_column(JSONType)
    actions: Mapped[Any | None] = mapped_column(JSONType)
    priority: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PromotionUsage(DiscountModel):
    __tablename__ = "promotion_usage"
    __table_args__ = (Index("ix_promotion_usage_promotion_used", "promotion_id", "used_at", "id",
                            postgresql_include=["discount_amount"]),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    promotion_id: Mapped[str | None] = mapped_column(String, ForeignKey("promotions.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    order_id: Mapped[str | None] = mapped_column(String, index=True)  # references order.orders.id *logical*
    discount_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


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
