"""The Staff screen's reading side: staff members with their roles, last sign-in,
lock and MFA state. A page of N staff costs one query per table, never one per row."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, and_, func, or_, select, type_coerce

from console.exports import CopyExport, Side, iso
from console.extensions import db
from console.filters import QueryFilters, choice, text
from console.lookups import Lookups, chunks, database
from console.models.auth import LoginHistory, Role, User, UserRole
from console.models.types import utcnow
from console.permissions import STAFF_ROLES
from console.screens.lists import ListScreen, Sort
from console.staff import is_locked

STATES = {"locked": "locked", "mfa_off": "two-step sign-in off", "inactive": "inactive"}


@dataclass
class StaffFilters(QueryFilters):
    q: str = ""  # part of the email
    role: str = ""
    state: str = ""

    FIELDS = ("q", "role", "state")

    @classmethod
    def parse(cls, args: Mapping) -> tuple[StaffFilters, list[str]]:
        errors: list[str] = []
        return cls(q=text(args, "q", errors), role=choice(args, "role", STAFF_ROLES, "Role", errors),
                   state=choice(args, "state", tuple(STATES), "State", errors)), errors


@dataclass
class StaffRow:
    user: User
    roles: list[str]
    last_sign_in: datetime | None

    @property
    def locked(self) -> bool:
        return is_locked(self.user)

    @property
    def mfa_state(self) -> str:
        if self.user.mfa_enabled:
            return "on"
        return "pending" if self.user.mfa_secret else "off"


def _statement(filters: StaffFilters, lookups: Lookups | None = None):
    holders = select(UserRole.user_id).join(Role, Role.id == UserRole.role_id)
    holders = holders.where(Role.name == filters.role) if filters.role else holders.where(Role.name.in_(STAFF_ROLES))
    stmt = select(User).where(User.id.in_(holders))
    if filters.q:
        stmt = stmt.where(func.lower(User.email).contains(filters.q.lower(), autoescape=True))
    if filters.state == "locked":
        stmt = stmt.where(User.locked_until > utcnow())
    elif filters.state == "mfa_off":
        stmt = stmt.where(or_(User.mfa_enabled.is_(None), User.mfa_enabled.is_(False)))
    elif filters.state == "inactive":
        stmt = stmt.where(or_(User.is_active.is_(None), User.is_active.is_(False)))
    return stmt


def _rows(users: list[User]) -> list[StaffRow]:
    """Roles and last successful sign-in for a batch of users: two IN queries."""
    roles: dict[str, list[str]] = defaultdict(list)
    last: dict[str, datetime] = {}
    for chunk in chunks(u.id for u in users):
        for user_id, name in db.session.execute(
                select(UserRole.user_id, Role.name).join(Role, Role.id == UserRole.role_id)
                .where(UserRole.user_id.in_(chunk), Role.name.in_(STAFF_ROLES))):
            roles[user_id].append(name)
        for user_id, at in db.session.execute(
                select(LoginHistory.user_id, func.max(LoginHistory.created_at))
                .where(LoginHistory.user_id.in_(chunk), LoginHistory.status == "success")
                .group_by(LoginHistory.user_id)):
            last[user_id] = at
    order = {role: i for i, role in enumerate(STAFF_ROLES)}
    return [StaffRow(u, sorted(set(roles[u.id]), key=order.get), last.get(u.id)) for u in users]


def decorate(users: list[User], lookups: Lookups) -> list[StaffRow]:
    rows = lookups.run("auth", lambda: _rows_in_auth(users), None)
    return rows if rows is not None else [StaffRow(u, [], None) for u in users]


def _rows_in_auth(users: list[User]) -> list[StaffRow]:
    with database("auth"):
        return _rows(users)


def staff_row(user_id: str) -> StaffRow | None:
    with database("auth"):
        user = db.session.get(User, user_id, populate_existing=True)
        return _rows([user])[0] if user else None


def _export_row(row: StaffRow, lookups: Lookups) -> list:
    user = row.user
    return [user.email, " ".join(row.roles), bool(user.is_active), row.last_sign_in,
            user.locked_until, user.failed_login_attempts or 0, row.mfa_state, user.created_at, user.id]


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as _export_row ---

_USERS, _USER_ROLES, _ROLES, _SIGN_INS = (User.__table__.c, UserRole.__table__.c, Role.__table__.c,
                                          LoginHistory.__table__.c)
_EXPORT_COLUMNS = (
    *(_USERS[name] for name in ("email", "is_active", "locked_until", "failed_login_attempts", "mfa_enabled",
                                "created_at", "id")),
    # Whether MFA is set up but not confirmed: the secret itself is never read.
    type_coerce(and_(_USERS.mfa_secret.isnot(None), _USERS.mfa_secret != ""), Boolean).label("mfa_pending"))


def _by_user(batch) -> list:
    return [row[6] for row in batch]


_EXPORT_SIDES = {
    "roles": Side("auth", _by_user, lambda ids, among: select(_USER_ROLES.user_id, _ROLES.name)
                  .join(Role.__table__, _ROLES.id == _USER_ROLES.role_id)
                  .where(among(_USER_ROLES.user_id, ids), _ROLES.name.in_(STAFF_ROLES))),
    "signed_in": Side("auth", _by_user, lambda ids, among: select(_SIGN_INS.user_id, func.max(_SIGN_INS.created_at))
                      .where(among(_SIGN_INS.user_id, ids), _SIGN_INS.status == "success")
                      .group_by(_SIGN_INS.user_id)),
}
_ROLE_ORDER = {role: at for at, role in enumerate(STAFF_ROLES)}


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    roles, signed_in = found["roles"], found["signed_in"]
    rows = []
    for email, active, locked_until, failures, mfa, created, user_id, mfa_pending in batch:
        held = sorted({name for _, name in roles.get(user_id, ())}, key=_ROLE_ORDER.get)
        last = signed_in.get(user_id)
        rows.append([email, " ".join(held), bool(active), iso(last[0][1]) if last else None, locked_until,
                     failures or 0, "on" if mfa else "pending" if mfa_pending else "off", created, user_id])
    return rows


STAFF = ListScreen(
    name="staff", noun="staff accounts", home="auth", title="Staff", export_endpoint="export_staff",
    filters=StaffFilters, statement=_statement, id_column=User.id,
    sorts=(Sort("since", User.created_at, "Since"),
           Sort("email", User.email, "Email", descending=False)),
    default_sort="-since", decorate=decorate,
    export_header=("email", "roles", "active", "last_sign_in", "locked_until", "failed_login_attempts",
                   "mfa", "created_at", "user_id"),
    export_row=_export_row, export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells, _EXPORT_SIDES),
)
