"""Staff invitations and "forgot password", through auth_db's password_reset_tokens.

A link carries a random token; the table stores only its SHA-256, with an expiry
(INVITATION_HOURS for an invitation, PASSWORD_RESET_HOURS for a reset) and ``used``.
A token works once: setting the password marks it used, together with every other
open token of the member, in the same transaction that stores the password.

An invited account is created inactive and without a password: nobody can sign in
to it until the invitee sets one from the link, which activates it. The emails are
queued in notification_db (console/workflows/notify.py) for the notification
service to send; the account is written first, so an email is never queued for an
account that does not exist, and an invitation whose email could not be queued is
sent again from the Staff screen ("Resend invitation").
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from console import audit, ratelimit, sessions
from console.extensions import db
from console.lookups import DatabaseUnavailable, database
from console.models.auth import PasswordResetToken, User, UserRole
from console.models.types import utcnow
from console.permissions import STAFF_ROLES
from console.staff import staff_roles_of
from console.workflows import WorkflowError
from console.workflows.notify import queue
from console.workflows.signin import NO_PASSWORD, hash_password
from console.workflows.staff import _role_row, password_problems

EMAIL_MAX = 254

# (subject, text body) of the two emails; notify.queue prefers an active template of
# the same name in notification_db.
# What "forgot password" always answers, whether or not the email has an account.
RESET_ANSWER = ("If that email belongs to a console account, a link to set a new password is on its way. "
                "It works once, for a limited time. Check your inbox (and spam folder).")
RESET_THROTTLED = "Too many requests from this address. Wait a while, then try again."


def _token_hash(token: str) -> str:
    return sessions.token_hash(token)


def _new_token(user_id: str, hours: float) -> str:
    """A fresh link token for ``user_id``; earlier open ones stop working."""
    _close_tokens(user_id)
    token = secrets.token_urlsafe(32)
    db.session.add(PasswordResetToken(user_id=user_id, token=_token_hash(token), used=False,
                                      expires_at=utcnow() + timedelta(hours=hours)))
    return token


def _close_tokens(user_id: str) -> None:
    db.session.execute(update(PasswordResetToken)
                       .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used.is_not(True))
                       .values(used=True).execution_options(synchronize_session=False))


def _queue_email(user: User, template: str, variables: dict, key: str) -> bool:
    """Queues the email (the template of that name, console/email_templates.py) in
    notification_db; False when that database is down or the template is missing or off
    (the Templates screen names it) or can't be rendered (queued as failed)."""
    try:
        with database("notification"):
            notification = queue(user.id, template, variables, key=key)
            db.session.commit()
        return notification is not None and notification.status != "FAILED"
    except DatabaseUnavailable:
        db.session.rollback()
        return False


def normalise_email(email: str | None) -> str:
    email = (email or "").strip().lower()
    if not email or len(email) > EMAIL_MAX or "@" not in email or any(c.isspace() for c in email):
        raise WorkflowError("Type the email address the invitation goes to, such as name@company.com.", 422)
    return email


@dataclass
class Invitation:
    user: User
    queued: bool  # False: notification_db was down; resend from the Staff screen


def invite(actor, email: str, roles: list[str], link_for: Callable[[str], str]) -> Invitation:
    """Creates an inactive account holding ``roles`` and queues its invitation email.
    ``link_for(token)`` makes the link the email carries."""
    email = normalise_email(email)
    chosen = set(roles or [])
    if not chosen or not chosen <= set(STAFF_ROLES):
        raise WorkflowError(f"Choose at least one role: {', '.join(STAFF_ROLES)}.", 422)
    roles = [role for role in STAFF_ROLES if role in chosen]
    hours = current_app.config["INVITATION_HOURS"]
    with database("auth"):
        if db.session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
            raise WorkflowError(f"{email} already has an account. Give it a role with "
                                "“Give a role to an existing account” instead.", 409)
        user = User(email=email, password_hash=NO_PASSWORD, email_verified=False, is_active=False,
                    failed_login_attempts=0, mfa_enabled=False)
        db.session.add(user)
        db.session.flush()
        for role in roles:
            db.session.add(UserRole(user_id=user.id, role_id=_role_row(role).id))
        token = _new_token(user.id, hours)
        audit.record(actor, "staff.invited", "staff", user.id, after={"email": email, "roles": roles},
                     email=email)
        db.session.commit()
    queued = _queue_email(user, "staff_invitation", {
        "inviter": actor.email, "roles": ", ".join(roles), "hours": hours, "link": link_for(token),
        "email": email}, key=f"staff_invitation:{_token_hash(token)}")
    return Invitation(user, queued)


def resend_invitation(actor, user_id: str, link_for: Callable[[str], str]) -> Invitation:
    """A new invitation link for an account that was invited and never set up; the
    earlier link stops working."""
    hours = current_app.config["INVITATION_HOURS"]
    with database("auth"):
        user = db.session.get(User, user_id, with_for_update=True)
        if user is None or not staff_roles_of(user.id):
            db.session.rollback()
            raise WorkflowError("No staff account with this id.", 404)
        if not is_invited(user):
            db.session.rollback()
            raise WorkflowError(f"{user.email} has set up their account already: they can use "
                                "“Forgot password” on the sign-in page.", 409)
        roles = sorted(staff_roles_of(user.id))
        token = _new_token(user.id, hours)
        audit.record(actor, "staff.invitation_resent", "staff", user.id, email=user.email)
        db.session.commit()
    queued = _queue_email(user, "staff_invitation", {
        "inviter": actor.email, "roles": ", ".join(roles), "hours": hours, "link": link_for(token),
        "email": user.email}, key=f"staff_invitation:{_token_hash(token)}")
    return Invitation(user, queued)


