"""The services' Redis caches after console changes: each workflow drops exactly the keys
the owning service drops after the same change (in the shapes the services write them),
leaves every other key alone, never loses a drop when Redis is down or slow, and drops a
bulk change's keys in a bounded number of round trips.

Runs against the Redis at 127.0.0.1:6379 (CONSOLE_TEST_REDIS), in a database number of its
own per test worker (13 and up), flushed before and after each test. Without a Redis
answering there the tests are skipped, saying so; with CI=true they fail instead.
"""
from __future__ import annotations

import os
import socket
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import redis
from redis.connection import AbstractConnection
from sqlalchemy import delete, insert, select, update

from config import BIND_KEYS
from console import cache_drops
from console.demo.builders import (ensure_shipping_options, make_category, make_coupon, make_customer, make_product,
                                   make_promotion, make_staff)
from console.extensions import db
from console.models.auth import SecurityAuditLog, User
from console.models.cart import Cart, CartItem
from console.models.order import Order
from console.models.payment import Payment
from console.models.product import Product, ProductInventory
from console.models.returns import ReturnItem
from console.service_caches import CACHED, Owed
from console.workflows import WorkflowError
from console.workflows import bulk_stock, carrier_file, catalog, coupons, customers, orders, promotions, refunds
from console.workflows import returns, staff
from console.workflows import templates as tpl
from console.workflows.inventory import adjust_stock
from tests.conftest import STAFF_PASSWORD, StaffSignIn, browser_login, make_app
from tests.databases import IN_CI
from tests.returns_helpers import paid_order, staff_actor
from tests.workflows.test_coupons import good
from tests.workflows.test_orders import order_with_stock

