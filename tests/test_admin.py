"""The data browser: all 70 tables, grouped by database, admin only, read-only,
no COUNT(*) per page, and no secret ever in its HTML."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyotp
import pytest
from sqlalchemy import JSON, Boolean, Enum, Integer, Numeric, String, Text, func, select

from config import BIND_KEYS
from console.admin import MAX_PAGES, PAGE_SIZE, TableView, is_secret
from console.demo.builders import make_customer, make_order, make_product, make_staff, make_user
from console.extensions import db
from console.models import all_models, models_of
from console.models.auth import User
from console.models.order import Order, OrderNote
from console.models.payment import PaymentMethod
from console.models.types import UTCDateTime, new_id, utcnow
from console.workflows import mfa
from tests.conftest import STAFF_PASSWORD

SECRET_MARK = "S3CRET"
# Written out here, not taken from console.admin, so a secret dropped from the
# browser's rules makes these tests fail.
KNOWN_SECRETS = {
    ("users", "password_hash"), ("users", "mfa_secret"), ("refresh_tokens", "token"),
    ("user_sessions", "session_token"), ("password_reset_tokens", "token"),
    ("email_verification_tokens", "token"), ("mfa_backup_codes", "code"),
    ("payment_methods", "provider_token"), ("payment_methods", "provider_token"),
    ("carriers", "api_key"), ("carriers", "configuration"), ("carts", "session_id"),
    ("users", "mfa_backup_codes"),
}


def looks_secret(table: str, column: str) -> bool:
    """``column`` is a column's key (its Python attribute, snake_case)."""
    return (table, column) in KNOWN_SECRETS or (
        any(word in column for word in ("password", "secret", "token", "api_key", "credential"))
        and not column.endswith("_id"))


def table_views(app) -> dict[str, TableView]:
    admin = app.extensions["admin"][0]
    return {view.endpoint: view for view in admin._views if isinstance(view, TableView)}


def seed_every_table() -> dict[str, dict]:
    """One row in each of the 70 tables: secret columns hold a recognisable secret,
    every other text column a visible marker. A foreign key that may be empty stays
    empty; one that may not points at the row seeded in its table, so parents go first."""
    rows, ids = {}, {}  # ids: table -> the values of its seeded row
    now = utcnow()
    waiting = list(all_models())
    while waiting:
        model = waiting.pop(0)
        table = model.__table__
        parents = {fk.column.table.name for c in table.columns if not c.nullable for fk in c.foreign_keys
                   if fk.column.table is not table}
        if not parents <= set(ids):
            waiting.append(model)
            continue
        values, visible = {"id": new_id()}, None
        for column in table.columns:
            if column.primary_key:
                continue
            if column.foreign_keys:
                if not column.nullable:
                    target = next(iter(column.foreign_keys)).column  # an id, or user_profiles.userId
                    values[column.key] = ids[target.table.name][target.key]
                continue
            if isinstance(column.type, Enum):
                value = column.type.enums[0]
            elif isinstance(column.type, (String, Text)):
                secret = looks_secret(table.name, column.key)
                value = f"{SECRET_MARK}-{table.name}-{column.key}" if secret else f"shown-{table.name}-{column.key}"
                value = value[:getattr(column.type, "length", None) or len(value)]  # VARCHAR(4): last4
                visible = visible or (None if secret else value)
            elif isinstance(column.type, UTCDateTime):
                value = now
            elif isinstance(column.type, Boolean):
                value = True
            elif isinstance(column.type, Integer):
                value = 3
            elif isinstance(column.type, Numeric):
                value = Decimal("12.50")
            elif isinstance(column.type, JSON):  # JSON, or a text array on PostgreSQL
                value = ([f"{SECRET_MARK}-{table.name}-{column.key}"]
                         if looks_secret(table.name, column.key) else ["shown"])
            else:
                continue
            values[column.key] = value
        db.session.add(model(**values))
        db.session.flush()
        ids[table.name] = values
        rows[f"{model.__bind_key__}.{table.name}"] = {"id": values["id"], "visible": visible}
    db.session.commit()
    return rows


def admin_client(app, auth):
    auth.login("admin")
    return auth.client


def test_all_seventy_tables_have_a_view_grouped_by_database(app):
    views = table_views(app)
    assert len(views) == 70
    for bind in BIND_KEYS:
        for model in models_of(bind):
            view = views[f"data_{bind}_{model.__tablename__}"]
            assert view.category == f"{bind}_db" and view.name == model.__tablename__
            assert view.url == f"/data/{bind}/{model.__tablename__}"
            assert not (view.can_create or view.can_edit or view.can_delete or view.can_export)
            assert view.simple_list_pager and view.page_size == 50
    with app.test_request_context():
        from flask import url_for
        assert url_for("data.index") == "/data/"


