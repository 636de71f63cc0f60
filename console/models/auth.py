"""auth_db: the auth service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import contains_index, plain_index, prefix_index, service_index
from console.models.types import (JSONType, TextArray, UTCDateTime, foreign_key, json_text, new_id,
                                  sort_indexes, utcnow)


class AuthModel(db.Model):
    __abstract__ = True
    __bind_key__ = "auth"


class User(AuthModel):
    __tablename__ = "users"
    # The staff list's sort columns (console/screens/staff.py).
    __table_args__ = sort_indexes("users", "created_at", "email", screen="the staff list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column("passwordHash", Text, key="password_hash")
    email_verified: Mapped[bool] = mapped_column(
        "emailVerified", Boolean, key="email_verified", server_default=text("false"))
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)
    failed_login_attempts: Mapped[int] = mapped_column(
        "failedLoginAttempts", Integer, key="failed_login_attempts", server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column("lockedUntil", UTCDateTime, key="locked_until")
    mfa_enabled: Mapped[bool] = mapped_column(
        "mfaEnabled", Boolean, key="mfa_enabled", server_default=text("false"))
    mfa_secret: Mapped[str | None] = mapped_column("mfaSecret", Text, key="mfa_secret")
    # Backup codes (encrypted)
    mfa_backup_codes: Mapped[list[str] | None] = mapped_column(
        "mfaBackupCodes", TextArray, key="mfa_backup_codes")


# The auth service's own indexes on users (its schema's @@index and @unique).
service_index("users_email_key", User.email, unique=True)
service_index("users_email_idx", User.email)
service_index("users_isActive_idx", User.is_active)
service_index("users_lockedUntil_idx", User.locked_until)
service_index("users_mfaEnabled_idx", User.mfa_enabled)


class Role(AuthModel):
    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The auth service's own indexes on roles (its schema's @@index and @unique).
service_index("roles_name_key", Role.name, unique=True)


class UserRole(AuthModel):
    __tablename__ = "user_roles"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, foreign_key("users.id", "user_roles_userId_fkey", on_delete="CASCADE"), key="user_id")
    role_id: Mapped[str] = mapped_column(
        "roleId", Text, foreign_key("roles.id", "user_roles_roleId_fkey", on_delete="CASCADE"), key="role_id")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The auth service's own indexes on user_roles (its schema's @@index and @unique).
service_index("user_roles_userId_idx", UserRole.user_id)
service_index("user_roles_roleId_idx", UserRole.role_id)
service_index("user_roles_userId_roleId_key", UserRole.user_id, UserRole.role_id, unique=True)


class RefreshToken(AuthModel):
    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    token: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, foreign_key("users.id", "refresh_tokens_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, key="expires_at")
    revoked: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    revoked_at: Mapped[datetime | None] = mapped_column("revokedAt", UTCDateTime, key="revoked_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    device_id: Mapped[str | None] = mapped_column(
        "deviceId", Text, foreign_key("devices.id", "refresh_tokens_deviceId_fkey", on_delete="SET NULL"),
        key="device_id")
    ip_address: Mapped[str | None] = mapped_column("ipAddress", Text, key="ip_address")
    user_agent: Mapped[str | None] = mapped_column("userAgent", Text, key="user_agent")


# The auth service's own indexes on refresh_tokens (its schema's @@index and @unique).
service_index("refresh_tokens_token_key", RefreshToken.token, unique=True)
service_index("refresh_tokens_token_idx", RefreshToken.token)
service_index("refresh_tokens_userId_idx", RefreshToken.user_id)
service_index("refresh_tokens_expiresAt_idx", RefreshToken.expires_at)
service_index("refresh_tokens_deviceId_idx", RefreshToken.device_id)


class Device(AuthModel):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, foreign_key("users.id", "devices_userId_fkey", on_delete="CASCADE"), key="user_id")
    device_id: Mapped[str] = mapped_column("deviceId", Text, key="device_id")
    device_name: Mapped[str | None] = mapped_column("deviceName", Text, key="device_name")
    device_type: Mapped[str] = mapped_column("deviceType", Text, key="device_type")
    os: Mapped[str | None] = mapped_column(Text)
    browser: Mapped[str | None] = mapped_column(Text)
    # Full user agent string
    user_agent: Mapped[str | None] = mapped_column("userAgent", Text, key="user_agent")
    ip_address: Mapped[str | None] = mapped_column("ipAddress", Text, key="ip_address")
    country: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    is_trusted: Mapped[bool] = mapped_column(
        "isTrusted", Boolean, key="is_trusted", server_default=text("false"))
    last_used_at: Mapped[datetime] = mapped_column(
        "lastUsedAt", UTCDateTime, key="last_used_at", default=utcnow,
        server_default=text("CURRENT_TIMESTAMP"))
    first_seen_at: Mapped[datetime] = mapped_column(
        "firstSeenAt", UTCDateTime, key="first_seen_at", default=utcnow,
        server_default=text("CURRENT_TIMESTAMP"))
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The auth service's own indexes on devices (its schema's @@index and @unique).
service_index("devices_deviceId_key", Device.device_id, unique=True)
service_index("devices_userId_idx", Device.user_id)
service_index("devices_deviceId_idx", Device.device_id)
service_index("devices_userId_isActive_idx", Device.user_id, Device.is_active)
service_index("devices_lastUsedAt_idx", Device.last_used_at)


class UserSession(AuthModel):
    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, foreign_key("users.id", "user_sessions_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    session_token: Mapped[str] = mapped_column("sessionToken", Text, key="session_token")
    refresh_token_id: Mapped[str | None] = mapped_column(
        "refreshTokenId", Text,
        foreign_key("refresh_tokens.id", "user_sessions_refreshTokenId_fkey", on_delete="CASCADE"),
        key="refresh_token_id")
    device_id: Mapped[str | None] = mapped_column(
        "deviceId", Text, foreign_key("devices.id", "user_sessions_deviceId_fkey", on_delete="SET NULL"),
        key="device_id")
    ip_address: Mapped[str | None] = mapped_column("ipAddress", Text, key="ip_address")
    user_agent: Mapped[str | None] = mapped_column("userAgent", Text, key="user_agent")
    country: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    last_activity_at: Mapped[datetime] = mapped_column(
        "lastActivityAt", UTCDateTime, key="last_activity_at", default=utcnow,
        server_default=text("CURRENT_TIMESTAMP"))
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, key="expires_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    revoked_at: Mapped[datetime | None] = mapped_column("revokedAt", UTCDateTime, key="revoked_at")


# The auth service's own indexes on user_sessions (its schema's @@index and @unique).
service_index("user_sessions_sessionToken_key", UserSession.session_token, unique=True)
service_index("user_sessions_userId_idx", UserSession.user_id)
service_index("user_sessions_sessionToken_idx", UserSession.session_token)
service_index("user_sessions_userId_isActive_idx", UserSession.user_id, UserSession.is_active)
service_index("user_sessions_expiresAt_idx", UserSession.expires_at)


class LoginHistory(AuthModel):
    __tablename__ = "login_history"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, foreign_key("users.id", "login_history_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    ip_address: Mapped[str | None] = mapped_column("ipAddress", Text, key="ip_address")
    user_agent: Mapped[str | None] = mapped_column("userAgent", Text, key="user_agent")
    device_id: Mapped[str | None] = mapped_column(
        "deviceId", Text, foreign_key("devices.id", "login_history_deviceId_fkey", on_delete="SET NULL"),
        key="device_id")
    country: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    isp: Mapped[str | None] = mapped_column(Text)  # Internet Service Provider
    status: Mapped[str] = mapped_column(Text)
    # Reason for failure if status is 'failed'
    failure_reason: Mapped[str | None] = mapped_column("failureReason", Text, key="failure_reason")
    # Detected as suspicious
    is_suspicious: Mapped[bool] = mapped_column(
        "isSuspicious", Boolean, key="is_suspicious", server_default=text("false"))
    # Why it's suspicious
    suspicious_reason: Mapped[str | None] = mapped_column("suspiciousReason", Text, key="suspicious_reason")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The auth service's own indexes on login_history (its schema's @@index and @unique).
service_index("login_history_userId_idx", LoginHistory.user_id)
service_index("login_history_status_idx", LoginHistory.status)
service_index("login_history_createdAt_idx", LoginHistory.created_at)
service_index("login_history_userId_createdAt_idx", LoginHistory.user_id, LoginHistory.created_at)
service_index("login_history_isSuspicious_idx", LoginHistory.is_suspicious)


class SecurityAuditLog(AuthModel):
    __tablename__ = "security_audit_logs"
    # The activity list's sort columns (console/screens/activity.py).
    __table_args__ = sort_indexes("security_audit_logs", "created_at", "action", screen="the activity list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(
        "userId", Text, foreign_key("users.id", "security_audit_logs_userId_fkey", on_delete="SET NULL"),
        key="user_id")
    action: Mapped[str] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column("ipAddress", Text, key="ip_address")
    user_agent: Mapped[str | None] = mapped_column("userAgent", Text, key="user_agent")
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The auth service's own indexes on security_audit_logs (its schema's @@index and @unique).
service_index("security_audit_logs_userId_idx", SecurityAuditLog.user_id)
service_index("security_audit_logs_action_idx", SecurityAuditLog.action)
service_index("security_audit_logs_createdAt_idx", SecurityAuditLog.created_at)


# The history of one thing (a product's stock changes) and of one staff member's
# actions, newest first, each read from one index however long the trail grows.
plain_index("ix_security_audit_logs_entity_id_created_at",
            json_text(SecurityAuditLog.__table__.c.metadata_, "entity_id"), SecurityAuditLog.__table__.c.created_at,
            serves="the history of one thing (a product's stock changes), newest first")
plain_index("ix_security_audit_logs_user_id_action_created_at", SecurityAuditLog.__table__.c.user_id,
            SecurityAuditLog.__table__.c.action, SecurityAuditLog.__table__.c.created_at,
            serves="the activity list filtered by staff member and action, newest first")


class PasswordResetToken(AuthModel):
    __tablename__ = "password_reset_tokens"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    token: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, foreign_key("users.id", "password_reset_tokens_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, key="expires_at")
    used: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    used_at: Mapped[datetime | None] = mapped_column("usedAt", UTCDateTime, key="used_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The auth service's own indexes on password_reset_tokens (its schema's @@index and @unique).
service_index("password_reset_tokens_token_key", PasswordResetToken.token, unique=True)
service_index("password_reset_tokens_token_idx", PasswordResetToken.token)
service_index("password_reset_tokens_userId_idx", PasswordResetToken.user_id)
service_index("password_reset_tokens_expiresAt_idx", PasswordResetToken.expires_at)


class EmailVerificationToken(AuthModel):
    __tablename__ = "email_verification_tokens"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    token: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, foreign_key("users.id", "email_verification_tokens_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, key="expires_at")
    verified: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    verified_at: Mapped[datetime | None] = mapped_column("verifiedAt", UTCDateTime, key="verified_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The auth service's own indexes on email_verification_tokens (its schema's @@index and @unique).
service_index("email_verification_tokens_token_key", EmailVerificationToken.token, unique=True)
service_index("email_verification_tokens_token_idx", EmailVerificationToken.token)
service_index("email_verification_tokens_userId_idx", EmailVerificationToken.user_id)
service_index("email_verification_tokens_expiresAt_idx", EmailVerificationToken.expires_at)


class MfaBackupCode(AuthModel):
    __tablename__ = "mfa_backup_codes"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    # The diagram draws no FK here (unlike the other auth tables), so none is added;
    # the reference registry still checks it.
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")
    code: Mapped[str] = mapped_column(Text)
    used: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    used_at: Mapped[datetime | None] = mapped_column("usedAt", UTCDateTime, key="used_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, key="expires_at")


# The auth service's own indexes on mfa_backup_codes (its schema's @@index and @unique).
service_index("mfa_backup_codes_userId_idx", MfaBackupCode.user_id)
service_index("mfa_backup_codes_code_idx", MfaBackupCode.code)
service_index("mfa_backup_codes_expiresAt_idx", MfaBackupCode.expires_at)


class RateLimit(AuthModel):
    __tablename__ = "rate_limits"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, key="expires_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The auth service's own indexes on rate_limits (its schema's @@index and @unique).
service_index("rate_limits_expiresAt_idx", RateLimit.expires_at)
service_index("rate_limits_key_key", RateLimit.key, unique=True)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_users_email_prefix", User.email, "search: account email prefix")
contains_index("ix_users_email_trgm", User.__table__, func.lower(User.email), "customer filters: account email contains")
