"""Builders that create one coherent business object across databases.

Used by ``console seed-demo`` and by the tests, so both build data the same way.
Each builder adds rows to the session and flushes; the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from console.extensions import db
from console.models.auth import Role, User, UserRole
from console.models.order import Order, OrderItem, OrderShippingAddress, OrderStatusHistory
from console.models.payment import Payment, PaymentMethod, PaymentTransaction
from console.models.product import Product, ProductInventory
from console.models.types import new_id, utcnow
from console.models.user import UserProfile
from console.permissions import STAFF_ROLES
from console.workflows.signin import hash_password

CENTS = Decimal("0.01")

# The order lifecycle used to back-fill status history for seeded orders.
ORDER_PATH = ("pending", "confirmed", "processing", "shipped", "delivered")


def money(value) -> Decimal:
    return Decimal(value).quantize(CENTS)


def ensure_roles() -> dict[str, Role]:
    roles = {r.name: r for r in db.session.scalars(select(Role))}
    for name in (*STAFF_ROLES, "customer"):
        if name not in roles:
            roles[name] = Role(name=name, description=f"{name} role")
            db.session.add(roles[name])
    db.session.flush()
    return roles


def make_user(email: str, password: str | None = None, roles: tuple[str, ...] = (), *,
              is_active: bool = True, password_hash: str | None = None, created_at: datetime | None = None) -> User:
    known = ensure_roles()
    user = User(email=email.lower(), password_hash=password_hash or (hash_password(password) if password else None),
                email_verified=True, is_active=is_active, failed_login_attempts=0, mfa_enabled=False,
                created_at=created_at or utcnow())
    db.session.add(user)
    db.session.flush()
    for role in roles:
        db.session.add(UserRole(user_id=user.id, role_id=known[role].id))
    db.session.flush()
    return user


def make_staff(role: str, email: str | None = None, password: str = "console-demo-1") -> User:
    return make_user(email or f"{role}@example.com", password, (role,))


def make_customer(email: str, first_name: str = "Alex", last_name: str = "Doe", *, phone: str | None = None,
                  password_hash: str | None = None, created_at: datetime | None = None) -> tuple[User, UserProfile]:
    user = make_user(email, roles=("customer",), password_hash=password_hash, created_at=created_at)
    profile = UserProfile(user_id=user.id, email=user.email, first_name=first_name, last_name=last_name,
                          phone=phone, preferred_currency="USD", preferred_language="en",
                          newsletter_subscribed=False, is_active=True, profile_completion_score=60,
                          created_at=user.created_at)
    db.session.add(profile)
    db.session.flush()
    return user, profile


def make_product(sku: str, name: str, price, stock: int = 20, *, reserved: int = 0,
                 status: str = "active") -> Product:
    product = Product(sku=sku, name=name, slug=sku.lower(), price=money(price), status=status, is_visible=True,
                      stock_quantity=stock, stock_status="in_stock" if stock > 0 else "out_of_stock",
                      view_count=0, purchase_count=0, badges=[])
    db.session.add(product)
    db.session.flush()
    db.session.add(ProductInventory(product_id=product.id, quantity=stock, reserved_quantity=reserved,
                                    available_quantity=stock - reserved, location="MAIN"))
    db.session.flush()
    return product


@dataclass
class OrderBundle:
    order: Order
    items: list[OrderItem]
    payment: Payment | None



def next_order_number(when: datetime) -> str:
    return f"ORD-{when:%Y%m%d}-{new_id()[:6].upper()}"


def make_order(user: User, lines: list[tuple[Product, int]], *, status: str = "pending",
               payment_status: str | None = None, provider: str = "MOCK", currency: str = "USD",
               tax_rate: Decimal = Decimal("0.08"), shipping=Decimal("5.00"), discount=Decimal("0.00"),
               created_at: datetime | None = None, with_payment: bool = True,
               changed_by: str = "system", order_number: str | None = None) -> OrderBundle:
    """An order with items, address, status history up to ``status`` and a matching payment.

    Totals agree: total = items + tax + shipping - discount; the payment equals the total.
    """
    created_at = created_at or utcnow()
    subtotal = money(sum(p.price * q for p, q in lines))
    tax = money(subtotal * tax_rate)
    total = money(subtotal + tax + money(shipping) - money(discount))
    paid = status not in ("pending", "cancelled")
    payment_status = payment_status or ("paid" if paid else "pending")
    order = Order(order_number=order_number or next_order_number(created_at), user_id=user.id, status=status,
                  payment_status=payment_status, subtotal=subtotal, tax_amount=tax,
                  shipping_amount=money(shipping), discount_amount=money(discount), total_amount=total,
                  currency=currency, shipping_method="standard", metadata_={}, created_at=created_at,
                  updated_at=created_at)
    db.session.add(order)
    db.session.flush()
    items = []
    for product, quantity in lines:
        item = OrderItem(order_id=order.id, product_id=product.id, product_name=product.name,
                         product_sku=product.sku, unit_price=product.price, quantity=quantity,
                         total_price=money(product.price * quantity), created_at=created_at)
        db.session.add(item)
        items.append(item)
    db.session.add(OrderShippingAddress(order_id=order.id, first_name="Alex", last_name="Doe",
                                        address_line1="1 Main Street", city="Springfield",
                                        postal_code="12345", country="US", created_at=created_at))
    path = ORDER_PATH[: ORDER_PATH.index(status) + 1] if status in ORDER_PATH else ("pending", status)
    previous = None
    for step, name in enumerate(path):
        db.session.add(OrderStatusHistory(order_id=order.id, status=name, previous_status=previous,
                                          changed_by=changed_by, reason="seeded",
                                          created_at=created_at + timedelta(hours=step)))
        previous = name
    payment = None
    if with_payment:
        payment = make_payment(order, provider=provider, captured=paid)
    db.session.flush()
    return OrderBundle(order, items, payment)


def make_payment(order: Order, provider: str = "MOCK", captured: bool = True) -> Payment:
    method = PaymentMethod(user_id=order.user_id, type="CREDIT_CARD", provider=provider,
                           provider_token=f"tok_{new_id()[:12]}", last4="4242", card_type="visa",
                           expiry_month="12", expiry_year="2030", is_default=True)
    db.session.add(method)
    db.session.flush()
    payment = Payment(order_id=order.id, user_id=order.user_id, payment_method_id=method.id,
                      status="SUCCEEDED" if captured else "PENDING", payment_provider=provider,
                      provider_payment_id=f"{provider.lower()}_pay_{new_id()[:16]}", amount=order.total_amount,
                      currency=order.currency, description=f"Order {order.order_number}", metadata_={},
                      processed_at=order.created_at if captured else None, created_at=order.created_at)
    db.session.add(payment)
    db.session.flush()
    db.session.add(PaymentTransaction(payment_id=payment.id, transaction_type="CHARGE",
                                      status="SUCCEEDED" if captured else "PENDING",
                                      provider_transaction_id=f"txn_{new_id()[:16]}", amount=payment.amount,
                                      currency=payment.currency, provider_response={},
                                      processed_at=payment.processed_at, created_at=order.created_at))
    order.payment_method_id = payment.id  # the entity block: orders.payment_method_id -> payments.id
    return payment