def test_every_list_and_details_page_renders_and_hides_every_secret(app, auth):
    with app.app_context():
        rows = seed_every_table()
    client = admin_client(app, auth)
    for endpoint, view in table_views(app).items():
        key = f"{view.category[:-3]}.{view.name}"
        listing = client.get(f"{view.url}/")
        assert listing.status_code == 200, endpoint
        details = client.get(f"{view.url}/details/?id={rows[key]['id']}")
        assert details.status_code == 200, endpoint
        for page in (listing, details):
            html = page.get_data(as_text=True)
            assert SECRET_MARK not in html, f"a secret shows on {endpoint}"
            assert rows[key]["id"] in html, endpoint
        if rows[key]["visible"]:
            assert rows[key]["visible"] in details.get_data(as_text=True), endpoint


def test_real_secrets_never_show(app, auth):
    """Values as the services write them: bcrypt hashes, TOTP secrets, hashed backup
    codes, provider tokens."""
    with app.app_context():
        staff = make_staff("support", "mfa@staff.test", STAFF_PASSWORD)
        staff.mfa_secret, staff.mfa_enabled = pyotp.random_base32(), True
        codes = mfa.issue_backup_codes(staff.id)
        customer, _ = make_customer("shopper@example.com")
        make_order(customer, [(make_product("SKU-1", "Mug", "9.00"), 1)], status="confirmed")
        db.session.commit()
        secrets = [staff.password_hash, staff.mfa_secret, *codes]
        secrets += db.session.get(User, staff.id).mfa_backup_codes
        secrets += db.session.scalars(select(PaymentMethod.provider_token)).all()
        user_id = staff.id
    assert len(secrets) == 2 + 10 + 10 + 1
    client = admin_client(app, auth)
    pages = ["/data/auth/users/", f"/data/auth/users/details/?id={user_id}", "/data/auth/mfa_backup_codes/",
             "/data/payment/payment_methods/", "/data/auth/users/?search=mfa"]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert "mfa@staff.test" in html or "mfa_backup_codes" in path or "payment_methods" in path
        for secret in secrets:
            assert secret not in html, path
        assert "$2b$" not in html


def test_searching_does_not_reach_secret_columns(app, auth):
    with app.app_context():
        seed_every_table()
    client = admin_client(app, auth)
    html = client.get(f"/data/auth/users/?search={SECRET_MARK}").get_data(as_text=True)
    assert "There are no items in the table" in html


