"""The second factor of staff sign-in: TOTP codes (pyotp) and one-time backup codes.

A staff member enrols from their profile: a new secret is stored in
``users.mfa_secret`` with ``mfa_enabled`` still off, shown once as a QR code, and
switched on only when a code from the authenticator app confirms it. Backup codes
are kept where the auth service keeps them and in its form: ``users.mfaBackupCodes``,
the SHA-256 hex digests of eight upper-case hexadecimal characters (random, so no salt
is needed), so a code works on either side. Here each works once: using it takes its
hash out of the list. (auth_db also has a ``mfa_backup_codes`` table, which the
service never reads or writes; the console leaves it alone too.) A TOTP code works
once as well: the time step of the last accepted code is kept in rate_limits under
``mfa:last:<user id>``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlalchemy import select, update

from console import audit, ratelimit
from console.extensions import db
from console.models.auth import User
from console.models.types import utcnow
from console.staff import count_failure
from console.workflows import WorkflowError

logger = logging.getLogger(__name__)

ISSUER = "Operations console"
BACKUP_CODE_COUNT = 10
BACKUP_CODE_BYTES = 4  # eight hexadecimal characters, as the auth service makes them
# How long the last used time step is remembered: longer than a code stays valid.
LAST_STEP_KEEP_SECONDS = 600


def last_step_key(user_id: str) -> str:
    return f"mfa:last:{user_id}"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code as an SVG data: URI (the CSP allows data: images, not inline SVG scripts)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def normalise(code: str | None) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


class ServiceTOTP(pyotp.TOTP):
    """TOTP for secrets the auth service already stored.

    pyotp refuses secrets under 112 bits, but authenticator secrets of 16 base32
    characters (80 bits) are common and users enrolled with them must still sign in.
    New secrets made here are 160 bits (``new_secret``)."""

    def byte_secret(self) -> bytes:
        secret = "".join(self.secret.split()).upper()
        return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


def matching_step(secret: str, code: str, now: datetime | None = None) -> int | None:
    """The time step ``code`` belongs to, or None. Accepts the previous, current and
    next step, as ``TOTP.verify(code, valid_window=1)`` does, but says which one
    matched so a code can be refused the second time. A secret that is not base32 at
    all matches nothing (and is logged), rather than failing the sign-in page."""
    try:
        totp = ServiceTOTP(secret)  # decodes the secret
    except (binascii.Error, ValueError):
        logger.warning("MFA secret of a user is not valid base32; TOTP codes cannot match")
        return None
    current = totp.timecode(now or utcnow())
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def use_totp(user: User, code: str, secret: str | None = None) -> bool:
    """True once per time step for a right code; a replayed code is refused."""
    secret = secret or user.mfa_secret
    code = normalise(code)
    if not secret or len(code) != 6 or not code.isdigit():
        return False
    step = matching_step(secret, code)
    if step is None:
        return False
    return ratelimit.advance(last_step_key(user.id), step, LAST_STEP_KEEP_SECONDS)


def hash_backup_code(code: str) -> str:
    """The service's hash: SHA-256 of the code's upper-case characters, in hex (typed
    in any case, with spaces or a dash, it is the same code)."""
    return hashlib.sha256(normalise(code).upper().encode()).hexdigest()


def use_backup_code(user: User, code: str) -> bool:
    """Takes the code's hash out of the user's list with one UPDATE conditional on the
    list as it was read: of two requests with the same code only the first succeeds,
    the second finding the list changed (PostgreSQL re-reads the row it waited for)."""
    if not normalise(code):
        return False
    digest = hash_backup_code(code)
    column = User.__table__.c.mfa_backup_codes
    current = db.session.execute(select(column).where(User.id == user.id)).scalar()
    if not current or digest not in current:
        return False
    result = db.session.execute(
        update(User).where(User.id == user.id, column == current)
        .values({column: [c for c in current if c != digest]})
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def use_code(user: User, code: str) -> bool:
    """A six-digit code is a TOTP code; anything else is tried as a backup code."""
    plain = normalise(code)
    if len(plain) == 6 and plain.isdigit():
        return use_totp(user, plain)
    return use_backup_code(user, plain)


def issue_backup_codes(user_id: str) -> list[str]:
    """Replaces the user's backup codes with fresh ones; returns them in clear, once."""
    codes = [secrets.token_hex(BACKUP_CODE_BYTES).upper() for _ in range(BACKUP_CODE_COUNT)]
    db.session.execute(update(User).where(User.id == user_id)
                       .values({User.__table__.c.mfa_backup_codes: [hash_backup_code(c) for c in codes]})
                       .execution_options(synchronize_session="fetch"))
    return codes


