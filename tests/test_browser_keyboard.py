"""In Chromium, keyboard only: an order from the list to Mark shipped, the "/" shortcut,
the confirmation dialog, and htmx updates told to screen readers without moving focus."""
from __future__ import annotations

from datetime import timedelta

import pytest

from console.demo.builders import ensure_shipping_options, make_customer, make_order, make_product
from console.extensions import db
from console.models.types import utcnow
from tests.accessibility import assert_accessible
from tests.conftest import STAFF_PASSWORD

pytestmark = pytest.mark.browser

FOCUSED = """() => { const e = document.activeElement;
  return e ? {id: e.id, text: (e.innerText || e.value || "").trim(), tag: e.tagName,
              outline: getComputedStyle(e).outlineStyle} : null; }"""


@pytest.fixture
def orders(app, auth):
    auth.create("support")
    with app.app_context():
        ensure_shipping_options()
        ada, _ = make_customer("ada@example.com", "Ada", "Byron")
        lamp = make_product("LAMP-1", "Desk lamp", "40.00", stock=50)
        start = utcnow() - timedelta(days=2)
        made = {status: make_order(ada, [(lamp, 1)], status=status, created_at=start + timedelta(hours=n)).order
                for n, status in enumerate(("pending", "processing"))}
        db.session.commit()
        return {status: order.order_number for status, order in made.items()}


def tab_to(page, matches, limit: int = 120) -> dict:
    """Press Tab until the focused element matches; fail if it never comes."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused and matches(focused):
            assert focused["outline"] != "none", f"no visible focus ring on {focused}"
            return focused
    raise AssertionError("not reachable with Tab")


def keyboard_login(page, email: str) -> None:
    page.goto("/login")
    page.keyboard.type(email)  # the email field has focus when the page opens
    page.keyboard.press("Tab")
    page.keyboard.type(STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)


def test_an_order_from_the_list_to_shipped_with_the_keyboard_alone(page, orders):
    keyboard_login(page, "support@staff.test")
    tab_to(page, lambda f: f["tag"] == "A" and f["text"] == "Orders")
    page.keyboard.press("Enter")
    page.wait_for_url("**/orders")
    tab_to(page, lambda f: f["text"] == orders["processing"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/orders/{orders['processing']}")

    tab_to(page, lambda f: f["id"] == "ship-carrier")
    page.keyboard.press("Tab")  # service: the order's own
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["id"] == "ship-tracking"
    page.keyboard.type("1Z999AA10123456784")
    tab_to(page, lambda f: f["id"] == "mark-shipped", limit=5)
    page.keyboard.press("Enter")
    page.wait_for_selector("#action-message")
    assert "Marked shipped: tracking number 1Z999AA10123456784" in page.inner_text("#action-message")
    assert page.inner_text("#order-status").strip() == "shipped"
    assert_accessible(page)
    # The outcome is read out; focus stays on the page (not thrown to the top of a new one).
    page.wait_for_function("() => document.getElementById('live-region').textContent.includes('Marked shipped')")


def test_slash_goes_to_the_header_search_and_says_so(page, orders):
    keyboard_login(page, "support@staff.test")
    search = page.locator("#global-search")
    assert search.get_attribute("aria-keyshortcuts") == "/"
    assert page.inner_text("label[for=global-search]").split() == ["Search", "/"]  # its visible label says the key
    page.keyboard.press("/")
    assert page.evaluate(FOCUSED)["id"] == "global-search"
    assert search.input_value() == ""  # the slash itself is not typed
    page.keyboard.type(orders["pending"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/orders/*")  # an exact order number opens the order
    # In a text field "/" is just a character.
    page.locator("#cancel-reason").focus()
    page.keyboard.type("a/b")
    assert page.locator("#cancel-reason").input_value() == "a/b"


def test_confirmation_dialog_focuses_its_buttons_and_escape_closes_it(page, orders):
    keyboard_login(page, "support@staff.test")
    page.goto(f"/orders/{orders['pending']}")
    page.locator("#cancel-reason").focus()
    page.keyboard.type("Asked by phone")
    tab_to(page, lambda f: f["id"] == "cancel-order", limit=5)
    page.keyboard.press("Enter")
    page.wait_for_selector("#confirm-dialog[open]")
    assert page.evaluate(FOCUSED)["id"] == "confirm-no"
    assert page.inner_text("#confirm-yes") == "Cancel the order"  # named after the action
    assert_accessible(page)
    page.keyboard.press("Escape")
    page.wait_for_selector("#confirm-dialog", state="hidden")
    assert page.evaluate(FOCUSED)["id"] == "cancel-order"  # back where it was asked
    assert page.inner_text("#order-status").strip() == "pending"  # nothing happened

    page.keyboard.press("Enter")  # ask again, and confirm from the keyboard this time
    page.wait_for_selector("#confirm-dialog[open]")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["id"] == "confirm-yes"
    page.keyboard.press("Enter")
    page.wait_for_selector("#action-message")
    assert page.inner_text("#order-status").strip() == "cancelled"


def test_a_filtered_table_is_announced_without_moving_focus(page, orders):
    keyboard_login(page, "support@staff.test")
    page.goto("/orders")
    page.locator("#f-status").focus()
    page.select_option("#f-status", "processing")
    page.wait_for_function("() => document.getElementById('live-region').textContent.includes('1 row shown')")
    assert page.evaluate(FOCUSED)["id"] == "f-status"
    assert page.locator("#live-region").get_attribute("aria-live") == "polite"
    assert_accessible(page)


def test_a_form_error_is_tied_to_its_field(page):
    page.goto("/login")
    # The browser's own "required" check would stop the form first; the server's answer,
    # rendered next to its field, is what is checked here.
    page.evaluate("document.querySelector('#email').form.noValidate = true")
    page.locator("#password").focus()
    page.keyboard.type("secret")
    with page.expect_navigation():  # the server's answer, not the page it replaces
        page.keyboard.press("Enter")  # no email
    field = page.locator("#email")
    field.wait_for()
    assert field.get_attribute("aria-invalid") == "true"
    [message_id] = field.get_attribute("aria-describedby").split()
    assert page.locator(f"#{message_id}").inner_text().strip()
    assert page.locator(f"#{message_id}").is_visible()


def test_a_filter_error_is_announced_without_moving_focus(page, orders):
    keyboard_login(page, "support@staff.test")
    page.goto("/orders")
    page.locator("#f-min").focus()
    page.keyboard.type("lots")
    page.keyboard.press("Enter")
    page.wait_for_selector("#filter-errors")
    page.wait_for_function("() => document.getElementById('live-region').textContent.includes('not an amount')")
    assert page.evaluate(FOCUSED)["id"] == "f-min"
