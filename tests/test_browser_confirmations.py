"""In Chromium: actions on access ask first in the console's dialog, naming whom they
touch; Cancel does nothing."""
from __future__ import annotations

import pytest

from console.demo.builders import make_customer
from console.extensions import db
from console.models.auth import User
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_locking_a_customer_asks_first_naming_the_account(app, auth, page):
    auth.create("support")
    with app.app_context():
        customer, _ = make_customer("grace@example.com", "Grace", "Hopper")
        db.session.commit()
        customer_id = customer.id
    browser_login(page, "support@staff.test")
    page.goto(f"/customers/{customer_id}")
    page.wait_for_selector("#lock-account")
    page.fill("#account-reason", "Reported stolen by phone")
    page.click("#lock-account")
    assert "Lock grace@example.com?" in page.inner_text("#confirm-message")
    page.click("#confirm-no")
    page.wait_for_timeout(300)
    with app.app_context():
        assert db.session.get(User, customer_id).locked_until is None
    page.click("#lock-account")
    page.click("#confirm-yes")
    page.wait_for_selector("#account-locked .badge")
    assert "locked until unlocked" in page.inner_text("#account-locked")
