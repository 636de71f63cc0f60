"""Staff sign-in: who gets in, lockout, login history, the per-address throttle,
the second factor (TOTP and backup codes), sessions and the profile enrolment."""
from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pyotp
import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import delete, select

from console.demo.builders import make_customer, make_user
from console.extensions import db
from console.models.auth import LoginHistory, MfaBackupCode, RateLimit, SecurityAuditLog, User, UserRole
from console.models.types import utcnow
from console.workflows import mfa, signin
from console.workflows.signin import GENERIC_FAILURE, MFA_FAILURE, THROTTLED, hash_password
from tests.conftest import STAFF_PASSWORD

GENERIC = GENERIC_FAILURE.encode()


def sign_in(client, email, password=STAFF_PASSWORD, **kwargs):
    return client.post("/login", data={"email": email, "password": password}, **kwargs)


def history(app, email=None):
    with app.app_context():
        stmt = select(LoginHistory).order_by(LoginHistory.created_at, LoginHistory.id)
        if email:
            stmt = stmt.where(LoginHistory.user_id == select(User.id).where(User.email == email).scalar_subquery())
        return [(row.status, row.ip_address) for row in db.session.scalars(stmt)]


def user_row(app, email) -> User:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.expunge(user)
        return user


def update_user(app, email, **values):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        for key, value in values.items():
            setattr(user, key, value)
        db.session.commit()


# --- who gets in -------------------------------------------------------------------------

def test_staff_member_signs_in_and_history_records_success(auth, client, app):
    auth.create("support")
    response = sign_in(client, "support@staff.test")
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert history(app) == [("success", "127.0.0.1")]


@pytest.mark.parametrize("case", ["customer", "inactive", "wrong_password", "unknown_email", "no_role"])
def test_refusals_share_one_message(app, client, case):
    with app.app_context():
        if case == "customer":
            make_customer("shopper@example.com", password_hash=hash_password(STAFF_PASSWORD))
        elif case == "inactive":
            make_user("shopper@example.com", STAFF_PASSWORD, ("admin",), is_active=False)
        elif case == "no_role":
            make_user("shopper@example.com", STAFF_PASSWORD, ())
        else:
            make_user("shopper@example.com", STAFF_PASSWORD, ("support",))
        db.session.commit()
    password = "Not-the-password-1" if case == "wrong_password" else STAFF_PASSWORD
    email = "nobody@example.com" if case == "unknown_email" else "shopper@example.com"
    response = sign_in(client, email, password)
    assert response.status_code == 401
    assert GENERIC in response.data
    assert client.get("/").status_code == 302  # not signed in
    statuses = [status for status, _ in history(app)]
    # login_history."userId" is NOT NULL: an attempt on no account leaves no row (the
    # address throttle still counts it).
    assert statuses == ([] if case == "unknown_email" else ["failed"])


def test_email_is_matched_without_case(auth, client):
    auth.create("support")
    assert sign_in(client, "  Support@Staff.TEST ").status_code == 302


