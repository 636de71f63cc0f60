"""notification_db: the notification service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.types import JSONType, TextArray, UTCDateTime, Vocabulary, new_id, sort_indexes, utcnow


class NotificationModel(db.Model):
    __abstract__ = True
    __bind_key__ = "notification"


# The labels of notification_db's native enums (notification_type, notification_status,
# notification_log_status).
NOTIFICATION_TYPES = Vocabulary("EMAIL", "SMS", "PUSH", "IN_APP")
NOTIFICATION_STATUSES = Vocabulary("PENDING", "SENT", "DELIVERED", "FAILED", "BOUNCED")
NOTIFICATION_LOG_STATUSES = Vocabulary("SENT", "DELIVERED", "FAILED", "BOUNCED")


class Notification(NotificationModel):
    __tablename__ = "notifications"
    # The notification log's sort columns, the templates list's use per template in the
    # last 30 days (index-only), and the log's type filter (console/screens/notifications.py,
    # console/screens/templates.py).
    __table_args__ = (
        *sort_indexes("notifications", "created_at", "status", "subject"),
        Index("ix_notifications_template_id_created_at_status", "template_id", "created_at", "status"),
        Index("ix_notifications_type_created_at_id", "type", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    type: Mapped[str | None] = mapped_column(String)  # NOTIFICATION_TYPES
    template_id: Mapped[str | None] = mapped_column(String, ForeignKey("email_templates.id"), index=True)
    subject: Mapped[str | None] = mapped_column(String)
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String, index=True)  # NOTIFICATION_STATUSES
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EmailTemplate(NotificationModel):
    __tablename__ = "email_templates"
    # The templates list's sort columns (console/screens/templates.py).
    __table_args__ = sort_indexes("email_templates", "name", "updated_at")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String, unique=True)
    subject: Mapped[str | None] = mapped_column(String)
    body_html: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    variables: Mapped[Any | None] = mapped_column(JSONType)
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationPreference(NotificationModel):
    __tablename__ = "notification_preferences"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    notification_type: Mapped[str | None] = mapped_column(String)
    email_enabled: Mapped[bool | None] = mapped_column(Boolean)
    sms_enabled: Mapped[bool | None] = mapped_column(Boolean)
    push_enabled: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationLog(NotificationModel):
    __tablename__ = "notification_logs"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    notification_id: Mapped[str | None] = mapped_column(String, ForeignKey("notifications.id"), unique=True)
    status: Mapped[str | None] = mapped_column(String, index=True)  # NOTIFICATION_LOG_STATUSES
    provider: Mapped[str | None] = mapped_column(String, index=True)  # the notification log's provider filter
    provider_message_id: Mapped[str | None] = mapped_column(String, index=True)
    provider_response: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


# The notification log's "subject starts with" filter compares lower(subject) by prefix:
# on PostgreSQL (C.UTF-8 collation) only a varchar_pattern_ops index answers LIKE 'x%'.
Index("ix_notifications_subject_lower_prefix", func.lower(Notification.subject).label("subject_lower"),
      postgresql_ops={"subject_lower": "varchar_pattern_ops"})