def test_search_and_filters(app, auth):
    with app.app_context():
        customer, _ = make_customer("shopper@example.com")
        product = make_product("SKU-FIND", "Findable mug", "9.00")
        old = make_order(customer, [(product, 1)], status="delivered", created_at=utcnow() - timedelta(days=30))
        new = make_order(customer, [(product, 2)], status="pending")
        db.session.commit()
        old_number, new_number = old.order.order_number, new.order.order_number
    client = admin_client(app, auth)
    views = table_views(app)
    assert views["data_order_orders"].column_searchable_list == ["order_number", "tracking_number"]
    assert views["data_auth_users"].column_searchable_list == ["email"]
    assert views["data_auth_mfa_backup_codes"].column_searchable_list == []
    html = client.get(f"/data/order/orders/?search={new_number}").get_data(as_text=True)
    assert new_number in html and old_number not in html
    assert "SKU-FIND" in client.get("/data/product/products/?search=sku-find").get_data(as_text=True)
    # status filter (Flask-Admin numbers the filters; find the "status equals" one by name)
    view = views["data_order_orders"]
    index = next(i for i, f in enumerate(view._filters) if f.name == "status" and "equal" in str(f.operation()))
    html = client.get(f"/data/order/orders/?flt0_{index}=delivered").get_data(as_text=True)
    assert old_number in html and new_number not in html
    # created_at "greater than", read as UTC (the console refuses naive datetimes)
    index = next(i for i, f in enumerate(view._filters) if f.name == "createdAt" and "greater" in str(f.operation()))
    since = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    response = client.get(f"/data/order/orders/?flt0_{index}={since}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert new_number in html and old_number not in html


def test_list_pages_never_count(app, auth, count_queries):
    with app.app_context():
        customer, _ = make_customer("shopper@example.com")
        make_order(customer, [(make_product("SKU-1", "Mug", "9.00"), 1)])
        db.session.commit()
    client = admin_client(app, auth)
    start = len(count_queries.statements)
    assert client.get("/data/order/orders/").status_code == 200
    statements = [s.lower() for s in count_queries.statements[start:]]
    assert any("from orders" in s for s in statements)
    assert not any("count(" in s for s in statements)


def test_read_only_even_when_asked_to_write(app, auth):
    with app.app_context():
        customer, _ = make_customer("shopper@example.com")
        bundle = make_order(customer, [(make_product("SKU-1", "Mug", "9.00"), 1)])
        db.session.commit()
        order_id = bundle.order.id
    client = admin_client(app, auth)
    client.post("/data/order/orders/new/", data={"order_number": "ORD-FAKE", "status": "pending"})
    client.post(f"/data/order/orders/edit/?id={order_id}", data={"status": "cancelled"})
    client.post("/data/order/orders/delete/", data={"id": order_id})
    client.post("/data/order/orders/action/", data={"action": "delete", "rowid": order_id})
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1
        assert db.session.get(Order, order_id).status == "pending"


def test_access(app, auth, client):
    response = client.get("/data/order/orders/?search=x")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    assert "/data/order/orders/" in response.headers["Location"]
    auth.login("finance")
    assert client.get("/data/").status_code == 403
    assert client.get("/data/order/orders/").status_code == 403


def test_pages_wear_the_console_navigation(app, auth):
    client = admin_client(app, auth)
    html = client.get("/data/").get_data(as_text=True)
    assert 'id="main-menu"' in html and ">Staff<" in html and ">Data browser<" in html
    assert 'class="navbar-brand" href="/"' in html and 'id="sign-out"' in html
    for bind in BIND_KEYS:
        assert f"{bind}_db" in html
    assert html.count('class="mono" href="/data/') == 70


def test_secret_rule_catches_the_known_secrets():
    found = {(m.__tablename__, c.key) for m in all_models() for c in m.__table__.columns
             if is_secret(m.__tablename__, c.key)}
    assert found == KNOWN_SECRETS
    assert not is_secret("user_sessions", "refresh_token_id")


def test_secrets_are_left_out_of_forms_too(app):
    view = table_views(app)["data_auth_users"]
    assert {"password_hash", "mfa_secret"} <= set(view.form_excluded_columns)
    assert {"password_hash", "mfa_secret"} <= set(view.column_exclude_list)
    assert {"password_hash", "mfa_secret"} <= set(view.column_details_exclude_list)
    with app.test_request_context():
        form = view.get_edit_form()
        assert not hasattr(form, "password_hash") and not hasattr(form, "mfa_secret")
        assert hasattr(form, "email")


def test_a_database_that_is_down_gives_a_503_naming_it(app, auth, database_urls):
    from tests.second_app import UNOPENABLE_SQLITE, UNREACHABLE_POSTGRES, app_with_unreachable

    auth.create("admin")
    url = UNREACHABLE_POSTGRES if "postgresql" in database_urls["payment"] else UNOPENABLE_SQLITE
    with app_with_unreachable(database_urls, "payment", url) as broken:
        client = broken.test_client()
        assert client.post("/login", data={"email": "admin@staff.test", "password": STAFF_PASSWORD}).status_code == 302
        down = client.get("/data/payment/payments/")
        details = client.get("/data/payment/payments/details/?id=x")
        up = client.get("/data/order/orders/")
    assert down.status_code == 503 and b"payment_db" in down.data
    assert details.status_code == 503
    assert up.status_code == 200


def test_lists_shorten_uuids_and_details_show_them_whole(app, auth):
    with app.app_context():
        customer, _ = make_customer("shopper@example.com")
        order = make_order(customer, [(make_product("SKU-1", "Mug", "9.00"), 1)], status="confirmed").order
        db.session.commit()
        order_id, user_id, number = order.id, customer.id, order.order_number
    client = admin_client(app, auth)
    listing = client.get("/data/order/orders/").get_data(as_text=True)
    # a UUID shows as its first 8 characters, the whole id in the tooltip
    assert f'<span class="mono" title="{order_id}">{order_id[:8]}…</span>' in listing
    assert f'title="{user_id}">{user_id[:8]}…' in listing
    assert f">{order_id}<" not in listing
    assert number in listing  # readable keys stay whole
    details = client.get(f"/data/order/orders/details/?id={order_id}").get_data(as_text=True)
    assert f">{order_id}<" in details.replace("\n", "").replace(" ", "")


@pytest.mark.parametrize("query", ["page=99999999999999999999", "page=٣", "page=0_1", "page=-1",
                                   "page=1e3", "sort=99999999999999999999", "desc=2", "page_size=1e309"])
def test_data_browser_refuses_page_numbers_it_cannot_use(auth, client, query):
    auth.login("admin")
    response = client.get(f"/data/order/orders/?{query}")
    assert response.status_code == 400
    assert "with the digits 0-9" in response.get_data(as_text=True)


def test_data_browser_pages_within_bounds(auth, client):
    auth.login("admin")
    assert client.get(f"/data/order/orders/?page={MAX_PAGES - 1}").status_code == 200
    assert client.get("/data/order/orders/?page=2&sort=1&desc=1").status_code == 200


@pytest.mark.parametrize("path, advice", [("/data/order/orders/", "the Orders list of the console"),
                                          ("/data/order/order_notes/", "sort the other way")])
def test_deep_pages_stop_with_what_to_do_instead(auth, client, path, advice):
    """OFFSET reads every row it skips: the pager stops where the deepest page is still
    quick at a million rows, and says how to get further (filters, search, the console's
    own keyset-paged list)."""
    auth.login("admin")
    for page in (MAX_PAGES, MAX_PAGES + 1, 10**6):
        response = client.get(f"{path}?page={page}")
        assert response.status_code == 400
        text = response.get_data(as_text=True)
        assert f"Pages stop at {MAX_PAGES}" in text and "filters or search" in text and advice in text
    assert MAX_PAGES * PAGE_SIZE <= 2_500  # measured at a million orders: a few milliseconds


def test_last_page_says_pages_stop_there(app, auth, client, monkeypatch):
    monkeypatch.setattr(TableView, "max_pages", 2)
    with app.app_context():
        user = make_user("someone@example.com")
        order = Order(order_number="ORD-NOTES", user_id=user.id, subtotal=Decimal("1.00"), total_amount=Decimal("1.00"))
        db.session.add(order)
        db.session.flush()
        for n in range(2 * PAGE_SIZE + 1):
            db.session.add(OrderNote(order_id=order.id, note=f"note {n}", created_by=user.id,
                                     created_at=datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=n)))
        db.session.commit()
    auth.login("admin")
    first = client.get("/data/order/order_notes/").get_data(as_text=True)
    assert "data-page-limit" not in first and "?page=1" in first
    last = client.get("/data/order/order_notes/?page=1").get_data(as_text=True)
    assert 'id="data-page-limit"' in last and "Pages stop at 2 here" in last
    assert "?page=2" not in last  # no link to the page that is refused
    assert client.get("/data/order/order_notes/?page=2").status_code == 400