def test_node_style_2a_and_2y_hashes_verify(app, client):
    import bcrypt

    for prefix, email in (("$2a$", "a@staff.test"), ("$2y$", "y@staff.test")):
        hashed = bcrypt.hashpw(STAFF_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        with app.app_context():
            make_user(email, roles=("support",), password_hash=prefix + hashed[4:])
            db.session.commit()
        assert sign_in(client, email).status_code == 302
        client.post("/logout")


# --- lockout -----------------------------------------------------------------------------

def test_five_failures_lock_the_account_even_for_the_right_password(auth, client, app):
    auth.create("support")
    for attempt in range(1, 5):
        assert sign_in(client, "support@staff.test", "wrong-password").status_code == 401
        assert user_row(app, "support@staff.test").failed_login_attempts == attempt
        assert user_row(app, "support@staff.test").locked_until is None
    sign_in(client, "support@staff.test", "wrong-password")
    user = user_row(app, "support@staff.test")
    assert user.failed_login_attempts == 5
    minutes = (user.locked_until - utcnow()) / timedelta(minutes=1)
    assert 14 < minutes <= 15

    response = sign_in(client, "support@staff.test")  # the right password, while locked
    assert response.status_code == 401 and GENERIC in response.data
    assert client.get("/").status_code == 302
    assert [s for s, _ in history(app)] == ["failed"] * 5 + ["locked"]


def test_lock_expiry_lets_the_right_password_in_and_resets(auth, client, app):
    auth.create("support")
    for _ in range(5):
        sign_in(client, "support@staff.test", "wrong-password")
    update_user(app, "support@staff.test", locked_until=utcnow() - timedelta(seconds=1))
    assert sign_in(client, "support@staff.test").status_code == 302
    user = user_row(app, "support@staff.test")
    assert user.failed_login_attempts == 0 and user.locked_until is None


def test_a_failure_after_an_expired_lock_starts_a_new_run(auth, client, app):
    auth.create("support")
    update_user(app, "support@staff.test", failed_login_attempts=5, locked_until=utcnow() - timedelta(minutes=1))
    sign_in(client, "support@staff.test", "wrong-password")
    user = user_row(app, "support@staff.test")
    assert user.failed_login_attempts == 1 and user.locked_until is None


def test_success_resets_the_failure_count(auth, client, app):
    auth.create("support")
    for _ in range(3):
        sign_in(client, "support@staff.test", "wrong-password")
    assert sign_in(client, "support@staff.test").status_code == 302
    assert user_row(app, "support@staff.test").failed_login_attempts == 0


def test_lockout_limits_come_from_config(auth, client, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 2)
    monkeypatch.setitem(app.config, "LOGIN_LOCK_MINUTES", 60)
    auth.create("support")
    sign_in(client, "support@staff.test", "wrong-password")
    sign_in(client, "support@staff.test", "wrong-password")
    minutes = (user_row(app, "support@staff.test").locked_until - utcnow()) / timedelta(minutes=1)
    assert 59 < minutes <= 60


# --- per-address throttle ----------------------------------------------------------------

def test_too_many_attempts_from_one_address_get_429(auth, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_IP_LIMIT", 3)
    auth.create("support")
    attacker = app.test_client()
    for _ in range(3):
        assert sign_in(attacker, "nobody@example.com", "guess", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 401
    response = sign_in(attacker, "support@staff.test", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert response.status_code == 429
    assert THROTTLED.encode() in response.data
    # Another address is not affected.
    assert sign_in(app.test_client(), "support@staff.test", environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code == 302
    with app.app_context():
        row = db.session.scalar(select(RateLimit).where(RateLimit.key == "login:ip:10.9.9.9"))
        assert row.count == 4
        # Counted before the user lookup: the attempts on no account and the throttled one
        # leave no login_history row (its "userId" is NOT NULL), only the counter.
        throttled = db.session.scalars(select(LoginHistory).where(LoginHistory.ip_address == "10.9.9.9")).all()
        assert throttled == []
    assert ("failed", "10.9.9.9") not in history(app, "support@staff.test")


def test_the_throttle_window_runs_out(auth, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_IP_LIMIT", 1)
    auth.create("support")
    client = app.test_client()
    sign_in(client, "support@staff.test", "wrong")
    assert sign_in(client, "support@staff.test").status_code == 429
    with app.app_context():
        row = db.session.scalar(select(RateLimit).where(RateLimit.key == "login:ip:127.0.0.1"))
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert sign_in(client, "support@staff.test").status_code == 302


@pytest.mark.postgres_only
def test_throttle_counts_every_concurrent_attempt(app):
    """Twenty attempts at once from one address: each gets its own count."""
    results, barrier = [], threading.Barrier(20)

    def attempt():
        with app.app_context():
            from console import ratelimit
            barrier.wait()
            results.append(ratelimit.hit("login:ip:10.7.7.7", 300))
            db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 21))


@pytest.mark.postgres_only
def test_concurrent_wrong_passwords_all_count(auth, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 50)
    auth.create("support")
    barrier = threading.Barrier(8)

    def attempt():
        with app.app_context():
            barrier.wait()
            signin.authenticate("support@staff.test", "wrong", ip="10.2.2.2")
            db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert user_row(app, "support@staff.test").failed_login_attempts == 8


# --- second factor -----------------------------------------------------------------------

@pytest.fixture
def mfa_user(app, auth):
    """A support member with MFA on: returns (email, TOTP, backup codes)."""
    auth.create("support")
    secret = pyotp.random_base32()
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "support@staff.test"))
        user.mfa_secret, user.mfa_enabled = secret, True
        codes = mfa.issue_backup_codes(user.id)
        db.session.commit()
    return "support@staff.test", pyotp.TOTP(secret), codes


def test_mfa_user_needs_a_code_before_the_session_exists(client, app, mfa_user):
    email, totp, _ = mfa_user
    response = sign_in(client, email)
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/mfa")
    assert client.get("/").status_code == 302  # only a pending id so far, not signed in
    with client.session_transaction() as session:
        assert "_user_id" not in session and session["mfa_pending"]["user_id"]
    assert history(app) == []  # the attempt is not over yet

    wrong = client.post("/login/mfa", data={"code": "000000" if totp.now() != "000000" else "111111"})
    assert wrong.status_code == 401 and MFA_FAILURE.encode() in wrong.data
    assert user_row(app, email).failed_login_attempts == 1

    right = client.post("/login/mfa", data={"code": totp.now()})
    assert right.status_code == 302
    assert client.get("/").status_code == 200
    assert [s for s, _ in history(app)] == ["failed", "success"]
    assert user_row(app, email).failed_login_attempts == 0


def test_a_totp_code_works_once(client, app, mfa_user):
    email, totp, _ = mfa_user
    code = totp.now()
    sign_in(client, email)
    assert client.post("/login/mfa", data={"code": code}).status_code == 302
    client.post("/logout")
    sign_in(client, email)
    replay = client.post("/login/mfa", data={"code": code})
    assert replay.status_code == 401 and MFA_FAILURE.encode() in replay.data
    # The next time step's code (still inside the accepted window) is fine.
    assert client.post("/login/mfa", data={"code": totp.at(time.time() + 30)}).status_code == 302


def test_an_80_bit_secret_from_the_auth_service_still_signs_in(client, app, mfa_user):
    """Secrets of 16 base32 characters are below pyotp's 112-bit floor but common in
    authenticator enrolments the auth service already holds."""
    email, _, _ = mfa_user
    short = "JBSWY3DPEHPK3PXP"
    with app.app_context():
        db.session.scalar(select(User).where(User.email == email)).mfa_secret = short
        db.session.commit()
    code = mfa.ServiceTOTP(short).now()
    sign_in(client, email)
    assert client.post("/login/mfa", data={"code": code}).status_code == 302
    assert client.get("/").status_code == 200


def test_a_secret_that_is_not_base32_refuses_the_code_without_a_500(client, app, mfa_user):
    email, totp, _ = mfa_user
    with app.app_context():
        db.session.scalar(select(User).where(User.email == email)).mfa_secret = "not base32 !!"
        db.session.commit()
    sign_in(client, email)
    response = client.post("/login/mfa", data={"code": totp.now()})
    assert response.status_code == 401 and MFA_FAILURE.encode() in response.data


def test_a_backup_code_works_once(client, app, mfa_user):
    email, _, codes = mfa_user
    sign_in(client, email)
    assert client.post("/login/mfa", data={"code": codes[0].lower()}).status_code == 302  # any case
    client.post("/logout")
    sign_in(client, email)
    assert client.post("/login/mfa", data={"code": codes[0]}).status_code == 401
    with app.app_context():
        stored = db.session.scalar(select(User.mfa_backup_codes).where(User.email == email))
        assert len(stored) == 9  # the used one is gone
        assert all(code not in stored for code in codes)  # hashed, not clear


def test_backup_codes_are_kept_as_the_auth_service_keeps_them(app, mfa_user):
    """users.mfaBackupCodes holds SHA-256 hex digests of eight upper-case hex characters,
    so the auth service's own check (the digest of the code as typed, in the list) takes
    the same codes; the mfa_backup_codes table, which the service never uses, stays empty."""
    import hashlib

    email, _, codes = mfa_user
    assert len(codes) == 10 and all(re.fullmatch(r"[0-9A-F]{8}", code) for code in codes)
    with app.app_context():
        stored = db.session.scalar(select(User.mfa_backup_codes).where(User.email == email))
        assert stored == [hashlib.sha256(code.encode()).hexdigest() for code in codes]
        assert db.session.scalars(select(MfaBackupCode)).all() == []


def test_five_wrong_codes_lock_and_send_back_to_the_password(client, app, mfa_user):
    email, totp, _ = mfa_user
    sign_in(client, email)
    for _ in range(4):
        assert client.post("/login/mfa", data={"code": "abcdef"}).status_code == 401
    client.post("/login/mfa", data={"code": "abcdef"})
    assert user_row(app, email).locked_until is not None
    response = client.post("/login/mfa", data={"code": totp.now()})
    assert response.status_code == 401 and GENERIC in response.data
    assert client.get("/login/mfa").status_code == 302  # the pending step is gone


def test_the_pending_second_step_expires(client, mfa_user):
    email, totp, _ = mfa_user
    sign_in(client, email)
    with client.session_transaction() as session:
        session["mfa_pending"] = {**session["mfa_pending"], "since": session["mfa_pending"]["since"] - 301}
    response = client.post("/login/mfa", data={"code": totp.now()})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert client.get("/").status_code == 302


@pytest.mark.postgres_only
def test_a_backup_code_used_twice_at_once_works_once(app, mfa_user):
    email, _, codes = mfa_user
    results, barrier = [], threading.Barrier(6)

    def attempt():
        with app.app_context():
            # No connection held at the barrier: the six threads share pools of fewer.
            barrier.wait(timeout=30)
            user = db.session.scalar(select(User).where(User.email == email))
            results.append(mfa.use_backup_code(user, codes[1]))
            db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


# --- sessions ----------------------------------------------------------------------------

def test_sign_in_starts_a_new_session_and_sign_out_clears_it(auth, client):
    auth.create("support")
    with client.session_transaction() as session:
        session["left_over"] = "from before"
    sign_in(client, "support@staff.test")
    with client.session_transaction() as session:
        assert "left_over" not in session and session.get("_user_id")
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    with client.session_transaction() as session:
        assert "_user_id" not in session
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("change", ["role_revoked", "deactivated", "locked"])
def test_access_ends_at_the_next_request(auth, client, app, change):
    user_id = auth.create("support")
    sign_in(client, "support@staff.test")
    assert client.get("/").status_code == 200
    with app.app_context():
        if change == "role_revoked":
            db.session.execute(delete(UserRole).where(UserRole.user_id == user_id))
        elif change == "deactivated":
            db.session.get(User, user_id).is_active = False
        else:
            db.session.get(User, user_id).locked_until = utcnow() + timedelta(minutes=5)
        db.session.commit()
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def replay_session_signed(app, client, monkeypatch, minutes_ago: float) -> None:
    """Put the client's current session back as a cookie signed ``minutes_ago``: what
    a browser (or a copied cookie) would send after that long without a request.
    The cookie carries no expiry, so only the server can turn it away."""
    with client.session_transaction() as current:
        data = dict(current)
    serializer = app.session_interface.get_signing_serializer(app)
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time() - minutes_ago * 60))
        value = serializer.dumps(data)
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], value)


