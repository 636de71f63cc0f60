"""Staff sign-in against auth_db: bcrypt hashes as the auth service writes them,
lockout after repeated failures, a per-address throttle and the second factor.

Every attempt leaves a login_history row: ``success``, ``failed`` (wrong password or
code, not staff, throttled) or ``locked`` (refused because the account is locked).
A refusal never says whether the email exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import bcrypt
from flask import current_app, has_app_context
from sqlalchemy import func, select

from console import audit, ratelimit
from console.drift import require_writes
from console.extensions import db
from console.lookups import database
from console.models.auth import LoginHistory, User
from console.models.types import utcnow
from console import sessions
from console.staff import StaffUser, count_failure, is_locked, load_staff
from console.workflows import mfa

GENERIC_FAILURE = "Email or password is not right, or this account may not use the console."
THROTTLED = "Too many sign-in attempts from this address. Wait a few minutes, then try again."
MFA_FAILURE = "That code is not right or was already used. Use the current code from your app, or a backup code."



@dataclass
class SignInResult:
    staff: StaffUser | None = None
    # The new session's token (for the cookie) when ``staff`` is set.
    token: str | None = None
    mfa_enabled: bool = False  # signed in with a second factor
    # The password was right but a second factor is still needed for this user.
    mfa_user_id: str | None = None
    message: str = ""
    status: int = 200


# users."passwordHash" is NOT NULL: an account without a password (an invitation not yet
# accepted, a customer made without one) holds this, which no password matches.
NO_PASSWORD = ""


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


# Everything an attempt may write, checked before the first write (the throttle's count
# is committed at once): a database that lacks one of these columns refuses the sign-in
# with its name, rather than counting the attempt and failing half way.
SIGN_IN_WRITES = (
    *ratelimit.WRITES,  # the address throttle; the second factor's last time step
    (LoginHistory,),  # the attempt
    (User, "failed_login_attempts", "locked_until", "updated_at"),  # a failure run, a lock
    *sessions.END_WRITES,  # a lock ends the sessions
    *sessions.START_WRITES,  # success
)


def _config(name: str):
    return current_app.config[name]


def _history(user_id: str | None, status: str, ip: str | None) -> None:
    """A login_history row for an attempt on an account. Its userId is NOT NULL (a row
    belongs to an account, as the auth service writes them): an attempt on no known
    account is counted by the address throttle only."""
    if user_id is not None:
        db.session.add(LoginHistory(user_id=user_id, status=status, ip_address=ip))


def _throttled(ip: str | None) -> bool:
    """Counts this attempt against the address; True once it is over the limit.
    Committed at once so concurrent attempts see each other."""
    count = ratelimit.hit(f"login:ip:{ip or 'unknown'}", _config("LOGIN_IP_WINDOW_SECONDS"))
    db.session.commit()
    return count > _config("LOGIN_IP_LIMIT")


def _succeed(user: User, ip: str | None, user_agent: str | None) -> str:
    """Clears the failure run, starts the server-side session (with its login_history
    row) and returns its token."""
    if user.failed_login_attempts or user.locked_until is not None:
        user.failed_login_attempts, user.locked_until = 0, None
    return sessions.start(user.id, ip, user_agent)


def _refuse(message: str = GENERIC_FAILURE, status: int = 401) -> SignInResult:
    db.session.commit()
    return SignInResult(message=message, status=status)


def authenticate(email: str, password: str, ip: str | None, user_agent: str | None = None) -> SignInResult:
    """The first step: email and password. Returns the staff member and their new
    session's token, or the user id still owing a second factor, or a refusal with its
    HTTP status. DatabaseUnavailable("auth") when auth_db cannot be reached."""
    with database("auth"):
        return _authenticate(email, password, ip, user_agent)


def _authenticate(email: str, password: str, ip: str | None, user_agent: str | None) -> SignInResult:
    require_writes(*SIGN_IN_WRITES)
    # The address is counted first: a throttled attempt costs no user lookup at all.
    if _throttled(ip):
        _history(None, "failed", ip)
        return _refuse(THROTTLED, 429)
    email = (email or "").strip().lower()
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
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
        count_failure(user, now)
        _history(user.id, "failed", ip)
        return _refuse()
    staff = load_staff(user.id, ip=ip)
    if staff is None:  # a customer, an inactive user, or no staff role any more
        _history(user.id, "failed", ip)
        return _refuse()
    if user.mfa_enabled:
        db.session.commit()
        return SignInResult(mfa_user_id=user.id)
    token = _succeed(user, ip, user_agent)
    db.session.commit()
    return SignInResult(staff=staff, token=token)


def verify_second_factor(user_id: str, code: str, ip: str | None, user_agent: str | None = None) -> SignInResult:
    """The second step for users with MFA: a TOTP code or an unused backup code.
    Wrong codes count towards the lockout like wrong passwords."""
    with database("auth"):
        return _verify_second_factor(user_id, code, ip, user_agent)


def _verify_second_factor(user_id: str, code: str, ip: str | None, user_agent: str | None) -> SignInResult:
    require_writes(*SIGN_IN_WRITES)
    if _throttled(ip):
        _history(None, "failed", ip)
        return _refuse(THROTTLED, 429)
    user = db.session.get(User, user_id)
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
        count_failure(user, now)
        _history(user.id, "failed", ip)
        return _refuse(MFA_FAILURE)
    token = _succeed(user, ip, user_agent)
    db.session.commit()
    return SignInResult(staff=staff, token=token, mfa_enabled=True)


def start_session_after_new_password(user_id: str, ip: str | None, user_agent: str | None) -> SignInResult:
    """Signs in a member who has just set their password from a one-time link (the link
    proved the email, the form the password). Members with two-step sign-in on still
    sign in with their code: refused here, they go to the sign-in page."""
    with database("auth"):
        user = db.session.get(User, user_id)
        staff = load_staff(user_id, ip=ip) if user is not None else None
        if staff is None or user.mfa_enabled:
            db.session.rollback()
            return SignInResult(message="Your password is set. Sign in with it.", status=200)
        token = _succeed(user, ip, user_agent)
        db.session.commit()
        return SignInResult(staff=staff, token=token)



def sign_out_everywhere(actor) -> int:
    """Ends every session of ``actor`` (this one included); returns how many."""
    with database("auth"):
        ended = sessions.end_all_in_transaction(actor.id)
        audit.record(actor, "staff.signed_out_everywhere", "staff", actor.id, sessions=ended)
        db.session.commit()
    return ended


def end_own_session(actor, session_id: str) -> bool:
    """"Sign out this one": ends one of the actor's own sessions. False when it is not
    theirs or had already ended."""
    with database("auth"):
        if not sessions.end_one(actor.id, session_id):
            db.session.rollback()
            return False
        audit.record(actor, "staff.session_ended", "user_session", session_id)
        db.session.commit()
    return True
