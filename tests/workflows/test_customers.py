"""Customer account actions: lock, unlock, revoke sessions; audit rows and refusals."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from console.staff import LOCKED_UNTIL_UNLOCKED
from console.demo.builders import make_customer, make_session, make_staff
from console.extensions import db
from console.models.auth import RefreshToken, SecurityAuditLog, User, UserSession
from console.models.types import utcnow
from console.staff import StaffUser
from console.workflows import WorkflowError
from console.workflows import customers as actions


@pytest.fixture
def actor(ctx):
    staff = make_staff("support", "lead@staff.test")
    db.session.commit()
    return StaffUser(id=staff.id, email=staff.email, roles=frozenset({"support"}), ip="127.0.0.1")


@pytest.fixture
def customer(ctx):
    user, _ = make_customer("sam@example.com", "Sam", "Lee")
    make_session(user)
    make_session(user, device_name="Tablet")
    make_session(user, device_name="Old phone", active=False)  # already ended: left alone
    db.session.commit()
    return user.id


def audit_rows(action: str) -> list[SecurityAuditLog]:
    return list(db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action == action)))


def fresh(user_id: str) -> User:
    db.session.expire_all()
    return db.session.get(User, user_id)


def test_lock_until_unlocked_keeps_the_account_active(actor, customer):
    actions.lock_account(actor, customer, "Reported stolen by phone")
    user = fresh(customer)
    assert user.locked_until == LOCKED_UNTIL_UNLOCKED
    assert user.is_active is True
    [row] = audit_rows("customer.locked")
    assert row.user_id == actor.id and row.ip_address == "127.0.0.1"
    assert row.metadata_["entity_id"] == customer
    assert row.metadata_["reason"] == "Reported stolen by phone"
    assert row.metadata_["before"] == {"locked_until": None}
    assert row.metadata_["duration"] == "until unlocked"


def test_lock_for_a_chosen_duration(actor, customer):
    before = utcnow()
    actions.lock_account(actor, customer, "Suspicious sign-ins", "24h")
    locked_until = fresh(customer).locked_until
    assert before + timedelta(hours=24) <= locked_until <= utcnow() + timedelta(hours=24)


def test_unlock_clears_the_lock_and_failed_attempts(actor, customer):
    user = db.session.get(User, customer)
    user.locked_until = utcnow() + timedelta(minutes=10)
    user.failed_login_attempts = 5
    db.session.commit()
    actions.unlock_account(actor, customer, "Customer verified on the phone")
    user = fresh(customer)
    assert user.locked_until is None
    assert user.failed_login_attempts == 0
    [row] = audit_rows("customer.unlocked")
    assert row.metadata_["before"]["failed_login_attempts"] == 5
    assert row.metadata_["after"] == {"locked_until": None, "failed_login_attempts": 0}


def test_unlock_refused_when_nothing_is_locked(actor, customer):
    with pytest.raises(WorkflowError) as refused:
        actions.unlock_account(actor, customer, "just in case")
    assert refused.value.status == 409
    assert "not locked" in refused.value.message
    assert audit_rows("customer.unlocked") == []


def test_revoke_ends_sessions_and_refresh_tokens(actor, customer):
    revoked = actions.revoke_sessions(actor, customer, "Password leaked")
    assert (revoked.sessions, revoked.refresh_tokens) == (2, 2)
    db.session.expire_all()
    assert not any(s.is_active for s in db.session.scalars(select(UserSession).where(UserSession.user_id == customer)))
    assert all(t.revoked for t in db.session.scalars(select(RefreshToken).where(RefreshToken.user_id == customer)))
    [row] = audit_rows("customer.sessions_revoked")
    assert row.metadata_["sessions"] == 2 and row.metadata_["refresh_tokens"] == 2
    assert row.metadata_["reason"] == "Password leaked"
    # Nothing is left to revoke: said so, and no second audit row.
    with pytest.raises(WorkflowError) as refused:
        actions.revoke_sessions(actor, customer, "again")
    assert refused.value.status == 409
    assert len(audit_rows("customer.sessions_revoked")) == 1


@pytest.mark.parametrize("perform", [
    lambda actor, uid: actions.lock_account(actor, uid, "reason"),
    lambda actor, uid: actions.unlock_account(actor, uid, "reason"),
    lambda actor, uid: actions.revoke_sessions(actor, uid, "reason"),
])
def test_staff_accounts_are_refused(actor, perform):
    staff = make_staff("finance", "money@staff.test")
    staff.locked_until = utcnow() + timedelta(hours=1)
    make_session(staff)
    db.session.commit()
    with pytest.raises(WorkflowError) as refused:
        perform(actor, staff.id)
    assert refused.value.status == 409
    assert "Staff screen" in refused.value.message
    staff = fresh(staff.id)
    assert staff.locked_until is not None and staff.locked_until < LOCKED_UNTIL_UNLOCKED
    assert db.session.scalar(select(UserSession.is_active).where(UserSession.user_id == staff.id)) is True
    assert db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action.like("customer.%"))).all() == []


def test_refusals_for_bad_input(actor, customer):
    with pytest.raises(WorkflowError) as no_reason:
        actions.lock_account(actor, customer, "   ")
    assert no_reason.value.status == 422
    with pytest.raises(WorkflowError) as bad_duration:
        actions.lock_account(actor, customer, "reason", "3 weeks")
    assert bad_duration.value.status == 422
    with pytest.raises(WorkflowError) as unknown:
        actions.lock_account(actor, "no-such-user", "reason")
    assert unknown.value.status == 404
    assert fresh(customer).locked_until is None
    assert audit_rows("customer.locked") == []
