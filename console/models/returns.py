"""return_db (module named returns because `return` is a keyword): the return service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import prefix_index
from console.models.types import JSONType, TextArray, UTCDateTime, new_id, sort_indexes, utcnow


class ReturnModel(db.Model):
    __abstract__ = True
    __bind_key__ = "return"


class ReturnRequest(ReturnModel):
    __tablename__ = "return_requests"
    # The returns list's sort columns (console/screens/returns.py).
    __table_args__ = sort_indexes("return_requests", "created_at", "requested_at", "rma_number", "refund_amount", "status")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    order_id: Mapped[str | None] = mapped_column(String, index=True)  # references order.orders.id *logical*
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    rma_number: Mapped[str | None] = mapped_column(String, unique=True)
    status: Mapped[str | None] = mapped_column(String, index=True)  # pending|approved|rejected|in_transit|received|processed|closed
    return_reason: Mapped[str | None] = mapped_column(String)  # defective|wrong_item|not_as_described|changed_mind|other
    return_notes: Mapped[str | None] = mapped_column(Text)
    refund_method: Mapped[str | None] = mapped_column(String)  # original_payment|store_credit|exchange
    refund_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String)
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReturnItem(ReturnModel):
    __tablename__ = "return_items"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    return_request_id: Mapped[str | None] = mapped_column(String, ForeignKey("return_requests.id"), index=True)
    order_item_id: Mapped[str | None] = mapped_column(String, index=True)  # references order.order_items.id *logical*
    product_id: Mapped[str | None] = mapped_column(String, index=True)  # references product.products.id *logical*
    variant_id: Mapped[str | None] = mapped_column(String, index=True)  # references product.product_variants.id *logical*
    product_name: Mapped[str | None] = mapped_column(String)
    product_sku: Mapped[str | None] = mapped_column(String)
    quantity: Mapped[int | None] = mapped_column(Integer)
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    refund_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    return_reason: Mapped[str | None] = mapped_column(String)
    condition: Mapped[str | None] = mapped_column(String)  # new|used|damaged|defective
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReturnAuthorization(ReturnModel):
    __tablename__ = "return_authorizations"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    return_request_id: Mapped[str | None] = mapped_column(String, ForeignKey("return_requests.id"), unique=True)
    rma_number: Mapped[str | None] = mapped_column(String, unique=True)
    return_address: Mapped[Any | None] = mapped_column(JSONType)
    return_instructions: Mapped[str | None] = mapped_column(Text)
    tracking_number: Mapped[str | None] = mapped_column(String, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReturnStatusHistory(ReturnModel):
    __tablename__ = "return_status_history"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    return_request_id: Mapped[str | None] = mapped_column(String, ForeignKey("return_requests.id"), index=True)
    status: Mapped[str | None] = mapped_column(String, index=True)
    previous_status: Mapped[str | None] = mapped_column(String)
    changed_by: Mapped[str | None] = mapped_column(String, index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class ReturnTracking(ReturnModel):
    __tablename__ = "return_tracking"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    authorization_id: Mapped[str | None] = mapped_column(String, ForeignKey("return_authorizations.id"), index=True)
    status: Mapped[str | None] = mapped_column(String, index=True)
    location: Mapped[str | None] = mapped_column(String)
    description: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    carrier_data: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class ReturnRefund(ReturnModel):
    __tablename__ = "return_refunds"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    return_request_id: Mapped[str | None] = mapped_column(String, ForeignKey("return_requests.id"), index=True)
    payment_id: Mapped[str | None] = mapped_column(String, index=True)  # references payment.payments.id *logical*
    order_id: Mapped[str | None] = mapped_column(String, index=True)  # references order.orders.id *logical*
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    refund_method: Mapped[str | None] = mapped_column(String)  # original_payment|store_credit
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String)
    status: Mapped[str | None] = mapped_column(String, index=True)  # pending|processing|completed|failed
    reason: Mapped[str | None] = mapped_column(String)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_return_requests_rma_number_prefix", ReturnRequest.rma_number, "search: RMA number prefix")
prefix_index("ix_return_authorizations_rma_number_prefix", ReturnAuthorization.rma_number,
             "search: RMA number prefix (return parcels)")
prefix_index("ix_return_authorizations_tracking_number_prefix", ReturnAuthorization.tracking_number,
             "search: return parcel tracking number prefix")
