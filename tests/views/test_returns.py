"""The returns screens: list filters, paging, export, the return page, its actions and
their refusals, permissions."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import select

from console import email_templates
from console.extensions import db
from console.models.product import Product, ProductInventory
from console.models.returns import ReturnItem, ReturnRequest
from console.models.types import utcnow
from console.workflows import returns
from tests.returns_helpers import paid_order


def make_return(app, *, status="pending", reason="changed_mind", refund_method="original_payment", order_status="delivered"):
    """A delivered order and a return of its first line, taken to ``status``."""
    with app.app_context():
        email_templates.install()  # the return's emails are queued from them
        data = paid_order(status=order_status)
        request = returns.create_return(data.actor, data.order.id, [(data.items[0].id, 1), (data.items[1].id, 1)],
                                        reason, refund_method=refund_method)
        items = list(db.session.scalars(select(ReturnItem).where(ReturnItem.return_request_id == request.id)))
        if status != "pending":
            if status == "rejected":
                returns.reject(data.actor, request.id, "Outside the window")
            else:
                returns.approve(data.actor, request.id)
        if status in ("received", "processed", "closed"):
            returns.receive(data.actor, request.id, {items[0].id: "new", items[1].id: "damaged"})
        if status in ("processed", "closed"):
            returns.process(data.actor, request.id)
        if status == "closed":
            returns.close(data.actor, request.id)
        return {"id": request.id, "rma": request.rma_number, "order_id": data.order.id,
                "order_number": data.order.order_number, "email": data.customer.email,
                "items": [i.id for i in items], "products": [i.product_id for i in items]}


def test_list_needs_returns_view(auth, client):
    auth.login("marketing")
    assert client.get("/returns").status_code == 403
    assert client.get("/returns/export.csv").status_code == 403


def test_list_shows_order_number_and_customer(app, auth, client):
    auth.login("support")
    made = make_return(app)
    page = client.get("/returns")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    html = page.get_data(as_text=True)
    assert made["rma"] in html and made["order_number"] in html and made["email"] in html
    assert "changed mind" in html


def test_empty_list_says_how_returns_are_made(auth, client):
    auth.login("support")
    html = client.get("/returns").get_data(as_text=True)
    assert "No returns yet" in html and "Create return" in html


def test_filters_narrow_the_list(app, auth, client):
    auth.login("support")
    pending = make_return(app, reason="defective")
    approved = make_return(app, status="approved", refund_method="store_credit")
    rejected = make_return(app, status="rejected")

    def shown(query):
        html = client.get("/returns?" + query).get_data(as_text=True)
        return {m["rma"] for m in (pending, approved, rejected) if m["rma"] in html}

    assert shown("status=approved") == {approved["rma"]}
    assert shown("reason=defective") == {pending["rma"]}
    assert shown("refund_method=store_credit") == {approved["rma"]}
    assert shown(f"order={rejected['order_number'].lower()}") == {rejected["rma"]}
    assert shown(f"customer={pending['email'][:12]}") == {pending["rma"]}
    today = utcnow().date()
    assert shown(f"requested_from={today}&requested_to={today}") == {pending["rma"], approved["rma"], rejected["rma"]}
    assert shown(f"requested_to={today - timedelta(days=1)}") == set()
    assert shown("order=ORD-NOPE") == set()


def test_bad_filters_are_a_400_with_the_reason(auth, client):
    auth.login("support")
    response = client.get("/returns?status=lost&requested_from=yesterday")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Status “lost” is not one of" in html and "is not a date" in html


def test_htmx_gets_the_table_and_pages_by_cursor(app, auth, client):
    auth.login("support")
    made = [make_return(app) for _ in range(3)]
    partial = client.get("/returns?size=2", headers={"HX-Request": "true", "HX-Target": "returns-table"})
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in html and 'id="returns-table"' in html
    assert "HX-Request" in partial.headers["Vary"]
    shown_first = {m["rma"] for m in made if m["rma"] in html}
    assert len(shown_first) == 2
    next_url = re.search(r'id="returns-next"\s+href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "cursor=" in next_url and "offset" not in next_url
    second = client.get(next_url).get_data(as_text=True)
    assert {m["rma"] for m in made if m["rma"] in second} == {m["rma"] for m in made} - shown_first
    assert client.get("/returns?cursor=garbage").status_code == 400


def test_a_page_costs_the_same_number_of_queries_at_any_size(app, auth, client, count_queries):
    auth.login("support")
    make_return(app)
    client.get("/returns")
    before = len(count_queries.statements)
    client.get("/returns")
    one = len(count_queries.statements) - before
    for _ in range(4):
        make_return(app)
    before = len(count_queries.statements)
    client.get("/returns")
    assert len(count_queries.statements) - before == one


def test_export_has_exactly_the_filtered_rows(app, auth, client):
    auth.login("support")
    keep = make_return(app, status="approved")
    make_return(app)
    response = client.get("/returns/export.csv?status=approved")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert re.match(r'attachment; filename="returns-\d{4}-\d{2}-\d{2}\.csv"', response.headers["Content-Disposition"])
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["rma_number"], r["status"], r["order_number"], r["customer_email"], r["units"], r["refund_amount"])
            for r in rows] == [(keep["rma"], "approved", keep["order_number"], keep["email"], "2", "37.80")]  # with their tax


def test_detail_by_rma_or_id_shows_everything(app, auth, client):
    auth.login("support")
    made = make_return(app, status="processed")
    with app.app_context():
        product = db.session.get(Product, made["products"][1])
        db.session.delete(db.session.scalar(select(ProductInventory).where(ProductInventory.product_id == product.id)))
        db.session.flush()
        db.session.delete(product)
        db.session.commit()
    page = client.get(f"/returns/{made['rma']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in ("Blue mug", "Red plate", "no longer exists", "restocked", "not restocked (damaged)",
                 "Returns department", "Status history", "Timeline", made["order_number"], made["email"],
                 "Refund 37.80 USD (completed)", "Email: ", "Close return"):
        assert text in html, text
    assert "Approve" not in html and "Mark received" not in html
    assert client.get(f"/returns/{made['id']}").status_code == 200
    missing = client.get("/returns/RMA-NOPE")
    assert missing.status_code == 404 and "RMA-NOPE" in missing.get_data(as_text=True)


def test_action_forms_follow_state_and_role(app, auth, client):
    made = make_return(app, status="approved")
    auth.login("warehouse")
    html = client.get(f"/returns/{made['rma']}").get_data(as_text=True)
    assert "Mark received" in html and "Record a tracking event" in html and "Approve" not in html
    assert client.post(f"/returns/{made['id']}/close").status_code == 403
    auth.logout()
    auth.login("finance")
    html = client.get(f"/returns/{made['rma']}").get_data(as_text=True)
    assert "Your role can view returns but not change them" in html
    assert client.post(f"/returns/{made['id']}/receive", data={}).status_code == 403


def test_create_from_the_order_page(app, auth, client):
    auth.login("support")
    with app.app_context():
        data = paid_order()
        order_id, number, items = data.order.id, data.order.order_number, [i.id for i in data.items]
    form = client.get(f"/orders/{number}/returns/new")
    assert form.status_code == 200 and "Create a return for" in form.get_data(as_text=True)
    refused = client.post(f"/orders/{order_id}/returns/new",
                          data={f"qty_{items[0]}": "3", "reason": "defective", "refund_method": "original_payment"})
    assert refused.status_code == 422 and "only 2 can still be returned" in refused.get_data(as_text=True)
    created = client.post(f"/orders/{order_id}/returns/new",
                          data={f"qty_{items[0]}": "2", f"qty_{items[1]}": "0", "reason": "defective",
                                "refund_method": "original_payment", "notes": "Cracked"})
    assert created.status_code == 303 and "/returns/RMA-" in created.headers["Location"]
    page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "created for order" in page and "Cracked" in page
    again = client.get(f"/orders/{order_id}/returns/new").get_data(as_text=True)
    assert "nothing left" in again


def test_create_refused_for_an_order_not_yet_shipped(app, auth, client):
    auth.login("support")
    with app.app_context():
        data = paid_order(status="confirmed")
        order_id, item = data.order.id, data.items[0].id
    response = client.post(f"/orders/{order_id}/returns/new", data={f"qty_{item}": "1", "reason": "defective",
                                                                   "refund_method": "original_payment"})
    assert response.status_code == 409 and "only shipped or delivered orders" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(ReturnRequest.id)) is None


def test_actions_through_the_screens(app, auth, client):
    auth.login("support")
    made = make_return(app)
    url = f"/returns/{made['id']}"
    refused = client.post(url + "/reject", data={"reason": " "})
    assert refused.status_code == 422 and "Give the reason" in refused.get_data(as_text=True)
    address = {"address_address_line1": "1 Dock Road", "address_city": "Portsmouth", "address_postal_code": "PO1",
               "address_country": "GB"}
    approved = client.post(url + "/approve", data={**address, "instructions": "Label inside", "expires_in_days": "10"})
    assert approved.status_code == 303
    page = client.get(approved.headers["Location"]).get_data(as_text=True)
    assert "approved; the authorization expires" in page and "1 Dock Road" in page
    again = client.post(url + "/approve", data=address)
    assert again.status_code == 409 and "cannot be approved now" in again.get_data(as_text=True)
    assert client.post(url + "/tracking", data={"status": "picked up", "location": "Leeds"}).status_code == 303
    received = client.post(url + "/receive", data={f"condition_{made['items'][0]}": "new",
                                                   f"condition_{made['items'][1]}": "defective"})
    assert received.status_code == 303
    assert "1 item line(s) back in stock" in client.get(received.headers["Location"]).get_data(as_text=True)
    twice = client.post(url + "/receive", data={f"condition_{made['items'][0]}": "new"})
    assert twice.status_code == 409 and "already received" in twice.get_data(as_text=True)
    raised = client.post(url + "/process", data={f"amount_{made['items'][0]}": "25.00"})
    assert raised.status_code == 422 and "not raised" in raised.get_data(as_text=True)
    processed = client.post(url + "/process", data={f"amount_{made['items'][1]}": "10.00"})
    assert processed.status_code == 303
    assert "Refund of 31.60 USD recorded" in client.get(processed.headers["Location"]).get_data(as_text=True)
    closed = client.post(url + "/close")
    assert closed.status_code == 303
    with app.app_context():
        assert db.session.get(ReturnRequest, made["id"]).status == "closed"
        stock = db.session.scalar(select(ProductInventory.quantity).where(ProductInventory.product_id == made["products"][0]))
        assert stock == 11


def test_actions_need_the_csrf_token(app, auth, client):
    auth.login("support")
    made = make_return(app)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post(f"/returns/{made['id']}/reject", data={"reason": "no"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(ReturnRequest, made["id"]).status == "pending"


def test_return_page_with_payment_db_down_still_renders(app, database_urls):
    from tests.conftest import StaffSignIn
    from tests.second_app import app_with_unreachable

    made = make_return(app, status="processed")
    with app_with_unreachable(database_urls, "payment") as broken:
        other = broken.test_client()
        StaffSignIn(broken, other).login("support", "support-down@staff.test")
        page = other.get(f"/returns/{made['rma']}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "payment_db</strong>" in html and "payment data unavailable" in html
        assert "Blue mug" in html and made["order_number"] in html
        listing = other.get("/returns")
        assert listing.status_code == 200 and made["rma"] in listing.get_data(as_text=True)
