"""Builders that create one coherent business object across databases.

Used by ``console seed-demo`` and by the tests, so both build data the same way.
Each builder adds rows to the session and flushes; the caller commits.

The invariants the console relies on hold for everything built here: an order's total
is its items plus tax and shipping minus discount, its payment equals that total,
refunds never exceed the payment, and a coupon's usage_count equals its usage rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from console.email_templates import install as install_email_templates
from console.extensions import db
from console.models.auth import Device, RefreshToken, Role, User, UserRole, UserSession
from console.models.cart import Cart, CartItem
from console.models.discount import (COUPON_TYPES, PROMOTION_STATUSES, PROMOTION_TYPES, Coupon, CouponUsage, Promotion,
                                     PromotionRule, PromotionUsage)
from console.models.notification import (NOTIFICATION_STATUSES, NOTIFICATION_TYPES, EmailTemplate, Notification,
                                         NotificationLog)
from console.models.order import Order, OrderItem, OrderShippingAddress, OrderStatusHistory
from console.models.payment import (PAYMENT_METHOD_TYPES, PAYMENT_PROVIDERS, PAYMENT_STATUSES, REFUND_STATUSES,
                                    TRANSACTION_STATUSES, TRANSACTION_TYPES, Payment, PaymentMethod, PaymentRefund,
                                    PaymentTransaction)
from console.models.product import Category, Product, ProductInventory, ProductVariant
from console.models.returns import (
    ReturnAuthorization, ReturnItem, ReturnRefund, ReturnRequest, ReturnStatusHistory, ReturnTracking,
)
from console.models.shipping import Carrier, Shipment, ShipmentTracking, ShippingMethod, ShippingRate, ShippingZone
from console.models.types import CENTS, new_id, random_tail, utcnow
from console.models.user import UserAddress, UserPaymentMethod, UserProfile
from console.demo.provider import DEMO_PROVIDER
from console.permissions import STAFF_ROLES
from console.workflows.inventory import stock_status
from console.workflows.notify import render_notification
from console.workflows.orders import UNWEIGHED
from console.workflows.signin import NO_PASSWORD, hash_password

TAX_RATE = Decimal("0.08")

# The order lifecycle used to back-fill status history for seeded orders.
ORDER_PATH = ("pending", "confirmed", "processing", "shipped", "delivered")
# How long after the order each status was reached, so history rows and the order's
# shipped_at / delivered_at / cancelled_at tell the same story.
ORDER_STEP_AFTER = {
    "pending": timedelta(0), "confirmed": timedelta(hours=1), "processing": timedelta(hours=6),
    "shipped": timedelta(days=1), "delivered": timedelta(days=4), "cancelled": timedelta(hours=3),
    "refunded": timedelta(days=12),
}

# What each back-filled history row says happened.
ORDER_STEP_REASON = {
    "pending": "Order placed", "confirmed": "Payment captured", "processing": "Picking started",
    "shipped": "Handed to the carrier", "delivered": "Delivered to the customer",
    "cancelled": "Cancelled at the customer's request", "refunded": "Refunded in full",
}

# The steps of a seeded order the customer took (placing it, asking to cancel it); the
# order service took the others, and its history rows say "system".
CUSTOMER_STEPS = ("pending", "cancelled")

# The return lifecycle; "rejected" branches off "pending".
RETURN_PATH = ("pending", "approved", "in_transit", "received", "processed", "closed")
RETURN_STEP_AFTER = {
    "pending": timedelta(0), "approved": timedelta(days=1), "rejected": timedelta(days=1),
    "in_transit": timedelta(days=3), "received": timedelta(days=7), "processed": timedelta(days=8),
    "closed": timedelta(days=10),
}
# What each back-filled return history row says.
RETURN_STEP_NOTE = {
    "pending": "Requested by the customer", "approved": "Return approved", "rejected": "Outside the return policy",
    "in_transit": "Customer shipped the parcel", "received": "Parcel received at the warehouse",
    "processed": "Refund issued", "closed": "Return completed",
}
# Which request timestamp each return status sets.
RETURN_STAMPS = {"approved": "approved_at", "rejected": "rejected_at", "received": "received_at",
                 "processed": "processed_at", "closed": "closed_at"}

WAREHOUSE_ADDRESS = {"name": "Returns department", "address_line1": "400 Commerce Way", "city": "Columbus",
                     "postal_code": "43004", "country": "US"}
# Hubs a parcel passes through, in order; tracking events name them.
HUBS = ("Columbus, OH", "Indianapolis, IN", "Memphis, TN", "Louisville, KY")


def money(value) -> Decimal:
    return Decimal(value).quantize(CENTS)


# --- people ------------------------------------------------------------------------------

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
    user = User(email=email.lower(), password_hash=password_hash or (hash_password(password) if password else NO_PASSWORD),
                email_verified=True, is_active=is_active, failed_login_attempts=0, mfa_enabled=False,
                created_at=created_at or utcnow())
    db.session.add(user)
    db.session.flush()
    for role in roles:
        db.session.add(UserRole(user_id=user.id, role_id=known[role].id, created_at=user.created_at))
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


def make_address(user_id: str, first_name: str, last_name: str, address_line1: str, city: str,
                 postal_code: str, country: str = "US", *, type: str = "shipping", is_default: bool = True,
                 created_at: datetime | None = None) -> UserAddress:
    address = UserAddress(user_id=user_id, type=type, is_default=is_default, first_name=first_name,
                          last_name=last_name, address_line1=address_line1, city=city, postal_code=postal_code,
                          country=country, created_at=created_at or utcnow())
    db.session.add(address)
    db.session.flush()
    return address


def make_saved_card(user_id: str, provider: str = PAYMENT_PROVIDERS.STRIPE, *, last4: str = "4242", card_type: str = "visa",
                    expiry_month: str = "12", expiry_year: str = "2030", is_default: bool = True,
                    created_at: datetime | None = None) -> PaymentMethod:
    """A saved payment method as both services hold it: user_db's user_payment_methods
    and payment_db's payment_methods, sharing the provider token. Returns the payment_db row."""
    created_at = created_at or utcnow()
    token = f"tok_{random_tail(20)}"
    paypal = provider == PAYMENT_PROVIDERS.PAYPAL
    db.session.add(UserPaymentMethod(user_id=user_id, type="paypal" if paypal else "credit_card",
                                     is_default=is_default, card_type=None if paypal else card_type,
                                     last4=None if paypal else last4, provider_token=token, created_at=created_at))
    method = PaymentMethod(user_id=user_id, provider=provider,
                           type=PAYMENT_METHOD_TYPES.PAYPAL if paypal else PAYMENT_METHOD_TYPES.CREDIT_CARD,
                           provider_token=token, last4=None if paypal else last4,
                           card_type=None if paypal else card_type,
                           expiry_month=None if paypal else expiry_month, expiry_year=None if paypal else expiry_year,
                           is_default=is_default, created_at=created_at)
    db.session.add(method)
    db.session.flush()
    return method


