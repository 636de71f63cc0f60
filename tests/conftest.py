"""Shared fixtures: the app on SQLite or PostgreSQL, a clean database per test,
signed-in clients per role, and a query counter."""
from __future__ import annotations

from contextlib import contextmanager

import os

import pytest
from sqlalchemy import event, text
from sqlalchemy.schema import sort_tables

from config import BIND_KEYS, bind_config
from console import create_app
from console.drift import drift
from console.extensions import db
from console.models import models_of
from console.schema_check import create_missing_indexes, create_schema, ensure_extensions
from tests import accessibility, databases
from tests.accessibility import assert_accessible  # noqa: F401  (for the browser tests)

STAFF_PASSWORD = "Test-password-1"


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres_only: needs real PostgreSQL (concurrency, locking)")
    config.addinivalue_line("markers", "browser: drives Chromium through Playwright")


def pytest_report_header(config):
    return f"console test database backend: {databases.BACKEND}"


def pytest_collection_modifyitems(config, items):
    if databases.BACKEND != "postgres":
        skip = pytest.mark.skip(reason="PostgreSQL-only test; runs in the CONSOLE_TEST_DB=postgres pass")
        for item in items:
            if "postgres_only" in item.keywords:
                item.add_marker(skip)
    else:
        # Browser tests exercise the screens, not the database: they run in the SQLite pass.
        skip = pytest.mark.skip(reason="browser tests run in the SQLite pass")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory):
    if databases.BACKEND == "postgres":
        reason = databases.postgres_reason()
        if reason:
            if databases.IN_CI:
                pytest.fail(f"CI=true but {reason}")
            pytest.skip(reason)
        tag = databases.run_tag()
        urls = databases.create_postgres_databases(tag)
        yield urls
        for engine_owner in _apps:
            with engine_owner.app_context():
                for engine in db.engines.values():
                    engine.dispose()
        databases.drop_postgres_databases(tag)
    else:
        folder = tmp_path_factory.mktemp("sqlite")
        yield {key: f"sqlite:///{folder / (key + '_db.sqlite')}" for key in BIND_KEYS}


_apps: list = []


def make_app(database_urls: dict[str, str], **overrides):
    binds = {key: bind_config(url) for key, url in database_urls.items()}
    binds = {key: databases.with_session_time_zone(bind) if "connect_args" in bind else bind
             for key, bind in binds.items()}
    application = create_app("testing", {"SQLALCHEMY_BINDS": binds, **overrides})
    _apps.append(application)
    return application


@pytest.fixture(scope="session")
def app(database_urls):
    application = make_app(database_urls)
    with application.app_context():
        if databases.BACKEND == "postgres":
            # The tables are the services' own DDL (databases.create_postgres_databases);
            # the console adds its own indexes as `console create-indexes` does.
            ensure_extensions()
            for key in BIND_KEYS:
                create_missing_indexes(key)
        else:
            create_schema()  # what init-db does: tables, indexes
        drift().check(force=True)  # read the columns now, not in the middle of a counted test
    return application


def _wipe(application) -> None:
    with application.app_context():
        db.session.remove()
        for key in BIND_KEYS:
            tables = sort_tables([m.__table__ for m in models_of(key)])
            with db.engines[key].begin() as conn:
                if conn.dialect.name != "postgresql":
                    conn.execute(text("PRAGMA foreign_keys=OFF"))
                # DELETE, children before parents: on tables this small it is about ten
                # times faster than TRUNCATE on PostgreSQL, and every test pays for it.
                for table in reversed(tables):
                    conn.execute(table.delete())


@pytest.fixture(autouse=True)
def export_slots_given_back():
    """A download read to its end gives its export slot back at once; one the test client
    never read stays open until its response is closed, which a server always does and
    the test client leaves to the test. Each test starts with every slot free."""
    yield
    from console import exports

    with exports._exports_lock:
        exports._exports_running = 0


@pytest.fixture(autouse=True)
def clean_database(request):
    yield
    if "app" in request.fixturenames:
        _wipe(request.getfixturevalue("app"))


@pytest.fixture
def ctx(app):
    """An application context for tests that call workflows and models directly."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


class StaffSignIn:
    """Creates staff users and signs a test client in as them."""

    def __init__(self, app, client):
        self.app = app
        self.client = client

    def create(self, role: str, email: str | None = None):
        from console.demo.builders import make_staff

        with self.app.app_context():
            user = make_staff(role, email or f"{role}@staff.test", STAFF_PASSWORD)
            db.session.commit()
            return user.id

    def login(self, role: str = "admin", email: str | None = None):
        email = email or f"{role}@staff.test"
        self.create(role, email)
        response = self.client.post("/login", data={"email": email, "password": STAFF_PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(app, client):
    return StaffSignIn(app, client)


class QueryCounter:
    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def every_statement(app, listener):
    """``listener`` called before every statement on every bind of ``app`` meanwhile."""
    with app.app_context():
        engines = list(db.engines.values())
    for engine in engines:
        event.listen(engine, "before_cursor_execute", listener)
    try:
        yield listener
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", listener)


@pytest.fixture
def count_queries(app):
    """Counts SQL statements on every bind while the returned counter is active."""
    with every_statement(app, QueryCounter()) as counter:
        yield counter


# --- browser tests -------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def live_server(app):
    """The app served on a free localhost port in a background thread."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        reason = f"Chromium not installed at {CHROMIUM} (apt-get install -y chromium)"
        if databases.IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_passed = report.passed
    return report


@pytest.fixture
def page(request, browser, live_server):
    """A fresh browser page at laptop width; ``page.base_url`` is the live server.

    Every page it opens is checked with axe-core (WCAG 2 A/AA, tests/accessibility.py):
    after each navigation and at the end of a passing test. Check a state reached
    without navigating (an htmx swap, an open dialog) with ``assert_accessible(page)``.
    """
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server)
    page = context.new_page()
    page.set_default_timeout(10_000)
    accessibility.watch(page)
    yield page
    try:
        if getattr(request.node, "call_passed", False) and not page.is_closed():
            accessibility.assert_accessible(page)
    finally:
        context.close()


def confirm_dialog(page) -> None:
    """Answer the console's confirmation dialog (templates/_confirm.html) with its action button."""
    page.locator("#confirm-dialog[open] #confirm-yes").click()


def browser_login(page, email: str, password: str = STAFF_PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
