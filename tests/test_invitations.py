"""Staff invitations, "forgot password" and required MFA: one-time links through
password_reset_tokens (hashed, expiring, single use), the same answer whether or not
an email has an account, and members whose role requires two-step sign-in sent to
enrolment before anything else."""
from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from console import sessions
from console.workflows import invitations
from console.workflows.signin import NO_PASSWORD
from console.extensions import db
from console.models.auth import PasswordResetToken, SecurityAuditLog, User, UserSession
from console.models.notification import Notification
from console.models.types import utcnow
from console.staff import staff_roles_of
from tests.conftest import STAFF_PASSWORD


@pytest.fixture(autouse=True)
def shipped_email_templates(app):
    """The invitation and reset emails are templates like every other (init-db installs them)."""
    from console import email_templates
    with app.app_context():
        email_templates.install()
        db.session.commit()

NEW_PASSWORD = "Fresh-start-2026"


def invite(client, email="new.member@staff.test", roles=("finance",)):
    return client.post("/staff/invite", data={"email": email, "roles": list(roles)})


def link_of(app, email: str) -> str:
    """The set-password link in the newest email queued for ``email``."""
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        bodies = db.session.scalars(select(Notification.body).where(Notification.user_id == user_id)
                                    .order_by(Notification.created_at.desc())).all()
    assert bodies, f"no email queued for {email}"
    return re.search(r"https?://\S+/password/set/\S+", bodies[0]).group(0)


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def set_password(client, path, password=NEW_PASSWORD, confirm=None):
    """Opens the link in ``client`` (its token moves into the session) and posts the
    password form of the tokenless page it leads to."""
    opened = client.get(path)
    if opened.status_code != 303:
        return opened
    return client.post(opened.headers["Location"], data={"password": password, "confirm": confirm or password})


def test_an_invitation_creates_an_inactive_account_and_queues_the_email(app, auth, client):
    auth.login("admin")
    response = invite(client, roles=("finance", "support"))
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Invited new.member@staff.test: the invitation email is queued" in page
    assert "invited" in page and "Resend invitation" in page
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "new.member@staff.test"))
        assert user.is_active is False and user.password_hash == NO_PASSWORD
        assert staff_roles_of(user.id) == {"finance", "support"}
        (token,) = db.session.scalars(select(PasswordResetToken).where(PasswordResetToken.user_id == user.id)).all()
        assert token.used is False
        assert timedelta(hours=71) < token.expires_at - utcnow() <= timedelta(hours=72)
        notification = db.session.scalar(select(Notification).where(Notification.user_id == user.id))
        assert notification.status == "PENDING" and notification.type == "EMAIL"
        assert "admin@staff.test invited you" in notification.body and "finance" in notification.body
        assert db.session.scalar(select(SecurityAuditLog.action).where(SecurityAuditLog.user_id.isnot(None),
                                                                      SecurityAuditLog.action == "staff.invited"))
    raw = path_of(link_of(app, "new.member@staff.test")).rsplit("/", 1)[1]
    assert token.token == sessions.token_hash(raw) and raw not in token.token  # only the hash is stored


def test_the_notification_log_never_shows_a_sign_in_link(app, auth, client):
    """Support and marketing read the notification log: an invitation's or a password
    reset's body would hand them a working link to set a staff member's password."""
    auth.login("admin")
    invite(client)
    raw = path_of(link_of(app, "new.member@staff.test")).rsplit("/", 1)[1]
    with app.app_context():
        notification_id = db.session.scalar(select(Notification.id).where(Notification.subject.contains("invited")))
    details = client.get(f"/data/notification/notifications/details/?id={notification_id}")
    assert details.status_code == 200 and raw not in details.get_data(as_text=True)
    for role in ("admin", "support"):
        if role == "support":
            auth.logout()
            auth.login("support")
        page = client.get(f"/notifications/{notification_id}").get_data(as_text=True)
        assert 'id="body-hidden"' in page and "one-time link" in page
        assert raw not in page and "/password/set/" not in page, role


def test_an_invited_account_cannot_sign_in_before_setting_a_password(app, auth, client):
    auth.login("admin")
    invite(client)
    other = app.test_client()
    assert other.post("/login", data={"email": "new.member@staff.test", "password": ""}).status_code == 400
    assert other.post("/login", data={"email": "new.member@staff.test", "password": "anything"}).status_code == 401


