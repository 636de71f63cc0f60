"""The product screens: the product page and its actions (adjust stock, price, status,
visibility, notify), the bulk upload with its dry run, apply and result, the review
queue; refusals say what to type and answer 4xx; each role sees what it may do."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from console import email_templates
from console.demo.builders import make_customer, make_product, make_variant
from console.extensions import db
from console.models.notification import Notification
from console.models.product import (Product, ProductInventory, ProductPriceHistory, ProductQuestion, ProductReview,
                                    ProductStockAlert)
from console.models.types import utcnow


def product(app, sku="CUP-1", stock=10, reserved=2, **extra):
    with app.app_context():
        item = make_product(sku, "Cup", "12.00", stock=stock, reserved=reserved, **extra)
        db.session.commit()
        return item.id


def stock_of(app, product_id):
    with app.app_context():
        row = db.session.scalar(select(ProductInventory).where(ProductInventory.product_id == product_id))
        return row.quantity, row.reserved_quantity, row.available_quantity


# --- the page --------------------------------------------------------------------------

def test_page_by_sku_or_id_shows_stock_history_and_prices(app, auth, client):
    auth.login("warehouse")
    pid = product(app)
    client.post(f"/products/{pid}/stock", data={"mode": "add", "quantity": "5", "reason": "received",
                                                "note": "delivery 12"})
    for key in ("CUP-1", "cup-1", pid):
        page = client.get(f"/products/{key}")
        assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="on-hand">15<' in html and 'id="available">13<' in html
    assert "warehouse@staff.test" in html and "Received" in html and "delivery 12" in html and "10 → 15" in html
    assert "Initial" not in html  # no price history yet: the empty state says so
    assert "No price changes recorded." in html


def test_unknown_product_is_404_with_a_way_on(auth, client):
    auth.login("support")
    response = client.get("/products/NOPE-404")
    assert response.status_code == 404 and "Search the products list" in response.get_data(as_text=True)


@pytest.mark.parametrize("role,forms", [
    ("warehouse", {"adjust-form"}), ("marketing", {"price-form", "status-form", "visibility-form"}),
    ("support", set()), ("admin", {"adjust-form", "price-form", "status-form", "visibility-form"}),
])
def test_each_role_sees_the_forms_it_may_use(app, auth, client, role, forms):
    auth.login(role)
    pid = product(app)
    html = client.get(f"/products/{pid}").get_data(as_text=True)
    for form in ("adjust-form", "price-form", "status-form", "visibility-form"):
        assert (f'id="{form}"' in html) == (form in forms), form


@pytest.mark.parametrize("role,path,data", [
    ("support", "stock", {"mode": "add", "quantity": "1", "reason": "received"}),
    ("marketing", "stock", {"mode": "add", "quantity": "1", "reason": "received"}),
    ("warehouse", "price", {"price": "9.00", "reason": "x"}),
    ("warehouse", "status", {"status": "draft", "reason": "x"}),
    ("finance", "stock", {"mode": "add", "quantity": "1", "reason": "received"}),
])
def test_actions_outside_the_role_are_403(app, auth, client, role, path, data):
    auth.login(role)
    pid = product(app)
    assert client.post(f"/products/{pid}/{path}", data=data).status_code == 403
    assert stock_of(app, pid) == (10, 2, 8)


def test_finance_may_not_open_products(app, auth, client):
    auth.login("finance")
    assert client.get(f"/products/{product(app)}").status_code == 403


# --- adjust ------------------------------------------------------------------------------

def test_adjust_refused_below_reserved_keeps_the_form_and_says_why(app, auth, client):
    auth.login("warehouse")
    pid = product(app)
    response = client.post(f"/products/{pid}/stock", data={"mode": "remove", "quantity": "9", "reason": "damaged",
                                                           "note": "dropped"})
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "below the 2 reserved" in html and "At most 8 can be removed" in html
    assert 'value="dropped"' in html  # what was typed is still there
    assert stock_of(app, pid) == (10, 2, 8)


@pytest.mark.parametrize("quantity", ["1e309", "1,0", "١٢", "\x00", "9" * 100_000, "-3", "2.5"])
def test_adjust_hostile_quantities_are_422(app, auth, client, quantity):
    auth.login("warehouse")
    pid = product(app)
    response = client.post(f"/products/{pid}/stock", data={"mode": "add", "quantity": quantity, "reason": "received"})
    html = response.get_data(as_text=True)
    if quantity == "\x00" or len(quantity) > 10_000:
        # The console's input guard refuses these before any form or database work.
        assert response.status_code == 400 and ("control character" in html or "far too long" in html)
    else:
        assert response.status_code == 422 and "with the digits 0-9" in html
    assert stock_of(app, pid) == (10, 2, 8)


def test_adjust_a_variant(app, auth, client):
    auth.login("warehouse")
    with app.app_context():
        item = make_product("SOCK", "Sock", "3.00", stock=4)
        variant = make_variant(item, "Blue", {"colour": "blue"}, stock=4)
        db.session.commit()
        pid, vid = item.id, variant.id
    assert client.post(f"/products/{pid}/stock", data={"mode": "add", "quantity": "2", "reason": "received"}
                       ).status_code == 422
    response = client.post(f"/products/{pid}/stock", data={"mode": "add", "quantity": "2", "reason": "received",
                                                           "variant_id": vid})
    assert response.status_code == 303 and stock_of(app, pid) == (6, 0, 6)


# --- price, status, visibility ------------------------------------------------------------

@pytest.mark.parametrize("price,compare,message", [
    ("1e309", "", "not an amount"), ("1,0", "", "Use no commas"), ("12.345", "", "at most two decimals"),
    ("NaN", "", "not an amount"), ("١٢", "", "digits 0-9"), ("", "", "New price"),
    ("10", "9", "must be above the price"), ("0", "", "above zero"),
])
def test_price_refusals_are_4xx_with_a_message(app, auth, client, price, compare, message):
    auth.login("marketing")
    pid = product(app)
    response = client.post(f"/products/{pid}/price", data={"price": price, "compare_at_price": compare,
                                                           "reason": "sale"})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(ProductPriceHistory)) is None


def test_price_change_shows_in_the_history(app, auth, client):
    auth.login("marketing")
    pid = product(app)
    response = client.post(f"/products/{pid}/price", data={"price": "9.50", "compare_at_price": "12.00",
                                                           "reason": "Clearance"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Price of CUP-1: 12.00 → 9.50" in html
    assert "Clearance" in html and "marketing@staff.test" in html


def test_archiving_reserved_stock_asks_first(app, auth, client):
    auth.login("marketing")
    pid = product(app)
    response = client.post(f"/products/{pid}/status", data={"status": "archived", "reason": "end of line"})
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "reserved by open orders" in html and "Archive anyway" in html
    response = client.post(f"/products/{pid}/status", data={"status": "archived", "reason": "end of line",
                                                            "confirmed": "yes"}, follow_redirects=True)
    assert "CUP-1 is now archived" in response.get_data(as_text=True)
    client.post(f"/products/{pid}/visibility", data={"visible": "no", "reason": "archived"})
    with app.app_context():
        row = db.session.get(Product, pid)
        assert (row.status, row.is_visible) == ("archived", False)


# --- alerts ------------------------------------------------------------------------------

def test_notify_button_appears_when_stock_is_back_and_queues_once(app, auth, client):
    auth.login("warehouse")
    pid = product(app, "BACK-1", stock=0, reserved=0)
    with app.app_context():
        email_templates.install()  # as init-db does: the back_in_stock email
        for n in range(2):
            user, _ = make_customer(f"wait{n}@example.com", "Wait", str(n))
            db.session.add(ProductStockAlert(product_id=pid, user_id=user.id, email=user.email, notified=False,
                                             expires_at=utcnow() + timedelta(days=9)))
        db.session.commit()
    html = client.get(f"/products/{pid}").get_data(as_text=True)
    assert 'id="alerts-waiting">2<' in html and 'id="notify-waiting"' not in html
    response = client.post(f"/products/{pid}/stock", data={"mode": "add", "quantity": "3", "reason": "received"},
                           follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "It was sold out" in html and "Notify 2 waiting customers" in html
    assert "Queued a back-in-stock email to 2" in client.post(f"/products/{pid}/alerts/notify",
                                                              follow_redirects=True).get_data(as_text=True)
    again = client.post(f"/products/{pid}/alerts/notify")
    assert again.status_code == 409 and "notified already" in again.get_data(as_text=True)
    with app.app_context():
        assert len(list(db.session.scalars(select(Notification)))) == 2


# --- bulk ------------------------------------------------------------------------------

def upload(client, text: str | bytes, name="stock.csv", reason="cycle_count"):
    data = text.encode() if isinstance(text, str) else text
    return client.post("/products/bulk", data={"file": (io.BytesIO(data), name), "reason": reason},
                       content_type="multipart/form-data")


def test_bulk_upload_dry_run_apply_and_result(app, auth, client):
    auth.login("warehouse")
    pid = product(app, "B-1")
    product(app, "B-2")
    response = upload(client, "sku,quantity\nB-1,20\nB-2,10\n")
    assert response.status_code == 303
    preview_url = response.headers["Location"]
    html = client.get(preview_url).get_data(as_text=True)
    assert "dry run, nothing written" in html and 'id="bulk-changes">1<' in html and 'id="bulk-apply"' in html
    assert stock_of(app, pid) == (10, 2, 8)
    applied = client.post(preview_url + "/apply", follow_redirects=True)
    assert "Applied: 1 product changed" in applied.get_data(as_text=True)
    assert stock_of(app, pid) == (20, 2, 18)
    result = client.get(preview_url + "/result.csv")
    rows = list(csv.reader(io.StringIO(result.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["line", "sku"] and rows[1][1] == "B-1" and rows[1][6] == "applied"
    assert rows[2][6] == "unchanged"
    again = client.post(preview_url + "/apply")
    assert again.status_code == 409 and "applied already" in again.get_data(as_text=True)


def test_bulk_problems_block_apply(app, auth, client):
    auth.login("warehouse")
    product(app, "B-1")
    response = upload(client, "sku,delta\nB-1,-9\nZZZ,1\n")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="bulk-problems">2<' in html and "unknown SKU" in html and "below the 2 reserved" in html
    assert 'id="bulk-apply"' not in html
    assert client.post(response.headers["Location"] + "/apply").status_code == 422


@pytest.mark.parametrize("data,name,message", [
    (b"PK\x03\x04zip", "stock.xlsx", "spreadsheet workbook"),
    ("sku,quantity\nÉ,1\n".encode("latin-1"), "s.csv", "not UTF-8"),
    (b"sku,quantity\nB-1,=2+2\n", "s.csv", "formulas"),
])
def test_bulk_bad_files_are_refused_on_the_form(app, auth, client, data, name, message):
    auth.login("warehouse")
    response = upload(client, data, name)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html and 'id="bulk-form"' in html


def test_bulk_is_warehouse_only(auth, client):
    auth.login("marketing")
    assert client.get("/products/bulk").status_code == 403
    assert upload(client, "sku,quantity\nA,1\n").status_code == 403


def test_a_stale_dry_run_is_refused_on_apply(app, auth, client):
    auth.login("warehouse")
    pid = product(app, "B-1")
    location = upload(client, "sku,delta\nB-1,5\n").headers["Location"]
    client.post(f"/products/{pid}/stock", data={"mode": "remove", "quantity": "1", "reason": "damaged"})
    response = client.post(location + "/apply")
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "B-1: 10 on hand at the dry run, now 9" in html
    assert stock_of(app, pid) == (9, 2, 7)


# --- reviews and questions ---------------------------------------------------------------

def test_review_queue_approves_a_selection_and_answers_questions(app, auth, client):
    auth.login("marketing")
    pid = product(app)
    with app.app_context():
        user, _ = make_customer("rev@example.com", "Rev", "Iewer")
        reviews = [ProductReview(product_id=pid, user_id=user.id, rating=4, title=f"Nice {n}", comment="ok",
                                 is_approved=False, is_verified_purchase=True) for n in range(3)]
        question = ProductQuestion(product_id=pid, user_id=user.id, question="Dishwasher safe?", is_approved=True)
        db.session.add_all(reviews + [question])
        db.session.commit()
        ids, qid = [r.id for r in reviews], question.id
    html = client.get("/reviews").get_data(as_text=True)
    assert "Nice 0" in html and "Dishwasher safe?" in html and "rev@example.com" in html
    response = client.post("/reviews/moderate", data={"decision": "approve", "review_id": ids[:2]},
                           follow_redirects=True)
    assert "Approved 2 reviews" in response.get_data(as_text=True)
    response = client.post(f"/reviews/questions/{qid}/answer", data={"answer": "Yes."}, follow_redirects=True)
    assert "Answer published." in response.get_data(as_text=True)
    html = client.get("/reviews").get_data(as_text=True)
    assert "Nice 0" not in html and "Nice 2" in html and "Every question has an answer." in html
    with app.app_context():
        assert db.session.get(ProductQuestion, qid).answered_by is not None


def test_review_queue_is_for_marketing_and_admin(auth, client):
    auth.login("warehouse")
    assert client.get("/reviews").status_code == 403


@pytest.mark.parametrize("path", ["/products/%00", "/products/" + "x" * 5000, "/products/bulk/%00abc",
                                  "/products/alerts?sku=%00", "/products?category=%00"])
def test_hostile_addresses_answer_4xx(auth, client, path):
    auth.login("admin")
    assert client.get(path).status_code in (400, 404)


def test_hostile_question_id_is_404(auth, client):
    auth.login("marketing")
    response = client.post("/reviews/questions/%00/answer", data={"answer": "hi"}, follow_redirects=True)
    assert response.status_code == 400 and "control character" in response.get_data(as_text=True)  # the input guard
    response = client.post("/reviews/questions/00000000-0000-4000-8000-000000000000/answer", data={"answer": "hi"},
                           follow_redirects=True)
    assert response.status_code == 200 and "alert-danger" in response.get_data(as_text=True)  # refused, said


def test_a_price_far_from_the_current_one_asks_a_specific_question_first(app, auth, client):
    from decimal import Decimal

    from console.workflows.catalog import price_question
    assert price_question(Decimal("22.00"), Decimal("171.50")) == "22.00 → 171.50 is 7.8 times the price: sure?"
    assert price_question(Decimal("171.50"), Decimal("22.00")) == "171.50 → 22.00 is 13% of the price: sure?"
    assert price_question(Decimal("22.00"), Decimal("109.99")) is None  # under five times: the usual question
    assert price_question(Decimal("22.00"), Decimal("4.41")) is None

    pid = product(app, "FAR-1")
    auth.login("marketing")
    with app.app_context():
        current = db.session.get(Product, pid).price
    far = str((current * Decimal("7.8")).quantize(Decimal("0.01")))
    response = client.post(f"/products/{pid}/price", data={"price": far, "reason": "typo?"})
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f"{current:.2f} → {far} is 7.8 times the price: sure?" in html
    assert 'name="confirmed" value="yes"' in html and f"Keep {current:.2f}" in html
    with app.app_context():
        assert db.session.get(Product, pid).price == current  # nothing written yet
    answered = client.post(f"/products/{pid}/price", data={"price": far, "reason": "typo?", "confirmed": "yes"})
    assert answered.status_code == 303
    with app.app_context():
        assert db.session.get(Product, pid).price == Decimal(far)
