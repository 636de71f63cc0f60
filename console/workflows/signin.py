"""Staff sign-in against auth_db: bcrypt hashes as the auth service writes them,
lockout after repeated failures, a per-address throttle and the second factor.

Every attempt leaves a login_history row: ``success``, ``failed`` (wrong password or
code, not staff, throttled) or ``locked`` (refused because the account is locked).
A refusal never says whether the email exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import bcrypt
from flask import current_app, has_app_context
from sqlalchemy import func, select

from console import ratelimit
from console.extensions import db
from console.lookups import database
from console.models.auth import LoginHistory, User
from console.models.types import utcnow
from console.staff import StaffUser, is_locked, load_staff
from console.workflows import mfa

GENERIC_FAILURE = "Email or password is not right, or this account may not use the console."
THROTTLED = "Too many sign-in attempts from this address. Wait a few minutes, then try again."
MFA_FAILURE = "That code is not right or was already used. Use the current code from your app, or a backup code."



@dataclass
class SignInResult:
    staff: StaffUser | None = None
    # The password was right but a second factor is still needed for this user.
    mfa_user_id: str | None = None
    message: str = ""
    status: int = 200


def hash_password(password: str) -> str:
    rounds = current_app.config.get("BCRYPT_ROUNDS", 12) if has_app_context() else 12
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


@lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> str:
    return bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=rounds)).decode()


def waste_a_check(password: str) -> None:
    """Checked when the email is unknown, at the same cost as a real hash, so response
    times do not tell which emails have accounts."""
    password_matches(password, _dummy_hash(current_app.config.get("BCRYPT_ROUNDS", 12)))


def password_matches(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        return False
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:  # not a bcrypt hash at all
        return False


def _config(name: str):
    return current_app.config[name]


def _history(user_id: str | None, status: str, ip: str | None) -> None:
    db.session.add(LoginHistory(user_id=user_id, status=status, ip_address=ip))


def _throttled(ip: str | None) -> bool:
    """Counts this attempt against the address; True once it is over the limit.
    Committed at once so concurrent attempts see each other."""
    count = ratelimit.hit(f"login:ip:{ip or 'unknown'}", _config("LOGIN_IP_WINDOW_SECONDS"))
    db.session.commit()
    return count > _config("LOGIN_IP_LIMIT")


def _count_failure(user: User, now: datetime) -> None:
    """One more failure in a row; the limit locks the account for a while.
    The row is re-read locked so concurrent failures all count."""
    db.session.refresh(user, with_for_update=True)
    failures = user.failed_login_attempts or 0
    if user.locked_until is not None and user.locked_until <= now:
        # The last lock has run out: a new run of failures starts.
        failures, user.locked_until = 0, None
    user.failed_login_attempts = failures + 1
    if user.failed_login_attempts >= _config("LOGIN_MAX_FAILURES"):
        user.locked_until = now + timedelta(minutes=_config("LOGIN_LOCK_MINUTES"))


def _succeed(user: User, ip: str | None) -> None:
    if user.failed_login_attempts or user.locked_until is not None:
        user.failed_login_attempts, user.locked_until = 0, None
    _history(user.id, "success", ip)


def _refuse(message: str = GENERIC_FAILURE, status: int = 401) -> SignInResult:
    db.session.commit()
    return SignInResult(message=message, status=status)


def authenticate(email: str, password: str, ip: str | None) -> SignInResult:
    """The first step: email and password. Returns the staff member, or the user id
    still owing a second factor, or a refusal with its HTTP status.
    DatabaseUnavailable("auth") when auth_db cannot be reached."""
    with database("auth"):
        return _authenticate(email, password, ip)


def _authenticate(email: str, password: str, ip: str | None) -> SignInResult:
    email = (email or "").strip().lower()
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    if _throttled(ip):
        _history(user.id if user else None, "failed", ip)
        return _refuse(THROTTLED, 429)
    if user is None:
        waste_a_check(password)
        _history(None, "failed", ip)
        return _refuse()
    now = utcnow()
    if is_locked(user, now):
        # Refused even with the right password, with the same message: a lock
        # message would confirm that the email belongs to an account.
        _history(user.id, "locked", ip)
        return _refuse()
    if not password_matches(password, user.password_hash):
        _count_failure(user, now)
        _history(user.id, "failed", ip)
        return _refuse()
    staff = load_staff(user.id, ip=ip)
    if staff is None:  # a customer, an inactive user, or no staff role any more
        _history(user.id, "failed", ip)
        return _refuse()
    if user.mfa_enabled:
        db.session.commit()
        return SignInResult(mfa_user_id=user.id)
    _succeed(user, ip)
    db.session.commit()
    return SignInResult(staff=staff)


def verify_second_factor(user_id: str, code: str, ip: str | None) -> SignInResult:
    """The second step for users with MFA: a TOTP code or an unused backup code.
    Wrong codes count towards the lockout like wrong passwords."""
    with database("auth"):
        return _verify_second_factor(user_id, code, ip)


def _verify_second_factor(user_id: str, code: str, ip: str | None) -> SignInResult:
    user = db.session.get(User, user_id)
    if _throttled(ip):
        _history(user_id if user else None, "failed", ip)
        return _refuse(THROTTLED, 429)
    now = utcnow()
    if user is None:
        _history(None, "failed", ip)
        return _refuse()
    if is_locked(user, now):
        _history(user.id, "locked", ip)
        return _refuse()
    staff = load_staff(user.id, ip=ip)
    if staff is None or not user.mfa_enabled:
        _history(user.id, "failed", ip)
        return _refuse()
    if not mfa.use_code(user, code):
        _count_failure(user, now)
        _history(user.id, "failed", ip)
        return _refuse(MFA_FAILURE)
    _succeed(user, ip)
    db.session.commit()
    return SignInResult(staff=staff)
