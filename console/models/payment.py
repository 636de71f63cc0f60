"""payment_db: the payment service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Index, String, Text, and_, literal_column, or_, text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import figure_index, plain_index, prefix_index, service_index
from console.models.types import (JSONType, Money, UTCDateTime, Vocabulary, foreign_key, json_text, new_id,
                                  sort_indexes, utcnow)


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

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    # references order.orders.id *logical*
    order_id: Mapped[str] = mapped_column("orderId", Text, key="order_id")
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    payment_method_id: Mapped[str | None] = mapped_column(
        "paymentMethodId", Text,
        foreign_key("payment_methods.id", "payments_paymentMethodId_fkey", on_delete="SET NULL"),
        key="payment_method_id")
    # PAYMENT_STATUSES
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    # PAYMENT_PROVIDERS
    payment_provider: Mapped[str] = mapped_column("paymentProvider", Text, key="payment_provider")
    provider_payment_id: Mapped[str | None] = mapped_column(
        "providerPaymentId", Text, key="provider_payment_id")
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(Text, server_default="USD")
    description: Mapped[str | None] = mapped_column(String(500))
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    processed_at: Mapped[datetime | None] = mapped_column("processedAt", UTCDateTime, key="processed_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The payment service's own indexes on payments (its schema's @@index and @unique).
service_index("payments_providerPaymentId_key", Payment.provider_payment_id, unique=True)
service_index("payments_orderId_idx", Payment.order_id)
service_index("payments_userId_idx", Payment.user_id)
service_index("payments_status_idx", Payment.status)
service_index("payments_amount_idx", Payment.amount)
service_index("payments_createdAt_idx", Payment.created_at)
service_index("payments_userId_status_createdAt_idx", Payment.user_id, Payment.status, Payment.created_at)
service_index("payments_status_createdAt_idx", Payment.status, Payment.created_at)


class PaymentTransaction(PaymentModel):
    __tablename__ = "payment_transactions"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    payment_id: Mapped[str] = mapped_column(
        "paymentId", Text,
        foreign_key("payments.id", "payment_transactions_paymentId_fkey", on_delete="CASCADE"),
        key="payment_id")
    # TRANSACTION_TYPES
    transaction_type: Mapped[str] = mapped_column("transactionType", Text, key="transaction_type")
    status: Mapped[str] = mapped_column(Text)  # TRANSACTION_STATUSES
    provider_transaction_id: Mapped[str | None] = mapped_column(
        "providerTransactionId", Text, key="provider_transaction_id")
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(Text)
    provider_response: Mapped[Any | None] = mapped_column(
        "providerResponse", JSONType, key="provider_response")
    processed_at: Mapped[datetime | None] = mapped_column("processedAt", UTCDateTime, key="processed_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The payment service's own indexes on payment_transactions (its schema's @@index and @unique).
service_index("payment_transactions_paymentId_idx", PaymentTransaction.payment_id)
service_index("payment_transactions_createdAt_idx", PaymentTransaction.created_at)
service_index("payment_transactions_paymentId_createdAt_idx", PaymentTransaction.payment_id,
              PaymentTransaction.created_at)


class PaymentRefund(PaymentModel):
    __tablename__ = "refunds"
    # The refunds list's sort columns (console/screens/refunds.py).
    __table_args__ = sort_indexes("refunds", "created_at", "amount", "status", screen="the refunds list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    payment_id: Mapped[str] = mapped_column(
        "paymentId", Text, foreign_key("payments.id", "refunds_paymentId_fkey", on_delete="CASCADE"),
        key="payment_id")
    # references order.orders.id *logical*
    order_id: Mapped[str] = mapped_column("orderId", Text, key="order_id")
    reason: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(Text, server_default="USD")
    status: Mapped[str] = mapped_column(Text, server_default="pending")  # REFUND_STATUSES
    provider_refund_id: Mapped[str | None] = mapped_column("providerRefundId", Text, key="provider_refund_id")
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    processed_at: Mapped[datetime | None] = mapped_column("processedAt", UTCDateTime, key="processed_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The payment service's own indexes on refunds (its schema's @@index and @unique).
service_index("refunds_paymentId_idx", PaymentRefund.payment_id)
service_index("refunds_status_idx", PaymentRefund.status)
service_index("refunds_createdAt_idx", PaymentRefund.created_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_refunds_order_id", PaymentRefund.order_id,
            serves="logical reference lookups by order_id (batch loader, check-refs)")

# The steps the console records in a refund's metadata ("steps": {step: state}) while it
# follows the refund through (console/workflows/refunds.py), in order.
REFUND_STEPS = ("audit", "outcome", "order", "return", "notify")


def refund_steps_pending():
    """SQL: a step recorded as pending (what needs_attention() in console/workflows/refunds.py
    says of one refund), with "pending" written into the SQL, not bound (see below)."""
    pending = literal_column("'pending'")
    return or_(*(json_text(PaymentRefund.metadata_, "steps", step) == pending for step in REFUND_STEPS))


def refund_needs_attention():
    """SQL: the refunds list's "needs attention": a step pending, and the refund not
    failed (a failed one is retried from its own filter). Its constants are written into
    the SQL, not bound, so the partial index below, whose condition this is, serves the
    list's filter and count whatever plan the server picks."""
    failed = literal_column(f"'{REFUND_STATUSES.FAILED}'")
    return and_(refund_steps_pending(), or_(PaymentRefund.status.is_(None), PaymentRefund.status != failed))


Index("ix_refunds_attention_created_at_id", PaymentRefund.created_at, PaymentRefund.id,
      postgresql_where=refund_needs_attention(), sqlite_where=refund_needs_attention(),
      info={"serves": "the refunds list's needs-attention filter and count"})


