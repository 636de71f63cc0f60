"""payment_db: the payment service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import figure_index, prefix_index
from console.models.types import JSONType, TextArray, UTCDateTime, Vocabulary, new_id, sort_indexes, utcnow


class PaymentModel(db.Model):
    __abstract__ = True
    __bind_key__ = "payment"


# The payment service's vocabularies, as its schema's comments give them: statuses and
# method types in lower case, transaction types and statuses and audit event types in
# upper case. Providers are STRIPE and PAYPAL; the payment service executes their refunds.
PAYMENT_STATUSES = Vocabulary("pending", "processing", "succeeded", "failed", "cancelled", "refunded")
PAYMENT_PROVIDERS = Vocabulary("STRIPE", "PAYPAL")
TRANSACTION_TYPES = Vocabulary("CHARGE", "REFUND", "VOID")
TRANSACTION_STATUSES = Vocabulary("PENDING", "SUCCEEDED", "FAILED")
REFUND_STATUSES = Vocabulary("pending", "processing", "completed", "failed")
WEBHOOK_STATUSES = Vocabulary("pending", "processed", "failed")
PAYMENT_METHOD_TYPES = Vocabulary("credit_card", "debit_card", "paypal", "bank_account")
AUDIT_EVENT_TYPES = Vocabulary("PAYMENT_CREATED", "PAYMENT_PROCESSED", "PAYMENT_FAILED", "PAYMENT_VOIDED",
                               "REFUND_INITIATED", "REFUND_COMPLETED", "REFUND_FAILED")


class Payment(PaymentModel):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    order_id: Mapped[str | None] = mapped_column(String, index=True)  # references order.orders.id *logical*
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    payment_method_id: Mapped[str | None] = mapped_column(String, ForeignKey("payment_methods.id"), index=True)
    status: Mapped[str | None] = mapped_column(String, index=True)  # PAYMENT_STATUSES
    payment_provider: Mapped[str | None] = mapped_column(String)  # PAYMENT_PROVIDERS
    provider_payment_id: Mapped[str | None] = mapped_column(String, unique=True)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String)
    description: Mapped[str | None] = mapped_column(String)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PaymentTransaction(PaymentModel):
    __tablename__ = "payment_transactions"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    payment_id: Mapped[str | None] = mapped_column(String, ForeignKey("payments.id"), index=True)
    transaction_type: Mapped[str | None] = mapped_column(String)  # TRANSACTION_TYPES
    status: Mapped[str | None] = mapped_column(String, index=True)  # TRANSACTION_STATUSES
    provider_transaction_id: Mapped[str | None] = mapped_column(String, index=True)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String)
    provider_response: Mapped[Any | None] = mapped_column(JSONType)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class PaymentRefund(PaymentModel):
    __tablename__ = "payment_refunds"
    # The refunds list's sort columns (console/screens/refunds.py).
    __table_args__ = sort_indexes("payment_refunds", "created_at", "amount", "status")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    payment_id: Mapped[str | None] = mapped_column(String, ForeignKey("payments.id"), index=True)
    order_id: Mapped[str | None] = mapped_column(String, index=True)  # references order.orders.id *logical*
    reason: Mapped[str | None] = mapped_column(String)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String)
    status: Mapped[str | None] = mapped_column(String, index=True)  # REFUND_STATUSES
    provider_refund_id: Mapped[str | None] = mapped_column(String, index=True)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PaymentMethod(PaymentModel):
    __tablename__ = "payment_methods"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    type: Mapped[str | None] = mapped_column(String)  # PAYMENT_METHOD_TYPES
    provider: Mapped[str | None] = mapped_column(String)  # PAYMENT_PROVIDERS
    provider_token: Mapped[str | None] = mapped_column(String)  # encrypted
    last4: Mapped[str | None] = mapped_column(String)
    card_type: Mapped[str | None] = mapped_column(String)
    expiry_month: Mapped[str | None] = mapped_column(String)
    expiry_year: Mapped[str | None] = mapped_column(String)
    is_default: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PaymentWebhook(PaymentModel):
    __tablename__ = "payment_webhooks"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    provider: Mapped[str | None] = mapped_column(String)  # PAYMENT_PROVIDERS
    event_type: Mapped[str | None] = mapped_column(String, index=True)
    provider_event_id: Mapped[str | None] = mapped_column(String, unique=True)
    payload: Mapped[Any | None] = mapped_column(JSONType)
    status: Mapped[str | None] = mapped_column(String, index=True)  # WEBHOOK_STATUSES
    payment_id: Mapped[str | None] = mapped_column(String, ForeignKey("payments.id"), index=True)
    error: Mapped[str | None] = mapped_column(String)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class PaymentIdempotencyKey(PaymentModel):
    __tablename__ = "payment_idempotency_keys"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    key: Mapped[str | None] = mapped_column(String, unique=True)
    payment_id: Mapped[str | None] = mapped_column(String, index=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class PaymentAuditLog(PaymentModel):
    __tablename__ = "payment_audit_logs"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    event_type: Mapped[str | None] = mapped_column(String, index=True)  # AUDIT_EVENT_TYPES
    user_id: Mapped[str | None] = mapped_column(String, index=True)
    payment_id: Mapped[str | None] = mapped_column(String, index=True)
    order_id: Mapped[str | None] = mapped_column(String, index=True)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String)
    ip_address: Mapped[str | None] = mapped_column(String)
    success: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String)
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_payments_provider_payment_id_prefix", Payment.provider_payment_id,
             "search: payment provider id prefix")
figure_index("ix_payment_refunds_created_at_figures", PaymentRefund.created_at, include=("status", "currency", "amount"),
             serves="dashboard: refunds completed in a period and the one before (read from the index alone)")
