"""Hostile input never answers 500: every route of app.url_map, signed in as admin,
with NUL bytes, 100,000-character strings, huge and malformed numbers and bad ids in
its path, its query string and (for POST) its form, with a valid CSRF token.

Nothing here names a route or a parameter: the routes come from app.url_map, and the
parameters a view reads are learnt by watching it (the request's args and form record
every name a view looks up), so a screen added later is walked the same way. Path
arguments start from real rows (an order, a return, a refund, a customer, a staff
member) so that the hostile part reaches the code behind the lookup. The data
browser's 70 views share one class: every page of one view is walked, and the list
page of one view per database.
"""
from __future__ import annotations

import re
import uuid

import pytest
from werkzeug.datastructures import ImmutableMultiDict

from console.extensions import db
from console.models import all_models, models_of
from console.models.auth import UserSession
from tests.conftest import STAFF_PASSWORD
from tests.returns_helpers import paid_order
from tests.test_permissions import admin_endpoints, is_static

HUGE = "9" * 400
PAYLOADS = (
    "a\x00b",                      # NUL: PostgreSQL refuses it outright
    "x" * 100_000,                 # far longer than any field
    "x" * 3000,                    # longer than a PostgreSQL index entry may be
    "1e309", HUGE, "-1", "1,0", "NaN", "١٢٣",  # numbers that are not (or not sensible)
    "not-a-uuid", "2026-02-30", "' OR '1'='1 %_",
)
# In a POST's query string only the edge cases: views read their form.
POST_QUERY_PAYLOADS = ("a\x00b", "x" * 100_000)
PATH_PAYLOADS = ("a\x00b", "x" * 100_000, HUGE, "not-a-uuid", "١٢٣")
SHARDS = 4
# Names a view may read by iterating (never by lookup), tried everywhere as well.
COMMON_NAMES = ("q", "next", "cursor", "start", "size", "page", "page_size", "search", "sort", "desc", "id",
                "status", "from", "to", "amount", "reason", "email", "code", "role", "key")
SIGN_OUTS = ("auth.logout", "auth.logout_everywhere")


class Watched(ImmutableMultiDict):
    """Request parameters that remember every name looked up."""

    seen: set[str] = set()

    def __contains__(self, key):
        Watched.seen.add(key)
        return super().__contains__(key)

    def __getitem__(self, key):
        Watched.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None, type=None):
        Watched.seen.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):
        Watched.seen.add(key)
        return super().getlist(key, type)


@pytest.fixture
def watched_app(app, monkeypatch):
    # On top of whatever request class the app uses (htmx-flask sets its own).
    watched = type("WatchedRequest", (app.request_class,), {"parameter_storage_class": Watched})
    monkeypatch.setattr(app, "request_class", watched)
    return app


def real_rows(app, auth) -> dict:
    """Rows the path arguments can name, so hostile values reach past the lookup."""
    from console.workflows import refunds, returns

    auth.login("admin")
    other = auth.create("support", "member@staff.test")
    app.test_client().post("/login", data={"email": "member@staff.test", "password": STAFF_PASSWORD})
    with app.app_context():
        data = paid_order()
        ret = returns.create_return(data.actor, data.order.id, [(data.items[0].id, 1)], "defective")
        refund = refunds.refund_order(data.actor, data.order.id, "5.00", key="hostile-1", reason="test")
        session_id = db.session.scalar(db.select(UserSession.id).where(UserSession.user_id == other))
        return {
            "orders": {"key": data.order.order_number, "order_id": data.order.id, "order_key": data.order.order_number},
            "returns": {"key": ret.rma_number, "order_key": data.order.order_number},
            "refunds": {"refund_id": refund.refund.id, "order_id": data.order.id},
            "customers": {"user_id": data.customer.id, "panel": "account"},
            "staff": {"user_id": other, "role": "support"},
            "auth": {"session_id": session_id or str(uuid.uuid4()), "token": "no-such-token"},
            "any": {"export_type": "csv", "filename": "console.css", "panel": "account", "role": "support"},
        }


def path_values(rule, rows: dict) -> dict:
    area = rule.endpoint.split(".")[0]
    known = {**rows["any"], **rows.get(area, {})}
    return {name: known.get(name, str(uuid.uuid4())) for name in rule.arguments}


def walked_rules(app, shard: int) -> list:
    """This shard's share of the routes (every SHARDS-th), its sign-outs last."""
    data_views = admin_endpoints(app)
    firsts = [f"data_{key}_{models_of(key)[0].__tablename__}" for key in dict.fromkeys(
        m.__bind_key__ for m in all_models())]

    def walked(rule) -> bool:
        view = rule.endpoint.split(".")[0]
        if is_static(rule):
            return False
        if view not in data_views or view in (firsts[0], "data"):
            return True
        return view in firsts and rule.endpoint.endswith(".index_view")

    rules = sorted(filter(walked, app.url_map.iter_rules()), key=lambda r: r.rule)
    mine = rules[shard::SHARDS]
    return sorted(mine, key=lambda r: r.endpoint in SIGN_OUTS)


def csrf_token(client, path: str = "/profile") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def sign_in_again(client) -> str:
    """Signs the admin in again (with the CSRF token the sign-in form carries); returns
    the new session's token for forms."""
    client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD,
                                "csrf_token": csrf_token(client, "/login")})
    return csrf_token(client)


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_route_answers_500_to_hostile_input(watched_app, auth, client, monkeypatch, shard):
    app = watched_app
    rows = real_rows(app, auth)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    monkeypatch.setitem(app.config, "LOGIN_IP_LIMIT", 10**6)  # the walk posts to /login a lot
    token = csrf_token(client)
    failures: list[str] = []
    requests = 0

    def send(method, path, query=None, form=None):
        nonlocal requests, token
        requests += 1
        Watched.seen = set()
        sample = next(iter((query or form or {}).values()), "")
        label = f"{method} {path[:100]} in {'query' if query else 'form' if form else 'path'}: {sample[:20]!r}"
        try:
            response = client.open(path, method=method, query_string=query,
                                   data={**(form or {}), "csrf_token": token} if method == "POST" else None,
                                   headers={"X-CSRFToken": token})
            response.get_data()  # a streamed export fails while it streams
        except Exception as exc:  # noqa: BLE001 - any escape is the bug being looked for
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
            return set()
        if response.status_code >= 500 and not (response.status_code == 503 and b"unavailable" in response.data):
            failures.append(f"{label}: {response.status_code}")
        if response.status_code in (302, 303) and "/login" in response.headers.get("Location", "") or (
                method == "POST" and path.startswith("/login")):
            token = sign_in_again(client)  # a sign-out or a sign-in changed the session: carry on
        return set(Watched.seen)

    for rule in walked_rules(app, shard):
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        values = path_values(rule, rows)
        path = rule.build(values)[1]
        for method in methods:
            names = send(method, path, form={} if method == "POST" else None) | set(COMMON_NAMES)
            for payload in PAYLOADS:
                bad = {name: payload for name in names if name != "csrf_token"}
                if method == "POST":
                    names |= send(method, path, form=bad) - {"csrf_token"}
                    if payload in POST_QUERY_PAYLOADS:
                        send(method, path, query=bad)
                else:
                    names |= send(method, path, query=bad)
            for name in values:
                if name in ("export_type", "filename"):
                    continue
                for payload in PATH_PAYLOADS:
                    send(method, rule.build({**values, name: payload})[1], form={} if method == "POST" else None)
    assert requests > 100
    assert not failures, f"{len(failures)} of {requests} requests failed:\n" + "\n".join(failures[:60])