def test_idle_session_expires_on_the_server(auth, client, app, monkeypatch):
    auth.create("support")
    sign_in(client, "support@staff.test")
    idle_minutes = app.permanent_session_lifetime.total_seconds() / 60
    replay_session_signed(app, client, monkeypatch, idle_minutes - 1)
    assert client.get("/").status_code == 200  # still inside the limit
    replay_session_signed(app, client, monkeypatch, idle_minutes + 1)
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_each_request_restarts_the_idle_clock(auth, client, app, monkeypatch):
    auth.create("support")
    sign_in(client, "support@staff.test")
    refresh_minutes = app.config["SESSION_COOKIE_REFRESH_SECONDS"] / 60
    replay_session_signed(app, client, monkeypatch, refresh_minutes + 1)
    response = client.get("/")
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "Expires=" in cookie


def test_a_late_answer_never_puts_back_an_older_cookie(auth, client, app):
    """A save and a preview in flight at once, both sent with the same cookie: the
    preview's answer, arriving second, must not undo the save's message."""
    auth.create("support")
    sign_in(client, "support@staff.test")
    client.get("/")
    before = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    with client.session_transaction() as current:
        current["_flashes"] = [("success", "Saved.")]  # what the save's answer set
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], before)  # the preview left before it
    response = client.get("/")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers  # nothing changed, the cookie is fresh


