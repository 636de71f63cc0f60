"""order_db: the order service's tables, exactly as the master ER diagram gives them.

The diagram gives orders no coupon column; the coupon an order used is found through
discount_db's coupon_usage.order_id (see console.references).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import figure_index, plain_index, prefix_index
from console.models.types import JSONType, TextArray, UTCDateTime, new_id, sort_indexes, utcnow


class OrderModel(db.Model):
    __abstract__ = True
    __bind_key__ = "order"


# orders.status: the order service's statuses, in the order an order moves through them.
ORDER_STATUSES = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "refunded")


class Order(OrderModel):
    __tablename__ = "orders"
    # The orders list's sort columns (console/screens/orders.py).
    __table_args__ = sort_indexes("orders", "created_at", "order_number", "total_amount", "status")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    order_number: Mapped[str | None] = mapped_column(String, unique=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    status: Mapped[str | None] = mapped_column(String, index=True)  # pending|confirmed|processing|shipped|delivered|cancelled|refunded
    payment_status: Mapped[str | None] = mapped_column(String)  # pending|paid|failed|refunded
    subtotal: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    tax_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    shipping_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    discount_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    total_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String)
    # The entity block says this references payment.payments.id (not payment_methods);
    # the console follows the entity block: it holds the id of the order's payment.
    payment_method_id: Mapped[str | None] = mapped_column(String, index=True)  # references payment.payments.id *logical*
    shipping_method: Mapped[str | None] = mapped_column(String)
    tracking_number: Mapped[str | None] = mapped_column(String, index=True)
    estimated_delivery_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OrderItem(OrderModel):
    __tablename__ = "order_items"
    # Units sold per product in a window (the products list): read from the index alone.
    __table_args__ = (Index("ix_order_items_product_id_created_at", "product_id", "created_at",
                            postgresql_include=["quantity", "order_id"]),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    order_id: Mapped[str | None] = mapped_column(String, ForeignKey("orders.id"), index=True)
    product_id: Mapped[str | None] = mapped_column(String, index=True)  # references product.products.id *logical*
    variant_id: Mapped[str | None] = mapped_column(String, index=True)  # references product.product_variants.id *logical*
    product_name: Mapped[str | None] = mapped_column(String)  # snapshot
    product_sku: Mapped[str | None] = mapped_column(String)  # snapshot
    product_image_url: Mapped[str | None] = mapped_column(String)  # snapshot
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # snapshot
    quantity: Mapped[int | None] = mapped_column(Integer)
    total_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class OrderStatusHistory(OrderModel):
    __tablename__ = "order_status_history"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    order_id: Mapped[str | None] = mapped_column(String, ForeignKey("orders.id"), index=True)
    status: Mapped[str | None] = mapped_column(String, index=True)
    previous_status: Mapped[str | None] = mapped_column(String)
    changed_by: Mapped[str | None] = mapped_column(String, index=True)
    reason: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class OrderShippingAddress(OrderModel):
    __tablename__ = "order_shipping_addresses"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    order_id: Mapped[str | None] = mapped_column(String, ForeignKey("orders.id"), unique=True)
    first_name: Mapped[str | None] = mapped_column(String)
    last_name: Mapped[str | None] = mapped_column(String, index=True)
    address_line1: Mapped[str | None] = mapped_column(String)
    city: Mapped[str | None] = mapped_column(String)
    postal_code: Mapped[str | None] = mapped_column(String)
    country: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class OrderNote(OrderModel):
    __tablename__ = "order_notes"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    order_id: Mapped[str | None] = mapped_column(String, ForeignKey("orders.id"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String, index=True)  # the staff user (auth.users.id), logical
    is_internal: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_orders_order_number_prefix", Order.order_number, "search and the orders filter: order number prefix")
prefix_index("ix_orders_tracking_number_prefix", Order.tracking_number, "search: tracking number prefix")
plain_index("ix_orders_order_number_upper", func.upper(Order.order_number),
            serves="order number filters of orders, returns and refunds (any case)")
figure_index("ix_orders_created_at_figures", Order.created_at, include=("status", "currency", "total_amount"),
             serves="dashboard: orders, revenue, status mix and revenue by day of a period and the one before "
                    "(read from the index alone)")
