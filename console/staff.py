"""The signed-in staff member: an auth_db user plus the staff roles they hold."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select

from console.extensions import db
from console.models.auth import Role, User, UserRole
from console.models.types import utcnow
from console.permissions import STAFF_ROLES, permissions_of

# locked_until of an account locked "until unlocked" (staff or customer): far enough to never pass.
LOCKED_UNTIL_UNLOCKED = datetime(9999, 12, 31, tzinfo=timezone.utc)


@dataclass
class StaffUser:
    """What Flask-Login keeps as current_user, and what workflows take as ``actor``."""

    id: str
    email: str
    roles: frozenset[str]
    ip: str | None = None
    permissions: frozenset[str] = field(init=False)

    def __post_init__(self):
        self.permissions = permissions_of(self.roles)

    # Flask-Login protocol
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return True

    def get_id(self) -> str:
        return self.id

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def display_name(self) -> str:
        return self.email


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
