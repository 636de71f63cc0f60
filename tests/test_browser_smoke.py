import pytest

from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_sign_in_shows_databases(auth, page):
    auth.create("admin")
    browser_login(page, "admin@staff.test")
    page.goto("/databases")
    assert page.locator("#databases tbody tr").count() == 10
    page.click("#user-menu")
    page.click("#sign-out")
    page.wait_for_url("**/login")