REDIS = os.environ.get("CONSOLE_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


def _database_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 13 + int(worker[2:] or 0) % 3 if worker.startswith("gw") and worker[2:].isdigit() else 13


@pytest.fixture(scope="session")
def redis_url():
    url = f"{REDIS}/{_database_number()}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        reason = f"Redis not reachable at {url}: {exc}"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="module")
def cache_app(app, database_urls, redis_url):
    """The console with every service's cache at the test Redis database (the other tests'
    app has none configured, so they drop nothing)."""
    application = make_app(database_urls, SERVICE_CACHE_URLS={key: redis_url for key in BIND_KEYS},
                           SERVICE_CACHE_TIMEOUT=2.0)
    yield application
    with application.app_context():
        for engine in db.engines.values():
            engine.dispose()


def configure(application, url: str, timeout: float = 2.0) -> None:
    application.config["SERVICE_CACHE_URLS"] = {key: url for key in BIND_KEYS}
    application.config["SERVICE_CACHE_TIMEOUT"] = timeout


@pytest.fixture
def r(cache_app, redis_url, tmp_path):
    """The test's Redis database, empty; the cache app's context, with a journal of its own."""
    configure(cache_app, redis_url)
    cache_app.config["SERVICE_CACHE_JOURNAL"] = str(tmp_path / "service_cache_drops.sqlite")
    cache_drops._down_until.clear()
    cache_drops._next_retry.clear()
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    connection.flushdb()
    with cache_app.app_context():
        yield connection
        db.session.remove()
    connection.flushdb()


def cache(r, *keys) -> set[str]:
    """Put ``keys`` in the cache as a service would (a JSON copy with a TTL)."""
    pipe = r.pipeline(transaction=False)
    for name in keys:
        pipe.set(name, '{"cached": true}', ex=600)
    pipe.execute()
    return set(keys)


def left(r) -> set[str]:
    return set(r.scan_iter(count=1000))


# The keys of other rows, in every shape: no change in these tests may drop them.
OTHERS = (
    "order:id:other-order", "order:number:ORD-OTHER-0001", "order:userId:other-user", "order:userId:other-user:2",
    "payment:id:other-payment", "payment:order:other-order", "payment:userId:other-user",
    "user:id:other-user", "user:email:other@example.com", "user:other-user:roles", "role:name:admin",
    "role:id:some-role", "profile:id:other-profile", "profile:userId:other-user", "profile:email:other@example.com",
    "cart:id:other-cart", "cart:userId:other-user:active", "cart:sessionId:other-session:active",
    "cartItems:cartId:other-cart", "product:other-product", "category:other-category", "categories:root",
)
ROLES_BY_EMAIL = "user:email:other@example.com:roles"  # every role change drops it, as the auth service does
PRODUCT_LISTS = ("product:list:all:1", "product:list:category:shoes")


def order_keys(order) -> tuple[str, ...]:
    return (f"order:id:{order.id}", f"order:number:{order.order_number}", f"order:userId:{order.user_id}",
            f"order:userId:{order.user_id}:pending")


def payment_keys(payment) -> tuple[str, ...]:
    return (f"payment:id:{payment.id}", f"payment:order:{payment.order_id}", f"payment:userId:{payment.user_id}")


def user_keys(user) -> tuple[str, ...]:
    return (f"user:id:{user.id}", f"user:email:{user.email}", f"user:email:{user.email}:roles")


def product_keys(*products) -> tuple[str, ...]:
    return tuple(f"product:{getattr(p, 'id', p)}" for p in products)


def journal_waiting() -> dict:
    return {service: w.count for service, w in cache_drops.journal().waiting().items()}


# --- orders ----------------------------------------------------------------------------------

def test_a_status_change_drops_the_orders_keys_and_nothing_else(r):
    bundle, products = order_with_stock("pending")
    stays = cache(r, *OTHERS, *payment_keys(bundle.payment), *product_keys(*products), *PRODUCT_LISTS)
    cache(r, *order_keys(bundle.order))
    orders.transition(staff_actor(), bundle.order.id, "confirmed", "customer called")
    assert left(r) == stays
    assert journal_waiting() == {}


def test_cancel_drops_the_order_its_voided_payment_and_the_released_products(r):
    bundle, products = order_with_stock("pending")
    stays = cache(r, *OTHERS)
    cache(r, *order_keys(bundle.order), *payment_keys(bundle.payment), *product_keys(*products), *PRODUCT_LISTS)
    outcome = orders.cancel(staff_actor(), bundle.order.id, "customer asked")
    assert outcome.complete and "payment_voided" in outcome.done
    assert left(r) == stays


def test_mark_shipped_drops_the_orders_keys(r):
    ensure_shipping_options()
    db.session.commit()
    bundle, products = order_with_stock("processing")
    stays = cache(r, *OTHERS, *payment_keys(bundle.payment), *product_keys(*products))
    cache(r, *order_keys(bundle.order))
    orders.mark_shipped(staff_actor("warehouse"), bundle.order.id, "ups", "standard", "1ZCACHE000001")
    assert left(r) == stays


def test_a_carrier_file_drops_the_keys_of_every_order_it_ships_and_only_those(r):
    ensure_shipping_options()
    db.session.commit()
    shipped = [order_with_stock("processing")[0].order for _ in range(3)]
    refused = order_with_stock("cancelled")[0].order
    stays = cache(r, *OTHERS, *order_keys(refused))
    cache(r, *(k for order in shipped for k in order_keys(order)))
    actor = staff_actor("warehouse")
    lines = [f"{o.order_number},ups,1ZFILE{n:07d}," for n, o in enumerate([*shipped, refused])]
    result = carrier_file.preview(actor, ("order_number,carrier,tracking_number,service\n" + "\n".join(lines)
                                          + "\n").encode(), "labels.csv")
    applied = carrier_file.apply(actor, result.id)
    assert [row.outcome for row in applied.rows] == ["shipped"] * 3 + ["not shippable"]
    assert left(r) == stays


def test_a_refused_change_drops_nothing_and_journals_nothing(r):
    bundle, _ = order_with_stock("delivered")
    stays = cache(r, *OTHERS, *order_keys(bundle.order))
    with pytest.raises(WorkflowError):
        orders.transition(staff_actor(), bundle.order.id, "confirmed")
    assert left(r) == stays
    assert not cache_drops.journal().path.exists() or journal_waiting() == {}


# --- refunds and returns -----------------------------------------------------------------------

def test_a_full_refund_drops_the_payment_and_the_order(r):
    data = paid_order()
    stays = cache(r, *OTHERS, *product_keys(*data.products))
    cache(r, *order_keys(data.order), *payment_keys(data.payment))
    outcome = refunds.refund_order(data.actor, data.order.id, str(data.payment.amount), key="k-full", reason="Lost")
    assert outcome.refund.status == "completed"
    db.session.expire_all()
    assert db.session.get(Payment, data.payment.id).status == "refunded"
    assert left(r) == stays


def test_a_partial_refund_drops_the_order_only_if_it_changed(r):
    data = paid_order()
    stays = cache(r, *OTHERS, *payment_keys(data.payment), *order_keys(data.order))
    refunds.refund_order(data.actor, data.order.id, "10.00", key="k-part", reason="Late")
    db.session.expire_all()
    # A partial refund writes payment_refunds and its transaction, which no service caches.
    assert db.session.get(Payment, data.payment.id).status != "refunded"
    assert left(r) == stays


def test_each_return_step_drops_what_it_changed(r):
    data = paid_order()
    stays = cache(r, *OTHERS)
    owed_by_receipt = cache(r, *product_keys(*data.products), *PRODUCT_LISTS)
    owed_by_refund = cache(r, *order_keys(data.order), *payment_keys(data.payment))
    request = returns.create_return(data.actor, data.order.id, [(i.id, i.quantity) for i in data.items], "defective")
    returns.approve(data.actor, request.id)
    returns.record_tracking(data.actor, request.id, "picked up", "Springfield", tracking_number="1Z999AA10123456784")
    # Return rows live in return_db, which no service caches.
    assert left(r) == stays | owed_by_receipt | owed_by_refund
    items = db.session.scalars(select(ReturnItem).where(ReturnItem.return_request_id == request.id)).all()
    returns.receive(data.actor, request.id, {item.id: "new" for item in items})
    assert left(r) == stays | owed_by_refund
    outcome = returns.process(data.actor, request.id, include_shipping=True)
    assert outcome.refund.status == "completed"
    assert left(r) == stays


# --- stock and the catalog -----------------------------------------------------------------------

def test_a_stock_adjustment_drops_the_product_and_the_product_lists(r):
    product, other = make_product("ADJ-1", "Lamp", "10.00", stock=5), make_product("ADJ-2", "Desk", "90.00")
    db.session.commit()
    stays = cache(r, *OTHERS, *product_keys(other))
    cache(r, *product_keys(product), *PRODUCT_LISTS)
    adjust_stock(staff_actor("warehouse"), product.id, mode="add", quantity="3", reason="received")
    assert left(r) == stays


def test_a_bulk_stock_update_drops_the_products_in_the_file(r):
    ids = {sku: make_product(sku, sku, "5.00", stock=10).id for sku in ("B-1", "B-2", "B-3")}
    db.session.commit()
    stays = cache(r, *OTHERS, *product_keys(ids["B-3"]))
    cache(r, *product_keys(ids["B-1"], ids["B-2"]), *PRODUCT_LISTS)
    actor = staff_actor("warehouse")
    result = bulk_stock.preview(actor, b"sku,delta\nB-1,4\nB-2,-1\n", "moves.csv", reason="correction")
    assert bulk_stock.apply(actor, result.id).changed == 2
    assert left(r) == stays


@pytest.mark.parametrize("change", ["price", "status", "visibility"])
def test_price_status_and_visibility_drop_the_product(r, change):
    product, other = make_product("CAT-1", "Lamp", "40.00"), make_product("CAT-2", "Desk", "90.00")
    db.session.commit()
    stays = cache(r, *OTHERS, *product_keys(other))
    cache(r, *product_keys(product), *PRODUCT_LISTS)
    marketing = staff_actor("marketing")
    if change == "price":
        catalog.change_price(marketing, product.id, price=Decimal("35.00"), reason="Spring sale")
    elif change == "status":
        catalog.change_status(marketing, product.id, "archived", reason="discontinued", confirmed=True)
    else:
        catalog.set_visibility(marketing, product.id, False, reason="recalled")
    assert left(r) == stays


def test_a_category_change_drops_every_category_key(r):
    category = make_category("Lamps", slug="lamps")
    db.session.commit()
    stays = cache(r, *(k for k in OTHERS if not k.startswith(("category:", "categories:"))))
    cache(r, f"category:{category.id}", "category:children:x", "categories:root", "categories:all")
    category.name = "Lighting"
    db.session.commit()
    assert left(r) == stays


# --- accounts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["lock", "unlock"])
def test_locking_and_unlocking_a_customer_drop_the_users_keys(r, action):
    user, profile = make_customer("casey-lock@example.com")
    user.failed_login_attempts = 2
    db.session.commit()
    stays = cache(r, *OTHERS, f"profile:userId:{user.id}", f"user:{user.id}:roles")
    cache(r, *user_keys(user))
    support = staff_actor()
    if action == "lock":
        customers.lock_account(support, user.id, "fraud check", "7d")
    else:
        customers.unlock_account(support, user.id, "verified by phone")
    assert left(r) == stays


def test_revoking_a_customers_sessions_drops_nothing(r):
    from console.models.auth import UserSession
    from console.models.types import utcnow

    user, _ = make_customer("casey-sessions@example.com")
    db.session.add(UserSession(user_id=user.id, session_token="x" * 64, is_active=True, created_at=utcnow(),
                               expires_at=utcnow() + timedelta(days=1)))
    db.session.commit()
    support = staff_actor()  # (a new staff member's role drops every user:email:*:roles)
    stays = cache(r, *OTHERS, *user_keys(user))
    outcome = customers.revoke_sessions(support, user.id, "lost phone")
    assert outcome.sessions == 1
    assert left(r) == stays  # sessions and refresh tokens: the auth service caches neither


def test_granting_and_revoking_a_role_drop_the_role_lists(r):
    member = make_staff("support", "member@staff.test", STAFF_PASSWORD)
    db.session.commit()
    admin = staff_actor("admin")
    stays = cache(r, *OTHERS, f"user:id:{member.id}", f"user:email:{member.email}")
    cache(r, f"user:{member.id}:roles", f"user:email:{member.email}:roles", ROLES_BY_EMAIL)
    staff.grant_role(admin, member.id, "warehouse")
    assert left(r) == stays
    cache(r, f"user:{member.id}:roles", f"user:email:{member.email}:roles", ROLES_BY_EMAIL)
    staff.revoke_role(admin, member.id, "warehouse")  # a DELETE statement: its rows are read first
    assert left(r) == stays


def test_a_changed_email_drops_the_keys_of_the_old_and_the_new_email(r):
    user, _ = make_customer("old-address@example.com")
    db.session.commit()
    db.session.expire_all()  # as a workflow finds it: nothing loaded yet
    stays = cache(r, *OTHERS)
    cache(r, *user_keys(user), "user:email:new-address@example.com")
    row = db.session.get(User, user.id)
    db.session.expire(row)
    row.email = "new-address@example.com"
    db.session.commit()
    assert left(r) == stays


def test_a_key_is_taken_literally_whatever_its_characters(r):
    user, _ = make_customer("star*[x]?\\@example.com")
    db.session.commit()
    # Read as a glob, the email would also match these.
    stays = cache(r, *OTHERS, "user:email:starZZxQ@example.com", "user:email:star-x!@example.com")
    cache(r, *user_keys(user))
    customers.lock_account(staff_actor(), user.id, "check", "7d")
    assert left(r) == stays


# --- discounts and templates: services that keep nothing in Redis ----------------------------------

def test_coupon_promotion_and_template_changes_drop_nothing(r):
    make_product("MUG-1", "Mug", "8.00")
    make_category("Apparel", slug="apparel")
    make_coupon("OLD-10")
    promotion = make_promotion("Draft", status="draft")
    db.session.commit()
    stays = cache(r, *OTHERS, *PRODUCT_LISTS)
    marketing = staff_actor("marketing")
    coupon = coupons.create_coupon(marketing, good(code="CACHE-10", applicable_products=["MUG-1"]))
    coupons.update_coupon(marketing, coupon.id, good(code="CACHE-10", name="Renamed"))
    coupons.disable(marketing, coupon.id)
    coupons.generate_codes(marketing, coupon.id, 50, prefix="gen-", length=6)
    promotions.change_status(marketing, promotion.id, "expired")
    template = tpl.find_template("order_cancelled")
    draft = tpl.Draft.of(template)
    draft.subject = "Your order {{ order_number }} is cancelled"
    tpl.save(marketing, template.id, draft)
    assert left(r) == stays
    assert journal_waiting() == {}


# --- never lost ----------------------------------------------------------------------------------

def test_with_redis_unreachable_the_change_commits_and_a_retry_drops_it_later(r, cache_app, redis_url):
    actor = staff_actor()
    bundle, products = order_with_stock("pending")
    stays = cache(r, *OTHERS, *payment_keys(bundle.payment))
    owed = cache(r, *order_keys(bundle.order))
    configure(cache_app, CLOSED)
    orders.transition(actor, bundle.order.id, "confirmed", "customer called")
    db.session.expire_all()
    assert db.session.get(Order, bundle.order.id).status == "confirmed"  # the change stands
    assert journal_waiting() == {"order": 1}
    [state] = [c for c in cache_drops.health() if c.service == "order"]
    assert state.state == "down" and state.waiting.count == 1 and state.waiting.last_error
    orders.transition(actor, bundle.order.id, "processing")  # a later commit, still down
    assert journal_waiting() == {"order": 2}
    assert left(r) == stays | owed

    configure(cache_app, redis_url)
    [outcome] = cache_drops.retry()
    assert (outcome.service, outcome.dropped, outcome.waiting) == ("order", 2, 0)
    assert left(r) == stays
    assert journal_waiting() == {}


def test_a_later_commit_retries_what_is_owed(r, cache_app, redis_url):
    actor = staff_actor()
    first, _ = order_with_stock("pending")
    second, _ = order_with_stock("pending")
    stays = cache(r, *OTHERS)
    cache(r, *order_keys(first.order), *order_keys(second.order))
    configure(cache_app, CLOSED)
    orders.transition(actor, first.order.id, "confirmed")
    assert journal_waiting() == {"order": 1}
    configure(cache_app, redis_url)
    cache_drops._down_until.clear()
    orders.transition(actor, second.order.id, "confirmed")  # its own drop, then the one owed
    assert left(r) == stays
    assert journal_waiting() == {}


def test_a_slow_redis_times_out_and_the_drop_waits(r, cache_app, redis_url):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are accepted by the kernel; nothing ever answers
    try:
        actor = staff_actor()
        bundle, _ = order_with_stock("pending")
        owed = cache(r, *order_keys(bundle.order))
        configure(cache_app, f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout=0.3)
        orders.transition(actor, bundle.order.id, "confirmed")
        db.session.expire_all()
        assert db.session.get(Order, bundle.order.id).status == "confirmed"
        assert journal_waiting() == {"order": 1}
        assert left(r) == owed
    finally:
        silent.close()
    configure(cache_app, redis_url)
    cache_drops.retry()
    assert left(r) == set()


def test_the_command_retries_and_says_what_is_still_waiting(r, cache_app, redis_url):
    actor = staff_actor()
    bundle, _ = order_with_stock("pending")
    cache(r, *order_keys(bundle.order))
    configure(cache_app, CLOSED)
    orders.transition(actor, bundle.order.id, "confirmed")
    runner = cache_app.test_cli_runner()
    result = runner.invoke(args=["console", "drop-cache-keys"])
    assert result.exit_code == 1 and "1 still waiting" in result.output
    configure(cache_app, redis_url)
    result = runner.invoke(args=["console", "drop-cache-keys"])
    assert result.exit_code == 0 and "dropped the keys of 1 change(s)" in result.output
    assert left(r) == set()
    assert "No service cache is owed anything." in runner.invoke(args=["console", "drop-cache-keys"]).output


def test_the_databases_page_shows_each_cache_and_retries_what_waits(r, cache_app, redis_url):
    client = cache_app.test_client()
    StaffSignIn(cache_app, client).login("finance")
    actor = staff_actor()
    bundle, _ = order_with_stock("pending")
    cache(r, *order_keys(bundle.order))
    cache_app.config["SERVICE_CACHE_URLS"] = {"order": CLOSED, "product": redis_url}
    orders.transition(actor, bundle.order.id, "confirmed")
    page = client.get("/databases").get_data(as_text=True)
    assert 'data-cache="order"' in page and "1 waiting" in page and "retry-cache-drops" in page
    row = page.split('data-cache="product"')[1].split("</tr>")[0]
    assert ">up<" in row and "products" in row
    row = page.split('data-cache="shipping"')[1].split("</tr>")[0]
    assert "not configured" in row

    cache_app.config["SERVICE_CACHE_URLS"] = {"order": redis_url}
    response = client.post("/databases/service-caches/retry", follow_redirects=True)
    assert response.status_code == 200 and "nothing more is owed" in response.get_data(as_text=True)
    assert left(r) == set()
    [log] = db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action == "service_cache.retried"))
    assert log.metadata_["after"]["order"]["dropped"] == 1


