"""Status badges: console/formatting.py draws them for the lists' cells and for
templates/_badges.html's macros alike."""
from __future__ import annotations

from decimal import Decimal

from console.formatting import payment_badge, status_badge


def test_a_badge_has_its_statuss_colour_and_words():
    assert status_badge("order", "delivered") == '<span class="badge text-bg-success">delivered</span>'
    assert status_badge("order", None) == '<span class="badge text-bg-light">no status</span>'
    assert status_badge("shipment", "out_for_delivery") == '<span class="badge text-bg-info">out for delivery</span>'
    assert status_badge("return", "closed") == '<span class="badge text-bg-light border">closed</span>'
    assert status_badge("refund", "completed") == '<span class="badge text-bg-success">completed</span>'


def test_a_status_from_a_database_is_escaped_and_unknown_ones_are_light():
    assert status_badge("order", '<script>"x"') == \
        '<span class="badge text-bg-light">&lt;script&gt;&#34;x&#34;</span>'


def test_a_payment_refunded_in_part_says_how_much():
    assert payment_badge("paid", (Decimal("49"), Decimal("57.92"))) == \
        '<span class="badge text-bg-info partial-refund">partially refunded (49.00 of 57.92)</span>'
    assert payment_badge("paid", (Decimal("57.92"), Decimal("57.92"))) == '<span class="badge text-bg-success">paid</span>'
    assert payment_badge("failed", (Decimal("1"), Decimal("2"))) == '<span class="badge text-bg-danger">failed</span>'


def test_the_templates_macros_draw_the_same_badges(app):
    with app.test_request_context():
        macros = app.jinja_env.get_template("_badges.html").module
        assert macros.order_status("shipped") == status_badge("order", "shipped")
        assert macros.shipment_status("in_transit") == status_badge("shipment", "in_transit")
        assert macros.return_status("closed") == status_badge("return", "closed")
        assert macros.payment_status("paid", (Decimal("1"), Decimal("2"))) == payment_badge(
            "paid", (Decimal("1"), Decimal("2")))
        assert str(macros.refund_status("failed", True)) == (str(status_badge("refund", "failed"))
                                                             + ' <span class="badge text-bg-warning attention-badge">'
                                                        "needs attention</span>")