# A refund still with its provider; and the steps of a refund that need the money back:
# with a deferred provider they wait ("waiting") until the provider has completed it.
REFUND_OPEN_STATUSES = (REFUND_STATUSES.PENDING, REFUND_STATUSES.PROCESSING)
REFUND_WAITING_STEPS = ("order", "return", "notify")


def refund_awaits_provider():
    """SQL: the refund is still with its provider (pending or processing), or answered
    with steps still waiting to be followed here (what awaits_provider() in
    console/workflows/refunds.py says of one refund). Constants written into the SQL, as
    above, so the partial index below serves the follow-up job whatever the plan."""
    waiting = literal_column("'waiting'")
    return or_(PaymentRefund.status.in_([literal_column(f"'{status}'") for status in REFUND_OPEN_STATUSES]),
               *(json_text(PaymentRefund.metadata_, "steps", step) == waiting for step in REFUND_WAITING_STEPS))


Index("ix_refunds_awaiting_provider_created_at_id", PaymentRefund.created_at, PaymentRefund.id,
      postgresql_where=refund_awaits_provider(), sqlite_where=refund_awaits_provider(),
      info={"serves": "the refund follow-up job (console sync-refunds): refunds that wait for their provider"})


class PaymentMethod(PaymentModel):
    __tablename__ = "payment_methods"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    type: Mapped[str] = mapped_column(Text)  # PAYMENT_METHOD_TYPES
    provider: Mapped[str] = mapped_column(Text)  # PAYMENT_PROVIDERS
    # encrypted
    provider_token: Mapped[str | None] = mapped_column("providerToken", String(500), key="provider_token")
    last4: Mapped[str | None] = mapped_column(String(4))
    card_type: Mapped[str | None] = mapped_column("cardType", String(20), key="card_type")
    expiry_month: Mapped[str | None] = mapped_column("expiryMonth", String(2), key="expiry_month")
    expiry_year: Mapped[str | None] = mapped_column("expiryYear", String(4), key="expiry_year")
    is_default: Mapped[bool] = mapped_column(
        "isDefault", Boolean, key="is_default", server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The payment service's own indexes on payment_methods (its schema's @@index and @unique).
service_index("payment_methods_userId_idx", PaymentMethod.user_id)


class PaymentWebhook(PaymentModel):
    __tablename__ = "payment_webhooks"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    payment_id: Mapped[str | None] = mapped_column(
        "paymentId", Text,
        foreign_key("payments.id", "payment_webhooks_paymentId_fkey", on_delete="SET NULL"), key="payment_id")
    provider: Mapped[str] = mapped_column(Text)  # PAYMENT_PROVIDERS
    event_type: Mapped[str] = mapped_column("eventType", String(100), key="event_type")
    provider_event_id: Mapped[str] = mapped_column("providerEventId", Text, key="provider_event_id")
    payload: Mapped[Any] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(Text, server_default="pending")  # WEBHOOK_STATUSES
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column("processedAt", UTCDateTime, key="processed_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The payment service's own indexes on payment_webhooks (its schema's @@index and @unique).
service_index("payment_webhooks_providerEventId_key", PaymentWebhook.provider_event_id, unique=True)
service_index("payment_webhooks_status_idx", PaymentWebhook.status)
service_index("payment_webhooks_createdAt_idx", PaymentWebhook.created_at)


class PaymentIdempotencyKey(PaymentModel):
    __tablename__ = "idempotency_keys"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(Text)
    payment_id: Mapped[str] = mapped_column("paymentId", Text, key="payment_id")
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, key="expires_at")


# The payment service's own indexes on idempotency_keys (its schema's @@index and @unique).
service_index("idempotency_keys_key_key", PaymentIdempotencyKey.key, unique=True)
service_index("idempotency_keys_key_idx", PaymentIdempotencyKey.key)
service_index("idempotency_keys_expiresAt_idx", PaymentIdempotencyKey.expires_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_idempotency_keys_payment_id", PaymentIdempotencyKey.payment_id,
            serves="logical reference lookups by payment_id (batch loader, check-refs)")
plain_index("ix_idempotency_keys_user_id", PaymentIdempotencyKey.user_id,
            serves="logical reference lookups by user_id (batch loader, check-refs)")


class PaymentAuditLog(PaymentModel):
    __tablename__ = "audit_logs"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    event_type: Mapped[str] = mapped_column("eventType", Text, key="event_type")
    user_id: Mapped[str | None] = mapped_column("userId", Text, key="user_id")
    payment_id: Mapped[str | None] = mapped_column("paymentId", Text, key="payment_id")
    order_id: Mapped[str | None] = mapped_column("orderId", Text, key="order_id")
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column("ipAddress", Text, key="ip_address")
    user_agent: Mapped[str | None] = mapped_column("userAgent", Text, key="user_agent")
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    success: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The payment service's own indexes on audit_logs (its schema's @@index and @unique).
service_index("audit_logs_eventType_idx", PaymentAuditLog.event_type)
service_index("audit_logs_userId_idx", PaymentAuditLog.user_id)
service_index("audit_logs_paymentId_idx", PaymentAuditLog.payment_id)
service_index("audit_logs_orderId_idx", PaymentAuditLog.order_id)
service_index("audit_logs_timestamp_idx", PaymentAuditLog.timestamp)
service_index("audit_logs_userId_timestamp_idx", PaymentAuditLog.user_id, PaymentAuditLog.timestamp)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_payments_provider_payment_id_prefix", Payment.provider_payment_id,
             "search: payment provider id prefix")
figure_index("ix_refunds_created_at_figures", PaymentRefund.created_at, include=("status", "currency", "amount"),
             serves="dashboard: refunds completed in a period and the one before (read from the index alone)")
