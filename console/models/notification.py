"""notification_db: the notification service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.types import JSONType, TextArray, UTCDateTime, new_id, utcnow


class NotificationModel(db.Model):
    __abstract__ = True
    __bind_key__ = "notification"


class Notification(NotificationModel):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    type: Mapped[str | None] = mapped_column(String)  # EMAIL|SMS|PUSH|IN_APP
    template_id: Mapped[str | None] = mapped_column(String, ForeignKey("email_templates.id"), index=True)
    subject: Mapped[str | None] = mapped_column(String)
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String, index=True)  # PENDING|SENT|DELIVERED|FAILED|BOUNCED
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EmailTemplate(NotificationModel):
    __tablename__ = "email_templates"

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
    status: Mapped[str | None] = mapped_column(String, index=True)  # SENT|DELIVERED|FAILED|BOUNCED
    provider: Mapped[str | None] = mapped_column(String)
    provider_message_id: Mapped[str | None] = mapped_column(String, index=True)
    provider_response: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
