"""In Chromium, on demo data: every screen, for every role, passes axe-core's WCAG 2 A/AA
rules (the ``page`` fixture checks each page it opens, tests/accessibility.py), including
htmx-swapped states and the data browser; one order is shipped with the keyboard alone."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from console.demo.seed import DEMO_STAFF_PASSWORD, seed_demo
from console.extensions import db
from console.models.discount import Coupon, Promotion
from console.models.notification import Notification
from console.models.order import Order
from console.models.product import Product
from console.models.returns import ReturnRequest
from console.models.user import UserProfile
from console.navigation import menu_for
from console.permissions import STAFF_ROLES
from console.staff import StaffUser
from tests.accessibility import assert_accessible
from tests.conftest import browser_login

pytestmark = pytest.mark.browser

# GET routes that are not screens: files, JSON, the data browser's own machinery (walked
# on its own below) and the sign-in steps (a signed-in member is sent on from them).
NOT_SCREENS = ("static", "system.healthz", "auth.login", "auth.login_mfa", "customers.customer_panel")


def is_screen(rule) -> bool:
    return ("GET" in rule.methods and rule.endpoint not in NOT_SCREENS
            and not rule.rule.endswith((".csv", ".pdf")) and not rule.endpoint.startswith("data"))


@pytest.fixture
def demo(app):
    """The demo data set, small: every status of every kind of record is in it."""
    with app.app_context():
        seed_demo(customers=12, orders=40)
        order = db.session.scalars(select(Order).where(Order.status == "delivered").limit(1)).one()
        customer = db.session.scalars(select(UserProfile.user_id).limit(1)).one()
        rma = db.session.scalars(select(ReturnRequest.rma_number).limit(1)).one()
        processing = db.session.scalars(select(Order.order_number).where(Order.status == "processing").limit(1)).one()
        coupon = db.session.scalars(select(Coupon.code).where(Coupon.usage_count > 0).limit(1)).one()
        promotion = db.session.scalars(select(Promotion.id).limit(1)).one()
        notification = db.session.scalars(select(Notification.id).limit(1)).one()
        sku = db.session.scalars(select(Product.sku).limit(1)).one()
        # One sample address for each screen that takes a key; a new screen with a key
        # needs a line here, or test_every_screen_for_every_role fails and names it.
        return {
            "customers.customer_detail": f"/customers/{customer}",
            "orders.order_detail": f"/orders/{order.order_number}",
            "returns.new_return": f"/orders/{order.order_number}/returns/new",
            "documents.packing_slip": f"/orders/{order.order_number}/packing-slip",
            "documents.invoice": f"/orders/{order.order_number}/invoice",
            "returns.return_detail": f"/returns/{rma}",
            "processing": f"/orders/{processing}",
            "coupons.coupon_detail": f"/coupons/{coupon}",
            "coupons.edit_coupon": f"/coupons/{coupon}/edit",
            "coupons.generate": f"/coupons/{coupon}/generate",
            # A generated batch that is not there: its refusal page is checked like any other.
            "coupons.generated": f"/coupons/{coupon}/generated/00000000-0000-4000-8000-000000000000",
            "promotions.promotion_detail": f"/promotions/{promotion}",
            "promotions.edit_promotion": f"/promotions/{promotion}/edit",
            "notifications.notification_detail": f"/notifications/{notification}",
            "products.product_detail": f"/products/{sku}",
            # A dry run that is not there: its refusal page is checked like any other.
            "products.bulk_preview": "/products/bulk/00000000-0000-4000-8000-000000000000",
            "fulfilment.preview": "/orders/carrier-file/00000000-0000-4000-8000-000000000000",
            "email_templates.edit_template": "/templates/order_shipped",
            "email_templates.version_diff": "/templates/order_shipped/versions/1",
            # A link that is not valid: the page that says so, with the way on.
            "auth.open_password_link": "/password/set/not-a-valid-token",
        }


def screens(app, demo) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if not is_screen(rule):
            continue
        if rule.arguments:
            assert rule.endpoint in demo, f"no sample address for {rule.endpoint} ({rule.rule}): add one to demo()"
            urls.append(demo[rule.endpoint])
        else:
            urls.append(rule.rule)
    return sorted(set(urls))


def menu(app, role: str) -> list[str]:
    with app.test_request_context():
        from flask import url_for
        return [url_for(endpoint) for _, endpoint in menu_for(StaffUser(id="x", email="x", roles=frozenset({role})))]


def test_every_screen_for_every_role(app, demo, page):
    """For each role: each screen its menu leads to, then every other GET screen (a
    refusal is a page too). The page fixture runs axe on each page as it opens."""
    for role in STAFF_ROLES:
        browser_login(page, f"{role}@example.com", DEMO_STAFF_PASSWORD)  # lands on the dashboard
        own = menu(app, role)
        for url in own + [url for url in screens(app, demo) if url not in own]:
            if url != "/":
                page.goto(url)
        page.context.clear_cookies()


# Every visible field (hidden ones and buttons aside) with a visible label: a <label> for
# it, or aria-labelledby naming visible text. A placeholder or aria-label is not one.
UNLABELLED_FIELDS = """() => {
  const visible = el => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden"
                        && el.innerText.trim() !== "";
  const skip = ["hidden", "submit", "button", "reset", "image"];
  return [...document.querySelectorAll("input, select, textarea")]
    .filter(el => !skip.includes((el.getAttribute("type") || "").toLowerCase()) && el.getClientRects().length > 0)
    .filter(el => {
      if ([...(el.labels || [])].some(visible)) return false;
      const ids = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
      return !(ids.length && ids.every(id => visible(document.getElementById(id))));
    })
    .map(el => `${el.tagName.toLowerCase()}#${el.id || "?"}[name=${el.name}]` + (el.placeholder ? ` (placeholder “${el.placeholder}”)` : ""));
}"""


# Inputs the browser shows in its own locale's format (12/16/2026, 04:45 PM).
LOCALE_INPUTS = "input[type=date], input[type=datetime-local], input[type=time], input[type=month], input[type=week]"


def test_every_visible_field_has_a_visible_label(app, demo, page):
    """Every GET screen as admin (who sees every form), with the product page's and the
    template editor's forms: each visible field is named by text on the screen, and
    dates are typed as the console writes them (ISO), not in the browser's locale."""
    browser_login(page, "admin@example.com", DEMO_STAFF_PASSWORD)
    missing, localised = {}, {}
    for url in ["/"] + screens(app, demo):
        page.goto(url)
        unlabelled = page.evaluate(UNLABELLED_FIELDS)
        if unlabelled:
            missing[url] = unlabelled
        if page.locator(LOCALE_INPUTS).count():
            localised[url] = page.locator(LOCALE_INPUTS).evaluate_all("els => els.map(e => e.id || e.name)")
    assert not missing, "fields without a visible label: " + "; ".join(f"{url}: {', '.join(f)}" for url, f in missing.items())
    assert not localised, f"date inputs in the browser's locale: {localised}"
    page.goto(demo["coupons.edit_coupon"])
    assert page.get_attribute("#starts_at", "placeholder") == "YYYY-MM-DD HH:MM"