def test_sorting_only_by_indexed_columns(app):
    """A click on a column header must not sort the whole table for every page."""
    views = {view.name: view for view in app.extensions["admin"][0]._views if isinstance(view, TableView)}
    orders = views["orders"]
    sortable = set(orders._sortable_columns)
    assert {"created_at", "order_number", "status", "total_amount", "id"} <= sortable
    assert "payment_status" in sortable  # the order service indexes it
    assert "currency" in sortable  # the console's ix_orders_currency_created_at_id leads with it
    assert "shipping_method" not in sortable and "subtotal" not in sortable


def test_ids_show_what_they_point_at_read_once_per_page(app, auth, count_queries):
    """product_inventory shows each product's SKU and name beside product_id, order
    items their order's number: one query per referenced table for the whole page,
    never one per row; a row that is gone shows as missing."""
    from console.models.user import UserWishlistItem

    with app.app_context():
        customer, _ = make_customer("shopper@example.com")
        products = [make_product(f"SKU-L{i}", f"Lamp {i}", "9.00", stock=5) for i in range(6)]
        for product in products[:3]:
            make_order(customer, [(product, 1)])
        gone = new_id()
        db.session.add(UserWishlistItem(id=new_id(), user_id=customer.id, product_id=gone))
        db.session.add(UserWishlistItem(id=new_id(), user_id=customer.id, product_id=products[4].id))
        db.session.commit()
    client = admin_client(app, auth)
    count_queries.statements.clear()
    listing = client.get("/data/product/product_inventory/").get_data(as_text=True)
    for i in range(6):
        assert f'<span class="data-label">SKU-L{i} · Lamp {i}</span>' in listing
    label_reads = [s for s in count_queries.statements if "FROM products" in s]
    assert len(label_reads) == 1  # the whole page in one IN query
    count_queries.statements.clear()
    items = client.get("/data/order/order_items/").get_data(as_text=True)
    assert items.count("ORD-") >= 3 and "SKU-L0 · Lamp 0" in items
    assert len([s for s in count_queries.statements if "FROM orders" in s]) == 1
    assert len([s for s in count_queries.statements if "FROM products" in s]) == 1
    users = client.get("/data/payment/payments/").get_data(as_text=True)
    assert "shopper@example.com" in users
    # A logical reference whose row is gone (no foreign key keeps it): missing.
    wishlist = client.get("/data/user/wishlist_items/").get_data(as_text=True)
    assert f'title="{gone}">{gone[:8]}…</span> <span class="badge badge-warning"' in wishlist
    assert "SKU-L4 · Lamp 4" in wishlist
