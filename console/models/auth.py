"""auth_db: the auth service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import contains_index, prefix_index
from console.models.types import JSONType, TextArray, UTCDateTime, json_text, new_id, sort_indexes, utcnow


class AuthModel(db.Model):
    __abstract__ = True
    __bind_key__ = "auth"


class User(AuthModel):
    __tablename__ = "users"
    # The staff list's sort columns (console/screens/staff.py).
    __table_args__ = sort_indexes("users", "created_at", "email")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    email: Mapped[str | None] = mapped_column(String, unique=True)
    password_hash: Mapped[str | None] = mapped_column(String)
    email_verified: Mapped[bool | None] = mapped_column(Boolean)
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    failed_login_attempts: Mapped[int | None] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mfa_enabled: Mapped[bool | None] = mapped_column(Boolean)
    mfa_secret: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Role(AuthModel):
    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String, unique=True)
    description: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserRole(AuthModel):
    __tablename__ = "user_roles"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("users.id"), index=True)
    role_id: Mapped[str | None] = mapped_column(String, ForeignKey("roles.id"), index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class RefreshToken(AuthModel):
    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    token: Mapped[str | None] = mapped_column(String, unique=True)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("users.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String, ForeignKey("devices.id"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    revoked: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class Device(AuthModel):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("users.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String, unique=True)
    device_name: Mapped[str | None] = mapped_column(String)
    device_type: Mapped[str | None] = mapped_column(String)
    os: Mapped[str | None] = mapped_column(String)
    browser: Mapped[str | None] = mapped_column(String)
    is_trusted: Mapped[bool | None] = mapped_column(Boolean)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class UserSession(AuthModel):
    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("users.id"), index=True)
    session_token: Mapped[str | None] = mapped_column(String, unique=True)
    refresh_token_id: Mapped[str | None] = mapped_column(String, ForeignKey("refresh_tokens.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String, ForeignKey("devices.id"), index=True)
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class LoginHistory(AuthModel):
    __tablename__ = "login_history"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("users.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String, ForeignKey("devices.id"), index=True)
    status: Mapped[str | None] = mapped_column(String, index=True)
    ip_address: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class SecurityAuditLog(AuthModel):
    __tablename__ = "security_audit_logs"
    # The activity list's sort columns (console/screens/activity.py).
    __table_args__ = sort_indexes("security_audit_logs", "created_at", "action")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("users.id"), index=True)
    action: Mapped[str | None] = mapped_column(String, index=True)
    ip_address: Mapped[str | None] = mapped_column(String)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


# The history of one thing (a product's stock changes) and of one staff member's
# actions, newest first, each read from one index however long the trail grows.
Index("ix_security_audit_logs_entity_id_created_at",
      json_text(SecurityAuditLog.__table__.c.metadata, "entity_id"), SecurityAuditLog.__table__.c.created_at)
Index("ix_security_audit_logs_user_id_action_created_at", SecurityAuditLog.__table__.c.user_id,
      SecurityAuditLog.__table__.c.action, SecurityAuditLog.__table__.c.created_at)


class PasswordResetToken(AuthModel):
    __tablename__ = "password_reset_tokens"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    token: Mapped[str | None] = mapped_column(String, unique=True)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    used: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class EmailVerificationToken(AuthModel):
    __tablename__ = "email_verification_tokens"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    token: Mapped[str | None] = mapped_column(String, unique=True)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    verified: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class MfaBackupCode(AuthModel):
    __tablename__ = "mfa_backup_codes"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    # The diagram draws no FK here (unlike the other auth tables), so none is added;
    # the reference registry still checks it.
    user_id: Mapped[str | None] = mapped_column(String, index=True)
    code: Mapped[str | None] = mapped_column(String, index=True)
    used: Mapped[bool | None] = mapped_column(Boolean)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class RateLimit(AuthModel):
    __tablename__ = "rate_limits"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    key: Mapped[str | None] = mapped_column(String, unique=True)
    count: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_users_email_prefix", User.email, "search: account email prefix")
contains_index("ix_users_email_trgm", User.__table__, func.lower(User.email), "customer filters: account email contains")