def test_htmx_states(demo, page):
    """A filtered table, a filter answered with an error, the ship form answered with
    an error, the open user menu and a
    customer's panels (loaded by htmx). The confirmation dialog is checked open in
    tests/test_browser_keyboard.py."""
    browser_login(page, "support@example.com", DEMO_STAFF_PASSWORD)
    page.goto("/orders")
    page.select_option("#f-status", "processing")
    page.wait_for_url("**/orders?*status=processing*")
    assert_accessible(page)
    page.fill("#f-min", "lots")
    page.press("#f-min", "Enter")
    page.wait_for_selector("#filter-errors")
    assert_accessible(page)

    page.goto(demo["processing"])  # the ship form answered with an error in place
    page.fill("#ship-tracking", "1Z999AA10123456784")
    page.fill("#ship-weight", "-1")
    page.click("#mark-shipped")
    page.wait_for_selector("#action-message.alert-danger")
    assert_accessible(page)

    page.goto(demo["orders.order_detail"])
    page.click("#user-menu")
    page.wait_for_selector(".dropdown-menu.show")
    assert_accessible(page)
    page.keyboard.press("Escape")

    page.goto(demo["customers.customer_detail"])  # its panels load with htmx, then axe runs
    assert page.locator(".customer-panel").count() > 1


def test_data_browser(demo, page, app):
    """The data browser's index, a list of every database, a record, and a new-record form."""
    browser_login(page, "admin@example.com", DEMO_STAFF_PASSWORD)
    page.goto("/data/")
    admin = app.extensions["admin"][0]
    first_of_each = {}
    for view in admin._views:
        endpoint = getattr(view, "endpoint", "")
        if endpoint.startswith("data_") and view.category not in first_of_each:
            first_of_each[view.category] = view.url
    for url in first_of_each.values():
        page.goto(url + "/")
    page.goto("/data/order/orders/")
    page.click("table.model-list tbody tr:first-child a[title='View Record']")
    page.wait_for_url("**/details/**")
    page.goto("/data/order/order_notes/new/")


def test_dashboard_periods_and_the_range_form(demo, page):
    """Each period of the dashboard (axe runs on each), then a range typed into the form."""
    browser_login(page, "finance@example.com", DEMO_STAFF_PASSWORD)
    for query in ("?period=7d", "?period=30d", "?period=month", "?period=custom&from=2026-02-30&to=x"):
        page.goto("/" + query)
    page.goto("/")
    page.fill("#period-from", "2026-10-01")
    page.fill("#period-to", "2026-10-31")
    page.click("#period-form button[type=submit]")
    page.wait_for_url("**/?period=custom*")
    assert "01 Oct 2026 to 31 Oct 2026" in page.inner_text("#period-summary")
    assert_accessible(page)
    assert page.get_attribute("#store-zone", "id") == "store-zone"