@pytest.mark.parametrize("data, message", [
    ({"email": "", "roles": ["finance"]}, "Type the email"),
    ({"email": "x@staff.test"}, "Choose at least one role"),
    ({"email": "x@staff.test", "roles": ["owner"]}, "Not invited"),
    ({"email": "admin@staff.test", "roles": ["support"]}, "already has an account"),
])
def test_invitation_refusals_say_what_to_do(app, auth, client, data, message):
    auth.login("admin")
    response = client.post("/staff/invite", data=data, follow_redirects=True)
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User.id).where(User.email == "x@staff.test")) is None


def test_only_admins_invite(auth, client):
    auth.login("support")
    assert invite(client).status_code == 403


def test_the_link_works_once_and_signs_the_member_in(app, auth, client):
    auth.login("admin")
    invite(client, roles=("support",))
    path = path_of(link_of(app, "new.member@staff.test"))
    invitee = app.test_client()
    page = invitee.get(path, follow_redirects=True)
    assert page.status_code == 200 and b"new.member@staff.test" in page.data
    weak = set_password(invitee, path, "short")
    assert weak.status_code == 422 and b"at least 12 characters" in weak.data
    named = set_password(invitee, path, "new.member-Password-1")
    assert named.status_code == 422 and b"name part of the email" in named.data
    differ = set_password(invitee, path, NEW_PASSWORD, "Another-password-1")
    assert differ.status_code == 400 and b"The two passwords differ" in differ.data
    done = set_password(invitee, path)
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert invitee.get("/orders").status_code == 200  # signed in, support menu
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "new.member@staff.test"))
        assert user.is_active is True and user.email_verified is True and user.password_hash
        assert db.session.scalars(select(PasswordResetToken.used)).all() == [True]
    # The link again, from any browser: refused, and the password stays.
    again = app.test_client()
    assert again.get(path).status_code == 404
    assert set_password(again, path, "Hijacked-password-9").status_code == 404
    assert again.post("/login", data={"email": "new.member@staff.test", "password": NEW_PASSWORD}).status_code == 302


def test_an_expired_link_is_refused(app, auth, client):
    auth.login("admin")
    invite(client)
    path = path_of(link_of(app, "new.member@staff.test"))
    with app.app_context():
        db.session.execute(update(PasswordResetToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    page = client.get(path)
    assert page.status_code == 404 and b"does not work" in page.data
    assert set_password(app.test_client(), path).status_code == 404


def test_resending_replaces_the_link(app, auth, client):
    auth.login("admin")
    invite(client)
    first = path_of(link_of(app, "new.member@staff.test"))
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "new.member@staff.test"))
    assert client.post(f"/staff/{user_id}/invitation").status_code == 303
    second = path_of(link_of(app, "new.member@staff.test"))
    assert first != second
    invitee = app.test_client()
    assert invitee.get(first).status_code == 404 and invitee.get(second, follow_redirects=True).status_code == 200
    set_password(invitee, second)
    refused = client.post(f"/staff/{user_id}/invitation", follow_redirects=True)
    assert "has set up their account already" in refused.get_data(as_text=True)


def test_a_bad_token_is_refused_without_a_500(client):
    for token in ("x", "x" * 1500, "not-a-token", "%25"):
        assert client.get(f"/password/set/{token}").status_code == 404
    assert client.get(f"/password/set/{'x' * 5000}").status_code == 400  # longer than any address


# --- forgot password ----------------------------------------------------------------------

def test_forgot_password_answers_the_same_whether_or_not_the_email_exists(app, auth):
    auth.create("support")
    answers = []
    for email in ("support@staff.test", "nobody@staff.test", "SUPPORT@staff.test "):
        client = app.test_client()
        response = client.post("/password/forgot", data={"email": email})
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        answers.append((response.status_code, response.headers["Location"],
                        re.search(r'role="alert">\s*(.*?)\s*<button', page, re.S).group(1)))
    assert answers[0] == answers[1] == answers[2]
    assert "If that email belongs to a console account" in answers[0][2]
    with app.app_context():
        emails = db.session.scalars(select(Notification)).all()
        assert len(emails) == 2 and all(n.user_id for n in emails)  # only the real account got links
        # The second link replaced the first: one still works.
        assert sorted(db.session.scalars(select(PasswordResetToken.used)).all()) == [False, True]


