"""The Staff screen and its workflows: roles, locks, MFA resets, the audit trail they
leave, the list and its export, and the create-staff command."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import bcrypt
import pyotp
import pytest
from sqlalchemy import select

from console.demo.builders import make_customer, make_staff, make_user
from console.extensions import db
from console.models.auth import LoginHistory, MfaBackupCode, RateLimit, Role, SecurityAuditLog, User, UserRole
from console.models.types import utcnow
from console.staff import load_staff, staff_roles_of
from console.workflows import WorkflowError, mfa
from console.workflows import staff as actions
from tests.conftest import STAFF_PASSWORD

HTMX = {"HX-Request": "true"}


def audit_rows(action=None):
    stmt = select(SecurityAuditLog).order_by(SecurityAuditLog.created_at)
    if action:
        stmt = stmt.where(SecurityAuditLog.action == action)
    return db.session.scalars(stmt).all()


@pytest.fixture
def admin(ctx):
    user = make_staff("admin", "boss@staff.test", STAFF_PASSWORD)
    db.session.commit()
    return load_staff(user.id, ip="10.0.0.1")


@pytest.fixture
def member(ctx):
    user = make_staff("support", "member@staff.test", STAFF_PASSWORD)
    db.session.commit()
    return user.id


# --- workflows ---------------------------------------------------------------------------

def test_grant_and_revoke_a_role_with_audit(admin, member):
    actions.grant_role(admin, member, "finance")
    assert staff_roles_of(member) == {"support", "finance"}
    actions.revoke_role(admin, member, "support")
    assert staff_roles_of(member) == {"finance"}
    granted, revoked = audit_rows("staff.role_granted")[0], audit_rows("staff.role_revoked")[0]
    assert granted.user_id == admin.id and granted.ip_address == "10.0.0.1"
    assert granted.metadata_ == {"entity": "staff", "entity_id": member, "before": {"roles": ["support"]},
                                 "after": {"roles": ["finance", "support"]}, "role": "finance",
                                 "email": "member@staff.test"}
    assert revoked.metadata_["before"] == {"roles": ["finance", "support"]}
    assert revoked.metadata_["after"] == {"roles": ["finance"]}


def test_refused_role_changes(admin, member):
    with pytest.raises(WorkflowError) as exc:
        actions.revoke_role(admin, admin.id, "admin")
    assert exc.value.status == 409 and "your own admin role" in exc.value.message
    assert "admin" in staff_roles_of(admin.id)
    with pytest.raises(WorkflowError) as exc:
        actions.grant_role(admin, member, "support")
    assert exc.value.status == 409
    with pytest.raises(WorkflowError) as exc:
        actions.grant_role(admin, member, "customer")
    assert exc.value.status == 422
    with pytest.raises(WorkflowError) as exc:
        actions.revoke_role(admin, member, "finance")
    assert exc.value.status == 409
    with pytest.raises(WorkflowError) as exc:
        actions.lock(admin, "no-such-user")
    assert exc.value.status == 404
    assert audit_rows() == []


def test_another_admin_may_remove_an_admin_role(admin):
    other = make_staff("admin", "second@staff.test", STAFF_PASSWORD)
    db.session.commit()
    actions.revoke_role(admin, other.id, "admin")
    assert staff_roles_of(other.id) == frozenset()


def test_lock_and_unlock(admin, member):
    actions.lock(admin, member)
    user = db.session.get(User, member)
    assert user.locked_until == actions.LOCKED_UNTIL_UNLOCKED
    assert load_staff(member) is None  # a locked member loses access
    with pytest.raises(WorkflowError):
        actions.lock(admin, member)
    actions.unlock(admin, member)
    user = db.session.get(User, member)
    assert user.locked_until is None and user.failed_login_attempts == 0
    assert load_staff(member) is not None
    with pytest.raises(WorkflowError):
        actions.unlock(admin, member)
    assert [r.action for r in audit_rows()] == ["staff.locked", "staff.unlocked"]
    assert audit_rows("staff.locked")[0].metadata_["after"]["locked_until"].startswith("9999-12-31")


def test_unlock_clears_a_lockout_from_failed_sign_ins(admin, member):
    user = db.session.get(User, member)
    user.failed_login_attempts, user.locked_until = 5, utcnow() + timedelta(minutes=15)
    db.session.commit()
    actions.unlock(admin, member)
    assert audit_rows("staff.unlocked")[0].metadata_["before"]["failed_login_attempts"] == 5


def test_an_admin_cannot_lock_themselves(admin):
    with pytest.raises(WorkflowError) as exc:
        actions.lock(admin, admin.id)
    assert exc.value.status == 409


def test_reset_mfa_clears_secret_codes_and_replay_marker(admin, member):
    user = db.session.get(User, member)
    user.mfa_secret, user.mfa_enabled = pyotp.random_base32(), True
    mfa.issue_backup_codes(member)
    db.session.commit()
    assert mfa.use_totp(user, pyotp.TOTP(user.mfa_secret).now())
    db.session.commit()
    secret = user.mfa_secret

    actions.reset_mfa(admin, member)
    user = db.session.get(User, member)
    assert user.mfa_enabled is False and user.mfa_secret is None
    assert db.session.scalars(select(MfaBackupCode).where(MfaBackupCode.user_id == member)).all() == []
    assert db.session.scalar(select(RateLimit).where(RateLimit.key == f"mfa:last:{member}")) is None
    row = audit_rows("staff.mfa_reset")[0]
    assert row.metadata_["before"] == {"mfa_enabled": True} and secret not in json.dumps(row.metadata_)
    with pytest.raises(WorkflowError):
        actions.reset_mfa(admin, member)


def test_grant_by_email_creates_a_missing_role_row(admin):
    db.session.delete(db.session.scalar(select(Role).where(Role.name == "marketing")))
    db.session.commit()
    make_user("new@staff.test", STAFF_PASSWORD)
    db.session.commit()
    user = actions.grant_role_by_email(admin, "NEW@staff.test ", "marketing")
    assert staff_roles_of(user.id) == {"marketing"}
    with pytest.raises(WorkflowError) as exc:
        actions.grant_role_by_email(admin, "ghost@staff.test", "marketing")
    assert exc.value.status == 404


@pytest.mark.parametrize("password, problem", [
    ("Short-1", "at least 12"),
    ("alllowercaseletters", "two kinds"),
    ("Member-password-1", "name part"),
])
def test_weak_passwords_are_refused(password, problem):
    problems = actions.password_problems(password, "member@staff.test")
    assert any(problem in p for p in problems)


def test_a_strong_password_passes():
    assert actions.password_problems("correct horse battery 9", "member@staff.test") == []


# --- the screen --------------------------------------------------------------------------

def seed_staff(app):
    with app.app_context():
        admin = make_staff("admin", "admin@staff.test", STAFF_PASSWORD)
        support = make_staff("support", "support@staff.test", STAFF_PASSWORD)
        locked = make_user("locked@staff.test", STAFF_PASSWORD, ("warehouse", "finance"))
        locked.locked_until = utcnow() + timedelta(minutes=10)
        mfa_user = make_staff("marketing", "mfa@staff.test", STAFF_PASSWORD)
        mfa_user.mfa_enabled, mfa_user.mfa_secret = True, pyotp.random_base32()
        make_customer("shopper@example.com")
        db.session.add(LoginHistory(user_id=support.id, status="success", ip_address="1.2.3.4",
                                    created_at=utcnow() - timedelta(days=2)))
        db.session.add(LoginHistory(user_id=support.id, status="failed", ip_address="1.2.3.4",
                                    created_at=utcnow() - timedelta(days=1)))
        db.session.commit()
        return {"admin": admin.id, "support": support.id, "locked": locked.id, "mfa": mfa_user.id}


def test_staff_list_shows_roles_last_sign_in_lock_and_mfa(app, client):
    ids = seed_staff(app)
    client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
    response = client.get("/staff")
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert "shopper@example.com" not in html  # customers are not staff
    for email in ("admin@staff.test", "support@staff.test", "locked@staff.test", "mfa@staff.test"):
        assert email in html
    locked_row = html.split(f'id="staff-{ids["locked"]}"')[1].split("</tr>")[0]
    assert ">locked<" in locked_row and "Unlock" in locked_row and "warehouse" in locked_row and "finance" in locked_row
    support_row = html.split(f'id="staff-{ids["support"]}"')[1].split("</tr>")[0]
    two_days_ago = (utcnow() - timedelta(days=2)).strftime("%Y-%m-%d")
    assert two_days_ago in support_row  # the last *successful* sign-in
    mfa_row = html.split(f'id="staff-{ids["mfa"]}"')[1].split("</tr>")[0]
    assert ">on<" in mfa_row and "Reset" in mfa_row
    own_row = html.split(f'id="staff-{ids["admin"]}"')[1].split("</tr>")[0]
    assert "Remove the admin role" not in own_row and ">Lock<" not in own_row


def test_staff_list_filters_and_htmx_partial(app, client):
    seed_staff(app)
    client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
    html = client.get("/staff?role=finance").get_data(as_text=True)
    assert "locked@staff.test" in html and "support@staff.test" not in html
    html = client.get("/staff?state=locked").get_data(as_text=True)
    assert "locked@staff.test" in html and "mfa@staff.test" not in html
    html = client.get("/staff?state=mfa_off&q=SUPP").get_data(as_text=True)
    assert "support@staff.test" in html and "mfa@staff.test" not in html and "locked@staff.test" not in html
    partial = client.get("/staff?q=mfa", headers=HTMX)
    assert b"<html" not in partial.data and b"mfa@staff.test" in partial.data
    assert client.get("/staff?cursor=not-a-cursor").status_code == 400


def test_staff_list_pages_by_keyset_with_constant_queries(app, client, count_queries):
    seed_staff(app)
    with app.app_context():
        for i in range(6):
            make_staff("support", f"extra{i}@staff.test", STAFF_PASSWORD)
        db.session.commit()
    client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
    start = count_queries.count
    first = client.get("/staff?size=4", headers=HTMX).get_data(as_text=True)
    small_page = count_queries.count - start
    assert first.count('<tr id="staff-') == 4
    cursor = first.split("cursor=")[1].split("&")[0].split('"')[0]
    second = client.get(f"/staff?size=4&cursor={cursor}", headers=HTMX).get_data(as_text=True)
    third = client.get(f"/staff?size=4&cursor={second.split('cursor=')[1].split('&')[0]}", headers=HTMX)
    rows = [set(p.split('data-email="')[1:]) for p in (first, second, third.get_data(as_text=True))]
    assert sum(len(r) for r in rows) == 10 and not (rows[0] & rows[1])
    start = count_queries.count
    client.get("/staff?size=10", headers=HTMX)
    assert count_queries.count - start == small_page  # not one query per row


def test_row_actions_answer_htmx_with_the_row_and_a_message(app, client):
    ids = seed_staff(app)
    client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
    response = client.post(f"/staff/{ids['support']}/roles", data={"role": "warehouse"}, headers=HTMX)
    assert response.status_code == 200
    assert response.data.lstrip().startswith(b"<tr") and b"warehouse" in response.data
    message = json.loads(response.headers["HX-Trigger"])["console:flash"]["message"]
    assert message == "Granted the warehouse role to support@staff.test."

    response = client.post(f"/staff/{ids['support']}/lock", headers=HTMX)
    assert b">locked<" in response.data
    response = client.post(f"/staff/{ids['support']}/unlock", headers=HTMX)
    assert b">locked<" not in response.data
    response = client.post(f"/staff/{ids['mfa']}/mfa/reset", headers=HTMX)
    assert b">off<" in response.data
    response = client.post(f"/staff/{ids['support']}/roles/warehouse/revoke", headers=HTMX)
    assert b"warehouse" not in response.data.split(b"add role")[0]
    with app.app_context():
        assert [r.action for r in audit_rows()] == ["staff.role_granted", "staff.locked", "staff.unlocked",
                                                    "staff.mfa_reset", "staff.role_revoked"]
        assert {r.user_id for r in audit_rows()} == {ids["admin"]}


def test_refusals_go_to_the_message_area(app, client):
    ids = seed_staff(app)
    client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
    response = client.post(f"/staff/{ids['admin']}/roles/admin/revoke", headers=HTMX)
    assert response.status_code == 409
    assert response.headers["HX-Retarget"] == "#flashes" and response.headers["HX-Reswap"] == "innerHTML"
    assert b"cannot remove your own admin role" in response.data
    # Without htmx: a flash and a redirect back to the list.
    response = client.post(f"/staff/{ids['admin']}/roles/admin/revoke")
    assert response.status_code == 303
    assert b"cannot remove your own admin role" in client.get("/staff").data
    with app.app_context():
        assert "admin" in staff_roles_of(ids["admin"]) and audit_rows() == []


def test_add_staff_by_email(app, client):
    seed_staff(app)
    with app.app_context():
        make_user("newcomer@staff.test", STAFF_PASSWORD)
        db.session.commit()
    client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
    response = client.post("/staff/grant", data={"email": "newcomer@staff.test", "role": "warehouse"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Granted the warehouse role to newcomer@staff.test." in page and 'data-email="newcomer@staff.test"' in page
    response = client.post("/staff/grant", data={"email": "ghost@staff.test", "role": "warehouse"})
    assert b"No account with the email ghost@staff.test" in client.get(response.headers["Location"]).data


def test_export_has_exactly_the_filtered_staff(app, client):
    seed_staff(app)
    client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD})
    response = client.get("/staff/export.csv?role=finance")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="staff-')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == actions_header() and len(rows) == 2
    assert rows[1][0] == "locked@staff.test" and rows[1][1] == "warehouse finance"


def actions_header():
    from console.screens.staff import STAFF
    EXPORT_HEADER = list(STAFF.export_header)
    return EXPORT_HEADER


def test_only_admins_reach_the_staff_screen(app, auth, client):
    ids = seed_staff(app)
    client.post("/login", data={"email": "support@staff.test", "password": STAFF_PASSWORD})
    assert client.get("/staff").status_code == 403
    assert client.post(f"/staff/{ids['locked']}/unlock", headers=HTMX).status_code == 403
    with app.app_context():
        assert db.session.get(User, ids["locked"]).locked_until is not None


# --- create-staff ------------------------------------------------------------------------

def test_create_staff_command(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["console", "create-staff", "first@staff.test", "--role", "admin"],
                           input="short\nshort\nOpening-day-pass-9\nOpening-day-pass-9\n")
    assert result.exit_code == 0, result.output
    assert "Password refused: use at least 12 characters" in result.output
    assert "Created first@staff.test with the admin role." in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "first@staff.test"))
        assert user.is_active and user.password_hash.startswith("$2b$")
        assert bcrypt.checkpw(b"Opening-day-pass-9", user.password_hash.encode())
        assert staff_roles_of(user.id) == {"admin"}
        row = audit_rows("staff.created")[0]
        assert row.user_id is None and row.metadata_["entity_id"] == user.id
        assert "Opening-day-pass-9" not in json.dumps(row.metadata_)
    client = app.test_client()
    assert client.post("/login", data={"email": "first@staff.test",
                                       "password": "Opening-day-pass-9"}).status_code == 302


def test_create_staff_grants_a_role_to_an_existing_account(app):
    with app.app_context():
        make_user("existing@staff.test", STAFF_PASSWORD, ("support",))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["console", "create-staff", "existing@staff.test", "--role", "finance"])
    assert result.exit_code == 0, result.output
    assert "granted the finance role" in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "existing@staff.test"))
        assert staff_roles_of(user.id) == {"support", "finance"}
        assert audit_rows("staff.role_granted")[0].user_id is None
    again = app.test_cli_runner().invoke(args=["console", "create-staff", "existing@staff.test", "--role", "finance"])
    assert again.exit_code != 0 and "already has the finance role" in again.output


def test_create_staff_refuses_an_unknown_role(app):
    result = app.test_cli_runner().invoke(args=["console", "create-staff", "x@staff.test", "--role", "customer"])
    assert result.exit_code != 0
    with app.app_context():
        assert db.session.scalars(select(UserRole)).all() == []


def test_loading_the_signed_in_staff_member_is_one_statement(ctx, count_queries):
    """Every request loads the staff member and their roles: one statement, and it still
    refuses a deactivated or locked account or one without a staff role."""
    user = make_staff("support")
    db.session.commit()
    user_id = user.id
    count_queries.statements.clear()
    staff = load_staff(user_id)
    assert count_queries.count == 1, count_queries.statements
    assert staff.email == "support@example.com" and staff.roles == frozenset({"support"})
    customer = make_user("buyer@example.com", roles=("customer",))
    db.session.commit()
    assert load_staff(customer.id) is None and load_staff("no-such-id") is None
    user.locked_until = utcnow() + timedelta(minutes=5)
    db.session.commit()
    assert load_staff(user.id) is None
    user.locked_until, user.is_active = None, False
    db.session.commit()
    assert load_staff(user.id) is None
