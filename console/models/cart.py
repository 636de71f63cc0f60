"""cart_db: the cart service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.types import JSONType, TextArray, UTCDateTime, new_id, utcnow


class CartModel(db.Model):
    __abstract__ = True
    __bind_key__ = "cart"


class Cart(CartModel):
    __tablename__ = "carts"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    session_id: Mapped[str | None] = mapped_column(String, index=True)
    status: Mapped[str | None] = mapped_column(String, index=True)  # active|abandoned|converted
    currency: Mapped[str | None] = mapped_column(String)
    subtotal: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    tax_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    shipping_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    discount_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    total_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    coupon_code: Mapped[str | None] = mapped_column(String, index=True)  # references discount.coupons.code *logical*
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CartItem(CartModel):
    __tablename__ = "cart_items"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    cart_id: Mapped[str | None] = mapped_column(String, ForeignKey("carts.id"), index=True)
    product_id: Mapped[str | None] = mapped_column(String, index=True)  # references product.products.id *logical*
    variant_id: Mapped[str | None] = mapped_column(String, index=True)  # references product.product_variants.id *logical*
    product_name: Mapped[str | None] = mapped_column(String)  # denormalized
    product_sku: Mapped[str | None] = mapped_column(String)  # denormalized
    product_image_url: Mapped[str | None] = mapped_column(String)  # denormalized
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # denormalized
    quantity: Mapped[int | None] = mapped_column(Integer)
    total_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