def make_session(user: User, *, device_name: str = "Laptop", device_type: str = "desktop", os: str = "macOS",
                 browser: str = "Firefox", active: bool = True, created_at: datetime | None = None,
                 lifetime: timedelta = timedelta(days=30)) -> UserSession:
    """A signed-in session as the auth service keeps it: device, refresh token, session."""
    created_at = created_at or utcnow()
    device = Device(user_id=user.id, device_id=f"dev-{new_id()}", device_name=device_name, device_type=device_type,
                    os=os, browser=browser, is_trusted=active, last_used_at=created_at, created_at=created_at)
    db.session.add(device)
    db.session.flush()
    refresh = RefreshToken(token=f"rt_{random_tail(24)}", user_id=user.id, device_id=device.id,
                           expires_at=created_at + lifetime, revoked=not active, created_at=created_at)
    db.session.add(refresh)
    db.session.flush()
    session = UserSession(user_id=user.id, session_token=f"st_{random_tail(24)}",
                          refresh_token_id=refresh.id, device_id=device.id, is_active=active,
                          expires_at=created_at + lifetime, created_at=created_at)
    db.session.add(session)
    db.session.flush()
    return session


# --- catalog -----------------------------------------------------------------------------

def make_category(name: str, *, slug: str | None = None, parent: Category | None = None, sort_order: int = 0,
                  created_at: datetime | None = None) -> Category:
    category = Category(name=name, slug=slug or name.lower().replace(" & ", "-").replace(" ", "-"),
                        parent_id=parent.id if parent else None, level=(parent.level + 1) if parent else 0,
                        sort_order=sort_order, is_active=True, created_at=created_at or utcnow())
    db.session.add(category)
    db.session.flush()
    return category


def make_product(sku: str, name: str, price, stock: int = 20, *, reserved: int = 0,
                 status: str = "active", description: str | None = None, weight=None, compare_at_price=None,
                 created_at: datetime | None = None) -> Product:
    """A product with its inventory row; stock_quantity/status agree with the inventory."""
    created_at = created_at or utcnow()
    product = Product(sku=sku, name=name, slug=sku.lower(), description=description, price=money(price),
                      compare_at_price=money(compare_at_price) if compare_at_price is not None else None,
                      status=status, is_visible=status == "active", stock_quantity=stock,
                      stock_status=stock_status(stock - reserved), weight=money(weight) if weight is not None else None,
                      view_count=0, purchase_count=0, badges=[], created_at=created_at, updated_at=created_at)
    db.session.add(product)
    db.session.flush()
    db.session.add(ProductInventory(product_id=product.id, quantity=stock, reserved_quantity=reserved,
                                    available_quantity=stock - reserved, location="MAIN",
                                    last_restocked_at=created_at, created_at=created_at))
    db.session.flush()
    return product


def make_variant(product: Product, name: str, attributes: dict, *, sku: str | None = None, price=None,
                 stock: int = 10) -> ProductVariant:
    variant = ProductVariant(product_id=product.id, sku=sku or f"{product.sku}-{name.upper().replace(' ', '-')}",
                             name=name, price=money(price) if price is not None else product.price,
                             stock_quantity=stock, stock_status=stock_status(stock), attributes=attributes,
                             created_at=product.created_at)
    db.session.add(variant)
    db.session.flush()
    return variant


# --- orders and payments -----------------------------------------------------------------

@dataclass
class OrderBundle:
    order: Order
    items: list[OrderItem]
    payment: Payment | None


