"""Customer account actions: lock, unlock, revoke every session.

All of them write auth_db only (the account, its sessions and refresh tokens, and the
security_audit_logs row), so each is one transaction. auth_db has no history table
for accounts besides the audit log, so the audit row is the history. Staff accounts
are refused: the Staff screen manages those.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update

from console import audit
from console.extensions import db
from console.lookups import database
from console.models.auth import RefreshToken, User, UserSession
from console.models.types import utcnow
from console.staff import LOCKED_UNTIL_UNLOCKED, is_locked
from console.staff import staff_roles_of
from console.workflows import WorkflowError

REASON_MAX = 500

# Choices offered on the lock form: key -> (label, duration; None = until unlocked).
LOCK_DURATIONS: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("1 hour", timedelta(hours=1)),
    "24h": ("24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
    "forever": ("until unlocked", None),
}


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise WorkflowError("Give a reason: it goes into the audit log.", 422)
    if len(text) > REASON_MAX:
        raise WorkflowError(f"Keep the reason under {REASON_MAX} characters.", 422)
    return text


def _customer(user_id: str) -> User:
    """The account, row-locked, or a refusal when it is missing or belongs to staff."""
    user = db.session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        db.session.rollback()
        raise WorkflowError("No account with this id in auth_db.", 404)
    if staff_roles_of(user.id):
        db.session.rollback()
        raise WorkflowError(f"{user.email} is a staff account. Staff accounts are locked and "
                            "signed out from the Staff screen, not here.", 409)
    return user


def lock_account(actor, user_id: str, reason: str, duration: str = "forever") -> User:
    """Lock the account until a time or until unlocked; is_active stays as it is."""
    reason = _reason(reason)
    if duration not in LOCK_DURATIONS:
        raise WorkflowError("Choose how long to lock the account for.", 422)
    label, span = LOCK_DURATIONS[duration]
    with database("auth"):
        user = _customer(user_id)
        before = {"locked_until": user.locked_until}
        user.locked_until = LOCKED_UNTIL_UNLOCKED if span is None else utcnow() + span
        audit.record(actor, "customer.locked", "user", user.id, before=before,
                     after={"locked_until": user.locked_until}, reason=reason, duration=label)
        db.session.commit()
    return user


def unlock_account(actor, user_id: str, reason: str) -> User:
    """Clear the lock and the failed sign-in count."""
    reason = _reason(reason)
    with database("auth"):
        user = _customer(user_id)
        if not is_locked(user) and not user.failed_login_attempts:
            db.session.rollback()
            raise WorkflowError(f"{user.email} is not locked and has no failed sign-ins to clear.", 409)
        before = {"locked_until": user.locked_until, "failed_login_attempts": user.failed_login_attempts}
        user.locked_until = None
        user.failed_login_attempts = 0
        audit.record(actor, "customer.unlocked", "user", user.id, before=before,
                     after={"locked_until": None, "failed_login_attempts": 0}, reason=reason)
        db.session.commit()
    return user


@dataclass
class Revoked:
    sessions: int
    refresh_tokens: int


def revoke_sessions(actor, user_id: str, reason: str) -> Revoked:
    """End every active session and revoke every refresh token of the account."""
    reason = _reason(reason)
    with database("auth"):
        user = _customer(user_id)
        sessions = db.session.execute(
            update(UserSession).where(UserSession.user_id == user.id, UserSession.is_active.is_(True))
            .values(is_active=False)).rowcount
        tokens = db.session.execute(
            update(RefreshToken).where(RefreshToken.user_id == user.id,
                                       or_(RefreshToken.revoked.is_(None), RefreshToken.revoked.is_(False)))
            .values(revoked=True)).rowcount
        if not sessions and not tokens:
            db.session.rollback()
            raise WorkflowError(f"{user.email} has no active sessions or refresh tokens to revoke.", 409)
        audit.record(actor, "customer.sessions_revoked", "user", user.id, reason=reason,
                     sessions=sessions, refresh_tokens=tokens)
        db.session.commit()
    return Revoked(sessions, tokens)
