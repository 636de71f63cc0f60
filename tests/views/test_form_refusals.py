"""Every POST form of the console, posted with the values people really type and
hostile ones: each is refused with a 4xx and a message saying what to type, never a
500, and nothing is written."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.returns import ReturnItem
from console.workflows import returns
from tests.returns_helpers import paid_order

# Longer than any field takes, short of the 10,000 characters the console's input guard
# (console/security.py) refuses for every route before a form sees them.
HUGE = "x" * 5_000
NUL = "a\x00b"

# (form, url template, valid data, field, refused value, words the answer must contain)
CASES = [
    ("order status", "/orders/{order}/status", {"status": "confirmed"}, "reason", NUL, "NUL byte"),
    ("order status", "/orders/{order}/status", {"status": "confirmed"}, "reason", HUGE, "At most 500"),
    ("order status", "/orders/{order}/status", {}, "status", "lost", "is not one of"),
    ("order status", "/orders/{order}/status", {}, "status", "confirmed\x00", "NUL byte"),
    ("cancel", "/orders/{order}/cancel", {}, "reason", HUGE, "At most 500"),
    ("cancel", "/orders/{order}/cancel", {}, "reason", "a\x1bb", "control character"),
    ("mark shipped", "/orders/{order}/ship", {"carrier": "ups", "service_type": "standard"},
     "tracking_number", NUL, "NUL byte"),
    ("mark shipped", "/orders/{order}/ship", {"carrier": "ups", "service_type": "standard",
                                             "tracking_number": "1Z999"}, "weight", "1e309", "not a number of kilograms"),
    ("mark shipped", "/orders/{order}/ship", {"carrier": "ups", "tracking_number": "1Z999"}, "service_type",
     "teleport", "is not one of"),
    ("mark shipped", "/orders/{order}/ship", {"service_type": "standard", "tracking_number": "1Z999"}, "carrier",
     HUGE, "At most 200"),
    ("note", "/orders/{order}/notes", {}, "note", HUGE, "At most 2,000"),
    ("note", "/orders/{order}/notes", {}, "note", NUL, "NUL byte"),
    ("note", "/orders/{order}/notes", {"note": "hi"}, "visibility", "everyone", "is not one of"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount", "1,0", "no commas"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount", "1_0", "like 12.50"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount", "1e2", "like 12.50"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount", "1e309", "like 12.50"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount",
     "99999999999999999999999999999", "more than 8 digits"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount", "+1", "without a sign"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount", "٣", "digits 0-9"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount", "NaN", "not an amount"),
    ("refund", "/orders/{order_id}/refunds", {"reason": "Goodwill", "key": "k1"}, "amount", "0", "more than zero"),
    ("refund", "/orders/{order_id}/refunds", {"amount": "1.00", "key": "k1"}, "reason", HUGE, "At most 300"),
    ("refund", "/orders/{order_id}/refunds", {"amount": "1.00", "key": "k1"}, "reason", NUL, "NUL byte"),
    ("refund", "/orders/{order_id}/refunds", {"amount": "1.00", "reason": "x"}, "key", "k" * 101, "At most 100"),
    ("retry", "/refunds/some-refund/retry", {}, "next", NUL, "NUL byte"),
    ("refresh status", "/refunds/some-refund/sync", {}, "next", HUGE, "At most 2,000"),
    ("create return", "/orders/{order_id}/returns/new", {"reason": "defective"}, "qty_{item}", "0_1", "not a quantity"),
    ("create return", "/orders/{order_id}/returns/new", {"reason": "defective"}, "qty_{item}", "٣", "not a quantity"),
    ("create return", "/orders/{order_id}/returns/new", {"reason": "defective"}, "qty_{item}",
     "99999999999999999999", "out of range"),
    ("create return", "/orders/{order_id}/returns/new", {"qty_{item}": "1"}, "reason", "boredom", "is not one of"),
    ("create return", "/orders/{order_id}/returns/new", {"qty_{item}": "1", "reason": "defective"}, "notes", NUL,
     "NUL byte"),
    ("create return", "/orders/{order_id}/returns/new", {"qty_{item}": "1", "reason": "defective"},
     "refund_method", "cash", "is not one of"),
    ("approve", "/returns/{pending}/approve", {}, "address_city", HUGE, "At most 100"),
    ("approve", "/returns/{pending}/approve", {}, "address_country", NUL, "NUL byte"),
    ("approve", "/returns/{pending}/approve", {}, "expires_in_days", "1e2", "not a number of days"),
    ("approve", "/returns/{pending}/approve", {}, "expires_in_days", "٣", "not a number of days"),
    ("approve", "/returns/{pending}/approve", {}, "expires_in_days", "999", "out of range"),
    ("reject", "/returns/{pending}/reject", {}, "reason", HUGE, "At most 2,000"),
    ("tracking", "/returns/{approved}/tracking", {}, "status", HUGE, "At most 100"),
    ("tracking", "/returns/{approved}/tracking", {"status": "picked up"}, "location", NUL, "NUL byte"),
    ("tracking", "/returns/{approved}/tracking", {"status": "picked up"}, "tracking_number", "1Z\x00", "NUL byte"),
    ("receive", "/returns/{approved}/receive", {}, "condition_{return_item}", "shiny", "is not one of"),
    ("receive", "/returns/{approved}/receive", {}, "condition_{return_item}", "new\x00", "NUL byte"),
    ("process", "/returns/{received}/process", {}, "amount_{received_item}", "1,0", "no commas"),
    ("process", "/returns/{received}/process", {}, "amount_{received_item}", "1e309", "like 12.50"),
    ("process", "/returns/{received}/process", {}, "amount_{received_item}", "-1", "without a sign"),
    ("process", "/returns/{received}/process", {}, "include_shipping", "please", "is not one of"),
    ("close", "/returns/{processed}/close", {}, "notes", NUL, "NUL byte"),
    ("lock customer", "/customers/{customer}/lock", {"duration": "1h"}, "reason", HUGE, "At most 500"),
    ("lock customer", "/customers/{customer}/lock", {"reason": "fraud"}, "duration", "1y", "is not one of"),
    ("unlock customer", "/customers/{customer}/unlock", {}, "reason", NUL, "NUL byte"),
    ("revoke sessions", "/customers/{customer}/revoke-sessions", {}, "reason", "a\x7fb", "control character"),
    ("grant by email", "/staff/grant", {"role": "finance"}, "email", NUL, "NUL byte"),
    ("grant by email", "/staff/grant", {"email": "member@staff.test"}, "role", "owner", "is not one of"),
    ("grant role", "/staff/{member}/roles", {}, "role", "owner", "is not one of"),
    ("grant role", "/staff/{member}/roles", {}, "role", HUGE, "is not one of"),
    ("profile code", "/profile/mfa/confirm", {}, "code", NUL, "NUL byte"),
    ("profile code", "/profile/mfa/disable", {}, "code", HUGE, "Field cannot be longer than 32 characters"),
]


class World(dict):
    """What the forms act on, made on first use: an order, returns at each step, a
    customer, a staff member."""

    def __init__(self, app, auth):
        super().__init__()
        self.app, self.auth = app, auth

    def __missing__(self, key):
        with self.app.app_context():
            if key in ("order", "order_id", "item", "customer"):
                data = paid_order()
                self.update(order=data.order.order_number, order_id=data.order.id, item=data.items[0].id,
                            customer=data.customer.id)
            elif key == "member":
                self["member"] = self.auth.create("support", "member@staff.test")
            else:
                step = {"pending": "pending", "approved": "approved", "return_item": "approved",
                        "received": "received", "received_item": "received", "processed": "processed"}[key]
                order = paid_order()
                request = returns.create_return(order.actor, order.order.id, [(order.items[0].id, 1)], "defective")
                item = db.session.scalar(select(ReturnItem).where(ReturnItem.return_request_id == request.id))
                if step in ("approved", "received", "processed"):
                    returns.approve(order.actor, request.id)
                if step in ("received", "processed"):
                    returns.receive(order.actor, request.id, {item.id: "new"})
                if step == "processed":
                    returns.process(order.actor, request.id)
                self[step] = request.id
                self[{"approved": "return_item", "received": "received_item"}.get(step, step + "_item")] = item.id
        return dict.__getitem__(self, key)


@pytest.fixture
def world(app, auth):
    auth.login("admin")
    return World(app, auth)


def audit_rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(SecurityAuditLog))


@pytest.mark.parametrize(("form", "url", "valid", "field", "value", "words"), CASES,
                         ids=[f"{c[0]}-{c[3]}-{c[4][:12]!r}" for c in CASES])
def test_every_form_refuses_what_it_cannot_use_with_a_message(app, client, world, form, url, valid, field, value,
                                                              words):
    data = {key.format_map(world): v for key, v in valid.items()}
    data[field.format_map(world)] = value
    target = url.format_map(world)
    before = audit_rows(app)
    response = client.post(target, data=data)
    body = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, (response.status_code, body[:300])
    assert words in body, body[:2000]
    assert HUGE not in body  # a refusal never echoes a huge value back
    assert audit_rows(app) == before  # nothing was done


@pytest.mark.parametrize("value", ["1,0", "1e309", "٣"])
def test_htmx_refund_panel_shows_the_message_next_to_the_amount(client, world, value):
    response = client.post(f"/orders/{world['order_id']}/refunds", data={"amount": value, "reason": "x", "key": "k"},
                           headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="refund-amount-error"' in body and 'aria-describedby="refund-amount-error"' in body
    assert "Nothing was refunded" in body
