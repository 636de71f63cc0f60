"""Every route checks the one permission map.

The routes are discovered from app.url_map, so a screen added later is covered
without touching this file: a route must declare its permission
(``@permission_required`` sets ``view.permission``; the data browser's Flask-Admin
views all need ``data.browse``) or be on the short public list below.

Anonymous requests walk every route. The data browser has ~630 routes (9 per
table) guarded by one check per view class (Flask-Admin runs ``is_accessible``
before any of a view's pages), so signed-in roles walk every console route, every
data browser view's list page, and every page of one view per database: the same
verdict at a fraction of the time.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from werkzeug.routing import Rule

from console.admin import PERMISSION as DATA_PERMISSION
from console.models import all_models, models_of
from console.navigation import MENU, menu_for
from console.permissions import PERMISSIONS, ROLE_PERMISSIONS, STAFF_ROLES, permission_required
from console.staff import StaffUser

# Reachable without signing in (static files are public too).
PUBLIC_PATHS = {"/login", "/login/mfa", "/healthz", "/password/forgot", "/password/set/<token>", "/password/set"}
# These end the session being tested: walked last.
SIGN_OUTS = ("auth.logout", "auth.logout_everywhere")
DUMMY = {"int": "1", "float": "1.0", "path": "dummy/path", "uuid": "00000000-0000-4000-8000-000000000000"}


def is_static(rule: Rule) -> bool:
    return rule.endpoint == "static" or rule.endpoint.endswith(".static")


def admin_endpoints(app) -> set[str]:
    admins = app.extensions.get("admin", [])
    return {view.endpoint for admin in admins for view in admin._views}


def declared_permission(app, rule: Rule) -> str | None:
    view = app.view_functions[rule.endpoint]
    permission = getattr(view, "permission", None)
    if permission is None and rule.endpoint.split(".")[0] in admin_endpoints(app):
        permission = DATA_PERMISSION
    return permission


def checked_routes(app, every_data_page: bool = True) -> list[Rule]:
    """Every non-public route, the sign-outs last (they end the session being tested)."""
    data_views = admin_endpoints(app)
    # the first table of each database: all of its pages are walked
    fully_walked = {f"data_{m.__bind_key__}_{models_of(m.__bind_key__)[0].__tablename__}" for m in all_models()}

    def walked(rule: Rule) -> bool:
        view = rule.endpoint.split(".")[0]
        return (every_data_page or view not in data_views or view in fully_walked
                or rule.endpoint.endswith((".index", ".index_view")))

    rules = [r for r in app.url_map.iter_rules() if not is_static(r) and r.rule not in PUBLIC_PATHS and walked(r)]
    return sorted(rules, key=lambda r: (r.endpoint in SIGN_OUTS, r.rule))


def request_for(rule: Rule) -> tuple[str, str]:
    values = {name: DUMMY.get(type(rule._converters[name]).__name__.replace("Converter", "").lower(), "dummy-id")
              for name in rule.arguments}
    if "export_type" in values:
        values["export_type"] = "csv"
    path = rule.build(values)[1]
    method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
    return method, path


def to_sign_in(response) -> bool:
    return response.status_code == 302 and urlsplit(response.headers.get("Location", "")).path == "/login"


def call(client, rule: Rule):
    method, path = request_for(rule)
    return client.open(path, method=method), f"{method} {path} ({rule.endpoint})"


def test_every_route_declares_a_permission(app):
    undeclared = [f"{r.rule} ({r.endpoint})" for r in checked_routes(app) if declared_permission(app, r) is None]
    assert not undeclared, "routes without a declared permission: " + ", ".join(undeclared)


def test_declared_permissions_exist(app):
    unknown = {declared_permission(app, r) for r in checked_routes(app)} - set(PERMISSIONS) - {None}
    assert not unknown
    with pytest.raises(KeyError):
        permission_required("no.such.permission")


def test_the_public_routes_answer_without_signing_in(client):
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/login/mfa").status_code == 302  # no password step yet: back to /login
    assert client.get("/static/console.css").status_code == 200


def test_anonymous_is_sent_to_sign_in_everywhere(app, client):
    wrong = []
    for rule in checked_routes(app):
        response, label = call(client, rule)
        if not to_sign_in(response):
            wrong.append(f"{label} -> {response.status_code} {response.headers.get('Location', '')}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_each_role_gets_exactly_what_the_map_grants(app, auth, role):
    auth.login(role)
    granted = ROLE_PERMISSIONS[role]
    wrong = []
    for rule in checked_routes(app, every_data_page=False):
        response, label = call(auth.client, rule)
        allowed = declared_permission(app, rule) in granted
        if allowed and response.status_code == 403:
            wrong.append(f"{label}: {role} holds {declared_permission(app, rule)} but got 403")
        elif not allowed and response.status_code != 403:
            wrong.append(f"{label}: {role} lacks {declared_permission(app, rule)} but got {response.status_code}")
        elif rule.endpoint not in SIGN_OUTS and to_sign_in(response):
            wrong.append(f"{label}: {role} was signed out")
    assert not wrong, "\n".join(wrong)


def test_menu_entries_follow_the_map(app):
    assert {permission for _, _, permission, _ in MENU} <= set(PERMISSIONS)
    with app.test_request_context():
        for role in STAFF_ROLES:
            user = StaffUser(id="x", email="x@staff.test", roles=frozenset({role}))
            shown = {endpoint for _, endpoint in menu_for(user)}
            expected = {endpoint for _, endpoint, permission, _ in MENU
                        if permission in ROLE_PERMISSIONS[role] and endpoint in app.view_functions}
            assert shown == expected


def test_admin_holds_every_permission_and_every_role_can_manage_its_profile():
    assert ROLE_PERMISSIONS["admin"] == frozenset(PERMISSIONS)
    assert all("profile.manage" in ROLE_PERMISSIONS[role] for role in STAFF_ROLES)
    assert all("data.browse" not in ROLE_PERMISSIONS[role] for role in STAFF_ROLES if role != "admin")
    assert all("staff.manage" not in ROLE_PERMISSIONS[role] for role in STAFF_ROLES if role != "admin")


def test_a_refusal_says_what_is_missing(auth, client):
    auth.login("support")
    for path in ("/staff", "/data/"):
        response = client.get(path)
        assert response.status_code == 403
        assert b"Your role does not allow this: it needs permission to" in response.data


def test_error_pages_offer_a_way_on(auth, client):
    auth.login("support")
    missing = client.get("/no-such-page").get_data(as_text=True)
    assert 'id="error-next"' in missing and "search box at the top" in missing and 'href="/"' in missing
    refused = client.get("/staff")
    assert refused.status_code == 403
    assert b'id="error-next"' in refused.data and b"search box" not in refused.data
