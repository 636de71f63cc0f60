"""Links name endpoints that exist: the menu, the endpoints named in code and templates,
every link on the dashboard and every search result."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from console.demo.seed import seed_demo
from console.extensions import db
from console.links import local_path, url_each
from console.models.order import Order
from console.models.returns import ReturnRequest
from console.models.user import UserProfile
from console.navigation import MENU
from console.screens import search
from console.screens.activity import ENTITY_PAGES

ROOT = Path(__file__).resolve().parent.parent
URL_FOR = re.compile(r"""url_for\(\s*['"]([\w.]+)['"]""")


def named_endpoints() -> dict[str, set[str]]:
    """{endpoint: files} for every url_for("…") literal in console/ and templates/."""
    found: dict[str, set[str]] = {}
    for path in [*ROOT.joinpath("console").rglob("*.py"), *ROOT.joinpath("templates").rglob("*.html")]:
        for name in URL_FOR.findall(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def guarded(name: str) -> bool:
    """Links to screens that are optional today are asked for first (has_endpoint)."""
    for path in [*ROOT.joinpath("console").rglob("*.py"), *ROOT.joinpath("templates").rglob("*.html")]:
        text = path.read_text()
        if f"has_endpoint('{name}')" in text or f'"{name}" in current_app.view_functions' in text:
            return True
    return False


def test_every_menu_entry_names_a_screen(app):
    for label, endpoint, _, _ in MENU:
        assert endpoint in app.view_functions, (label, endpoint)


def test_every_endpoint_named_in_code_and_templates_exists(app):
    missing = {name: files for name, files in named_endpoints().items()
               if name not in app.view_functions and not name.startswith(".") and not guarded(name)}
    assert missing == {}


def test_entity_pages_and_see_all_lists_exist(app):
    for endpoint, _ in [*ENTITY_PAGES.values(), *search.SEE_ALL.values()]:
        assert endpoint in app.view_functions, endpoint


def routes_to_something(app, href: str) -> bool:
    adapter = app.url_map.bind("console.local")
    try:
        adapter.match(href.split("?")[0], method="GET")
    except (NotFound, MethodNotAllowed):
        return False
    return True


def hrefs(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="(/[^"]*)"', html) if not h.startswith("/static/")]


@pytest.fixture
def demo(ctx):
    seed_demo(customers=8, orders=30, seed=4)


def test_every_dashboard_link_opens_a_screen(app, demo, auth, client):
    auth.login("admin")
    html = client.get("/").get_data(as_text=True)
    links = hrefs(html)
    assert any(h.startswith("/orders?") for h in links) and any(h.startswith("/returns?") for h in links)
    for href in links:
        assert routes_to_something(app, href), href


def test_every_search_result_opens_a_screen(app, demo, auth, client):
    auth.login("admin")
    with app.app_context():
        order = db.session.query(Order).filter(Order.tracking_number.isnot(None)).first()
        request = db.session.query(ReturnRequest).first()
        profile = db.session.query(UserProfile).filter(UserProfile.phone.isnot(None)).first()
        terms = ["ORD", "RMA", order.order_number, order.tracking_number, request.rma_number, profile.email,
                 profile.full_name, profile.phone, "example", "SKU", "WELCOME"]
    for term in terms:
        response = client.get("/search", query_string={"q": term})
        if response.status_code == 302:
            assert routes_to_something(app, response.headers["Location"]), term
            continue
        html = response.get_data(as_text=True)
        results = html[html.index('id="search-page-q"'):]
        for href in hrefs(results):
            assert routes_to_something(app, href), (term, href)


@pytest.mark.parametrize("target, expected", [
    ("/orders?status=paid", "/orders?status=paid"), ("//evil.example/x", None), ("https://evil.example", None),
    ("/\\evil.example", None), ("", None), (None, None), ("orders", None)])
def test_local_path_keeps_only_paths_on_this_site(target, expected):
    assert local_path(target) == expected


@pytest.mark.parametrize("value", ["ORD-20261201-0001", "a b/c?d#e&f=g", "ünï%20code", "100%"])
def test_a_link_built_once_per_page_is_the_link_url_for_builds(app, value):
    from flask import url_for

    with app.test_request_context("/orders"):
        assert url_each("orders.order_detail", "key")(value) == url_for("orders.order_detail", key=value)
