"""The refunds screens: the list by status with needs attention and Retry, filters,
export, the Refund action of the order page and its refusals, permissions."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.extensions import db
from console.lookups import DatabaseUnavailable
from console.models.payment import PaymentRefund
from console.models.returns import ReturnItem, ReturnRequest
from console.models.types import utcnow
from console.workflows import refunds, returns
from tests.returns_helpers import paid_order


def refund(app, amount="10.00", provider="MOCK", key=None, reason="Goodwill"):
    with app.app_context():
        data = paid_order(provider=provider)
        outcome = refunds.refund_order(data.actor, data.order.id, amount, key=key or f"k-{data.order.id}", reason=reason)
        return {"id": outcome.refund.id, "order_id": data.order.id, "order_number": data.order.order_number,
                "status": outcome.refund.status}


def stuck_return_refund(app, monkeypatch):
    """A return processed while return_db refused the write: the refund needs attention."""
    with app.app_context():
        data = paid_order()
        request = returns.create_return(data.actor, data.order.id, [(data.items[0].id, 1)], "defective")
        returns.approve(data.actor, request.id)
        item = db.session.scalar(select(ReturnItem.id).where(ReturnItem.return_request_id == request.id))
        returns.receive(data.actor, request.id, {item: "used"})

        def return_db_down(actor, refund_row):
            raise DatabaseUnavailable("return")

        monkeypatch.setitem(refunds.STEPS, "return", return_db_down)
        outcome = returns.process(data.actor, request.id)
        monkeypatch.undo()
        assert outcome.needs_attention
        return {"id": outcome.refund.id, "return_id": request.id, "rma": request.rma_number,
                "order_number": data.order.order_number}


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_list_needs_refunds_view(auth, client):
    auth.login("warehouse")
    assert client.get("/refunds").status_code == 403
    assert client.get("/refunds/export.csv").status_code == 403


def test_list_shows_refunds_with_order_and_kind(app, auth, client):
    auth.login("finance")
    made = refund(app)
    page = client.get("/refunds")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    assert made["order_number"] in html and "10.00 USD" in html and "no return" in html and "completed" in html


def test_status_provider_order_and_date_filters(app, auth, client):
    auth.login("finance")
    mock = refund(app)
    stripe = refund(app, provider="STRIPE")
    paypal = refund(app, provider="PAYPAL")

    def shown(query):
        html = client.get("/refunds?" + query).get_data(as_text=True)
        return {m["order_number"] for m in (mock, stripe, paypal) if m["order_number"] in html}

    assert shown("status=completed") == {mock["order_number"]}
    assert shown("status=pending") == {stripe["order_number"], paypal["order_number"]}
    assert shown("provider=PAYPAL") == {paypal["order_number"]}
    assert shown(f"order={stripe['order_number']}") == {stripe["order_number"]}
    assert shown("status=needs_attention") == set()
    today = utcnow().date()
    assert shown(f"created_from={today}") == {mock["order_number"], stripe["order_number"], paypal["order_number"]}
    assert shown(f"created_to={today - timedelta(days=1)}") == set()
    bad = client.get("/refunds?status=lost")
    assert bad.status_code == 400 and "Status “lost” is not one of" in bad.get_data(as_text=True)


def test_export_has_exactly_the_filtered_rows(app, auth, client):
    auth.login("finance")
    refund(app)
    stripe = refund(app, amount="12.34", provider="STRIPE", reason="=HYPERLINK(\"x\")")
    response = client.get("/refunds/export.csv?provider=STRIPE")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["order_number"], r["amount"], r["status"], r["provider"], r["needs_attention"]) for r in rows] == [
        (stripe["order_number"], "12.34", "pending", "STRIPE", "no")]
    assert rows[0]["reason"].startswith("'=")  # a formula is neutralised


def test_paging_by_cursor(app, auth, client):
    auth.login("finance")
    made = {refund(app)["order_number"] for _ in range(3)}
    first = client.get("/refunds?size=2").get_data(as_text=True)
    next_url = re.search(r'id="refunds-next"\s+href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(next_url).get_data(as_text=True)
    assert {n for n in made if n in first} | {n for n in made if n in second} == made
    assert not {n for n in made if n in first} & {n for n in made if n in second}


def test_needs_attention_on_the_refunds_screen_and_the_return_then_retry(app, auth, client, monkeypatch):
    auth.login("support")
    stuck = stuck_return_refund(app, monkeypatch)
    listing = client.get("/refunds?status=needs_attention").get_data(as_text=True)
    assert stuck["order_number"] in listing and "needs attention" in listing
    assert "return record (return_db)" in listing and "return_db is unavailable" in listing
    assert f'/refunds/{stuck["id"]}/retry' in listing and stuck["rma"] in listing
    page = client.get(f"/returns/{stuck['rma']}").get_data(as_text=True)
    assert "Refund needs attention" in page and f'/refunds/{stuck["id"]}/retry' in page

    retried = client.post(f"/refunds/{stuck['id']}/retry", data={"next": f"/returns/{stuck['rma']}"})
    assert retried.status_code == 303 and retried.headers["Location"].endswith(f"/returns/{stuck['rma']}")
    page = client.get(retried.headers["Location"]).get_data(as_text=True)
    assert "every remaining step is done" in page and "Refund needs attention" not in page
    with app.app_context():
        assert db.session.get(ReturnRequest, stuck["return_id"]).status == "processed"
    assert count(app, PaymentRefund) == 1
    assert stuck["order_number"] not in client.get("/refunds?status=needs_attention").get_data(as_text=True)
    again = client.post(f"/refunds/{stuck['id']}/retry")
    assert again.status_code == 303
    assert "nothing left to complete" in client.get(again.headers["Location"]).get_data(as_text=True)


def test_retry_needs_refunds_issue_and_stays_on_site(app, auth, client, monkeypatch):
    stuck = stuck_return_refund(app, monkeypatch)
    auth.login("warehouse")
    assert client.post(f"/refunds/{stuck['id']}/retry").status_code == 403
    auth.logout()
    auth.login("finance")
    response = client.post(f"/refunds/{stuck['id']}/retry", data={"next": "https://evil.example/"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/refunds")


def test_refund_from_the_order_page(app, auth, client):
    auth.login("support")
    with app.app_context():
        data = paid_order()
        order_id, number = data.order.id, data.order.order_number
    response = client.post(f"/orders/{order_id}/refunds", data={"amount": "15.00", "reason": "Late", "key": "form-1"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/orders/{number}")
    # The same rendered form sent again (double click, browser retry) refunds once.
    again = client.post(f"/orders/{order_id}/refunds", data={"amount": "15.00", "reason": "Late", "key": "form-1"})
    assert again.status_code == 303
    assert count(app, PaymentRefund) == 1
    too_much = client.post(f"/orders/{order_id}/refunds", data={"amount": "60.00", "reason": "x", "key": "form-2"})
    assert too_much.status_code == 422 and "refundable amount is 49.40 USD" in too_much.get_data(as_text=True)
    no_reason = client.post(f"/orders/{order_id}/refunds", data={"amount": "1.00", "reason": "", "key": "form-3"},
                            headers={"HX-Request": "true", "HX-Target": "order-refunds"})
    html = no_reason.get_data(as_text=True)
    assert no_reason.status_code == 422 and 'id="refund-error"' in html and "Give a reason" in html
    assert 'value="form-3"' in html  # the unused key is kept for the corrected form
    ok = client.post(f"/orders/{order_id}/refunds", data={"amount": "1.00", "reason": "Sorry", "key": "form-3"},
                     headers={"HX-Request": "true"})
    assert ok.status_code == 204 and ok.headers["HX-Redirect"].endswith(f"/orders/{number}")
    assert count(app, PaymentRefund) == 2


def test_refund_needs_refunds_issue_and_csrf(app, auth, client):
    with app.app_context():
        data = paid_order()
        order_id = data.order.id
    auth.login("warehouse")
    assert client.post(f"/orders/{order_id}/refunds", data={"amount": "1", "reason": "x", "key": "k"}).status_code == 403
    auth.logout()
    auth.login("finance")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post(f"/orders/{order_id}/refunds", data={"amount": "1", "reason": "x", "key": "k"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400 and count(app, PaymentRefund) == 0


def test_order_page_shows_the_panels(app, auth, client):
    auth.login("support")
    made = refund(app, amount="4.40")
    html = client.get(f"/orders/{made['order_number']}").get_data(as_text=True)
    assert 'id="order-returns"' in html and 'id="create-return-link"' in html
    assert 'id="order-refunds"' in html and "refundable 60.00 USD" in html and 'id="refund-form"' in html
    keys = re.findall(r'name="key" value="([^"]+)"', html)
    assert len(keys) == 1 and keys[0] != re.findall(r'name="key" value="([^"]+)"',
                                                       client.get(f"/orders/{made['order_number']}").get_data(as_text=True))[0]


def test_order_page_offers_retry_for_a_refund_needing_attention(app, auth, client, monkeypatch):
    auth.login("support")
    stuck = stuck_return_refund(app, monkeypatch)
    page = client.get(f"/orders/{stuck['order_number']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "needs attention" in html
    assert f'/refunds/{stuck["id"]}/retry' in html and f'value="/orders/{stuck["order_number"]}"' in html


def service_marks(app, refund_id, status):
    """The payment service executing (or failing) a deferred refund: it writes the row."""
    with app.app_context():
        row = db.session.get(PaymentRefund, refund_id)
        row.status = status
        db.session.commit()


def test_refresh_status_follows_a_deferred_refund(app, auth, client):
    auth.login("finance")
    made = refund(app, amount="64.40", provider="STRIPE")
    listing = client.get("/refunds?status=pending").get_data(as_text=True)
    assert f'/refunds/{made["id"]}/sync' in listing and "Refresh status" in listing
    order_page = client.get(f"/orders/{made['order_number']}").get_data(as_text=True)
    assert f'/refunds/{made["id"]}/sync' in order_page

    still = client.post(f"/refunds/{made['id']}/sync", data={"next": "/refunds?status=pending"})
    assert still.status_code == 303 and still.headers["Location"].endswith("/refunds?status=pending")
    assert "still pending at STRIPE" in client.get(still.headers["Location"]).get_data(as_text=True)

    service_marks(app, made["id"], "completed")
    done = client.post(f"/refunds/{made['id']}/sync")
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "is completed: every remaining step is done" in page
    assert f'/refunds/{made["id"]}/sync' not in page
    with app.app_context():
        from console.models.order import Order

        order = db.session.get(Order, made["order_id"])
        assert (order.status, order.payment_status) == ("refunded", "refunded")
    again = client.post(f"/refunds/{made['id']}/sync")
    assert "nothing to refresh" in client.get(again.headers["Location"]).get_data(as_text=True)


def test_refresh_status_needs_refunds_issue(app, auth, client):
    made = refund(app, provider="PAYPAL")
    auth.login("warehouse")
    assert client.post(f"/refunds/{made['id']}/sync").status_code == 403
    auth.logout()
    auth.login("finance")
    assert client.post("/refunds/no-such-refund/sync").status_code == 404


def test_a_failed_return_refund_shows_on_the_return_page(app, auth, client):
    auth.login("support")
    with app.app_context():
        data = paid_order(provider="STRIPE")
        request = returns.create_return(data.actor, data.order.id, [(data.items[0].id, 1)], "defective")
        returns.approve(data.actor, request.id)
        item = db.session.scalar(select(ReturnItem.id).where(ReturnItem.return_request_id == request.id))
        returns.receive(data.actor, request.id, {item: "used"})
        refund_id = returns.process(data.actor, request.id).refund.id
        rma = request.rma_number
    page = client.get(f"/returns/{rma}").get_data(as_text=True)
    assert f'/refunds/{refund_id}/sync' in page and 'id="refund-exists"' in page
    service_marks(app, refund_id, "failed")
    synced = client.post(f"/refunds/{refund_id}/sync", data={"next": f"/returns/{rma}"})
    page = client.get(synced.headers["Location"]).get_data(as_text=True)
    assert "failed at STRIPE" in page and 'id="refund-failed"' in page and "Refund needs attention" in page
    assert 'id="process-form"' in page and 'id="refund-exists"' not in page
    assert f'/refunds/{refund_id}/sync' not in page
    listing = client.get("/refunds?status=failed").get_data(as_text=True)
    assert rma in listing and "failed" in listing


def test_a_partly_refunded_payment_reads_partially_refunded_everywhere_its_status_shows(app, auth, client):
    from console.workflows import refunds as flow
    from tests.returns_helpers import paid_order

    auth.login("support")
    with app.app_context():
        data = paid_order()
        order_id, number, user_id = data.order.id, data.order.order_number, data.customer.id
        total, payment_id = data.payment.amount, data.payment.id
        flow.refund_order(data.actor, order_id, "49.00", key="partial-1", reason="Goodwill")
    badge = f"partially refunded (49.00 of {total:,.2f})"
    assert badge in client.get(f"/orders/{number}").get_data(as_text=True)
    assert badge in client.get(f"/orders?q={number}").get_data(as_text=True)
    assert badge in client.get(f"/customers/{user_id}/panels/orders").get_data(as_text=True)
    with app.app_context():
        from console.extensions import db
        from console.models.payment import Payment
        assert db.session.get(Payment, payment_id).status == "succeeded"  # the stored value is the service's
        flow.refund_order(data.actor, order_id, str(total - Decimal("49.00")), key="partial-2", reason="Rest")
    page = client.get(f"/orders/{number}").get_data(as_text=True)
    assert "partially refunded" not in page and "refunded" in page


@pytest.mark.postgres_only
def test_needs_attention_is_read_through_its_partial_index(app, auth, client, monkeypatch):
    """The list's "needs attention" count (on every page of the list) and filter read the
    partial index over those refunds alone, never every refund."""
    from tests.screens.test_search import index_scans, plans, statements_of

    auth.login("support")
    refund(app)
    stuck = stuck_return_refund(app, monkeypatch)
    for query in (None, {"status": "needs_attention"}):
        statements = statements_of(app, lambda: client.get("/refunds", query_string=query))
        refund_plans = [p for p in plans(statements) if " on refunds" in p]
        assert refund_plans and not [p for p in refund_plans if "Seq Scan" in p], (query, refund_plans)
        assert "ix_refunds_attention_created_at_id" in set().union(*(index_scans(p) for p in refund_plans)), \
            (query, refund_plans)
    listing = client.get("/refunds?status=needs_attention").get_data(as_text=True)
    assert stuck["order_number"] in listing
