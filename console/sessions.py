"""Staff sessions held on the server, in auth_db's ``user_sessions``.

Sign-in makes a random token; the session cookie (signed by Flask) carries it, and
``user_sessions.session_token`` stores only its SHA-256, so a copy of the table opens
nothing. Every request reads the row once, together with the user and their roles,
and refuses it unless it is active and unexpired, the account is active and unlocked
and still holds a staff role. Sign-out, "sign out everywhere", a revoked role and a
lock set ``is_active`` false, so a copied cookie stops working at its next request.

Times, all enforced here on the server (the cookie's own expiry is only a hint):

- ``expires_at`` is the idle deadline, moved forward as the session is used (at most
  once a minute, so a busy page costs no write per request) but never past
- the absolute lifetime, ``created_at`` + ``SESSION_MAX_HOURS``.

The device a session was started from is a ``devices`` row (browser and system from
the User-Agent; ``last_used_at`` is when the session was last seen), and the address
is the sign-in's ``login_history`` row, which points at the same device.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from flask import current_app, g
from sqlalchemy import bindparam, select, update

from console.drift import require_writes
from console.extensions import db
from console.lookups import named, plain_rows
from console.models.auth import Device, LoginHistory, Role, User, UserRole, UserSession
from console.models.types import new_id, utcnow
from console.permissions import STAFF_ROLES

# A session's idle deadline moves forward only when it is this much older than a
# fresh one would be: at most one write per session a minute.
SLIDE_EVERY = timedelta(seconds=60)

# What each step writes, checked before it writes (console/drift.py): a database
# without one of these columns refuses with its name instead of failing half way.
START_WRITES = ((Device,), (UserSession,), (LoginHistory,))  # rows inserted, every column
SLIDE_WRITES = ((UserSession, "expires_at"), (Device, "last_used_at"))
END_WRITES = ((UserSession, "is_active"),)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _idle() -> timedelta:
    return current_app.permanent_session_lifetime


def _max_age() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_MAX_HOURS"])


def describe_agent(agent: str | None) -> tuple[str, str]:
    """(browser, operating system) from a User-Agent, roughly: enough for a person to
    recognise their own device in a list."""
    agent = agent or ""
    browser = next((name for pattern, name in (
        (r"Edg/", "Edge"), (r"OPR/|Opera", "Opera"), (r"Firefox/", "Firefox"),
        (r"Chrom(e|ium)/", "Chrome"), (r"Safari/", "Safari"), (r"curl/", "curl"),
    ) if re.search(pattern, agent)), "Unknown browser")
    system = next((name for pattern, name in (
        (r"Windows", "Windows"), (r"Android", "Android"), (r"iPhone|iPad", "iOS"),
        (r"Mac OS X|Macintosh", "macOS"), (r"CrOS", "ChromeOS"), (r"Linux", "Linux"),
    ) if re.search(pattern, agent)), "unknown system")
    return browser, system


def start(user_id: str, ip: str | None, user_agent: str | None) -> str:
    """A new session for ``user_id`` with its device and its successful sign-in row;
    returns the token for the cookie. The caller commits (auth_db)."""
    require_writes(*START_WRITES)
    now = utcnow()
    browser, system = describe_agent(user_agent)
    device = Device(id=new_id(), user_id=user_id, device_id=secrets.token_hex(16),
                    device_name=f"{browser} on {system}", device_type="browser", os=system, browser=browser,
                    is_trusted=False, last_used_at=now, created_at=now)
    token = secrets.token_urlsafe(32)
    db.session.add(device)
    db.session.add(UserSession(user_id=user_id, session_token=token_hash(token), device_id=device.id,
                               is_active=True, created_at=now, expires_at=min(now + _idle(), now + _max_age())))
    db.session.add(LoginHistory(user_id=user_id, device_id=device.id, status="success", ip_address=ip))
    return token


@dataclass
class LiveSession:
    """What one request learns from its single read of auth_db."""

    id: str
    user_id: str
    email: str
    roles: frozenset[str]
    mfa_enabled: bool
    device_id: str | None
    created_at: datetime
    expires_at: datetime


@lru_cache(maxsize=None)
def _session_statement():
    """The read of a session by its token's hash, with its user and roles: built once per
    process (every request runs it), its compiled form then cached by SQLAlchemy."""
    return (select(*named(UserSession.id, UserSession.user_id, UserSession.device_id, UserSession.created_at,
                          UserSession.expires_at, User.email, User.is_active, User.locked_until, User.mfa_enabled),
                   Role.name.label("role"))
            .join(User, User.id == UserSession.user_id)
            .outerjoin(UserRole, UserRole.user_id == User.id)
            .outerjoin(Role, Role.id == UserRole.role_id)
            .where(UserSession.session_token == bindparam("token_hash"), UserSession.is_active.is_(True)))


def _read(token: str) -> LiveSession | None:
    """The active session for ``token`` with its user and staff roles: one query
    (one row per role), or None when there is no such usable session."""
    rows = plain_rows("auth", _session_statement(), {"token_hash": token_hash(token)})
    if not rows:
        return None
    first = rows[0]
    now = utcnow()
    roles = frozenset(r.role for r in rows if r.role in STAFF_ROLES)
    expired = (first.expires_at is None or first.expires_at <= now
               or first.created_at is None or first.created_at + _max_age() <= now)
    if expired:
        _end_where(UserSession.id == first.id)
        return None
    locked = first.locked_until is not None and first.locked_until > now
    if not first.is_active or locked or not roles:
        return None
    return LiveSession(id=first.id, user_id=first.user_id, email=first.email, roles=roles,
                       mfa_enabled=bool(first.mfa_enabled), device_id=first.device_id,
                       created_at=first.created_at, expires_at=first.expires_at)


def _write(*statements) -> None:
    """Writes on a connection of their own, committed at once: the request's session
    (and whatever a view has pending in it) is left alone."""
    with db.engines["auth"].begin() as conn:
        for statement in statements:
            conn.execute(statement)


def _end_where(condition) -> None:
    require_writes(*END_WRITES)
    _write(update(UserSession).where(condition, UserSession.is_active.is_(True)).values(is_active=False))


def _slide(live: LiveSession) -> None:
    now = utcnow()
    deadline = min(now + _idle(), live.created_at + _max_age())
    if deadline - live.expires_at < SLIDE_EVERY:
        return
    require_writes(*SLIDE_WRITES)
    statements = [update(UserSession).where(UserSession.id == live.id).values(expires_at=deadline)]
    if live.device_id:
        statements.append(update(Device).where(Device.id == live.device_id).values(last_used_at=now))
    _write(*statements)
    live.expires_at = deadline


def current(token: str | None) -> LiveSession | None:
    """The request's session for ``token``, read at most once per request."""
    if not token:
        return None
    cache = g.setdefault("_staff_sessions", {})
    if token not in cache:
        live = _read(token)
        if live is not None:
            _slide(live)
        cache[token] = live
    return cache[token]