def test_forgot_password_takes_as_long_whether_or_not_the_email_exists(app, auth, monkeypatch):
    """Making a link costs more than finding no account: every answer is held to the same
    floor, so the response time does not tell which emails have accounts."""
    from console.workflows import invitations

    auth.create("support")
    monkeypatch.setitem(app.config, "PASSWORD_RESET_ANSWER_SECONDS", 30.0)  # far above either path's own time
    clock = {"now": 1000.0}
    slept = []
    monkeypatch.setattr(invitations.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(invitations.time, "sleep", slept.append)
    original = invitations._request_reset

    def takes(seconds):
        def run(*args):
            clock["now"] += seconds
            return original(*args)
        return run

    for email, work in (("support@staff.test", 0.4), ("nobody@staff.test", 0.01)):
        monkeypatch.setattr(invitations, "_request_reset", takes(work))
        assert app.test_client().post("/password/forgot", data={"email": email}).status_code == 303
    assert slept == [pytest.approx(29.6), pytest.approx(29.99)]  # both answered at the 30 s mark


def test_a_reset_link_sets_a_new_password_and_ends_every_session(app, auth):
    user_id = auth.create("support")
    signed_in = app.test_client()
    signed_in.post("/login", data={"email": "support@staff.test", "password": STAFF_PASSWORD})
    assert signed_in.get("/orders").status_code == 200
    app.test_client().post("/password/forgot", data={"email": "support@staff.test"})
    path = path_of(link_of(app, "support@staff.test"))
    with app.app_context():
        token = db.session.scalar(select(PasswordResetToken))
        assert token.expires_at - utcnow() <= timedelta(hours=app.config["PASSWORD_RESET_HOURS"])
    browser = app.test_client()
    assert set_password(browser, path).status_code == 302
    assert signed_in.get("/orders").status_code == 302  # the old session ended with the old password
    with app.app_context():
        active = db.session.scalars(select(UserSession).where(UserSession.user_id == user_id,
                                                              UserSession.is_active.is_(True))).all()
        assert len(active) == 1  # only the one just started
    assert app.test_client().post("/login", data={"email": "support@staff.test",
                                                  "password": STAFF_PASSWORD}).status_code == 401


def test_a_reset_for_a_member_with_mfa_still_asks_for_the_code(app, auth):
    user_id = auth.create("support")
    with app.app_context():
        user = db.session.get(User, user_id)
        user.mfa_secret, user.mfa_enabled = pyotp.random_base32(), True
        db.session.commit()
    app.test_client().post("/password/forgot", data={"email": "support@staff.test"})
    browser = app.test_client()
    response = set_password(browser, path_of(link_of(app, "support@staff.test")))
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")
    assert browser.get("/orders").status_code == 302


def test_forgot_password_is_throttled(app, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_RESET_IP_LIMIT", 2)
    client = app.test_client()
    for _ in range(2):
        assert client.post("/password/forgot", data={"email": "nobody@staff.test"}).status_code == 303
    response = client.post("/password/forgot", data={"email": "nobody@staff.test"})
    assert response.status_code == 429 and b"Too many requests" in response.data


def test_one_inbox_gets_a_limited_number_of_links(app, auth, monkeypatch):
    auth.create("support")
    monkeypatch.setitem(app.config, "PASSWORD_RESET_EMAIL_LIMIT", 2)
    for _ in range(4):
        app.test_client().post("/password/forgot", data={"email": "support@staff.test"},
                               environ_base={"REMOTE_ADDR": f"10.0.0.{_}"})
    with app.app_context():
        assert len(db.session.scalars(select(Notification)).all()) == 2


def test_production_without_a_public_url_sends_no_link(app, auth, monkeypatch):
    """Without CONSOLE_PUBLIC_URL the link would start with whatever Host the request
    claimed: a forged Host would send the member to someone else's site."""
    auth.create("support")
    monkeypatch.setitem(app.config, "REQUIRE_PUBLIC_URL", True)
    response = app.test_client().post("/password/forgot", data={"email": "support@staff.test"},
                                      headers={"Host": "evil.example"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.scalars(select(Notification)).all() == []
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://console.example.com")
    app.test_client().post("/password/forgot", data={"email": "support@staff.test"}, headers={"Host": "evil.example"})
    assert link_of(app, "support@staff.test").startswith("https://console.example.com/password/set/")


# --- required MFA ---------------------------------------------------------------------------

@pytest.fixture
def mfa_required(app, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED_ROLES", ("admin", "finance"))


def test_a_member_whose_role_requires_mfa_is_sent_to_enrolment(app, auth, client, mfa_required):
    user_id = auth.create("finance")
    response = client.post("/login", data={"email": "finance@staff.test", "password": STAFF_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/profile"
    for path in ("/", "/orders", "/refunds", "/databases", "/search?q=x"):
        refused = client.get(path)
        assert refused.status_code == 303 and refused.headers["Location"] == "/profile", path
    assert client.post("/refunds/x/retry").headers["Location"] == "/profile"
    htmx = client.get("/orders", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == "/profile"
    profile = client.get("/profile").get_data(as_text=True)
    assert "Two-step sign-in is required for your role" in profile
    assert re.findall(r'<ul class="navbar-nav me-auto" id="main-menu">\s*</ul>', profile)  # no menu
    started = client.post("/profile/mfa/start")
    secret = re.search(r'id="mfa-secret">([A-Z2-7]+)<', started.get_data(as_text=True)).group(1)
    confirmed = client.post("/profile/mfa/confirm", data={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200 and b'id="backup-codes"' in confirmed.data
    assert client.get("/refunds").status_code == 200
    with app.app_context():
        assert db.session.get(User, user_id).mfa_enabled is True


def test_roles_that_do_not_require_it_are_not_asked(auth, client, mfa_required):
    auth.login("support")
    assert client.get("/orders").status_code == 200


def test_the_setting_defaults_to_admin_and_finance_except_in_development(monkeypatch):
    import importlib

    import config

    monkeypatch.delenv("CONSOLE_MFA_REQUIRED_ROLES", raising=False)
    reloaded = importlib.reload(config)
    try:
        assert reloaded.ProductionConfig.MFA_REQUIRED_ROLES == ("admin", "finance")
        assert reloaded.DevelopmentConfig.MFA_REQUIRED_ROLES == ()
        monkeypatch.setenv("CONSOLE_MFA_REQUIRED_ROLES", "admin, support")
        reloaded = importlib.reload(config)
        assert reloaded.ProductionConfig.MFA_REQUIRED_ROLES == ("admin", "support")
        assert reloaded.DevelopmentConfig.MFA_REQUIRED_ROLES == ("admin", "support")
    finally:
        monkeypatch.delenv("CONSOLE_MFA_REQUIRED_ROLES", raising=False)
        importlib.reload(config)


# --- tokens and logs ------------------------------------------------------------------------

def test_opening_a_link_moves_its_token_out_of_the_address(app, auth):
    """The address with the token is what access logs, proxies and histories keep: once
    opened, it opens nothing, while the browser that opened it goes on."""
    auth.create("support")
    app.test_client().post("/password/forgot", data={"email": "support@staff.test"})
    path = path_of(link_of(app, "support@staff.test"))
    browser = app.test_client()
    opened = browser.get(path)
    assert opened.status_code == 303 and opened.headers["Location"] == "/password/set"
    assert browser.get("/password/set").status_code == 200
    assert browser.get(path).status_code == 303  # the same browser, again: still its page
    thief = app.test_client()
    assert thief.get(path).status_code == 404 and thief.get("/password/set").status_code == 404
    assert set_password(browser, path).status_code == 302


def test_the_access_log_of_a_real_gunicorn_run_holds_no_token(app, auth, database_urls, tmp_path):
    """gunicorn started as the README says (gunicorn.conf.py), its access log in a file."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    from config import BASE_DIR

    auth.create("support")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CONSOLE_ENV": "production", "SECRET_KEY": "gunicorn-test-secret",
           "CONSOLE_INSTANCE_DIR": str(tmp_path), "CONSOLE_PUBLIC_URL": f"http://127.0.0.1:{port}",
           **{f"{key.upper()}_DATABASE_URL": url for key, url in database_urls.items()}}
    log = tmp_path / "access.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "-w", "1", "-b", f"127.0.0.1:{port}",
                               "--access-logfile", str(log), "wsgi:app"], cwd=BASE_DIR, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)

    def get(path):
        try:
            with opener.open(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as answer:
            return answer.code

    try:
        for _ in range(150):
            try:
                get("/login")
                break
            except OSError:
                time.sleep(0.1)
        with app.app_context():
            token = invitations._new_token(db.session.scalar(select(User.id).where(User.email == "support@staff.test")), 1)
            db.session.commit()
        assert get(f"/password/set/{token}") == 303
        assert get(f"/password/set/{token}") == 404  # what the log line would give a reader: nothing
    finally:
        server.terminate()
        server.wait(10)
    written = log.read_text()
    assert "/password/set/[redacted]" in written
    assert token not in written
