"""Staff management: staff roles, account locks and MFA resets.

auth_db has no history table of its own for these changes, so the audit trail
(security_audit_logs) is their record. The target user's row is locked while it
changes, so two admins acting at once cannot both grant the same role.
"""
from __future__ import annotations

import re

from sqlalchemy import delete, func, select

from console import audit, sessions
from console.extensions import db
from console.models.auth import Role, User, UserRole
from console.permissions import STAFF_ROLES
from console.staff import LOCKED_UNTIL_UNLOCKED, is_locked, staff_roles_of
from console.workflows import WorkflowError, mfa
from console.workflows.signin import hash_password

MIN_PASSWORD_LENGTH = 12


def _target(user_id: str) -> User:
    user = db.session.get(User, user_id, with_for_update=True)
    if user is None:
        db.session.rollback()
        raise WorkflowError("That user does not exist (any more).", 404)
    return user


def _refuse(message: str, status: int = 409):
    db.session.rollback()
    raise WorkflowError(message, status)


def _role_row(name: str) -> Role:
    role = db.session.scalar(select(Role).where(Role.name == name))
    if role is None:  # a fresh auth_db may not have the console's roles yet
        role = Role(name=name, description=f"console {name} role")
        db.session.add(role)
        db.session.flush()
    return role


def _is_self(actor, user: User) -> bool:
    return actor is not None and getattr(actor, "id", None) == user.id


def grant_role(actor, user_id: str, role: str) -> User:
    if role not in STAFF_ROLES:
        raise WorkflowError(f"{role!r} is not a staff role. Choose one of: {', '.join(STAFF_ROLES)}.", 422)
    user = _target(user_id)
    before = sorted(staff_roles_of(user.id))
    if role in before:
        _refuse(f"{user.email} already has the {role} role.")
    db.session.add(UserRole(user_id=user.id, role_id=_role_row(role).id))
    audit.record(actor, "staff.role_granted", "staff", user.id, before={"roles": before},
                 after={"roles": sorted({*before, role})}, role=role, email=user.email)
    db.session.commit()
    return user


def grant_role_by_email(actor, email: str, role: str) -> User:
    email = (email or "").strip().lower()
    user_id = db.session.scalar(select(User.id).where(func.lower(User.email) == email))
    if user_id is None:
        raise WorkflowError(f"No account with the email {email or '(empty)'}. Create it with "
                            "`flask --app wsgi console create-staff`.", 404)
    return grant_role(actor, user_id, role)


def revoke_role(actor, user_id: str, role: str) -> User:
    user = _target(user_id)
    if _is_self(actor, user) and role == "admin":
        _refuse("You cannot remove your own admin role. Another admin has to do it.")
    before = sorted(staff_roles_of(user.id))
    if role not in before:
        _refuse(f"{user.email} does not have the {role} role.")
    role_ids = select(Role.id).where(Role.name == role).scalar_subquery()
    db.session.execute(delete(UserRole).where(UserRole.user_id == user.id, UserRole.role_id.in_(role_ids)))
    # What they may do changed: every session ends, and they sign in again with the rest.
    ended = sessions.end_all_in_transaction(user.id)
    audit.record(actor, "staff.role_revoked", "staff", user.id, before={"roles": before},
                 after={"roles": [r for r in before if r != role]}, role=role, email=user.email,
                 sessions_ended=ended)
    db.session.commit()
    return user


def lock(actor, user_id: str) -> User:
    user = _target(user_id)
    if _is_self(actor, user):
        _refuse("You cannot lock your own account.")
    if user.locked_until == LOCKED_UNTIL_UNLOCKED:
        _refuse(f"{user.email} is already locked.")
    before = {"locked_until": user.locked_until}
    user.locked_until = LOCKED_UNTIL_UNLOCKED
    ended = sessions.end_all_in_transaction(user.id)
    audit.record(actor, "staff.locked", "staff", user.id, before=before,
                 after={"locked_until": user.locked_until}, email=user.email, sessions_ended=ended)
    db.session.commit()
    return user


def unlock(actor, user_id: str) -> User:
    user = _target(user_id)
    if not is_locked(user) and not user.failed_login_attempts:
        _refuse(f"{user.email} is not locked.")
    before = {"locked_until": user.locked_until, "failed_login_attempts": user.failed_login_attempts}
    user.locked_until = None
    user.failed_login_attempts = 0
    audit.record(actor, "staff.unlocked", "staff", user.id, before=before,
                 after={"locked_until": None, "failed_login_attempts": 0}, email=user.email)
    db.session.commit()
    return user


def end_sessions(actor, user_id: str) -> tuple[User, int]:
    """Signs a member out everywhere (a lost laptop, a shared screen): each of their
    sessions stops working at its next request. Returns the member and how many ended."""
    user = _target(user_id)
    if not staff_roles_of(user.id):
        _refuse(f"{user.email} is not a staff member.", 404)
    ended = sessions.end_all_in_transaction(user.id)
    if not ended:
        _refuse(f"{user.email} has no active session to end.")
    audit.record(actor, "staff.sessions_ended", "staff", user.id, email=user.email, sessions_ended=ended)
    db.session.commit()
    return user, ended


def reset_mfa(actor, user_id: str) -> User:
    """For a staff member who lost their device: they sign in with the password
    alone and can enrol again. The secret itself is never written to the audit."""
    user = _target(user_id)
    if not user.mfa_enabled and not user.mfa_secret:
        _refuse(f"{user.email} has no two-step sign-in to reset.")
    before = {"mfa_enabled": bool(user.mfa_enabled)}
    mfa.clear(user)
    audit.record(actor, "staff.mfa_reset", "staff", user.id, before=before,
                 after={"mfa_enabled": False}, email=user.email)
    db.session.commit()
    return user


# --- first admin of a deployment ------------------------------------------------------

def password_problems(password: str, email: str) -> list[str]:
    """Why ``password`` is too weak for a console account (empty list: fine)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"use at least {MIN_PASSWORD_LENGTH} characters")
    classes = sum(bool(re.search(pattern, password)) for pattern in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]"))
    if classes < 2:
        problems.append("mix at least two kinds of characters (lower case, upper case, digits, symbols)")
    name = email.split("@", 1)[0].lower()
    if len(name) >= 3 and name in password.lower():
        problems.append("do not include the name part of the email")
    return problems


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_staff(email: str, password: str, role: str) -> User:
    """A new active auth user holding ``role``, recorded with no acting staff member
    (the command line is the actor)."""
    email = email.strip().lower()
    if role not in STAFF_ROLES:
        raise WorkflowError(f"{role!r} is not a staff role. Choose one of: {', '.join(STAFF_ROLES)}.", 422)
    if find_user(email) is not None:
        raise WorkflowError(f"{email} already exists.", 409)
    problems = password_problems(password, email)
    if problems:
        raise WorkflowError("Password refused: " + "; ".join(problems) + ".", 422)
    user = User(email=email, password_hash=hash_password(password), email_verified=True, is_active=True,
                failed_login_attempts=0, mfa_enabled=False)
    db.session.add(user)
    db.session.flush()
    db.session.add(UserRole(user_id=user.id, role_id=_role_row(role).id))
    audit.record(None, "staff.created", "staff", user.id, after={"email": email, "roles": [role]},
                 email=email, by="system: console create-staff")
    db.session.commit()
    return user
