"""The signed-in staff member: an auth_db user plus the staff roles they hold."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from console.extensions import db
from console.models.auth import Role, User, UserRole
from console.models.types import utcnow
from console.permissions import EVERY_STAFF, STAFF_ROLES, permissions_of

# locked_until of an account locked "until unlocked" (staff or customer): far enough to never pass.
LOCKED_UNTIL_UNLOCKED = datetime(9999, 12, 31, tzinfo=timezone.utc)


@dataclass
class StaffUser:
    """What Flask-Login keeps as current_user, and what workflows take as ``actor``."""

    id: str
    email: str
    roles: frozenset[str]
    ip: str | None = None
    # The server-side session this request belongs to (console/sessions.py); None for
    # a StaffUser made outside a request (the command line, the demo seeder, tests).
    session_token: str | None = None
    session_id: str | None = None
    # Holds a role that requires two-step sign-in but has not enrolled: until then the
    # member may only enrol (or sign out), so every other permission is withheld.
    must_enrol_mfa: bool = False
    permissions: frozenset[str] = field(init=False)

    def __post_init__(self):
        self.permissions = EVERY_STAFF if self.must_enrol_mfa else permissions_of(self.roles)

    # Flask-Login protocol
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return True

    def get_id(self) -> str:
        # What Flask-Login keeps in the cookie: the session's token, not the user id,
        # so the cookie is worth nothing once the server ends the session.
        return self.session_token or self.id

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def display_name(self) -> str:
        return self.email


def mfa_required_for(roles) -> bool:
    """Whether one of ``roles`` must use two-step sign-in (MFA_REQUIRED_ROLES)."""
    return bool(set(roles) & set(current_app.config.get("MFA_REQUIRED_ROLES", ())))


def staff_roles_of(user_id: str) -> frozenset[str]:
    names = db.session.scalars(
        select(Role.name).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == user_id)
    )
    return frozenset(name for name in names if name in STAFF_ROLES)


def is_locked(user: User | None, now: datetime | None = None) -> bool:
    """Whether the auth account (staff or customer) is locked at ``now``."""
    return bool(user and user.locked_until and user.locked_until > (now or utcnow()))


def locked_until_unlocked(user: User | None) -> bool:
    """Locked with no end: only another staff action lifts it."""
    return bool(user and user.locked_until and user.locked_until >= LOCKED_UNTIL_UNLOCKED)


def load_staff(user_id: str, ip: str | None = None) -> StaffUser | None:
    """The staff member with this id, or None if they are no longer active, unlocked
    staff. Called on every request, so a revoked role, a deactivation or a lock
    takes effect at the next click."""
    # One statement per request: the account and its role names together (an outer
    # join, so an account without roles still says it exists), plain columns only.
    rows = db.session.execute(
        select(User.id, User.email, User.is_active, User.locked_until, Role.name)
        .outerjoin(UserRole, UserRole.user_id == User.id).outerjoin(Role, Role.id == UserRole.role_id)
        .where(User.id == user_id)).all()
    if not rows:
        return None
    _, email, active, locked_until, _ = rows[0]
    if not active or (locked_until and locked_until > utcnow()):
        return None
    roles = frozenset(row.name for row in rows if row.name in STAFF_ROLES)
    if not roles:
        return None
    return StaffUser(id=user_id, email=email, roles=roles, ip=ip)


def count_failure(user: User, now: datetime | None = None) -> bool:
    """One more wrong password or code in a row (sign-in, or turning MFA off); the
    limit locks the account for a while and ends its sessions. The row is re-read
    locked so concurrent failures all count. True when this failure locked it.
    The caller commits."""
    from console import sessions

    now = now or utcnow()
    db.session.refresh(user, with_for_update=True)
    failures = user.failed_login_attempts or 0
    if user.locked_until is not None and user.locked_until <= now:
        # The last lock has run out: a new run of failures starts.
        failures, user.locked_until = 0, None
    user.failed_login_attempts = failures + 1
    if user.failed_login_attempts >= current_app.config["LOGIN_MAX_FAILURES"]:
        user.locked_until = now + timedelta(minutes=current_app.config["LOGIN_LOCK_MINUTES"])
        sessions.end_all_in_transaction(user.id)
        return True
    return False