def unused_backup_codes(user_id: str) -> int:
    return len(db.session.execute(select(User.__table__.c.mfa_backup_codes).where(User.id == user_id)).scalar()
               or [])


def clear(user: User) -> None:
    """Turns MFA off for ``user`` as the auth service does: no secret, an empty list of
    backup codes; and the replay marker goes."""
    user.mfa_enabled = False
    user.mfa_secret = None
    user.mfa_backup_codes = []
    ratelimit.clear(last_step_key(user.id))


# --- the staff member's own enrolment -------------------------------------------------

@dataclass
class Enrolment:
    secret: str
    uri: str
    qr: str


def _own_user(actor) -> User:
    user = db.session.get(User, actor.id, with_for_update=True)
    if user is None:
        raise WorkflowError("Your account no longer exists.", 404)
    return user


def enrolment_for(user: User, email: str) -> Enrolment:
    uri = provisioning_uri(user.mfa_secret, email)
    return Enrolment(secret=user.mfa_secret, uri=uri, qr=qr_data_uri(uri))


def start_enrolment(actor) -> Enrolment:
    """Stores a new secret, not yet in force, and returns it to show once."""
    user = _own_user(actor)
    if user.mfa_enabled:
        db.session.rollback()
        raise WorkflowError("Two-step sign-in is already on. Turn it off first to enrol a new device.", 409)
    user.mfa_secret = new_secret()
    audit.record(actor, "staff.mfa_enrolment_started", "staff", user.id)
    db.session.commit()
    return enrolment_for(user, actor.email)


def confirm_enrolment(actor, code: str) -> list[str]:
    """Switches MFA on once ``code`` proves the app holds the secret; returns the
    new backup codes (shown once)."""
    user = _own_user(actor)
    if user.mfa_enabled:
        db.session.rollback()
        raise WorkflowError("Two-step sign-in is already on.", 409)
    if not user.mfa_secret:
        db.session.rollback()
        raise WorkflowError("Start the enrolment first: no secret is waiting to be confirmed.", 409)
    if not use_totp(user, code):
        db.session.rollback()
        raise WorkflowError("That code is not right. Check the app shows the code for this console "
                            "and that the device clock is correct, then try again.", 422)
    user.mfa_enabled = True
    codes = issue_backup_codes(user.id)
    audit.record(actor, "staff.mfa_enabled", "staff", user.id, before={"mfa_enabled": False},
                 after={"mfa_enabled": True})
    db.session.commit()
    return codes


def disable(actor, code: str) -> None:
    """Turns the actor's MFA off; needs a current code or an unused backup code."""
    user = _own_user(actor)
    if not user.mfa_enabled:
        db.session.rollback()
        raise WorkflowError("Two-step sign-in is already off.", 409)
    if not use_code(user, code):
        # Counted like a wrong sign-in code: guessing codes here runs into the lockout,
        # which also ends the member's sessions.
        locked = count_failure(user)
        audit.record(actor, "staff.mfa_disable_refused", "staff", user.id,
                     failed_login_attempts=user.failed_login_attempts, locked=locked)
        db.session.commit()
        if locked:
            raise WorkflowError("Too many wrong codes: your account is locked for a while and signed out "
                                "everywhere.", 423)
        raise WorkflowError("That code is not right or was already used. Wrong codes count towards "
                            "locking your account.", 422)
    clear(user)
    audit.record(actor, "staff.mfa_disabled", "staff", user.id, before={"mfa_enabled": True},
                 after={"mfa_enabled": False})
    db.session.commit()