def is_invited(user: User) -> bool:
    """Invited and not set up yet: inactive, with no password."""
    return not user.is_active and not user.password_hash


@dataclass
class ResetAnswer:
    message: str
    status: int = 200


def request_reset(email: str, ip: str | None, link_for: Callable[[str], str] | None) -> ResetAnswer:
    """"Forgot password": the same answer whether or not ``email`` has an account, and
    no sooner than PASSWORD_RESET_ANSWER_SECONDS either way. Throttled per address (429,
    said to everyone alike) and per email (silently: no more links to one inbox than
    PASSWORD_RESET_EMAIL_LIMIT a window). ``link_for`` None: no trusted address to build
    links from, so nothing is sent."""
    started = time.monotonic()
    try:
        return _request_reset(email, ip, link_for)
    finally:
        left = current_app.config["PASSWORD_RESET_ANSWER_SECONDS"] - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)


def _request_reset(email: str, ip: str | None, link_for: Callable[[str], str] | None) -> ResetAnswer:
    config = current_app.config
    window = config["PASSWORD_RESET_WINDOW_SECONDS"]
    email = (email or "").strip().lower()[:EMAIL_MAX]
    with database("auth"):
        over = ratelimit.hit(f"reset:ip:{ip or 'unknown'}", window) > config["PASSWORD_RESET_IP_LIMIT"]
        db.session.commit()
        if over:
            return ResetAnswer(RESET_THROTTLED, 429)
        per_email = ratelimit.hit(f"reset:email:{_token_hash(email)}", window)
        db.session.commit()
        user = db.session.scalar(select(User).where(func.lower(User.email) == email)) if email else None
        if (user is None or not user.is_active or per_email > config["PASSWORD_RESET_EMAIL_LIMIT"]
                or not staff_roles_of(user.id) or link_for is None):
            db.session.rollback()
            return ResetAnswer(RESET_ANSWER)
        hours = config["PASSWORD_RESET_HOURS"]
        token = _new_token(user.id, hours)
        audit.record(None, "staff.password_reset_requested", "staff", user.id, email=user.email, ip=ip)
        db.session.commit()
    _queue_email(user, "staff_password_reset", {"email": user.email, "hours": hours, "link": link_for(token)},
                 key=f"staff_password_reset:{_token_hash(token)}")
    return ResetAnswer(RESET_ANSWER)


LINK_REFUSED = ("This link does not work (any more): it was used already, has expired or was replaced by a "
                "newer one. Ask an admin to resend your invitation, or use “Forgot password” on the sign-in page.")


def _open_token(token: str, *, lock: bool = False) -> PasswordResetToken | None:
    if not token or len(token) > 200:
        return None
    stmt = select(PasswordResetToken).where(PasswordResetToken.token == _token_hash(token),
                                            PasswordResetToken.used.is_not(True),
                                            PasswordResetToken.expires_at > utcnow())
    return db.session.scalar(stmt.with_for_update() if lock else stmt)


def exchange_link(token: str) -> str:
    """The token of a link as it is first opened, exchanged for a new one (same member,
    same expiry) that only the browser's session carries; a 404 WorkflowError when the
    link does not work. The address with the old token is written to access logs and
    browser histories on the way in: from here on it opens nothing."""
    with database("auth"):
        row = _open_token(token, lock=True)
        if row is None or not staff_roles_of(row.user_id):
            db.session.rollback()
            raise WorkflowError(LINK_REFUSED, 404)
        fresh = secrets.token_urlsafe(32)
        row.token = _token_hash(fresh)
        db.session.commit()
    return fresh


def user_for_link(token: str) -> User:
    """The account a link is for, or a 404 WorkflowError saying the link does not work."""
    with database("auth"):
        row = _open_token(token)
        user = db.session.get(User, row.user_id) if row else None
        if user is None or not staff_roles_of(user.id):
            raise WorkflowError(LINK_REFUSED, 404)
        return user


def set_password(token: str, password: str, ip: str | None) -> User:
    """Sets the password from a link, once: the token (and every other open one of the
    member) is marked used, an invited account becomes active, every session of the
    member ends (a new password signs everyone else out)."""
    with database("auth"):
        row = _open_token(token, lock=True)
        user = db.session.get(User, row.user_id, with_for_update=True) if row else None
        if user is None or not staff_roles_of(user.id):
            db.session.rollback()
            raise WorkflowError(LINK_REFUSED, 404)
        problems = password_problems(password or "", user.email or "")
        if problems:
            db.session.rollback()
            raise WorkflowError("Password refused: " + "; ".join(problems) + ".", 422)
        invited = is_invited(user)
        _close_tokens(user.id)
        user.password_hash = hash_password(password)
        user.failed_login_attempts = 0
        if invited:
            user.is_active = True
            user.email_verified = True
        sessions.end_all_in_transaction(user.id)
        audit.record(user, "staff.account_set_up" if invited else "staff.password_reset", "staff", user.id,
                     email=user.email, ip=ip)
        db.session.commit()
    return user
