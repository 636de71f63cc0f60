"""Data for the returns and refunds tests: a shipped or delivered order, paid, with stock."""
from __future__ import annotations

from types import SimpleNamespace

from console.demo.builders import make_customer, make_order, make_product, make_staff
from console.extensions import db
from console.models.types import random_tail
from console.staff import StaffUser

LINES = (("MUG-BLUE", "Blue mug", "20.00", 2), ("PLATE-RED", "Red plate", "15.00", 1))


def staff_actor(role: str = "support") -> StaffUser:
    user = make_staff(role, f"{role}-{random_tail(8)}@staff.test")
    db.session.commit()
    return StaffUser(id=user.id, email=user.email, roles=frozenset({role}), ip="127.0.0.1")


def paid_order(*, status: str = "delivered", provider: str = "MOCK", lines=LINES, stock: int = 10,
               shipping="5.00", discount="0.00"):
    """An order with two lines (2 x 20.00 and 1 x 15.00), its captured payment and a staff actor."""
    tag = random_tail(6).upper()
    customer, _ = make_customer(f"customer-{tag.lower()}@example.com", "Jamie", "Rivera")
    products = [make_product(f"{sku}-{tag}", name, price, stock=stock) for sku, name, price, _ in lines]
    bundle = make_order(customer, [(p, qty) for p, (_, _, _, qty) in zip(products, lines)], status=status,
                        provider=provider, shipping=shipping, discount=discount)
    db.session.commit()
    return SimpleNamespace(actor=staff_actor(), customer=customer, order=bundle.order, items=bundle.items,
                           payment=bundle.payment, products=products)