def test_the_retry_button_is_a_post_for_those_who_see_the_page(r, cache_app):
    client = cache_app.test_client()
    StaffSignIn(cache_app, client).login("support")
    assert client.post("/databases/service-caches/retry").status_code == 403
    assert client.get("/databases/service-caches/retry").status_code == 405


@pytest.mark.browser
def test_the_databases_page_with_a_cache_down_and_drops_waiting_in_the_browser(app, auth, page, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setitem(app.config, "SERVICE_CACHE_URLS", {"order": CLOSED})
    monkeypatch.setitem(app.config, "SERVICE_CACHE_JOURNAL", str(tmp_path / "service_cache_drops.sqlite"))
    cache_drops._down_until.clear()
    with app.app_context():
        cache_drops.journal().owe(None, "order", Owed(keys={"order:id:o-1"}), "Connection refused")
    auth.create("admin")
    browser_login(page, "admin@staff.test")
    page.goto("/databases#service-caches")
    row = page.locator('#caches tr[data-cache="order"]')
    assert "down" in row.inner_text() and "1 waiting" in row.inner_text()
    page.click("#retry-cache-drops")
    page.wait_for_url("**/databases#service-caches")
    assert "1 still waiting" in page.locator("main").inner_text()


# --- batches --------------------------------------------------------------------------------------

@pytest.fixture
def round_trips(monkeypatch):
    """Counts what is sent to Redis: a command, or a whole pipeline, is one round trip."""
    sent = []
    original = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


def test_a_bulk_stock_update_of_ten_thousand_rows_drops_in_a_bounded_number_of_round_trips(r, round_trips):
    db.session.execute(Product.__table__.insert(), [
        {"id": f"p{n:05d}", "sku": f"BULK-{n:05d}", "name": f"Bulk {n}", "slug": f"bulk-{n:05d}", "price": 1,
         "stock_quantity": 5,
         "stock_status": "in_stock", "status": "active"} for n in range(10_000)])
    db.session.execute(ProductInventory.__table__.insert(), [
        {"id": f"i{n:05d}", "product_id": f"p{n:05d}", "quantity": 5, "reserved_quantity": 1, "available_quantity": 4}
        for n in range(10_000)])
    db.session.commit()
    stays = cache(r, *OTHERS, *(f"order:id:o{n:05d}" for n in range(5_000)))  # a cache the SCAN walks through
    cache(r, *product_keys(*(f"p{n:05d}" for n in range(10_000))), *PRODUCT_LISTS)
    keyspace = r.dbsize()
    actor = staff_actor("warehouse")
    result = bulk_stock.preview(actor, ("sku,delta\n" + "".join(f"BULK-{n:05d},2\n" for n in range(10_000))).encode(),
                                "big.csv", reason="received")
    round_trips.clear()
    assert bulk_stock.apply(actor, result.id).changed == 10_000
    sent = len(round_trips)
    assert left(r) == stays
    # 10,000 keys in UNLINKs of a thousand, pipelined: one round trip. The product lists: one
    # SCAN walk, a page per thousand slots of the cache's table (up to twice its keys), each
    # page's matches unlinked along with the next page's request.
    assert 3 <= sent <= 3 + 2 * keyspace // cache_drops.SCAN_COUNT, (sent, keyspace)


def test_one_scan_walk_serves_many_prefixes_and_patterns(r, redis_url, round_trips):
    users = [f"u{n:04d}" for n in range(2_000)]
    owed = cache(r, *(f"order:userId:{u}" for u in users), *(f"order:userId:{u}:p2" for u in users[:100]),
                 "user:email:a@x.com:roles", "user:email:b@x.com:roles")
    stays = cache(r, *OTHERS, "order:userId:v0001", "user:email:a@x.com", "order:userIdx")
    drops = Owed(prefixes={f"order:userId:{u}" for u in users}, patterns={"user:email:*:roles"})
    keyspace = r.dbsize()
    round_trips.clear()
    removed = cache_drops.drop(cache_drops.client(redis_url), drops)
    assert removed == len(owed)
    assert left(r) == stays
    assert len(round_trips) <= 2 + 2 * keyspace // cache_drops.SCAN_COUNT, len(round_trips)  # not one per prefix


# --- statements sent through the session -----------------------------------------------------------

def test_an_update_by_condition_drops_the_keys_of_the_rows_as_they_were_and_as_they_become(r):
    bundle, _ = order_with_stock("pending")
    stays = cache(r, *OTHERS)
    cache(r, *order_keys(bundle.order), "order:number:ORD-RENUMBERED")
    db.session.execute(update(Order).where(Order.id == bundle.order.id).values(order_number="ORD-RENUMBERED"))
    db.session.commit()
    assert left(r) == stays


def test_a_delete_of_the_table_itself_reads_its_rows_first(r):
    cart = Cart(user_id="cart-user", session_id="cart-session", status="active")
    db.session.add(cart)
    db.session.flush()
    db.session.add(CartItem(cart_id=cart.id, product_id="p", product_name="Mug", product_sku="MUG-1",
                            unit_price=Decimal("8.00"), quantity=1, total_price=Decimal("8.00")))
    db.session.commit()
    stays = cache(r, *OTHERS)
    cache(r, f"cart:id:{cart.id}", "cart:userId:cart-user:active", "cart:sessionId:cart-session:active",
          f"cartItems:cartId:{cart.id}")
    items, carts = CartItem.__table__, Cart.__table__
    db.session.execute(delete(items).where(items.c.cart_id == cart.id))
    db.session.execute(delete(carts).where(carts.c.id == cart.id))
    db.session.commit()
    assert left(r) == stays


def test_a_write_the_session_cannot_read_is_refused_or_declared(r):
    with pytest.raises(TypeError, match="owe"):
        db.session.execute(insert(Product.__table__).from_select(["id", "sku"], select(Product.id, Product.sku)))
    db.session.rollback()
    stays = cache(r, *OTHERS)
    cache(r, "product:written-elsewhere", *PRODUCT_LISTS)
    cache_drops.owe(Product, [SimpleNamespace(id="written-elsewhere")])  # e.g. a raw connection's write
    db.session.commit()
    assert left(r) == stays


# --- the registry ---------------------------------------------------------------------------------

def test_nothing_is_collected_where_no_cache_is_configured(ctx, app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "SERVICE_CACHE_JOURNAL", str(tmp_path / "journal.sqlite"))
    bundle, _ = order_with_stock("pending")
    orders.transition(staff_actor(), bundle.order.id, "confirmed")
    assert cache_drops.OWED not in db.session().info
    assert not (tmp_path / "journal.sqlite").exists()


def test_every_declared_table_belongs_to_one_service_and_names_mapped_attributes():
    for model, entry in CACHED.items():
        assert entry.service in BIND_KEYS
        assert all(name in model.__mapper__.attrs for name in entry.attributes), model
