"""In Chromium: each role signs in, sees exactly its menu, signs out; an admin works
the Staff screen's inline actions and the data browser."""
from __future__ import annotations

import pytest

from console.navigation import menu_for
from console.permissions import STAFF_ROLES
from console.staff import StaffUser
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def expected_menu(app, role: str) -> list[str]:
    with app.test_request_context():
        return [label for label, _ in menu_for(StaffUser(id="x", email="x", roles=frozenset({role})))]


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_each_role_sees_its_menu_and_signs_out(app, auth, page, role):
    auth.create(role)
    browser_login(page, f"{role}@staff.test")
    labels = [text.strip() for text in page.locator("#main-menu a").all_text_contents()]
    assert labels == expected_menu(app, role)
    assert ("Staff" in labels) is (role == "admin")
    page.click("#user-menu")
    page.click("#sign-out")
    page.wait_for_url("**/login")
    assert page.locator("#main-menu").count() == 0
    page.goto("/")
    page.wait_for_url("**/login?next=%2F")


def test_admin_locks_a_member_inline_and_sees_the_message(auth, page):
    auth.create("admin")
    auth.create("support", "member@staff.test")
    browser_login(page, "admin@staff.test")
    page.goto("/staff")
    row = page.locator('tr[data-email="member@staff.test"]')
    row.get_by_role("button", name="Lock").click()
    page.click("#confirm-yes")
    page.locator("#flashes .alert").wait_for()
    assert "Locked member@staff.test until unlocked" in page.inner_text("#flashes")
    assert page.locator('tr[data-email="member@staff.test"] .badge.text-bg-danger').inner_text() == "locked"
    # grant a role from the row's select
    row = page.locator('tr[data-email="member@staff.test"]')
    row.locator("select[name=role]").select_option("finance")
    row.get_by_role("button", name="Grant").click()
    assert "Grant the finance role to member@staff.test?" in page.inner_text("#confirm-message")
    page.click("#confirm-yes")
    page.locator("#flashes .alert", has_text="Granted the finance role").wait_for()
    assert page.locator('tr[data-email="member@staff.test"] .role-chip').count() == 2
    assert page.url.endswith("/staff")  # inline: no page load


def test_refusal_shows_in_the_message_area(auth, page, app):
    from console.extensions import db
    from console.models.auth import User

    auth.create("admin")
    member = auth.create("support", "member@staff.test")
    browser_login(page, "admin@staff.test")
    page.goto("/staff")
    with app.app_context():  # someone else locks the member meanwhile
        user = db.session.get(User, member)
        from console.workflows.staff import LOCKED_UNTIL_UNLOCKED
        user.locked_until = LOCKED_UNTIL_UNLOCKED
        db.session.commit()
    page.locator('tr[data-email="member@staff.test"]').get_by_role("button", name="Lock").click()
    page.click("#confirm-yes")
    page.locator("#flashes #error-message").wait_for()
    assert "already locked" in page.inner_text("#flashes")
    assert page.locator("#staff tbody tr").count() == 2  # the table is intact


def test_data_browser_inside_the_console(auth, page):
    auth.create("admin")
    browser_login(page, "admin@staff.test")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/data/")
    assert "Data browser" in page.locator("#main-menu a.active").text_content()
    page.click("text=order_db")
    page.click(".dropdown-menu >> text=orders")
    page.wait_for_url("**/data/order/orders/")
    assert page.locator("table.model-list").count() == 1
    page.click("text=Add Filter")
    page.click("a.filter >> text=status")
    assert page.locator("input.filter-val").count() == 1  # Flask-Admin's scripts run under the CSP
    assert errors == []
    page.click("#user-menu")
    page.click("#sign-out")
    page.wait_for_url("**/login")