def next_order_number(when: datetime) -> str:
    return f"ORD-{when:%Y%m%d}-{random_tail(6).upper()}"


def spread(number: int, size: int, step: int) -> int:
    """The ``number``-th value of a fixed walk through range(size) that visits each value
    once: distinct for distinct numbers below ``size`` (``step`` shares no factor with
    ``size``), yet not in counting order."""
    if not 0 <= number < size:
        raise ValueError(f"only {size} distinct values: {number} is out of range")
    return (number * step + size // 3) % size


class HumanNumbers:
    """Order, RMA and tracking numbers for one seed that cannot clash: each kind draws
    from its own counter through spread(), so a million orders placed on the same day
    still get a million different numbers (random digits would repeat)."""

    ORDER_SIZE, ORDER_STEP = 16**6, 0x9E3779          # odd: shares no factor with 16**6
    TRACKING_SIZE, TRACKING_STEP = 10**12, 618033988747  # neither even nor a multiple of 5

    def __init__(self) -> None:
        self.orders = self.returns = self.parcels = 0

    def order(self, when: datetime) -> str:
        self.orders += 1
        return "ORD-%04d%02d%02d-%06X" % (when.year, when.month, when.day,
                                           spread(self.orders - 1, self.ORDER_SIZE, self.ORDER_STEP))

    def rma(self, when: datetime) -> str:
        self.returns += 1
        return "RMA-%04d%02d%02d-%06X" % (when.year, when.month, when.day,
                                           spread(self.returns - 1, self.ORDER_SIZE, self.ORDER_STEP))

    def tracking(self, carrier_code: str) -> str:
        self.parcels += 1
        return f"{carrier_code.upper()}{spread(self.parcels - 1, self.TRACKING_SIZE, self.TRACKING_STEP):012d}"


def line_price(product: Product, variant: ProductVariant | None = None) -> Decimal:
    return variant.price if variant is not None and variant.price is not None else product.price


def lines_subtotal(lines) -> Decimal:
    """Sum of unit price x quantity for (product, quantity[, variant]) lines."""
    return money(sum(line_price(line[0], line[2] if len(line) > 2 else None) * line[1] for line in lines))


def make_order(user: User, lines: list[tuple], *, status: str = "pending",
               payment_status: str | None = None, provider: str = DEMO_PROVIDER, currency: str = "USD",
               tax_rate: Decimal = TAX_RATE, shipping=Decimal("5.00"), discount=Decimal("0.00"),
               created_at: datetime | None = None, with_payment: bool = True,
               changed_by: str = "system", order_number: str | None = None, address: dict | None = None,
               shipping_method: str = "standard", payment_method: PaymentMethod | None = None,
               placed_by: str | None = None) -> OrderBundle:
    """An order with items, address, status history up to ``status`` and a matching payment.

    ``lines`` are (product, quantity) or (product, quantity, variant). Totals agree:
    total = items + tax + shipping - discount; the payment equals the total. A
    "refunded" order went through delivery and was refunded in full; a "cancelled"
    one was cancelled before payment was taken. History rows name ``changed_by``
    ("system": the order service), except that with ``placed_by`` (the customer's
    user id) the customer placed the order and asked for its cancellation.
    """
    created_at = created_at or utcnow()
    subtotal = lines_subtotal(lines)
    tax = money(subtotal * tax_rate)
    total = money(subtotal + tax + money(shipping) - money(discount))
    paid = status not in ("pending", "cancelled")
    payment_status = payment_status or ("paid" if paid else "pending")
    order = Order(order_number=order_number or next_order_number(created_at), user_id=user.id, status=status,
                  payment_status=payment_status, subtotal=subtotal, tax_amount=tax,
                  shipping_amount=money(shipping), discount_amount=money(discount), total_amount=total,
                  currency=currency, shipping_method=shipping_method, metadata_={}, created_at=created_at,
                  updated_at=created_at)
    db.session.add(order)
    db.session.flush()
    items = []
    for line in lines:
        product, quantity = line[0], line[1]
        variant = line[2] if len(line) > 2 else None
        unit = line_price(product, variant)
        item = OrderItem(order_id=order.id, product_id=product.id, variant_id=variant.id if variant else None,
                         product_name=product.name + (f" ({variant.name})" if variant else ""),
                         product_sku=variant.sku if variant else product.sku, unit_price=unit, quantity=quantity,
                         total_price=money(unit * quantity), created_at=created_at)
        db.session.add(item)
        items.append(item)
    address = address or {"first_name": "Alex", "last_name": "Doe", "address_line1": "1 Main Street",
                          "city": "Springfield", "postal_code": "12345", "country": "US"}
    db.session.add(OrderShippingAddress(order_id=order.id, created_at=created_at, **address))
    if status in ORDER_PATH:
        path = ORDER_PATH[: ORDER_PATH.index(status) + 1]
    elif status == "refunded":
        path = (*ORDER_PATH, "refunded")
    else:
        path = ("pending", status)
    previous = None
    for name in path:
        actor = placed_by if placed_by and name in CUSTOMER_STEPS else changed_by
        db.session.add(OrderStatusHistory(order_id=order.id, status=name, previous_status=previous,
                                          changed_by=actor, reason=ORDER_STEP_REASON.get(name, name),
                                          created_at=created_at + ORDER_STEP_AFTER.get(name, timedelta(hours=1))))
        previous = name
    if "shipped" in path:
        order.shipped_at = created_at + ORDER_STEP_AFTER["shipped"]
        order.estimated_delivery_date = order.shipped_at + timedelta(days=4)
    if "delivered" in path:
        order.delivered_at = created_at + ORDER_STEP_AFTER["delivered"]
    if status == "cancelled":
        order.cancelled_at = created_at + ORDER_STEP_AFTER["cancelled"]
    payment = None
    if with_payment:
        payment = make_payment(order, provider=provider, captured=paid, method=payment_method)
        if status == "refunded":
            make_refund(payment, payment.amount, order=order, reason="Order refunded in full",
                        created_at=created_at + ORDER_STEP_AFTER["refunded"])
    # Set last: linking the payment is an update, which would stamp "now" otherwise.
    order.updated_at = created_at + ORDER_STEP_AFTER.get(status, timedelta(0))
    db.session.flush()
    return OrderBundle(order, items, payment)


def make_payment(order: Order, provider: str = DEMO_PROVIDER, captured: bool = True,
                 method: PaymentMethod | None = None) -> Payment:
    """The order's payment and its CHARGE transaction (plus a VOID for a cancelled order).
    ``method`` reuses a saved payment method; without one a card is created."""
    if method is None:
        method = PaymentMethod(user_id=order.user_id, type=PAYMENT_METHOD_TYPES.CREDIT_CARD, provider=provider,
                               provider_token=f"tok_{random_tail(12)}", last4="4242", card_type="visa",
                               expiry_month="12", expiry_year="2030", is_default=True)
        db.session.add(method)
        db.session.flush()
    provider = method.provider or provider
    cancelled = order.status == "cancelled"
    status = (PAYMENT_STATUSES.SUCCEEDED if captured else
              PAYMENT_STATUSES.CANCELLED if cancelled else PAYMENT_STATUSES.PENDING)
    payment = Payment(order_id=order.id, user_id=order.user_id, payment_method_id=method.id,
                      status=status, payment_provider=provider,
                      provider_payment_id=f"{provider.lower()}_pay_{random_tail(16)}",
                      amount=order.total_amount, currency=order.currency, description=f"Order {order.order_number}",
                      metadata_={"order_number": order.order_number},
                      processed_at=order.created_at if captured else None, created_at=order.created_at,
                      updated_at=order.cancelled_at or order.created_at)
    db.session.add(payment)
    db.session.flush()
    db.session.add(PaymentTransaction(payment_id=payment.id, transaction_type=TRANSACTION_TYPES.CHARGE,
                                      status=TRANSACTION_STATUSES.SUCCEEDED if captured else TRANSACTION_STATUSES.PENDING,
                                      provider_transaction_id=f"txn_{random_tail(16)}",
                                      amount=payment.amount, currency=payment.currency, provider_response={},
                                      processed_at=payment.processed_at, created_at=order.created_at))
    if cancelled:
        db.session.add(PaymentTransaction(payment_id=payment.id, transaction_type=TRANSACTION_TYPES.VOID,
                                          status=TRANSACTION_STATUSES.SUCCEEDED,
                                          provider_transaction_id=f"txn_{random_tail(16)}",
                                          amount=payment.amount, currency=payment.currency, provider_response={},
                                          processed_at=order.cancelled_at, created_at=order.cancelled_at))
    order.payment_method_id = payment.id  # the entity block: orders.payment_method_id -> payments.id
    return payment


def refunded_total(payment: Payment) -> Decimal:
    """What has been refunded (or is on its way) from this payment; failed refunds don't count."""
    total = db.session.scalar(select(func.coalesce(func.sum(PaymentRefund.amount), 0)).where(
        PaymentRefund.payment_id == payment.id, PaymentRefund.status != REFUND_STATUSES.FAILED))
    return money(total)


def make_refund(payment: Payment, amount, *, order: Order | None = None, reason: str = "Customer request",
                status: str = REFUND_STATUSES.COMPLETED, created_at: datetime | None = None,
                metadata: dict | None = None) -> PaymentRefund:
    """A refund of ``amount`` from ``payment``: the payment_refunds row and its REFUND
    transaction. A full refund marks the payment refunded and the order refunded.
    Refuses to refund more than what is left of the payment."""
    amount = money(amount)
    already = refunded_total(payment)
    if amount <= 0 or already + amount > payment.amount:
        raise ValueError(f"refund of {amount} exceeds what is left of payment {payment.id} "
                         f"({payment.amount - already})")
    created_at = created_at or utcnow()
    done = status == REFUND_STATUSES.COMPLETED
    refund = PaymentRefund(payment_id=payment.id, order_id=payment.order_id, reason=reason, amount=amount,
                           currency=payment.currency, status=status,
                           provider_refund_id=f"re_{random_tail(16)}" if done else None,
                           metadata_=metadata or {}, processed_at=created_at if done else None,
                           created_at=created_at, updated_at=created_at)
    db.session.add(refund)
    db.session.add(PaymentTransaction(payment_id=payment.id, transaction_type=TRANSACTION_TYPES.REFUND,
                                      status=TRANSACTION_STATUSES.SUCCEEDED if done else TRANSACTION_STATUSES.PENDING,
                                      provider_transaction_id=f"txn_{random_tail(16)}",
                                      amount=amount, currency=payment.currency, provider_response={},
                                      processed_at=refund.processed_at, created_at=created_at))
    if already + amount == payment.amount:
        payment.status = PAYMENT_STATUSES.REFUNDED
        payment.updated_at = created_at
        if order is not None:
            order.payment_status = "refunded"
            if order.status != "refunded":
                db.session.add(OrderStatusHistory(order_id=order.id, status="refunded", previous_status=order.status,
                                                  changed_by="system", reason=reason, created_at=created_at))
                order.status = "refunded"
            order.updated_at = created_at
    db.session.flush()
    return refund


# --- shipping ----------------------------------------------------------------------------

CARRIERS = {"fedex": "FedEx", "ups": "UPS", "dhl": "DHL", "usps": "USPS"}
# zone name -> (type, countries, [(method name, carrier code, service type, base price, days)])
SHIPPING_ZONES = {
    "Domestic (US)": ("country", ["US"], [
        ("USPS Ground Advantage", "usps", "standard", "5.00", 5),
        ("UPS 2nd Day Air", "ups", "express", "15.00", 2),
        ("FedEx Priority Overnight", "fedex", "overnight", "35.00", 1),
    ]),
    "Canada and Mexico": ("country", ["CA", "MX"], [("UPS Standard International", "ups", "standard", "18.00", 7)]),
    "Europe": ("country", ["GB", "DE", "FR", "NL", "IE"], [("DHL Express Worldwide", "dhl", "express", "39.00", 4)]),
    "Rest of world": ("custom", [], [("DHL Economy Select", "dhl", "standard", "49.00", 12)]),
}
# Weight bands (kg) and what each adds to a method's base price.
RATE_BANDS = (("0.00", "1.00", "0.00"), ("1.00", "5.00", "4.00"), ("5.00", "30.00", "12.00"))


@dataclass
class ShippingOptions:
    carriers: dict[str, Carrier]
    methods: list[ShippingMethod]

    def by_service(self, service_type: str, zone: str = "Domestic (US)") -> ShippingMethod:
        return next(m for m in self.methods if m.service_type == service_type and m.configuration["zone"] == zone)

    def carrier_of(self, method: ShippingMethod) -> Carrier:
        return self.carriers[method.carrier]


def ensure_shipping_options(created_at: datetime | None = None) -> ShippingOptions:
    """The carriers, zones, methods and weight-band rates of a typical shop (created once)."""
    created_at = created_at or utcnow()
    carriers = {c.code: c for c in db.session.scalars(select(Carrier))}
    for code, name in CARRIERS.items():
        if code not in carriers:
            carriers[code] = Carrier(name=name, code=code, api_endpoint=f"https://api.{code}.example/v1",
                                     api_key=f"enc:{random_tail(24)}", is_active=True,
                                     configuration={"label_format": "PDF"}, created_at=created_at)
            db.session.add(carriers[code])
    methods = list(db.session.scalars(select(ShippingMethod)))
    if not methods:
        for zone_name, (zone_type, countries, zone_methods) in SHIPPING_ZONES.items():
            zone = ShippingZone(name=zone_name, type=zone_type, countries=countries, states=[], postal_codes=[],
                                is_active=True, created_at=created_at)
            db.session.add(zone)
            db.session.flush()
            for name, carrier, service, base, days in zone_methods:
                method = ShippingMethod(zone_id=zone.id, name=name, carrier=carrier, service_type=service,
                                        base_price=money(base), price_per_kg=money("0.50"),
                                        price_per_item=money("0.00"), estimated_days=days, is_active=True,
                                        configuration={"zone": zone_name}, created_at=created_at)
                db.session.add(method)
                db.session.flush()
                methods.append(method)
                for low, high, extra in RATE_BANDS:
                    db.session.add(ShippingRate(method_id=method.id, min_weight=money(low), max_weight=money(high),
                                                min_amount=money(0), max_amount=None,
                                                rate=money(Decimal(base) + Decimal(extra)), created_at=created_at))
    db.session.flush()
    return ShippingOptions(carriers, methods)


def next_tracking_number(carrier_code: str) -> str:
    return f"{carrier_code.upper()}{int(random_tail(12), 36) % 10**12:012d}"


def make_shipment(order: Order, carrier: Carrier, method: ShippingMethod, *, status: str = "in_transit",
                  destination: dict | None = None, weight=None, tracking_number: str | None = None) -> Shipment:
    """The shipment of a shipped order, its tracking events up to ``status``, and the
    order's tracking_number set to the shipment's."""
    shipped_at = order.shipped_at or utcnow()
    events = ["label_created", "picked_up", "in_transit"]
    if status in ("out_for_delivery", "delivered"):
        events.append("out_for_delivery")
    if status in ("delivered", "exception"):
        events.append(status)
    delivered_at = order.delivered_at if status == "delivered" else None
    shipment = Shipment(order_id=order.id, carrier_id=carrier.id, method_id=method.id,
                        tracking_number=tracking_number or next_tracking_number(carrier.code), status=status,
                        weight=money(weight) if weight is not None else UNWEIGHED, cost=method.base_price,
                        origin_address=WAREHOUSE_ADDRESS, destination_address=destination or {},
                        shipped_at=shipped_at, estimated_delivery_date=order.estimated_delivery_date,
                        delivered_at=delivered_at, carrier_response={"service": method.service_type},
                        created_at=shipped_at, updated_at=delivered_at or shipped_at)
    db.session.add(shipment)
    db.session.flush()
    city = (destination or {}).get("city", "destination")
    descriptions = {"label_created": "Shipping label created", "picked_up": "Picked up by carrier",
                    "in_transit": "In transit", "out_for_delivery": "Out for delivery",
                    "delivered": "Delivered", "exception": "Delivery exception: address could not be reached"}
    for step, event in enumerate(events):
        when = delivered_at if event == "delivered" and delivered_at else shipped_at + timedelta(hours=10 * step)
        location = HUBS[min(step, len(HUBS) - 1)] if event in ("label_created", "picked_up", "in_transit") else city
        db.session.add(ShipmentTracking(shipment_id=shipment.id, status=event, location=location,
                                        description=descriptions[event], timestamp=when,
                                        carrier_data={"carrier": carrier.code}, created_at=when))
    order.tracking_number = shipment.tracking_number
    db.session.flush()
    return shipment


# --- returns -----------------------------------------------------------------------------

@dataclass
class ReturnBundle:
    request: ReturnRequest
    items: list[ReturnItem]
    authorization: ReturnAuthorization | None = None
    refund: ReturnRefund | None = None
    payment_refund: PaymentRefund | None = None
    history: list[ReturnStatusHistory] = field(default_factory=list)


def next_rma_number(when: datetime) -> str:
    return f"RMA-{when:%Y%m%d}-{random_tail(6).upper()}"


def return_path(status: str) -> tuple[str, ...]:
    if status == "rejected":
        return ("pending", "rejected")
    return RETURN_PATH[: RETURN_PATH.index(status) + 1]


def make_return(order: Order, lines: list[tuple[OrderItem, int]], *, status: str = "pending",
                reason: str = "defective", refund_method: str = "original_payment", condition: str = "used",
                requested_at: datetime | None = None, staff_id: str = "system",
                notes: str | None = None, numbers: HumanNumbers | None = None) -> ReturnBundle:
    """A return request for ``lines`` (order item, quantity) of ``order``, with its
    history up to ``status``; from "approved" on an authorization (same RMA number),
    from "in_transit" return tracking, and from "processed" the refund: a payment refund
    in payment_db and the return_refunds row pointing at the same payment. The items'
    ``condition`` is the one the customer states with the request (the return service
    requires it); the warehouse records what it found on receipt."""
    for item, quantity in lines:
        if item.order_id != order.id or not 0 < quantity <= (item.quantity or 0):
            raise ValueError(f"cannot return {quantity} of order item {item.id} (ordered {item.quantity})")
    requested_at = requested_at or utcnow()
    rma = numbers.rma(requested_at) if numbers else next_rma_number(requested_at)
    # A returned item refunds what was paid for it: its price less its share of the
    # order's discount plus its share of the tax, as the returns workflow reckons it
    # (console/workflows/returns.py), so a full return refunds the items of the payment.
    from console.workflows.returns import allowance, paid_per_line, returned_quantities

    order_lines = list(db.session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)))
    paid = paid_per_line(order, order_lines)
    before = returned_quantities(order.id)
    item_refunds = [allowance(paid[item.id], item.quantity or 0, before.get(item.id, 0), quantity)
                    for item, quantity in lines]
    refund_amount = money(sum(item_refunds))
    path = return_path(status)
    stamps = {RETURN_STAMPS[name]: requested_at + RETURN_STEP_AFTER[name] for name in path if name in RETURN_STAMPS}
    request = ReturnRequest(order_id=order.id, user_id=order.user_id, rma_number=rma, status=status,
                            return_reason=reason, return_notes=notes, refund_method=refund_method,
                            refund_amount=refund_amount, currency=order.currency, requested_at=requested_at,
                            metadata_={"order_number": order.order_number}, created_at=requested_at,
                            updated_at=requested_at + RETURN_STEP_AFTER[status], **stamps)
    db.session.add(request)
    db.session.flush()
    bundle = ReturnBundle(request, [])
    for (item, quantity), item_refund in zip(lines, item_refunds):
        row = ReturnItem(return_request_id=request.id, order_item_id=item.id, product_id=item.product_id,
                         variant_id=item.variant_id, product_name=item.product_name, product_sku=item.product_sku,
                         quantity=quantity, unit_price=item.unit_price, refund_amount=item_refund,
                         return_reason=reason, condition=condition,
                         created_at=requested_at)
        db.session.add(row)
        bundle.items.append(row)
    previous = None
    for name in path:
        # The customer opens the request; staff take every later step.
        row = ReturnStatusHistory(return_request_id=request.id, status=name, previous_status=previous,
                                  changed_by=order.user_id if name == "pending" else staff_id,
                                  notes=RETURN_STEP_NOTE[name],
                                  created_at=requested_at + RETURN_STEP_AFTER[name])
        db.session.add(row)
        bundle.history.append(row)
        previous = name
    if "approved" in path:
        approved_at = stamps["approved_at"]
        bundle.authorization = ReturnAuthorization(
            return_request_id=request.id, rma_number=rma, return_address=WAREHOUSE_ADDRESS,
            return_instructions=f"Pack the items securely and write {rma} on the parcel.",
            tracking_number=(numbers.tracking("ups") if numbers else next_tracking_number("ups"))
            if "in_transit" in path else None,
            expires_at=approved_at + timedelta(days=30), created_at=approved_at, updated_at=approved_at)
        db.session.add(bundle.authorization)
        db.session.flush()
        if "in_transit" in path:
            events = [("in_transit", "Parcel handed to the carrier", RETURN_STEP_AFTER["in_transit"])]
            if "received" in path:
                events.append(("delivered", "Delivered to the returns department", RETURN_STEP_AFTER["received"]))
            for event, description, after in events:
                db.session.add(ReturnTracking(authorization_id=bundle.authorization.id, status=event,
                                              location=WAREHOUSE_ADDRESS["city"], description=description,
                                              timestamp=requested_at + after, carrier_data={"carrier": "ups"},
                                              created_at=requested_at + after))
    if "processed" in path:
        processed_at = stamps["processed_at"]
        payment = db.session.scalar(select(Payment).where(Payment.order_id == order.id))
        if payment is None:
            raise ValueError(f"order {order.order_number} has no payment to refund")
        bundle.payment_refund = make_refund(payment, refund_amount, order=order, reason=f"Return {rma}",
                                            created_at=processed_at,
                                            metadata={"return_request_id": request.id, "rma_number": rma,
                                                      **({"staff_id": staff_id} if staff_id != "system" else {})})
        bundle.refund = ReturnRefund(return_request_id=request.id, payment_id=payment.id, order_id=order.id,
                                     user_id=order.user_id, refund_method=refund_method, amount=refund_amount,
                                     currency=order.currency, status="completed", reason=f"Return {rma}",
                                     processed_at=processed_at, created_at=processed_at, updated_at=processed_at)
        db.session.add(bundle.refund)
    db.session.flush()
    return bundle


