"""In Chromium: marketing edits the shipped cancellation email, watches the preview
follow the typing, previews it with a real order, saves, sees the version, reverts."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from console import email_templates
from console.extensions import db
from console.models.notification import EmailTemplate
from tests.accessibility import assert_accessible
from tests.conftest import browser_login
from tests.returns_helpers import paid_order

pytestmark = pytest.mark.browser


def frame_text(page, selector="#preview-html") -> str:
    return page.frame_locator(selector).locator("body").inner_text()


def test_marketing_edits_previews_saves_and_reverts_a_template(app, auth, page):
    auth.create("marketing")
    with app.app_context():
        email_templates.install()
        db.session.commit()
        number = paid_order(status="cancelled").order.order_number
    console_messages = []
    page.on("console", lambda message: console_messages.append(message.text))

    browser_login(page, "marketing@staff.test")
    page.click("#menu-email")
    page.click("#main-menu >> text=Templates")
    page.click("a:text('order_cancelled')")
    page.wait_for_selector("#preview-html")
    assert "Hello Ada," in frame_text(page)
    original_subject = page.input_value("#subject")

    # The preview follows the typing (debounced), subject and HTML alike.
    page.fill("#subject", "Cancelled: {{ order_number }}")
    expect(page.locator("#preview-subject")).to_have_text("Cancelled: ORD-20261101-0042")
    page.fill("#body_html", "<p>Sorry {{ first_name }}, {{ order_number }} is off.</p>")
    expect(page.locator("#preview-html")).to_have_attribute("srcdoc", re.compile("Sorry Ada"))
    assert frame_text(page) == "Sorry Ada, ORD-20261101-0042 is off."

    # A variable nobody declared: the preview says so before any save.
    page.fill("#body_text", "{{ coupon }}")
    page.wait_for_selector("#preview-problems")
    assert "coupon, which is not declared" in page.inner_text("#preview-problems")
    page.fill("#body_text", "Hello {{ first_name }}, {{ order_number }} is cancelled.")
    page.wait_for_selector("#preview-problems", state="detached")

    # A syntax error: said once, above the last preview that rendered (kept, greyed).
    page.fill("#subject", "Cancelled: {{ order_number")
    page.wait_for_selector("#preview-error")
    assert page.inner_text("#preview-error").startswith("Can't be rendered or saved:")
    assert page.locator("#preview-problems").count() == 0
    expect(page.locator("#preview-last.preview-stale #preview-subject-last")).to_have_text("Cancelled: ORD-20261101-0042")
    assert_accessible(page)
    page.fill("#subject", "Cancelled: {{ order_number }}")
    page.wait_for_selector("#preview-last", state="detached")
    expect(page.locator("#preview-subject")).to_have_text("Cancelled: ORD-20261101-0042")

    # A real order's values.
    page.fill("#order_number", number)
    expect(page.locator("#preview-subject")).to_have_text(f"Cancelled: {number}")
    assert frame_text(page) == f"Sorry Jamie, {number} is off."
    assert page.inner_text("#preview-text") == f"Hello Jamie, {number} is cancelled."

    page.click("#save-template")
    page.wait_for_selector("#version-list")
    assert "Saved order_cancelled" in page.inner_text("#flashes")
    versions = page.inner_text("#version-list")
    assert "marketing@staff.test" in versions and "current" in versions and "original" in versions

    page.locator("#version-list tr", has_text="original").locator("a").click()
    page.wait_for_selector("#revert")
    assert "Cancelled: {{ order_number }}" in page.inner_text("main")
    page.click("#revert")
    assert "Make this version the current text of order_cancelled?" in page.inner_text("#confirm-message")
    page.click("#confirm-yes")
    page.wait_for_selector("#version-list")
    assert "Reverted order_cancelled" in page.inner_text("#flashes")
    assert page.input_value("#subject") == original_subject
    assert "reverted" in page.inner_text("#version-list")
    with app.app_context():
        assert db.session.scalar(select(EmailTemplate.subject).where(EmailTemplate.name == "order_cancelled")) \
            == original_subject
    assert not [m for m in console_messages if "Content Security Policy" in m]
