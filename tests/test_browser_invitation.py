"""In Chromium: an admin invites a finance member; the invitee follows the emailed
link, sets a password, is made to enrol two-step sign-in (the test computes the app's
code with pyotp), and then sees the finance menu."""
from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select

from console.extensions import db
from console.models.auth import User
from console.models.notification import Notification
from tests.conftest import STAFF_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def shipped_email_templates(app):
    """The invitation and reset emails are templates like every other (init-db installs them)."""
    from console import email_templates
    with app.app_context():
        email_templates.install()
        db.session.commit()

PASSWORD = "Quarterly-close-2026"
SHOTS = None  # a folder path to keep screenshots of each step while working on the screens


def shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def test_an_invited_finance_member_sets_a_password_enrols_and_gets_the_finance_menu(app, auth, page, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED_ROLES", ("admin", "finance"))
    admin_id = auth.create("admin")
    with app.app_context():  # the admin has enrolled already
        admin = db.session.get(User, admin_id)
        admin.mfa_secret, admin.mfa_enabled = pyotp.random_base32(), True
        admin_secret = admin.mfa_secret
        db.session.commit()

    page.goto("/login")
    page.fill("input[name=email]", "admin@staff.test")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/mfa")
    page.fill("input[name=code]", pyotp.TOTP(admin_secret).now())
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto("/staff")
    page.fill("#invite-email", "fran.finance@staff.test")
    page.check("#invite-staff input[value=finance]")
    shot(page, "1-invite")
    page.click("#invite-submit")
    page.wait_for_url(lambda url: "/staff?q=" in url)
    assert "Invited fran.finance@staff.test" in page.locator("#flashes").inner_text()
    row = page.locator('tr[data-email="fran.finance@staff.test"]')
    assert "invited" in row.inner_text() and "finance" in row.inner_text()
    shot(page, "2-invited")
    page.context.clear_cookies()  # the invitee's browser

    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "fran.finance@staff.test"))
        body = db.session.scalar(select(Notification.body).where(Notification.user_id == user_id))
    link = re.search(r"http://\S+/password/set/\S+", body).group(0)
    page.goto(link)
    assert "fran.finance@staff.test" in page.locator("#account-email").inner_text()
    page.fill("input[name=password]", "too-short")
    page.fill("input[name=confirm]", "too-short")
    page.click("button[type=submit]")
    assert "at least 12 characters" in page.locator(".invalid-feedback").inner_text()
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    shot(page, "3-set-password")
    page.click("button[type=submit]")

    # Signed in, but finance requires two-step sign-in: enrolment first, nothing else.
    page.wait_for_url("**/profile")
    assert page.locator("#mfa-required").is_visible()
    assert page.locator("#main-menu a.nav-link").count() == 0
    page.goto("/refunds")
    page.wait_for_url("**/profile")
    page.click("#mfa-start")
    secret = page.locator("#mfa-secret").inner_text().strip()
    shot(page, "4-enrol")
    page.fill("#confirm-code", pyotp.TOTP(secret).now())
    page.click("button:has-text('Confirm and turn on')")
    assert page.locator("#backup-codes li").count() == 10
    shot(page, "5-backup-codes")
    page.click("text=I have stored them")

    menu = [text.strip() for text in page.locator("#main-menu a").all_text_contents()]
    assert menu == ["Dashboard", "Orders", "Customers", "Returns", "Refunds", "Coupons", "Promotions", "Databases"]
    page.click("#main-menu >> text=Refunds")
    page.wait_for_url("**/refunds")
    assert page.locator("h1").first.inner_text().startswith("Refunds")
    shot(page, "6-finance-menu")


def test_forgot_password_page_answers_without_saying_whether_the_email_exists(auth, page):
    auth.create("support")
    for email in ("support@staff.test", "nobody@staff.test"):
        page.goto("/login")
        page.click("text=Forgot your password?")
        page.fill("input[name=email]", email)
        page.click("button[type=submit]")
        page.wait_for_url("**/login")
        assert "If that email belongs to a console account" in page.locator("#flashes").inner_text()
