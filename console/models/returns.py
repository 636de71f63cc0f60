"""return_db (module named returns because `return` is a keyword): the return service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, Integer, String, Text, literal_column, text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import plain_index, prefix_index, service_index
from console.models.types import JSONType, Money, UTCDateTime, foreign_key, new_id, sort_indexes, utcnow


class ReturnModel(db.Model):
    __abstract__ = True
    __bind_key__ = "return"


class ReturnRequest(ReturnModel):
    __tablename__ = "return_requests"
    # The returns list's sort columns (console/screens/returns.py).
    __table_args__ = sort_indexes("return_requests", "created_at", "requested_at", "rma_number", "refund_amount", "status",
                                  screen="the returns list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(Text)  # references order.orders.id *logical*
    user_id: Mapped[str] = mapped_column(Text)  # references auth.users.id *logical*
    rma_number: Mapped[str] = mapped_column(String(50))
    # pending|approved|rejected|in_transit|received|processed|closed
    status: Mapped[str] = mapped_column(String(50), server_default="pending")
    # defective|wrong_item|not_as_described|changed_mind|other
    return_reason: Mapped[str] = mapped_column(String(50))
    return_notes: Mapped[str | None] = mapped_column(Text)
    refund_method: Mapped[str] = mapped_column(String(50))  # original_payment|store_credit|exchange
    refund_amount: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    requested_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The return service's own indexes on return_requests (its schema's @@index and @unique).
service_index("return_requests_rma_number_key", ReturnRequest.rma_number, unique=True)
service_index("return_requests_order_id_idx", ReturnRequest.order_id)
service_index("return_requests_user_id_idx", ReturnRequest.user_id)
service_index("return_requests_status_idx", ReturnRequest.status)
service_index("return_requests_requested_at_idx", ReturnRequest.requested_at)
service_index("return_requests_user_id_status_idx", ReturnRequest.user_id, ReturnRequest.status)

# A return that is neither rejected nor closed: an order's open return.
CLOSED_RETURN_STATUSES = ("rejected", "closed")


def return_is_open():
    """SQL: the return is open. Its constants are written into the SQL, not bound, so the
    partial index below, whose condition this is, serves it whatever plan the server picks."""
    return ReturnRequest.status.notin_([literal_column(f"'{status}'") for status in CLOSED_RETURN_STATUSES])


Index("ix_return_requests_open_order_id", ReturnRequest.order_id,
      postgresql_where=return_is_open(), sqlite_where=return_is_open(),
      info={"serves": "an order's open return (the orders list and its export)"})


class ReturnItem(ReturnModel):
    __tablename__ = "return_items"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    return_request_id: Mapped[str] = mapped_column(
        Text, foreign_key("return_requests.id", "return_items_return_request_id_fkey", on_delete="CASCADE"))
    order_item_id: Mapped[str] = mapped_column(Text)  # references order.order_items.id *logical*
    product_id: Mapped[str] = mapped_column(Text)  # references product.products.id *logical*
    variant_id: Mapped[str | None] = mapped_column(Text)  # references product.product_variants.id *logical*
    product_name: Mapped[str] = mapped_column(String(255))
    product_sku: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    refund_amount: Mapped[Decimal] = mapped_column(Money)
    return_reason: Mapped[str | None] = mapped_column(String(50))
    condition: Mapped[str] = mapped_column(String(20))  # new|used|damaged|defective
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The return service's own indexes on return_items (its schema's @@index and @unique).
service_index("return_items_return_request_id_idx", ReturnItem.return_request_id)
service_index("return_items_product_id_idx", ReturnItem.product_id)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_return_items_order_item_id", ReturnItem.order_item_id,
            serves="logical reference lookups by order_item_id (batch loader, check-refs)")
plain_index("ix_return_items_variant_id", ReturnItem.variant_id,
            serves="logical reference lookups by variant_id (batch loader, check-refs)")


class ReturnAuthorization(ReturnModel):
    __tablename__ = "return_authorizations"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    return_request_id: Mapped[str] = mapped_column(
        Text,
        foreign_key("return_requests.id", "return_authorizations_return_request_id_fkey", on_delete="CASCADE"))
    rma_number: Mapped[str] = mapped_column(String(50))
    return_address: Mapped[Any] = mapped_column(JSONType)
    return_instructions: Mapped[str | None] = mapped_column(Text)
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The return service's own indexes on return_authorizations (its schema's @@index and @unique).
service_index("return_authorizations_return_request_id_key", ReturnAuthorization.return_request_id,
              unique=True)
service_index("return_authorizations_rma_number_key", ReturnAuthorization.rma_number, unique=True)


class ReturnStatusHistory(ReturnModel):
    __tablename__ = "return_status_history"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    return_request_id: Mapped[str] = mapped_column(
        Text,
        foreign_key("return_requests.id", "return_status_history_return_request_id_fkey", on_delete="CASCADE"))
    status: Mapped[str] = mapped_column(String(50))
    previous_status: Mapped[str | None] = mapped_column(String(50))
    changed_by: Mapped[str] = mapped_column(String(25))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The return service's own indexes on return_status_history (its schema's @@index and @unique).
service_index("return_status_history_return_request_id_idx", ReturnStatusHistory.return_request_id)
service_index("return_status_history_created_at_idx", ReturnStatusHistory.created_at)
service_index("return_status_history_return_request_id_created_at_idx", ReturnStatusHistory.return_request_id,
              ReturnStatusHistory.created_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_return_status_history_changed_by", ReturnStatusHistory.changed_by,
            serves="logical reference lookups by changed_by (batch loader, check-refs)")


class ReturnTracking(ReturnModel):
    __tablename__ = "return_tracking"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    authorization_id: Mapped[str] = mapped_column(
        Text,
        foreign_key("return_authorizations.id", "return_tracking_authorization_id_fkey", on_delete="CASCADE"))
    status: Mapped[str] = mapped_column(String(50))
    location: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    carrier_data: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The return service's own indexes on return_tracking (its schema's @@index and @unique).
service_index("return_tracking_authorization_id_idx", ReturnTracking.authorization_id)
service_index("return_tracking_timestamp_idx", ReturnTracking.timestamp)
service_index("return_tracking_authorization_id_timestamp_idx", ReturnTracking.authorization_id,
              ReturnTracking.timestamp)


class ReturnRefund(ReturnModel):
    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    return_request_id: Mapped[str] = mapped_column(
        Text, foreign_key("return_requests.id", "refunds_return_request_id_fkey", on_delete="CASCADE"))
    payment_id: Mapped[str | None] = mapped_column(Text)  # references payment.payments.id *logical*
    order_id: Mapped[str] = mapped_column(Text)  # references order.orders.id *logical*
    user_id: Mapped[str] = mapped_column(Text)  # references auth.users.id *logical*
    refund_method: Mapped[str] = mapped_column(String(50))  # original_payment|store_credit
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    # pending|processing|completed|failed
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    reason: Mapped[str | None] = mapped_column(String(255))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The return service's own indexes on refunds (its schema's @@index and @unique).
service_index("refunds_return_request_id_idx", ReturnRefund.return_request_id)
service_index("refunds_status_idx", ReturnRefund.status)
service_index("refunds_created_at_idx", ReturnRefund.created_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_refunds_payment_id", ReturnRefund.payment_id,
            serves="logical reference lookups by payment_id (batch loader, check-refs)")
plain_index("ix_refunds_order_id", ReturnRefund.order_id,
            serves="logical reference lookups by order_id (batch loader, check-refs)")
plain_index("ix_refunds_user_id", ReturnRefund.user_id,
            serves="logical reference lookups by user_id (batch loader, check-refs)")


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
plain_index("ix_return_requests_return_reason", ReturnRequest.return_reason, serves="the returns list's reason filter")
plain_index("ix_return_requests_refund_method", ReturnRequest.refund_method,
            serves="the returns list's refund method filter")
prefix_index("ix_return_requests_rma_number_prefix", ReturnRequest.rma_number, "search: RMA number prefix")
prefix_index("ix_return_authorizations_rma_number_prefix", ReturnAuthorization.rma_number,
             "search: RMA number prefix (return parcels)")
prefix_index("ix_return_authorizations_tracking_number_prefix", ReturnAuthorization.tracking_number,
             "search: return parcel tracking number prefix")