# --- discounts ---------------------------------------------------------------------------

def made_at(starts_at: datetime | None) -> datetime:
    """When a discount was set up: as its window opens, or now for one that opens later
    (set up ahead, never dated in the future)."""
    now = utcnow()
    return min(starts_at, now) if starts_at else now


def make_coupon(code: str, type: str = COUPON_TYPES.PERCENTAGE, value="10", *, name: str | None = None,
                minimum=None, maximum=None, usage_limit: int | None = None, per_user: int | None = None,
                starts_at: datetime | None = None, ends_at: datetime | None = None, is_active: bool = True,
                description: str | None = None) -> Coupon:
    coupon = Coupon(code=code, name=name or code, description=description, type=type, discount_value=money(value),
                    minimum_amount=money(minimum) if minimum is not None else None,
                    maximum_discount=money(maximum) if maximum is not None else None, currency="USD",
                    usage_limit=usage_limit, usage_count=0, usage_limit_per_user=per_user,
                    starts_at=starts_at, ends_at=ends_at, is_active=is_active, applicable_products=[],
                    applicable_categories=[], excluded_products=[], metadata_={},
                    created_at=made_at(starts_at), updated_at=made_at(starts_at))
    db.session.add(coupon)
    db.session.flush()
    return coupon


def coupon_discount(coupon: Coupon, subtotal: Decimal, shipping: Decimal) -> Decimal:
    """What ``coupon`` takes off an order of ``subtotal`` with ``shipping``; zero below its minimum."""
    if coupon.minimum_amount is not None and subtotal < coupon.minimum_amount:
        return money(0)
    if coupon.type == COUPON_TYPES.PERCENTAGE:
        discount = money(subtotal * coupon.discount_value / 100)
    elif coupon.type == COUPON_TYPES.FREE_SHIPPING:
        discount = money(shipping)
    else:
        discount = money(coupon.discount_value)
    if coupon.maximum_discount is not None:
        discount = min(discount, coupon.maximum_discount)
    return min(discount, subtotal)


