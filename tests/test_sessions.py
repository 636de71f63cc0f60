"""Staff sessions held on the server (console/sessions.py): a copied cookie is worth
nothing once the session ends, the idle timeout and the absolute lifetime are
enforced by the server, each request reads auth_db at most once, and the profile
and the Staff screen can end sessions."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from console import sessions
from console.extensions import db
from console.models.auth import Device, LoginHistory, SecurityAuditLog, UserSession
from console.models.types import utcnow
from tests.conftest import STAFF_PASSWORD


def sign_in(app, email: str, agent: str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36"):
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": STAFF_PASSWORD},
                           headers={"User-Agent": agent})
    assert response.status_code == 302
    return client


def copy_of(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    name = app.config["SESSION_COOKIE_NAME"]
    thief = app.test_client()
    thief.set_cookie(name, client.get_cookie(name).value)
    return thief


def works(client) -> bool:
    return client.get("/orders").status_code == 200


def note(client, order_key: str):
    return client.post(f"/orders/{order_key}/notes", data={"note": "copied cookie"})


def rows(app, user_id: str) -> list[UserSession]:
    with app.app_context():
        found = db.session.scalars(select(UserSession).where(UserSession.user_id == user_id)).all()
        db.session.expunge_all()
        return found


def test_sign_in_stores_only_a_hash_of_the_cookie_token(app, auth):
    user_id = auth.create("support")
    client = sign_in(app, "support@staff.test")
    with client.session_transaction() as flask_session:
        token = flask_session["_user_id"]
    assert token != user_id and len(token) >= 40
    (row,) = rows(app, user_id)
    assert row.session_token == sessions.token_hash(token) and token not in row.session_token
    assert row.is_active is True and row.expires_at > utcnow()
    with app.app_context():
        device = db.session.get(Device, row.device_id)
        assert device.device_name == "Chrome on Linux" and device.user_id == user_id
        history = db.session.scalars(select(LoginHistory).where(LoginHistory.user_id == user_id)).all()
        assert [(h.status, h.device_id) for h in history] == [("success", row.device_id)]


def test_a_copied_cookie_is_useless_after_sign_out(app, auth):
    """The attack: copy the cookie, the owner signs out, the copy still opened /orders
    and posted notes. Now the server ends the session itself."""
    auth.create("support")
    owner = sign_in(app, "support@staff.test")
    thief = copy_of(app, owner)
    assert works(thief)  # a live session: the copy works, as any bearer cookie would
    assert owner.post("/logout").status_code == 302
    response = thief.get("/orders")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    refused = note(thief, "ORD-ANY")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    assert not works(owner)


def test_sign_out_everywhere_ends_every_session_and_every_copy(app, auth):
    user_id = auth.create("support")
    laptop = sign_in(app, "support@staff.test")
    phone = sign_in(app, "support@staff.test", agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1")
    thief = copy_of(app, phone)
    assert works(laptop) and works(phone) and works(thief)
    response = laptop.post("/logout/everywhere")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not any(works(c) for c in (laptop, phone, thief))
    assert all(row.is_active is False for row in rows(app, user_id))
    with app.app_context():
        assert db.session.scalar(select(SecurityAuditLog.action).where(
            SecurityAuditLog.action == "staff.signed_out_everywhere")) is not None


@pytest.mark.parametrize("change", ["role_revoked", "locked", "ended_by_admin"])
def test_an_admin_action_ends_the_members_sessions_at_once(app, auth, client, change):
    member = auth.create("support", "member@staff.test")
    auth.login("admin")
    victim = sign_in(app, "member@staff.test")
    thief = copy_of(app, victim)
    assert works(thief)
    path = {"role_revoked": f"/staff/{member}/roles/support/revoke", "locked": f"/staff/{member}/lock",
            "ended_by_admin": f"/staff/{member}/sessions/end"}[change]
    assert client.post(path).status_code == 303
    assert not works(thief) and not works(victim)
    assert all(row.is_active is False for row in rows(app, member))
    if change == "role_revoked":
        # A role given back does not revive the old cookie.
        assert client.post(f"/staff/{member}/roles", data={"role": "support"}).status_code == 303
        assert not works(thief)


def test_ending_sessions_says_when_there_is_none(app, auth, client):
    member = auth.create("support", "member@staff.test")
    auth.login("admin")
    response = client.post(f"/staff/{member}/sessions/end", follow_redirects=True)
    assert "has no active session to end" in response.get_data(as_text=True)


def test_an_idle_session_is_refused_by_the_server(app, auth, monkeypatch):
    """The cookie is freshly signed (a browser that kept it, or a copy): the server's
    own idle deadline refuses it."""
    user_id = auth.create("support")
    client = sign_in(app, "support@staff.test")
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = client.get("/orders")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert rows(app, user_id)[0].is_active is False  # ended for good


def test_an_over_age_session_is_refused_even_while_in_use(app, auth):
    user_id = auth.create("support")
    client = sign_in(app, "support@staff.test")
    assert works(client)
    max_age = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    with app.app_context():
        # Used a minute ago (so not idle), but started longer ago than the lifetime allows.
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id).values(
            created_at=utcnow() - max_age - timedelta(minutes=1), expires_at=utcnow() + timedelta(minutes=20)))
        db.session.commit()
    response = client.get("/orders")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_use_moves_the_idle_deadline_at_most_once_a_minute_and_never_past_the_lifetime(app, auth):
    user_id = auth.create("support")
    client = sign_in(app, "support@staff.test")
    idle = app.permanent_session_lifetime
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                           .values(expires_at=utcnow() + idle - timedelta(minutes=5)))
        db.session.commit()
    assert works(client)
    (row,) = rows(app, user_id)
    assert row.expires_at > utcnow() + idle - timedelta(minutes=1)  # moved forward
    with app.app_context():
        assert db.session.get(Device, row.device_id).last_used_at > utcnow() - timedelta(minutes=1)
    assert works(client)
    assert rows(app, user_id)[0].expires_at == row.expires_at  # not again within the minute
    with app.app_context():
        start = utcnow() - timedelta(hours=app.config["SESSION_MAX_HOURS"]) + timedelta(minutes=2)
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                           .values(created_at=start, expires_at=utcnow() + timedelta(seconds=30)))
        db.session.commit()
    assert works(client)
    capped = rows(app, user_id)[0].expires_at
    assert capped <= start + timedelta(hours=app.config["SESSION_MAX_HOURS"]) + timedelta(seconds=1)


def test_a_request_reads_auth_db_at_most_once(app, auth):
    auth.create("support")
    client = sign_in(app, "support@staff.test")
    with app.app_context():
        engine = db.engines["auth"]
    seen = []

    def on_auth(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_auth)
    try:
        # Screens whose data lives elsewhere: the session check is their one auth_db read.
        for path in ("/orders", "/returns", "/refunds", "/"):
            seen.clear()
            assert client.get(path).status_code == 200
            reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
            assert len(reads) == 1 and "user_sessions" in reads[0], (path, reads)
    finally:
        event.remove(engine, "before_cursor_execute", on_auth)


def test_the_profile_lists_sessions_and_signs_out_one(app, auth):
    user_id = auth.create("support")
    laptop = sign_in(app, "support@staff.test")
    phone = sign_in(app, "support@staff.test", agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1")
    page = laptop.get("/profile").get_data(as_text=True)
    assert "Chrome on Linux" in page and "Safari on iOS" in page and "this one" in page
    assert "127.0.0.1" in page
    phone_row = next(r for r in rows(app, user_id) if _device(app, r.device_id) == "Safari on iOS")
    response = laptop.post(f"/profile/sessions/{phone_row.id}/end")
    assert response.status_code == 303
    assert not works(phone) and works(laptop)
    assert "Safari on iOS" not in laptop.get("/profile").get_data(as_text=True)
    # Someone else's session id ends nothing.
    other = auth.create("finance", "other@staff.test")
    sign_in(app, "other@staff.test")
    theirs = rows(app, other)[0]
    laptop.post(f"/profile/sessions/{theirs.id}/end")
    assert rows(app, other)[0].is_active is True


def _device(app, device_id: str) -> str:
    with app.app_context():
        return db.session.get(Device, device_id).device_name


def test_signing_out_this_one_from_the_list_signs_out(app, auth):
    user_id = auth.create("support")
    client = sign_in(app, "support@staff.test")
    (row,) = rows(app, user_id)
    response = client.post(f"/profile/sessions/{row.id}/end")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not works(client)