def test_idle_minutes_come_from_the_environment(monkeypatch):
    import importlib

    import config

    monkeypatch.setenv("CONSOLE_IDLE_MINUTES", "45")
    try:
        assert importlib.reload(config).Config.PERMANENT_SESSION_LIFETIME == timedelta(minutes=45)
    finally:
        monkeypatch.delenv("CONSOLE_IDLE_MINUTES")
        importlib.reload(config)


def test_next_only_follows_local_paths(auth, client):
    auth.create("support")
    response = client.post("/login?next=//evil.example/x", data={"email": "support@staff.test",
                                                                 "password": STAFF_PASSWORD})
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = client.post("/login?next=/orders", data={"email": "support@staff.test", "password": STAFF_PASSWORD})
    assert response.headers["Location"] == "/orders"


# --- profile: enrol and turn off ---------------------------------------------------------

def test_enrol_confirm_and_turn_off_mfa_from_the_profile(auth, client, app):
    user_id = auth.create("finance")
    sign_in(client, "finance@staff.test")
    assert b"Set up two-step sign-in" in client.get("/profile").data

    started = client.post("/profile/mfa/start")
    assert started.status_code == 200
    assert b'src="data:image/svg+xml;base64,' in started.data
    with app.app_context():
        user = db.session.get(User, user_id)
        secret = user.mfa_secret
        assert secret and not user.mfa_enabled  # stored, not yet in force
    assert secret.encode() in started.data
    assert secret.encode() not in client.get("/profile").data  # shown once

    wrong = client.post("/profile/mfa/confirm", data={"code": "12345x"})
    assert wrong.status_code == 422
    confirmed = client.post("/profile/mfa/confirm", data={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200
    page = confirmed.get_data(as_text=True)
    codes = page.split('id="backup-codes">')[1].split("</ul>")[0].count("<li>")
    assert codes == 10
    with app.app_context():
        assert db.session.get(User, user_id).mfa_enabled is True
        actions = db.session.scalars(select(SecurityAuditLog.action).where(SecurityAuditLog.user_id == user_id)).all()
        assert {"staff.mfa_enrolment_started", "staff.mfa_enabled"} <= set(actions)
        assert all(secret not in str(log.metadata_) for log in db.session.scalars(select(SecurityAuditLog)))

    assert client.post("/profile/mfa/disable", data={"code": "000000x"}).status_code == 422
    off = client.post("/profile/mfa/disable", data={"code": pyotp.TOTP(secret).at(time.time() + 30)})
    assert off.status_code == 302
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.mfa_enabled is False and user.mfa_secret is None
        assert user.mfa_backup_codes == []  # as the auth service leaves a user it turned MFA off for


def test_enrolment_cannot_restart_while_mfa_is_on(client, mfa_user):
    email, totp, _ = mfa_user
    sign_in(client, email)
    client.post("/login/mfa", data={"code": totp.now()})
    assert client.post("/profile/mfa/start").status_code == 409


def test_auth_database_down_gives_a_503_naming_it(app, database_urls):
    from tests.second_app import UNOPENABLE_SQLITE, UNREACHABLE_POSTGRES, app_with_unreachable

    url = UNREACHABLE_POSTGRES if "postgresql" in database_urls["auth"] else UNOPENABLE_SQLITE
    with app_with_unreachable(database_urls, "auth", url) as broken:
        response = sign_in(broken.test_client(), "support@staff.test")
    assert response.status_code == 503
    assert b"auth_db" in response.data