def use_coupon(coupon: Coupon, order: Order, *, used_at: datetime | None = None) -> CouponUsage:
    """Record that ``order`` used ``coupon`` for its discount; usage_count follows the rows."""
    if coupon.usage_limit is not None and (coupon.usage_count or 0) >= coupon.usage_limit:
        raise ValueError(f"coupon {coupon.code} reached its usage limit of {coupon.usage_limit}")
    if coupon.usage_limit_per_user is not None:
        used = db.session.scalar(select(func.count()).select_from(CouponUsage).where(
            CouponUsage.coupon_id == coupon.id, CouponUsage.user_id == order.user_id))
        if used >= coupon.usage_limit_per_user:
            raise ValueError(f"coupon {coupon.code} was already used {used} time(s) by this customer")
    used_at = used_at or order.created_at or utcnow()
    usage = CouponUsage(coupon_id=coupon.id, user_id=order.user_id, order_id=order.id,
                        discount_amount=order.discount_amount, used_at=used_at, created_at=used_at)
    db.session.add(usage)
    coupon.usage_count = (coupon.usage_count or 0) + 1
    db.session.flush()
    return usage


def make_promotion(name: str, type: str = PROMOTION_TYPES.VOLUME_DISCOUNT, status: str = PROMOTION_STATUSES.ACTIVE, *,
                   rules: list[dict] = (), starts_at: datetime | None = None, ends_at: datetime | None = None,
                   description: str | None = None, configuration: dict | None = None) -> Promotion:
    """A promotion and its rules; each rule dict has rule_type, conditions, actions."""
    created_at = made_at(starts_at)
    promotion = Promotion(name=name, description=description, type=type, status=status, starts_at=starts_at,
                          ends_at=ends_at, is_active=status == PROMOTION_STATUSES.ACTIVE, configuration=configuration or {},
                          metadata_={}, created_at=created_at, updated_at=created_at)
    db.session.add(promotion)
    db.session.flush()
    for priority, rule in zip(range(len(rules), 0, -1), rules):  # the first is tried first
        db.session.add(PromotionRule(promotion_id=promotion.id, rule_type=rule["rule_type"],
                                     conditions=rule.get("conditions", {}), actions=rule.get("actions", {}),
                                     priority=priority, created_at=created_at, updated_at=created_at))
    db.session.flush()
    return promotion


