"""Data for the customer, dashboard and search tests: one customer with a row in each
of the ten databases, built with the demo builders."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from console.demo.builders import (
    ensure_email_templates, ensure_shipping_options, make_address, make_cart, make_coupon, make_customer,
    make_notification, make_order, make_product, make_return, make_saved_card, make_session, make_shipment,
    use_coupon,
)
from console.extensions import db
from console.models.auth import LoginHistory
from console.models.product import ProductQuestion, ProductReview
from console.models.types import random_tail, utcnow
from console.models.user import UserWishlistItem


def full_customer(email: str = "jane.doe@example.com", *, first_name: str = "Jane", last_name: str = "Doe",
                  phone: str = "+1 (555) 010-0199"):
    """A customer with a profile, address, saved card, session, sign-ins, a delivered and
    shipped order paid with that card, a processed return (so a refund), a cart, a wishlist
    item, a review and a question, a coupon used on the order, and a notification."""
    now = utcnow()
    tag = random_tail(6).upper()
    user, profile = make_customer(email, first_name, last_name, phone=phone, created_at=now - timedelta(days=90))
    make_address(user.id, first_name, last_name, "12 Harbour Road", "Portland", "97201")
    card = make_saved_card(user.id, last4="1881", card_type="mastercard")
    session = make_session(user, device_name="Jane's iPhone", device_type="mobile", os="iOS", browser="Safari")
    db.session.add(LoginHistory(user_id=user.id, device_id=session.device_id, status="success",
                                ip_address="203.0.113.7", created_at=now - timedelta(hours=2)))
    db.session.add(LoginHistory(user_id=user.id, status="failed", ip_address="198.51.100.9",
                                created_at=now - timedelta(hours=3)))
    mug = make_product(f"MUG-{tag}", "Stoneware mug", "18.00", stock=30)
    lamp = make_product(f"LAMP-{tag}", "Desk lamp", "45.00", stock=3)
    coupon = make_coupon(f"SPRING{tag}", value="10", name="Spring sale")
    bundle = make_order(user, [(mug, 2), (lamp, 1)], status="delivered", payment_method=card,
                        created_at=now - timedelta(days=10), discount="5.00")
    use_coupon(coupon, bundle.order)
    options = ensure_shipping_options()
    method = options.by_service("standard")
    shipment = make_shipment(bundle.order, options.carrier_of(method), method, status="delivered")
    returned = make_return(bundle.order, [(bundle.items[0], 1)], status="processed",
                           requested_at=now - timedelta(days=5))
    cart = make_cart(user.id, [(lamp, 1)])
    db.session.add(UserWishlistItem(user_id=user.id, product_id=mug.id, product_name="Stoneware mug",
                                    product_price="18.00", notes="for the office"))
    db.session.add(ProductReview(product_id=mug.id, user_id=user.id, rating=4, title="Solid mug",
                                 comment="Keeps coffee warm.", is_verified_purchase=True, is_approved=True,
                                 helpful_count=2))
    db.session.add(ProductQuestion(product_id=lamp.id, user_id=user.id, question="Does it take LED bulbs?",
                                   is_approved=True, upvotes=0))
    templates = ensure_email_templates()
    notification = make_notification(user.id, templates["order_shipped"],
                                     {"first_name": first_name, "order_number": bundle.order.order_number,
                                      "carrier": "USPS", "tracking_number": shipment.tracking_number})
    db.session.commit()
    # Loaded again after the commit, so the tests can read them outside the app context.
    for row in (user, profile, card, session, bundle.order, *bundle.items, bundle.payment, shipment,
                returned.request, returned.payment_refund, cart, coupon, notification, mug, lamp):
        db.session.refresh(row)
    return SimpleNamespace(user=user, profile=profile, card=card, session=session, order=bundle.order,
                           items=bundle.items, payment=bundle.payment, shipment=shipment, ret=returned.request,
                           refund=returned.payment_refund, cart=cart, coupon=coupon, notification=notification,
                           products=(mug, lamp))
