"""notification_db: the notification service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import plain_index, service_index
from console.models.types import (JSONType, NotificationLogStatus, NotificationStatus, NotificationType,
                                  UTCDateTime, Vocabulary, foreign_key, new_id, sort_indexes, utcnow)


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
        *sort_indexes("notifications", "created_at", "status", "subject", screen="the notification log"),
        Index("ix_notifications_template_id_created_at_status", "template_id", "created_at", "status",
              info={"serves": "the templates list: each template's use in the last 30 days"}),
        Index("ix_notifications_type_created_at_id", "type", "created_at", "id",
              info={"serves": "the notification log's type filter"}),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(Text)  # references auth.users.id *logical*
    type: Mapped[str] = mapped_column(NotificationType)  # EMAIL|SMS|PUSH|IN_APP
    template_id: Mapped[str | None] = mapped_column(
        Text, foreign_key("email_templates.id", "notifications_template_id_fkey", on_delete="SET NULL"))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    # PENDING|SENT|DELIVERED|FAILED|BOUNCED
    status: Mapped[str] = mapped_column(NotificationStatus, server_default="PENDING")
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The notification service's own indexes on notifications (its schema's @@index and @unique).
service_index("notifications_user_id_idx", Notification.user_id)
service_index("notifications_type_idx", Notification.type)
service_index("notifications_status_idx", Notification.status)
service_index("notifications_created_at_idx", Notification.created_at)
service_index("notifications_user_id_status_created_at_idx", Notification.user_id, Notification.status,
              Notification.created_at)
service_index("notifications_status_scheduled_at_idx", Notification.status, Notification.scheduled_at)


class EmailTemplate(NotificationModel):
    __tablename__ = "email_templates"
    # The templates list's sort columns (console/screens/templates.py).
    __table_args__ = sort_indexes("email_templates", "name", "updated_at", screen="the templates list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    variables: Mapped[Any | None] = mapped_column(JSONType)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The notification service's own indexes on email_templates (its schema's @@index and @unique).
service_index("email_templates_name_key", EmailTemplate.name, unique=True)


class NotificationPreference(NotificationModel):
    __tablename__ = "notification_preferences"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(Text)  # references auth.users.id *logical*
    notification_type: Mapped[str] = mapped_column(Text)
    email_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    sms_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    push_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The notification service's own indexes on notification_preferences (its schema's @@index and @unique).
service_index("notification_preferences_user_id_idx", NotificationPreference.user_id)
service_index("notification_preferences_user_id_notification_type_key", NotificationPreference.user_id,
              NotificationPreference.notification_type, unique=True)


class NotificationLog(NotificationModel):
    __tablename__ = "notification_logs"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    notification_id: Mapped[str] = mapped_column(
        Text, foreign_key("notifications.id", "notification_logs_notification_id_fkey", on_delete="CASCADE"))
    status: Mapped[str] = mapped_column(NotificationLogStatus)  # SENT|DELIVERED|FAILED|BOUNCED
    provider: Mapped[str] = mapped_column(Text)  # the notification log's provider filter
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    provider_response: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The notification service's own indexes on notification_logs (its schema's @@index and @unique).
service_index("notification_logs_notification_id_key", NotificationLog.notification_id, unique=True)
service_index("notification_logs_created_at_idx", NotificationLog.created_at)
service_index("notification_logs_status_idx", NotificationLog.status)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_notification_logs_provider", NotificationLog.provider,
            serves="the notification log's provider filter")


# The notification log's "subject starts with" filter compares lower(subject) by prefix:
# on PostgreSQL (C.UTF-8 collation) only a varchar_pattern_ops index answers LIKE 'x%'.
Index("ix_notifications_subject_lower_prefix", func.lower(Notification.subject).label("subject_lower"),
      postgresql_ops={"subject_lower": "varchar_pattern_ops"},
      info={"serves": "the notification log's subject filter (starts with)"})