def use_promotion(promotion: Promotion, order: Order, *, used_at: datetime | None = None) -> PromotionUsage:
    used_at = used_at or order.created_at or utcnow()
    usage = PromotionUsage(promotion_id=promotion.id, user_id=order.user_id, order_id=order.id,
                           discount_amount=order.discount_amount, used_at=used_at, created_at=used_at)
    db.session.add(usage)
    db.session.flush()
    return usage


# --- carts -------------------------------------------------------------------------------

def make_cart(user_id: str | None, lines: list[tuple], *, status: str = "active", coupon: Coupon | None = None,
              session_id: str | None = None, created_at: datetime | None = None,
              shipping=Decimal("5.00")) -> Cart:
    """A cart with items; its totals agree the same way an order's do."""
    created_at = created_at or utcnow()
    subtotal = lines_subtotal(lines)
    shipping = money(shipping) if lines else money(0)
    discount = coupon_discount(coupon, subtotal, shipping) if coupon else money(0)
    tax = money(subtotal * TAX_RATE)
    cart = Cart(user_id=user_id, session_id=session_id or f"sess_{random_tail(24)}", status=status,
                currency="USD", subtotal=subtotal, tax_amount=tax, shipping_amount=shipping,
                discount_amount=discount, total_amount=money(subtotal + tax + shipping - discount),
                coupon_code=coupon.code if coupon else None, expires_at=created_at + timedelta(days=30),
                converted_at=created_at + timedelta(hours=1) if status == "converted" else None,
                created_at=created_at, updated_at=created_at)
    db.session.add(cart)
    db.session.flush()
    for line in lines:
        product, quantity = line[0], line[1]
        variant = line[2] if len(line) > 2 else None
        unit = line_price(product, variant)
        db.session.add(CartItem(cart_id=cart.id, product_id=product.id, variant_id=variant.id if variant else None,
                                product_name=product.name, product_sku=variant.sku if variant else product.sku,
                                unit_price=unit, quantity=quantity, total_price=money(unit * quantity),
                                metadata_={}, created_at=created_at, updated_at=created_at))
    db.session.flush()
    return cart