def end(token: str | None) -> None:
    """Sign-out: this session stops working, whoever holds a copy of the cookie."""
    if token:
        _end_where(UserSession.session_token == token_hash(token))


def end_one(user_id: str, session_id: str) -> bool:
    """Ends one of ``user_id``'s own sessions inside the caller's auth_db transaction;
    False when it was not theirs or not active."""
    require_writes(*END_WRITES)
    return db.session.execute(update(UserSession).where(
        UserSession.id == session_id, UserSession.user_id == user_id, UserSession.is_active.is_(True))
        .values(is_active=False).execution_options(synchronize_session=False)).rowcount == 1


def end_all_in_transaction(user_id: str) -> int:
    """Ends every active session of ``user_id`` inside the caller's auth_db transaction
    (a role revoked, a lock, a new password): they end when it commits, or not at all."""
    require_writes(*END_WRITES)
    return db.session.execute(
        update(UserSession).where(UserSession.user_id == user_id, UserSession.is_active.is_(True))
        .values(is_active=False).execution_options(synchronize_session=False)).rowcount


@dataclass
class SessionRow:
    id: str
    device: str
    address: str | None
    started: datetime | None
    last_seen: datetime | None
    expires_at: datetime | None


def active_sessions(user_id: str) -> list[SessionRow]:
    """The user's sessions that still work, newest first, with device and address."""
    now = utcnow()
    rows = db.session.execute(
        select(UserSession, Device.device_name, Device.last_used_at)
        .outerjoin(Device, Device.id == UserSession.device_id)
        .where(UserSession.user_id == user_id, UserSession.is_active.is_(True), UserSession.expires_at > now,
               UserSession.created_at > now - _max_age())
        .order_by(UserSession.created_at.desc(), UserSession.id.desc()).limit(50)
    ).all()
    device_ids = [row.UserSession.device_id for row in rows if row.UserSession.device_id]
    addresses = dict(db.session.execute(
        select(LoginHistory.device_id, LoginHistory.ip_address)
        .where(LoginHistory.device_id.in_(device_ids), LoginHistory.status == "success"))
        .all()) if device_ids else {}
    return [SessionRow(id=row.UserSession.id, device=row.device_name or "Unknown device",
                       address=addresses.get(row.UserSession.device_id), started=row.UserSession.created_at,
                       last_seen=row.last_used_at, expires_at=row.UserSession.expires_at)
            for row in rows]
