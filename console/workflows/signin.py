"""Staff sign-in against auth_db: bcrypt hashes as the auth service writes them."""
from __future__ import annotations

from dataclasses import dataclass

import bcrypt
from flask import current_app, has_app_context
from sqlalchemy import func, select

from console.extensions import db
from console.models.auth import LoginHistory, User
from console.staff import StaffUser, load_staff

GENERIC_FAILURE = "Email or password is not right, or this account may not use the console."


@dataclass
class SignInResult:
    staff: StaffUser | None
    message: str = ""


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=current_app.config.get("BCRYPT_ROUNDS", 12) if has_app_context() else 12)).decode()


def password_matches(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        return False
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:  # not a bcrypt hash at all
        return False


def authenticate(email: str, password: str, ip: str | None) -> SignInResult:
    email = (email or "").strip().lower()
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    staff = None
    if user is not None and password_matches(password, user.password_hash):
        staff = load_staff(user.id, ip=ip)
    db.session.add(LoginHistory(user_id=user.id if user else None,
                                status="success" if staff else "failed", ip_address=ip))
    db.session.commit()
    return SignInResult(staff, "" if staff else GENERIC_FAILURE)