# --- notifications -----------------------------------------------------------------------

def ensure_email_templates() -> dict[str, EmailTemplate]:
    """The workflows' templates (console/email_templates.py), installed where missing."""
    install_email_templates()
    return {t.name: t for t in db.session.scalars(select(EmailTemplate))}


def make_notification(user_id: str, template: EmailTemplate, variables: dict, *, status: str = NOTIFICATION_STATUSES.SENT,
                      created_at: datetime | None = None, error: str | None = None,
                      key: str | None = None) -> Notification:
    """An email rendered from ``template``; once it left the queue (any status but
    PENDING) its provider log row as well."""
    created_at = created_at or utcnow()
    sent = status != NOTIFICATION_STATUSES.PENDING
    rendered = render_notification(template, variables)
    notification = Notification(
        user_id=user_id, type=NOTIFICATION_TYPES.EMAIL, template_id=template.id, subject=rendered["subject"],
        body=rendered["body"], status=status, scheduled_at=created_at,
        metadata_={"template": template.name, "key": key or new_id(), "body_html": rendered["body_html"]},
        sent_at=created_at + timedelta(minutes=1) if sent and status != NOTIFICATION_STATUSES.FAILED else None,
        delivered_at=created_at + timedelta(minutes=2) if status == NOTIFICATION_STATUSES.DELIVERED else None,
        created_at=created_at, updated_at=created_at + timedelta(minutes=2 if sent else 0))
    db.session.add(notification)
    db.session.flush()
    if sent:
        db.session.add(NotificationLog(
            notification_id=notification.id, status=status, provider="smtp",
            provider_message_id=None if status == NOTIFICATION_STATUSES.FAILED else f"msg_{random_tail(20)}",
            provider_response={"status": status.lower()},
            error=((error or "550 mailbox unavailable")
                   if status in (NOTIFICATION_STATUSES.FAILED, NOTIFICATION_STATUSES.BOUNCED) else None),
            created_at=created_at + timedelta(minutes=1)))
        db.session.flush()
    return notification
