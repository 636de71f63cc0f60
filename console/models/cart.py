"""cart_db: the cart service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import plain_index, service_index
from console.models.types import JSONType, Money, UTCDateTime, foreign_key, new_id, utcnow


class CartModel(db.Model):
    __abstract__ = True
    __bind_key__ = "cart"


class Cart(CartModel):
    __tablename__ = "carts"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    # references auth.users.id *logical*
    user_id: Mapped[str | None] = mapped_column("userId", Text, key="user_id")
    session_id: Mapped[str | None] = mapped_column("sessionId", Text, key="session_id")
    status: Mapped[str] = mapped_column(Text, server_default="active")  # active|abandoned|converted
    currency: Mapped[str] = mapped_column(Text, server_default="USD")
    subtotal: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    tax_amount: Mapped[Decimal] = mapped_column(
        "taxAmount", Money, key="tax_amount", server_default=text("0"))
    shipping_amount: Mapped[Decimal] = mapped_column(
        "shippingAmount", Money, key="shipping_amount", server_default=text("0"))
    discount_amount: Mapped[Decimal] = mapped_column(
        "discountAmount", Money, key="discount_amount", server_default=text("0"))
    total_amount: Mapped[Decimal] = mapped_column(
        "totalAmount", Money, key="total_amount", server_default=text("0"))
    # references discount.coupons.code *logical*
    coupon_code: Mapped[str | None] = mapped_column("couponCode", Text, key="coupon_code")
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    expires_at: Mapped[datetime | None] = mapped_column("expiresAt", UTCDateTime, key="expires_at")
    converted_at: Mapped[datetime | None] = mapped_column("convertedAt", UTCDateTime, key="converted_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The cart service's own indexes on carts (its schema's @@index and @unique).
service_index("carts_userId_idx", Cart.user_id)
service_index("carts_sessionId_idx", Cart.session_id)
service_index("carts_status_idx", Cart.status)
service_index("carts_expiresAt_idx", Cart.expires_at)
service_index("carts_userId_status_idx", Cart.user_id, Cart.status)
service_index("carts_sessionId_status_idx", Cart.session_id, Cart.status)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_carts_coupon_code", Cart.coupon_code,
            serves="logical reference lookups by coupon_code (batch loader, check-refs)")


class CartItem(CartModel):
    __tablename__ = "cart_items"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    cart_id: Mapped[str] = mapped_column(
        "cartId", Text, foreign_key("carts.id", "cart_items_cartId_fkey", on_delete="CASCADE"), key="cart_id")
    # references product.products.id *logical*
    product_id: Mapped[str] = mapped_column("productId", Text, key="product_id")
    # references product.product_variants.id *logical*
    variant_id: Mapped[str | None] = mapped_column("variantId", Text, key="variant_id")
    product_name: Mapped[str] = mapped_column("productName", Text, key="product_name")  # denormalized
    product_sku: Mapped[str] = mapped_column("productSku", Text, key="product_sku")  # denormalized
    # denormalized
    product_image_url: Mapped[str | None] = mapped_column("productImageUrl", Text, key="product_image_url")
    unit_price: Mapped[Decimal] = mapped_column("unitPrice", Money, key="unit_price")  # denormalized
    quantity: Mapped[int] = mapped_column(Integer)
    total_price: Mapped[Decimal] = mapped_column("totalPrice", Money, key="total_price")
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The cart service's own indexes on cart_items (its schema's @@index and @unique).
service_index("cart_items_cartId_idx", CartItem.cart_id)
service_index("cart_items_productId_idx", CartItem.product_id)
service_index("cart_items_cartId_productId_variantId_key", CartItem.cart_id, CartItem.product_id,
              CartItem.variant_id, unique=True)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_cart_items_variant_id", CartItem.variant_id,
            serves="logical reference lookups by variant_id (batch loader, check-refs)")
