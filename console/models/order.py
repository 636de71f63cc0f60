"""order_db: the order service's tables, as its Prisma schema creates them.

The diagram gives orders no coupon column; the coupon an order used is found through
discount_db's coupon_usage.order_id (see console.references).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import figure_index, plain_index, prefix_index, service_index
from console.models.types import JSONType, Money, UTCDateTime, foreign_key, new_id, sort_indexes, utcnow


class OrderModel(db.Model):
    __abstract__ = True
    __bind_key__ = "order"


# orders.status: the order service's statuses, in the order an order moves through them.
ORDER_STATUSES = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "refunded")


class Order(OrderModel):
    __tablename__ = "orders"
    # The orders list's sort columns (console/screens/orders.py).
    __table_args__ = sort_indexes("orders", "created_at", "order_number", "total_amount", "status", screen="the orders list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    order_number: Mapped[str] = mapped_column("orderNumber", Text, key="order_number")
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    # pending|confirmed|processing|shipped|delivered|cancelled|refunded
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    # pending|paid|failed|refunded
    payment_status: Mapped[str] = mapped_column(
        "paymentStatus", Text, key="payment_status", server_default="pending")
    subtotal: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(
        "taxAmount", Money, key="tax_amount", server_default=text("0"))
    shipping_amount: Mapped[Decimal] = mapped_column(
        "shippingAmount", Money, key="shipping_amount", server_default=text("0"))
    discount_amount: Mapped[Decimal] = mapped_column(
        "discountAmount", Money, key="discount_amount", server_default=text("0"))
    total_amount: Mapped[Decimal] = mapped_column("totalAmount", Money, key="total_amount")
    currency: Mapped[str] = mapped_column(Text, server_default="USD")
    # The entity block says this references payment.payments.id (not payment_methods);
    # the console follows the entity block: it holds the id of the order's payment.
    # references payment.payments.id *logical*
    payment_method_id: Mapped[str | None] = mapped_column("paymentMethodId", Text, key="payment_method_id")
    shipping_method: Mapped[str | None] = mapped_column("shippingMethod", Text, key="shipping_method")
    tracking_number: Mapped[str | None] = mapped_column("trackingNumber", Text, key="tracking_number")
    estimated_delivery_date: Mapped[datetime | None] = mapped_column(
        "estimatedDeliveryDate", UTCDateTime, key="estimated_delivery_date")
    shipped_at: Mapped[datetime | None] = mapped_column("shippedAt", UTCDateTime, key="shipped_at")
    delivered_at: Mapped[datetime | None] = mapped_column("deliveredAt", UTCDateTime, key="delivered_at")
    cancelled_at: Mapped[datetime | None] = mapped_column("cancelledAt", UTCDateTime, key="cancelled_at")
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The order service's own indexes on orders (its schema's @@index and @unique).
service_index("orders_orderNumber_key", Order.order_number, unique=True)
service_index("orders_userId_idx", Order.user_id)
service_index("orders_status_idx", Order.status)
service_index("orders_paymentStatus_idx", Order.payment_status)
service_index("orders_totalAmount_idx", Order.total_amount)
service_index("orders_createdAt_idx", Order.created_at)
service_index("orders_userId_status_createdAt_idx", Order.user_id, Order.status, Order.created_at)
service_index("orders_status_createdAt_idx", Order.status, Order.created_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_orders_payment_method_id", Order.payment_method_id,
            serves="logical reference lookups by payment_method_id (batch loader, check-refs)")
# The orders list filtered by currency or payment status, newest first: a value few
# orders hold (or none) is sought in its own run of the index, where the date index alone
# walked every order to fill a page (1.4 s at 1,000,000 orders for a currency none used).
plain_index("ix_orders_currency_created_at_id", Order.currency, Order.created_at, Order.id,
            serves="the orders list filtered by currency, newest first, and its count")
plain_index("ix_orders_payment_status_created_at_id", Order.payment_status, Order.created_at, Order.id,
            serves="the orders list filtered by payment status, newest first, and its count")


class OrderItem(OrderModel):
    __tablename__ = "order_items"
    # Units sold per product in a window (the products list): read from the index alone.
    __table_args__ = (Index("ix_order_items_product_id_created_at", "product_id", "created_at",
                            postgresql_include=["quantity", "order_id"],
                            info={"serves": "the products list: units sold per product in a window"}),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(
        "orderId", Text, foreign_key("orders.id", "order_items_orderId_fkey", on_delete="CASCADE"),
        key="order_id")
    # references product.products.id *logical*
    product_id: Mapped[str] = mapped_column("productId", Text, key="product_id")
    # references product.product_variants.id *logical*
    variant_id: Mapped[str | None] = mapped_column("variantId", Text, key="variant_id")
    product_name: Mapped[str] = mapped_column("productName", Text, key="product_name")  # snapshot
    product_sku: Mapped[str] = mapped_column("productSku", Text, key="product_sku")  # snapshot
    # snapshot
    product_image_url: Mapped[str | None] = mapped_column("productImageUrl", Text, key="product_image_url")
    unit_price: Mapped[Decimal] = mapped_column("unitPrice", Money, key="unit_price")  # snapshot
    quantity: Mapped[int] = mapped_column(Integer)
    total_price: Mapped[Decimal] = mapped_column("totalPrice", Money, key="total_price")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The order service's own indexes on order_items (its schema's @@index and @unique).
service_index("order_items_orderId_idx", OrderItem.order_id)
service_index("order_items_productId_idx", OrderItem.product_id)
# The orders list's SKU filter (any case): the orders holding a SKU, from the index alone.
Index("ix_order_items_sku_order_id", func.upper(OrderItem.product_sku), OrderItem.order_id,
      info={"serves": "the orders list's SKU filter"})
# The console's own: no index of the service's leads with these columns.
plain_index("ix_order_items_variant_id", OrderItem.variant_id,
            serves="logical reference lookups by variant_id (batch loader, check-refs)")


class OrderStatusHistory(OrderModel):
    __tablename__ = "order_status_history"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(
        "orderId", Text, foreign_key("orders.id", "order_status_history_orderId_fkey", on_delete="CASCADE"),
        key="order_id")
    status: Mapped[str] = mapped_column(Text)
    previous_status: Mapped[str | None] = mapped_column("previousStatus", Text, key="previous_status")
    changed_by: Mapped[str] = mapped_column("changedBy", Text, key="changed_by")
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The order service's own indexes on order_status_history (its schema's @@index and @unique).
service_index("order_status_history_orderId_idx", OrderStatusHistory.order_id)
service_index("order_status_history_createdAt_idx", OrderStatusHistory.created_at)
service_index("order_status_history_orderId_createdAt_idx", OrderStatusHistory.order_id,
              OrderStatusHistory.created_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_order_status_history_changed_by", OrderStatusHistory.changed_by,
            serves="logical reference lookups by changed_by (batch loader, check-refs)")


class OrderShippingAddress(OrderModel):
    __tablename__ = "order_shipping_addresses"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(
        "orderId", Text,
        foreign_key("orders.id", "order_shipping_addresses_orderId_fkey", on_delete="CASCADE"),
        key="order_id")
    first_name: Mapped[str] = mapped_column("firstName", Text, key="first_name")
    last_name: Mapped[str] = mapped_column("lastName", Text, key="last_name")
    company: Mapped[str | None] = mapped_column(Text)
    address_line1: Mapped[str] = mapped_column("addressLine1", Text, key="address_line1")
    address_line2: Mapped[str | None] = mapped_column("addressLine2", Text, key="address_line2")
    city: Mapped[str] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    postal_code: Mapped[str] = mapped_column("postalCode", Text, key="postal_code")
    country: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The order service's own indexes on order_shipping_addresses (its schema's @@index and @unique).
service_index("order_shipping_addresses_orderId_key", OrderShippingAddress.order_id, unique=True)


class OrderNote(OrderModel):
    __tablename__ = "order_notes"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(
        "orderId", Text, foreign_key("orders.id", "order_notes_orderId_fkey", on_delete="CASCADE"),
        key="order_id")
    note: Mapped[str] = mapped_column(Text)
    # the staff user (auth.users.id), logical
    created_by: Mapped[str] = mapped_column("createdBy", Text, key="created_by")
    is_internal: Mapped[bool] = mapped_column(
        "isInternal", Boolean, key="is_internal", server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The order service's own indexes on order_notes (its schema's @@index and @unique).
service_index("order_notes_orderId_idx", OrderNote.order_id)
service_index("order_notes_createdAt_idx", OrderNote.created_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_order_notes_created_by", OrderNote.created_by,
            serves="logical reference lookups by created_by (batch loader, check-refs)")


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_orders_order_number_prefix", Order.order_number, "search and the orders filter: order number prefix")
prefix_index("ix_orders_tracking_number_prefix", Order.tracking_number, "search: tracking number prefix")
plain_index("ix_orders_order_number_upper", func.upper(Order.order_number),
            serves="order number filters of orders, returns and refunds (any case)")
figure_index("ix_orders_created_at_figures", Order.created_at, include=("status", "currency", "total_amount"),
             serves="dashboard: orders, revenue, status mix and revenue by day of a period and the one before "
                    "(read from the index alone)")
