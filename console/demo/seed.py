"""Demo data for all ten databases: ``flask --app wsgi console seed-demo``.

Everything is built with console.demo.builders, so the demo holds the same invariants
as the tests' data. A run is repeatable: Faker and random.Random are seeded with
``seed``, ids come from a seeded generator and "now" is a fixed date unless the caller
passes another (see console.models.types.repeatable), so the same seed and "now" give
the same rows (bcrypt salts aside).

Times are laid out so each record is plausible for its status: an order delivered
four days after it was placed is at least five days old, a closed return was
requested at least ten days ago, and nothing happens after "now".
"""
from __future__ import annotations

import logging
import random
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import accumulate, zip_longest

from faker import Faker
from flask import current_app
from sqlalchemy import select

from config import BIND_KEYS
from console.demo import builders as b
from console.demo.provider import DEMO_PROVIDER, install as install_demo_provider
from console.extensions import db
from console.lookups import DatabaseUnavailable
from console.models.auth import EmailVerificationToken, LoginHistory, PasswordResetToken, User
from console.models.notification import NOTIFICATION_STATUSES, NotificationPreference
from console.models.order import ORDER_STATUSES, OrderNote
from console.models.discount import COUPON_TYPES, PROMOTION_STATUSES, PROMOTION_TYPES
from console.models.payment import (AUDIT_EVENT_TYPES, PAYMENT_PROVIDERS, PAYMENT_STATUSES, REFUND_STATUSES,
                                    TRANSACTION_STATUSES, WEBHOOK_STATUSES, PaymentAuditLog, PaymentIdempotencyKey,
                                    PaymentRefund, PaymentTransaction, PaymentWebhook)
from console.models.product import (
    ProductCategory, ProductComparison, ProductImage, ProductInventory, ProductPriceHistory, ProductQuestion,
    ProductRecentlyViewed, ProductReview, ProductSearchHistory, ProductStockAlert, ProductTag,
)
from console.models.returns import ReturnRequest
from console.models.types import clock_at, repeatable
from console.models.user import (
    UserActivity, UserEventLog, UserNotificationPreference, UserRecentlyViewedProduct, UserWishlistItem,
)
from console.permissions import STAFF_ROLES
from console.staff import StaffUser
from console.workflows.inventory import LOW_STOCK, stock_status
from console.workflows.promotions import rules_for
from console.workflows.signin import hash_password

# "Now" for the demo: fixed, so repeated runs give the same data.
DEMO_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
DEMO_STAFF_PASSWORD = "console-demo-1"
# Customers cannot sign in to the console; they still get a real bcrypt hash.
DEMO_CUSTOMER_PASSWORD = "customer-demo-1"

# How old (days) an order in each status can be: its history must fit before "now"
# (the steps follow builders.ORDER_STEP_AFTER). Used where a status is chosen first.
ORDER_AGE_DAYS = {"pending": (0.02, 2), "confirmed": (0.05, 0.24), "processing": (0.26, 0.98),
                  "shipped": (1.05, 3.95), "delivered": (4.1, 180), "cancelled": (0.2, 180), "refunded": (13, 180)}
# Orders go back this many days, placed at a steady pace (see OrderClock).
ORDER_DAYS = 180
# What becomes of orders besides delivery: cancelled within hours, refunded in full
# (from 12 days on), or still waiting for the customer's payment (a declined card).
CANCELLED_SHARE, REFUNDED_SHARE, UNPAID_SHARE = 0.06, 0.05, 0.02
# Orders per day relative to a Monday: weekends are busier.
WEEKDAY_PACE = (1.0, 0.96, 0.95, 0.98, 1.05, 1.18, 1.12)


class OrderClock:
    """When orders were placed, and how far each has come by "now".

    Orders arrive at a steady pace over ORDER_DAYS (busier at weekends, a little busier
    each month), and an order's status follows from its age: an hour-old order is still
    pending, a day-old one shipped, a week-old one delivered (builders.ORDER_STEP_AFTER),
    save the shares cancelled, refunded or unpaid. So revenue per day is even, with no
    pile of open orders in the last days."""

    def __init__(self, now: datetime, rng: random.Random):
        self.now, self.rng = now, rng
        pace = []
        for age in range(ORDER_DAYS):
            day = (now - timedelta(days=age)).weekday()
            pace.append(WEEKDAY_PACE[day] * (1 + 0.25 * (ORDER_DAYS - age) / ORDER_DAYS))
        self.cumulative = list(accumulate(pace))
        self.step_after = [(name, b.ORDER_STEP_AFTER[name]) for name in reversed(b.ORDER_PATH)]

    def placed(self) -> datetime:
        """A minute-precise moment an order was placed (at least ten minutes ago)."""
        rng = self.rng
        day = bisect_right(self.cumulative, rng.random() * self.cumulative[-1])
        minutes = max(10, int((day + rng.random()) * 1440))
        return self.now - timedelta(minutes=minutes)

    def status(self, created: datetime) -> str:
        age = self.now - created
        roll = self.rng.random()
        if roll < CANCELLED_SHARE and age >= b.ORDER_STEP_AFTER["cancelled"]:
            return "cancelled"
        if roll < CANCELLED_SHARE + REFUNDED_SHARE and age >= b.ORDER_STEP_AFTER["refunded"] + timedelta(hours=1):
            return "refunded"
        if roll < CANCELLED_SHARE + REFUNDED_SHARE + UNPAID_SHARE and age <= timedelta(days=2):
            return "pending"
        for name, after in self.step_after:
            if age >= after:
                return name
        return "pending"


def eligible(joined: list[datetime], created: datetime) -> int:
    """How many customers (sorted by when they joined) had an account when an order was
    placed at ``created``: orders only go to them. At least the first customer, who
    joined before any order (DemoSeeder.seed_customers)."""
    return max(1, bisect_right(joined, created - timedelta(minutes=5)))


def pick_customer(rng: random.Random, customers: list, count: int):
    """One of the first ``count`` customers: a third of them (the longest-standing)
    place most of the orders, as in a real shop."""
    if rng.random() < 0.6:
        return customers[int(rng.random() * max(1, count // 3))]
    return customers[int(rng.random() * count)]


OPEN_STATUSES = ("pending", "confirmed", "processing")

RETURN_STATUSES = ("pending", "approved", "rejected", "in_transit", "received", "processed", "closed")
RETURN_WEIGHTS = (15, 12, 8, 12, 10, 18, 25)
RETURN_REASONS = ("defective", "wrong_item", "not_as_described", "changed_mind", "other")

# category -> (children, [(product stem, price, weight kg, variant kind)])
CATALOG = {
    "Apparel": (("Tops", "Outerwear"), [
        ("T-Shirt", "19.00", "0.20", "size"), ("Hoodie", "49.00", "0.60", "size"),
        ("Rain Jacket", "89.00", "0.70", "size"), ("Wool Socks", "14.00", "0.10", None),
        ("Chino Trousers", "59.00", "0.50", "size")]),
    "Footwear": (("Running", "Boots"), [
        ("Running Shoes", "99.00", "0.90", "shoe"), ("Leather Boots", "149.00", "1.40", "shoe"),
        ("Canvas Sneakers", "55.00", "0.80", "shoe")]),
    "Home & Kitchen": (("Cookware", "Table"), [
        ("Chef's Knife", "79.00", "0.30", None), ("Cast Iron Skillet", "45.00", "2.50", None),
        ("French Press", "35.00", "0.60", None), ("Ceramic Mug Set", "29.00", "1.20", "color"),
        ("Linen Napkins", "24.00", "0.30", "color")]),
    "Electronics": (("Audio", "Accessories"), [
        ("Wireless Earbuds", "129.00", "0.10", "color"), ("Bluetooth Speaker", "79.00", "0.60", "color"),
        ("USB-C Charger", "29.00", "0.20", None), ("Smart Watch", "249.00", "0.10", "color"),
        ("Desk Lamp", "39.00", "1.10", None)]),
    "Outdoors": (("Camping", "Hiking"), [
        ("Camping Tent", "199.00", "3.20", None), ("Sleeping Bag", "119.00", "1.60", None),
        ("Water Bottle", "25.00", "0.40", "color"), ("Daypack", "69.00", "0.80", "color"),
        ("Trekking Poles", "59.00", "0.50", None)]),
    "Beauty": (("Skin", "Hair"), [
        ("Face Cream", "32.00", "0.20", None), ("Shampoo Bar", "12.00", "0.10", None),
        ("Lip Balm Trio", "9.00", "0.05", None)]),
}
ADJECTIVES = ("Classic", "Everyday", "Trail", "Urban", "Pro", "Essential", "Heritage", "Lightweight")
VARIANTS = {"size": ("S", "M", "L", "XL"), "shoe": ("40", "42", "44", "46"), "color": ("Black", "Sand", "Forest")}
TAGS = ("bestseller", "new", "gift", "eco", "limited", "staff-pick", "sale")

REVIEW_TEXTS = (
    (5, "Exactly as described", "Great quality and it arrived quickly. Would buy again."),
    (5, "Love it", "Use it every day. Well made and looks even better in person."),
    (4, "Very good", "Does the job well; the sizing runs a little small."),
    (4, "Solid purchase", "Good value for the price, packaging could be better."),
    (3, "It's fine", "Decent, but not as sturdy as I expected."),
    (2, "Disappointed", "Started to wear out after a few weeks."),
    (1, "Not for me", "Arrived damaged; support sorted out a replacement."),
)
QUESTIONS = (
    ("Is this machine washable?", "Yes, at 30°C on a gentle cycle."),
    ("Does it come with a warranty?", "Every item has a two-year warranty."),
    ("What are the dimensions?", "See the size chart in the product images."),
    ("Can I return it if it doesn't fit?", "Yes, within 30 days of delivery."),
    ("Is it suitable as a gift?", None),
)
DESCRIPTIONS = (
    "Made to last, with a two-year warranty.",
    "Designed in-house and tested by our team for a full season.",
    "Responsibly sourced materials, plastic-free packaging.",
    "Our best-seller in its category, now in more options.",
)
RETURN_NOTES = (
    "The seam came apart after the first wash.",
    "Ordered two sizes, keeping the one that fits.",
    "The colour is different from the photos.",
    "Arrived with a scratch on the front.",
    "Received the wrong model.",
)
ORDER_NOTES = (
    "Customer asked to leave the parcel with a neighbour.",
    "Called the customer to confirm the delivery address.",
    "Gift order: no prices on the packing slip.",
    "Customer asked about delivery time; told 3-5 days.",
    "Flagged by fraud check, verified by phone.",
)

Progress = Callable[[int], None]


def total_steps(customers: int, orders: int) -> int:
    """The progress bar's length: one step per product, customer and order, plus stages."""
    products = sum(len(items) for _, items in CATALOG.values()) * 2
    return products + customers + orders + 5


def database_is_empty() -> bool:
    return db.session.scalar(select(User.id).limit(1)) is None


def delete_all_rows() -> None:
    """Empty every table of the ten databases (children before parents)."""
    db.session.remove()
    for key in BIND_KEYS:
        with db.engines[key].begin() as conn:
            for table in reversed(db.metadatas[key].sorted_tables):
                conn.execute(table.delete())


# Up to these counts every customer and order is built with the builders, with every
# kind of record around it; past them the rest is written in bulk (console.demo.bulk).
RICH_CUSTOMERS = 200
RICH_ORDERS = 1000


def seed_demo(customers: int = 200, orders: int = 1000, seed: int = 1, now: datetime = DEMO_NOW,
              progress: Progress | None = None) -> dict[str, int]:
    """Write the demo data set and commit; returns a count of what was made."""
    from console.demo.bulk import BulkSeeder, merge_summaries

    progress = progress or (lambda steps: None)
    install_demo_provider()  # the demo's payments refund through it, whatever the settings
    rich_customers, rich_orders = min(customers, RICH_CUSTOMERS), min(orders, RICH_ORDERS)
    with repeatable(seed, now):
        seeder = DemoSeeder(rich_customers, rich_orders, seed, now, progress)
        summary = seeder.run()
        if customers > rich_customers or orders > rich_orders:
            db.session.commit()
            bulk = BulkSeeder(seeder, customers - rich_customers, orders - rich_orders, seed, progress)
            summary = merge_summaries(summary, bulk.run())
    db.session.commit()
    return summary


class DemoSeeder:
    def __init__(self, customers: int, orders: int, seed: int, now: datetime, progress: Progress):
        self.customer_count = customers
        self.order_count = orders
        self.now = now
        self.rng = random.Random(seed)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.progress = progress
        self.summary: Counter = Counter()
        self.numbers = b.HumanNumbers()

    # -- helpers -----------------------------------------------------------------------------

    def ago(self, low_days: float, high_days: float) -> datetime:
        """A minute-precise moment between ``high_days`` and ``low_days`` before now."""
        minutes = self.rng.randint(int(low_days * 1440), int(high_days * 1440))
        return self.now - timedelta(minutes=minutes)

    def since(self, customer: dict, low_days: float, high_days: float) -> datetime:
        """Like ago(), but not before ``customer`` joined."""
        return self.between(max(customer["joined"], self.now - timedelta(days=high_days)),
                            self.now - timedelta(days=low_days))

    def between(self, start: datetime, end: datetime) -> datetime:
        if end <= start:
            return start
        return start + timedelta(minutes=self.rng.randint(0, int((end - start).total_seconds() // 60)))

    # -- stages --------------------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        self.seed_staff()
        self.seed_reference_data()
        self.seed_catalog()
        self.seed_promotions()
        self.seed_customers()
        self.seed_orders()
        self.seed_returns_and_refunds()
        self.settle_stock()
        self.seed_carts()
        self.seed_engagement()
        db.session.flush()
        self.seed_refund_states()
        return dict(self.summary)

    def seed_staff(self) -> None:
        self.staff = {role: b.make_staff(role, password=DEMO_STAFF_PASSWORD) for role in STAFF_ROLES}
        for user in self.staff.values():
            user.created_at = self.now - timedelta(days=400)
        self.summary["staff"] = len(self.staff)
        self.progress(1)

    def seed_reference_data(self) -> None:
        start = self.now - timedelta(days=400)
        self.templates = b.ensure_email_templates()
        for template in self.templates.values():
            template.created_at = template.updated_at = start
        self.shipping = b.ensure_shipping_options(created_at=start)
        day = timedelta(days=1)
        self.coupons = [
            b.make_coupon("WELCOME10", COUPON_TYPES.PERCENTAGE, "10", name="Welcome 10%", per_user=1, starts_at=start,
                          description="10% off a first order."),
            b.make_coupon("SAVE15", COUPON_TYPES.FIXED_AMOUNT, "15", name="$15 off $100", minimum="100", starts_at=start),
            b.make_coupon("FREESHIP", COUPON_TYPES.FREE_SHIPPING, "0", name="Free shipping over $50", minimum="50",
                          starts_at=start),
            b.make_coupon("VIP20", COUPON_TYPES.PERCENTAGE, "20", name="VIP 20%", maximum="50", starts_at=start),
            b.make_coupon("FLASH25", COUPON_TYPES.PERCENTAGE, "25", name="Flash sale 25%", usage_limit=25,
                          starts_at=self.now - 60 * day, ends_at=self.now + 30 * day),
            b.make_coupon("SUMMER2026", COUPON_TYPES.PERCENTAGE, "15", name="Summer sale", starts_at=self.now - 150 * day,
                          ends_at=self.now - 60 * day, is_active=False),
            b.make_coupon("HOLIDAY30", COUPON_TYPES.PERCENTAGE, "30", name="Holiday preview", maximum="60",
                          starts_at=self.now + 20 * day, ends_at=self.now + 60 * day),
        ]
        self.summary["coupons"] = len(self.coupons)
        self.progress(1)

    def seed_catalog(self) -> None:
        rng = self.rng
        created = self.now - timedelta(days=365)
        self.products: list = []
        self.variants: dict[str, list] = {}
        self.categories: dict[str, object] = {}
        number = 0
        for position, (name, (children, items)) in enumerate(CATALOG.items()):
            parent = b.make_category(name, sort_order=position, created_at=created)
            parent.image_url = f"https://cdn.example.com/categories/{parent.slug}.jpg"
            kids = [b.make_category(child, slug=f"{parent.slug}-{child.lower()}", parent=parent, sort_order=i,
                                    created_at=created) for i, child in enumerate(children)]
            self.categories[name] = parent
            for stem, price, weight, kind in items:
                for adjective in rng.sample(ADJECTIVES, 2):
                    number += 1
                    self.progress(1)
                    product = self.make_catalog_product(number, f"{adjective} {stem}", name, price, weight, kind)
                    db.session.add(ProductCategory(product_id=product.id, category_id=parent.id, created_at=created))
                    db.session.add(ProductCategory(product_id=product.id, category_id=rng.choice(kids).id,
                                                   created_at=created))
        self.summary["products"] = len(self.products)
        db.session.flush()

    def seed_promotions(self) -> None:
        """One promotion of each type and status, written in the shape the promotion form
        writes (console.workflows.promotions), so each opens in its form. ``percent``
        is what the demo's orders take off when they use it."""
        start, day = self.now - timedelta(days=400), timedelta(days=1)

        def products_in(category: str, count: int) -> list[str]:
            parent = self.categories[category]
            return [p.id for p in self.products if p.status == "active"
                    and p.sku.startswith(parent.name[:3].upper())][:count]

        scope = {"product_ids": [], "category_ids": []}
        offers = [
            ("Spend more, save more", PROMOTION_TYPES.VOLUME_DISCOUNT, PROMOTION_STATUSES.ACTIVE, start, None, 5,
             {"shape": 1, "scope": scope, "tiers": [{"min_quantity": 3, "percent_off": "5.00"},
                                                    {"min_quantity": 6, "percent_off": "8.00"}]}),
            ("Apparel: buy 2 get 1 free", PROMOTION_TYPES.BUY_X_GET_Y, PROMOTION_STATUSES.ACTIVE, self.now - 90 * day, None, 8,
             {"shape": 1, "buy": {"quantity": 2, "product_ids": [], "category_ids": [self.categories["Apparel"].id]},
              "get": {"quantity": 1, "product_ids": [], "percent_off": "100.00"}}),
            ("Kitchen bundle", PROMOTION_TYPES.BUNDLE, PROMOTION_STATUSES.PAUSED, self.now - 120 * day, None, 10,
             {"shape": 1, "bundle": {"product_ids": products_in("Home & Kitchen", 2)}, "percent_off": "10.00"}),
            ("Summer clearance", PROMOTION_TYPES.VOLUME_DISCOUNT, PROMOTION_STATUSES.EXPIRED, self.now - 150 * day,
             self.now - 60 * day, 10,
             {"shape": 1, "scope": scope, "tiers": [{"min_quantity": 2, "percent_off": "10.00"}]}),
            ("Holiday gift sets", PROMOTION_TYPES.BUNDLE, PROMOTION_STATUSES.DRAFT, self.now + 20 * day, self.now + 60 * day, 12,
             {"shape": 1, "bundle": {"product_ids": products_in("Electronics", 2)},
              "price": {"amount": "199.00", "currency": "USD"}}),
        ]
        self.promotions, self.promotion_percent = [], {}
        for name, kind, status, starts_at, ends_at, percent, config in offers:
            promotion = b.make_promotion(name, kind, status, starts_at=starts_at, ends_at=ends_at,
                                         configuration=config, rules=rules_for(kind, config))
            self.promotions.append(promotion)
            self.promotion_percent[promotion.id] = Decimal(percent)
        self.summary["promotions"] = len(self.promotions)

    def make_catalog_product(self, number: int, name: str, category: str, price: str, weight: str, kind):
        rng = self.rng
        created = self.ago(200, 365)
        # About one product in ten is sold out and one in seven runs low: the inventory
        # screens and stock alerts have something to show.
        roll = rng.random()
        stock = 0 if roll < 0.1 else rng.randint(1, LOW_STOCK) if roll < 0.25 else rng.randint(20, 240)
        base = Decimal(price) + rng.choice((0, 0, 5, 10))
        sku = f"{category[:3].upper()}-{number:04d}"
        product = b.make_product(sku, name, base, stock, created_at=created, weight=weight,
                                 description=f"{name}. {rng.choice(DESCRIPTIONS)}")
        product.slug = f"{name.lower().replace(' ', '-').replace(chr(39), '')}-{number}"
        product.badges = rng.sample(["new", "bestseller", "eco"], rng.randint(0, 2))
        product.view_count = rng.randint(50, 5000)
        if number % 11 == 0:
            product.status, product.is_visible = "draft", False
        if kind:
            names = VARIANTS[kind]
            # Variant stock adds up to the product's, which the inventory row holds.
            shares = [stock // len(names)] * len(names)
            shares[0] += stock - sum(shares)
            self.variants[product.id] = [b.make_variant(product, v, {kind: v}, stock=share)
                                         for v, share in zip(names, shares)]
        for position in range(rng.randint(1, 3)):
            db.session.add(ProductImage(product_id=product.id, url=f"https://cdn.example.com/products/{sku}/{position + 1}.jpg",
                                        alt_text=f"{name}, view {position + 1}", sort_order=position,
                                        is_primary=position == 0, created_at=created))
        for tag in rng.sample(TAGS, rng.randint(1, 3)):
            db.session.add(ProductTag(product_id=product.id, tag=tag, created_at=created))
        # Price history ends at today's price; a third of the products had a markdown.
        changed = rng.random() < 0.33
        first_price = b.money(base * Decimal("1.2")) if changed else base
        db.session.add(ProductPriceHistory(product_id=product.id, price=first_price, changed_by="system",
                                           reason="Initial price", created_at=created))
        if changed:
            product.compare_at_price = first_price
            db.session.add(ProductPriceHistory(product_id=product.id, price=base, compare_at_price=first_price,
                                               changed_by=self.staff["marketing"].id, reason="Seasonal markdown",
                                               created_at=self.between(created, self.now - timedelta(days=30))))
        self.products.append(product)
        return product

    def seed_customers(self) -> None:
        rng, fake = self.rng, self.fake
        password_hash = hash_password(DEMO_CUSTOMER_PASSWORD)  # one hash for all: bcrypt is slow on purpose
        self.customers: list = []
        # Customer 1 joined first (before any order), and so on: orders go to customers
        # who had joined by then (eligible()).
        joins = sorted(self.ago(30, 420) for _ in range(self.customer_count))
        joins[0] = min(joins[0], self.now - timedelta(days=ORDER_DAYS + 30))
        for number, joined in enumerate(joins, start=1):
            self.progress(1)
            first, last = fake.first_name(), fake.last_name()
            local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
            user, profile = b.make_customer(f"{local}{number}@example.net", first, last,
                                            phone=fake.numerify("+1 ###-###-####"), password_hash=password_hash,
                                            created_at=joined)
            user.updated_at = joined
            profile.gender = rng.choice(("female", "male", "other", None))
            profile.date_of_birth = self.now - timedelta(days=rng.randint(18 * 365, 75 * 365))
            profile.avatar_url = f"https://cdn.example.com/avatars/{number}.png" if rng.random() < 0.4 else None
            profile.newsletter_subscribed = rng.random() < 0.45
            profile.profile_completion_score = rng.choice((40, 60, 80, 100))
            profile.updated_at = joined
            address = {"first_name": first, "last_name": last, "address_line1": fake.street_address(),
                       "city": fake.city(), "postal_code": fake.postcode(), "country": "US"}
            b.make_address(user.id, type="shipping", is_default=True, created_at=joined, **address)
            if rng.random() < 0.4:
                b.make_address(user.id, first, last, fake.street_address(), fake.city(), fake.postcode(),
                               type="billing", is_default=False, created_at=joined)
            cards = [b.make_saved_card(user.id, rng.choices((*PAYMENT_PROVIDERS, DEMO_PROVIDER), (5, 3, 2))[0],
                                       last4=f"{rng.randint(0, 9999):04d}",
                                       card_type=rng.choice(("visa", "mastercard", "amex")),
                                       expiry_month=f"{rng.randint(1, 12):02d}",
                                       expiry_year=str(rng.randint(2027, 2031)), is_default=i == 0,
                                       created_at=joined)
                     for i in range(rng.choice((1, 1, 2)))]
            self.seed_sign_ins(user, joined)
            db.session.add(UserEventLog(event_id=f"evt_{user.id}", event_type="user.created", source="auth-service",
                                        payload=f'{{"userId": "{user.id}"}}', processed=True, created_at=joined))
            if rng.random() < 0.3:
                db.session.add(NotificationPreference(user_id=user.id, notification_type="marketing",
                                                      email_enabled=profile.newsletter_subscribed, sms_enabled=False,
                                                      push_enabled=rng.random() < 0.5, created_at=joined))
                db.session.add(UserNotificationPreference(user_id=user.id, channel="email", category="marketing",
                                                          enabled=profile.newsletter_subscribed, frequency="weekly",
                                                          created_at=joined))
            self.customers.append({"user": user, "profile": profile, "address": address, "cards": cards,
                                   "coupons": set(), "joined": joined})
        self.summary["customers"] = len(self.customers)
        db.session.flush()

    def seed_sign_ins(self, user, joined: datetime) -> None:
        rng, fake = self.rng, self.fake
        devices = (("iPhone", "mobile", "iOS", "Safari"), ("Pixel", "mobile", "Android", "Chrome"),
                   ("MacBook", "desktop", "macOS", "Safari"), ("Windows PC", "desktop", "Windows", "Edge"),
                   ("iPad", "tablet", "iPadOS", "Safari"))
        sessions = []
        for _ in range(rng.choice((1, 1, 2))):
            name, kind, os_name, browser = rng.choice(devices)
            when = self.between(joined, self.now - timedelta(hours=1))
            sessions.append(b.make_session(user, device_name=f"{user.email.split('.')[0].title()}'s {name}",
                                           device_type=kind, os=os_name, browser=browser,
                                           active=rng.random() < 0.8, created_at=when))
        for _ in range(rng.randint(1, 4)):
            session = rng.choice(sessions)
            db.session.add(LoginHistory(user_id=user.id, device_id=session.device_id,
                                        status="success" if rng.random() < 0.85 else "failed",
                                        ip_address=fake.ipv4_public(),
                                        created_at=self.between(joined, self.now)))
        roll = rng.random()
        if roll < 0.05:
            # Unverified e-mail: the verification link is still out.
            user.email_verified = False
            db.session.add(EmailVerificationToken(token=f"ev_{user.id}", user_id=user.id, verified=False,
                                                  expires_at=self.now + timedelta(days=2), created_at=joined))
        elif roll < 0.08:
            db.session.add(PasswordResetToken(token=f"pr_{user.id}", user_id=user.id, used=rng.random() < 0.5,
                                              expires_at=self.now + timedelta(hours=1),
                                              created_at=self.now - timedelta(hours=2)))
        elif roll < 0.1:
            # Locked after repeated failures: the customers screen can unlock it.
            user.failed_login_attempts = 5
            user.locked_until = self.now + timedelta(minutes=30)
            for _ in range(5):
                db.session.add(LoginHistory(user_id=user.id, status="failed", ip_address=fake.ipv4_public(),
                                            created_at=self.now - timedelta(minutes=rng.randint(1, 30))))

    def seed_orders(self) -> None:
        rng = self.rng
        self.orders: list[dict] = []
        sellable = [p for p in self.products if p.status == "active"]
        in_stock = [p for p in sellable if p.stock_quantity > 0]
        clock = OrderClock(self.now, rng)
        joined = [c["joined"] for c in self.customers]
        for index in range(self.order_count):
            self.progress(1)
            if index < len(ORDER_STATUSES):  # the first few cover every status
                status = ORDER_STATUSES[index]
                created = self.ago(*ORDER_AGE_DAYS[status])
            else:
                created = clock.placed()
                status = clock.status(created)
            customer = pick_customer(rng, self.customers, eligible(joined, created))
            # Open orders hold stock, so they only contain products that have some.
            pool = in_stock if status in OPEN_STATUSES else sellable
            lines = []
            for product in rng.sample(pool, rng.choice((1, 1, 2, 2, 3, 4))):
                variant = rng.choice(self.variants[product.id]) if product.id in self.variants else None
                lines.append((product, rng.choice((1, 1, 1, 2, 3)), variant))
            subtotal = b.lines_subtotal(lines)
            method = self.shipping.by_service(rng.choices(("standard", "express", "overnight"), (70, 25, 5))[0])
            shipping = b.money(0) if method.service_type == "standard" and subtotal >= 150 else method.base_price
            coupon, promotion, discount = self.choose_discount(customer, status, created, subtotal, shipping, lines)
            bundle = b.make_order(customer["user"], lines, status=status, created_at=created,
                                  order_number=self.numbers.order(created),
                                  shipping=shipping, discount=discount, address=customer["address"],
                                  shipping_method=method.service_type, payment_method=rng.choice(customer["cards"]),
                                  placed_by=customer["user"].id)
            order = bundle.order
            if coupon is not None:
                b.use_coupon(coupon, order)
            if promotion is not None:
                b.use_promotion(promotion, order)
            shipment = None
            if order.shipped_at is not None:
                shipment_status = "delivered" if order.delivered_at else rng.choices(
                    ("in_transit", "out_for_delivery", "exception"), (70, 20, 10))[0]
                weight = sum(Decimal(p.weight or 0) * q for p, q, _ in lines)
                carrier = self.shipping.carrier_of(method)
                shipment = b.make_shipment(order, carrier, method, status=shipment_status,
                                           destination=customer["address"], weight=weight,
                                           tracking_number=self.numbers.tracking(carrier.code))
            # The last change an order saw is its current status (linking payment and
            # shipment are updates that would otherwise stamp "now").
            order.updated_at = order.created_at + b.ORDER_STEP_AFTER[status]
            self.seed_order_extras(bundle, customer, status)
            self.orders.append({"bundle": bundle, "customer": customer, "shipment": shipment})
        self.summary["orders"] = len(self.orders)
        db.session.flush()

    def choose_discount(self, customer, status, created, subtotal, shipping, lines):
        """At most one discount per order: a coupon (one in five) or a promotion (one in
        fifteen), valid on the order's date and within its limits."""
        rng = self.rng
        roll = rng.random()
        if status != "cancelled" and roll < 0.2:
            coupon = rng.choice(self.coupons)
            valid = (coupon.starts_at is None or coupon.starts_at <= created) and \
                    (coupon.ends_at is None or created <= coupon.ends_at)
            under_limit = coupon.usage_limit is None or coupon.usage_count < coupon.usage_limit
            first_use = coupon.usage_limit_per_user is None or coupon.id not in customer["coupons"]
            discount = b.coupon_discount(coupon, subtotal, shipping)
            if valid and under_limit and first_use and discount > 0:
                customer["coupons"].add(coupon.id)
                return coupon, None, discount
        elif status != "cancelled" and roll < 0.27:
            promotion = rng.choice(self.promotions)
            valid = promotion.status in (PROMOTION_STATUSES.ACTIVE, PROMOTION_STATUSES.EXPIRED) and promotion.starts_at <= created and \
                (promotion.ends_at is None or created <= promotion.ends_at)
            if valid and sum(q for _, q, _ in lines) >= 2:
                percent = self.promotion_percent[promotion.id]
                return None, promotion, b.money(subtotal * percent / 100)
        return None, None, b.money(0)

    def seed_order_extras(self, bundle, customer, status: str) -> None:
        rng = self.rng
        order, payment = bundle.order, bundle.payment
        user = customer["user"]
        db.session.add(UserActivity(user_id=user.id, activity_type="order_placed", entity_type="order",
                                    entity_id=order.id, metadata_={"order_number": order.order_number},
                                    created_at=order.created_at))
        db.session.add(PaymentIdempotencyKey(key=f"checkout-{order.order_number}", payment_id=payment.id,
                                             user_id=user.id, expires_at=order.created_at + timedelta(days=1),
                                             created_at=order.created_at))
        if status == "pending" and rng.random() < 0.3:
            # A declined card: the order waits for the customer to pay another way.
            order.payment_status = "failed"
            payment.status = PAYMENT_STATUSES.FAILED
            for transaction in db.session.scalars(select(PaymentTransaction).where(
                    PaymentTransaction.payment_id == payment.id)):
                transaction.status = TRANSACTION_STATUSES.FAILED
                transaction.provider_response = {"decline_code": "insufficient_funds"}
        captured = payment.status in (PAYMENT_STATUSES.SUCCEEDED, PAYMENT_STATUSES.REFUNDED)
        declined = payment.status == PAYMENT_STATUSES.FAILED
        db.session.add(PaymentAuditLog(event_type=AUDIT_EVENT_TYPES.PAYMENT_FAILED if declined
                                       else AUDIT_EVENT_TYPES.PAYMENT_PROCESSED, user_id=user.id, payment_id=payment.id,
                                       order_id=order.id, amount=payment.amount, currency=payment.currency,
                                       ip_address=self.fake.ipv4_public(), success=not declined,
                                       error="card_declined" if declined else None,
                                       timestamp=order.created_at))
        if captured and payment.payment_provider in PAYMENT_PROVIDERS:
            # The providers' own webhook event names.
            event = ("payment_intent.succeeded" if payment.payment_provider == PAYMENT_PROVIDERS.STRIPE
                     else "PAYMENT.CAPTURE.COMPLETED")
            db.session.add(PaymentWebhook(provider=payment.payment_provider, event_type=event,
                                          provider_event_id=f"evt_{payment.provider_payment_id}",
                                          payload={"id": payment.provider_payment_id, "amount": str(payment.amount)},
                                          status=WEBHOOK_STATUSES.PROCESSED, payment_id=payment.id,
                                          processed_at=order.created_at + timedelta(seconds=30),
                                          created_at=order.created_at + timedelta(seconds=20)))
        if rng.random() < 0.25:
            db.session.add(OrderNote(order_id=order.id, note=rng.choice(ORDER_NOTES),
                                     created_by=self.staff["support"].id, is_internal=rng.random() < 0.8,
                                     created_at=order.created_at + timedelta(hours=2)))
        template_name = {"confirmed": "order_status_changed", "processing": "order_status_changed",
                         "shipped": "order_shipped", "delivered": "order_shipped", "cancelled": "order_cancelled",
                         "refunded": "refund_issued"}.get(status)
        if template_name:
            profile = customer["profile"]
            variables = {"first_name": profile.first_name, "order_number": order.order_number, "status": status,
                         "carrier": "the carrier", "tracking_number": order.tracking_number or "",
                         "reason": "", "amount": order.total_amount, "currency": order.currency}
            self.notify(user.id, template_name, variables, order.updated_at, key=f"order:{order.id}:{template_name}")

    def notify(self, user_id: str, template_name: str, variables: dict, when: datetime, key: str) -> None:
        number = self.summary["notifications"]
        # The last six hours are still queued; a steady few failed or bounced, so the
        # notification screens always have something to retry.
        if when > self.now - timedelta(hours=6):
            status = NOTIFICATION_STATUSES.PENDING
        elif number % 15 == 4:
            status = NOTIFICATION_STATUSES.FAILED
        elif number % 40 == 9:
            status = NOTIFICATION_STATUSES.BOUNCED
        else:
            status = NOTIFICATION_STATUSES.SENT if self.rng.random() < 0.25 else NOTIFICATION_STATUSES.DELIVERED
        b.make_notification(user_id, self.templates[template_name], variables, status=status,
                            created_at=min(when, self.now), key=key)
        self.summary["notifications"] += 1

    def seed_returns_and_refunds(self) -> None:
        rng = self.rng
        delivered = [o for o in self.orders if o["bundle"].order.status == "delivered"]
        rng.shuffle(delivered)
        used: set[str] = set()
        wanted = max(len(RETURN_STATUSES), self.order_count // 14)
        support, warehouse = self.staff["support"].id, self.staff["warehouse"].id
        # The first few cover every status, and one more received return paid through
        # STRIPE or PAYPAL, whose refund waits for the provider (seed_refund_states).
        covered = (*RETURN_STATUSES, "received")
        for index in range(max(wanted, len(covered))):
            status = covered[index] if index < len(covered) else rng.choices(RETURN_STATUSES, RETURN_WEIGHTS)[0]
            provider_refund = index == len(covered) - 1
            needed = b.RETURN_STEP_AFTER[status] + timedelta(days=1)
            candidate = next((o for o in delivered if o["bundle"].order.id not in used
                              and o["bundle"].order.delivered_at <= self.now - needed
                              and (not provider_refund or o["bundle"].payment.payment_provider != DEMO_PROVIDER)), None)
            if candidate is None:
                continue
            order = candidate["bundle"].order
            used.add(order.id)
            items = rng.sample(candidate["bundle"].items, rng.randint(1, len(candidate["bundle"].items)))
            lines = [(item, rng.randint(1, item.quantity)) for item in items]
            latest = min(self.now - b.RETURN_STEP_AFTER[status], order.delivered_at + timedelta(days=30))
            requested = self.between(order.delivered_at + timedelta(days=1), latest)
            reason = rng.choice(RETURN_REASONS)
            refund_method = "original_payment" if status in ("processed", "closed") or rng.random() < 0.8 \
                or provider_refund else "store_credit"
            returned = b.make_return(order, lines, status=status, reason=reason, refund_method=refund_method,
                                     condition=rng.choice(("new", "used", "damaged", "defective")),
                                     requested_at=requested, staff_id=warehouse if status == "received" else support,
                                     notes=rng.choice(RETURN_NOTES) if rng.random() < 0.5 else None,
                                     numbers=self.numbers)
            self.summary["returns"] += 1
            name = {"approved": "return_approved", "rejected": "return_rejected", "in_transit": "return_in_transit",
                    "received": "return_received", "processed": "return_processed",
                    "closed": "return_closed"}.get(status)
            if name:
                request = returned.request
                variables = {"first_name": candidate["customer"]["profile"].first_name,
                             "rma_number": request.rma_number, "order_number": order.order_number,
                             "amount": request.refund_amount, "currency": request.currency,
                             "instructions": "Print the label in your account.", "reason": "outside the policy"}
                self.notify(order.user_id, name, variables, request.updated_at, key=f"return:{request.id}:{name}")
        # Goodwill partial refunds on delivered orders that have no return.
        for candidate in delivered:
            order, payment = candidate["bundle"].order, candidate["bundle"].payment
            if order.id in used or rng.random() >= 0.08:
                continue
            amount = min(b.money(order.total_amount * Decimal("0.15")), candidate["bundle"].items[0].total_price)
            b.make_refund(payment, amount, order=order, reason="Goodwill: late delivery",
                          created_at=order.delivered_at + timedelta(days=2),
                          metadata={"staff_id": self.staff["finance"].id})
            db.session.add(PaymentAuditLog(event_type=AUDIT_EVENT_TYPES.REFUND_COMPLETED, user_id=self.staff["finance"].id,
                                           payment_id=payment.id, order_id=order.id, amount=amount,
                                           currency=payment.currency, success=True,
                                           timestamp=order.delivered_at + timedelta(days=2)))
            self.summary["partial_refunds"] += 1
        db.session.flush()

    def seed_refund_states(self) -> None:
        """Refunds in the states the refunds screen sorts by, made by the refunds workflow
        itself so their recorded steps are the real ones: pending STRIPE and PAYPAL refunds
        (one for a received return), one the payment service is processing, one it has
        completed that the console has not followed yet (for Refresh status and
        ``console sync-refunds``), one that failed, and one that needs attention (a later
        database write refused). The workflow commits as it goes, so this stage runs last."""
        from console.workflows import refunds, returns

        rng = self.rng
        finance, support = (StaffUser(id=self.staff[r].id, email=self.staff[r].email, roles=frozenset({r}))
                            for r in ("finance", "support"))
        bundles = {entry["bundle"].order.id: entry["bundle"] for entry in self.orders}
        taken = set(db.session.scalars(select(PaymentRefund.order_id))) | \
            set(db.session.scalars(select(ReturnRequest.order_id)))
        free = [bundle for bundle in bundles.values() if bundle.order.status == "delivered" and bundle.order.id not in taken]
        by_provider = {name: [bundle for bundle in free if bundle.payment.payment_provider == name]
                       for name in (*PAYMENT_PROVIDERS, DEMO_PROVIDER)}
        # STRIPE and PAYPAL take turns, so both show up even in a small data set.
        turns = [bundle for pair in zip_longest(*(by_provider[name] for name in PAYMENT_PROVIDERS)) for bundle in pair if bundle]
        reasons = iter(("Goodwill: parcel arrived late", "Goodwill: missing gift wrap", "Price match",
                        "Goodwill: courier damaged the box", "Delivery fee refund", "Goodwill: wrong size sent"))

        def goodwill(bundle, hours_ago: float):
            share = Decimal(rng.choice(("0.10", "0.15", "0.20")))
            amount = min(b.money(bundle.order.total_amount * share), bundle.items[0].total_price)
            with clock_at(self.now - timedelta(hours=hours_ago)):
                refund = refunds.refund_order(finance, bundle.order.id, amount, reason=next(reasons),
                                              key=f"demo:{bundle.order.order_number}").refund
            self.summary["workflow_refunds"] += 1
            return refund

        def service_marks(refund, status: str) -> None:
            # What the payment service writes on the row once it has dealt with the refund.
            refund.status = status
            if status != REFUND_STATUSES.FAILED:
                refund.provider_refund_id = f"re_{refund.id.replace('-', '')[:16]}"
            db.session.commit()

        states = (REFUND_STATUSES.PENDING, REFUND_STATUSES.PENDING, REFUND_STATUSES.FAILED,
                  REFUND_STATUSES.PROCESSING, REFUND_STATUSES.COMPLETED)
        for state, bundle in zip(states, turns):
            refund = goodwill(bundle, rng.uniform(2, 30))
            if state != REFUND_STATUSES.PENDING:
                service_marks(refund, state)
            if state == REFUND_STATUSES.FAILED:
                with clock_at(self.now - timedelta(hours=1)):
                    refunds.sync_refund(finance, refund.id)

        # Received returns refunded to the original payment: with STRIPE or PAYPAL the
        # refund waits for the payment service; with the demo's provider, return_db refuses the write after
        # the money step, so the refund needs attention (no such return: a goodwill refund
        # whose customer email notification_db refuses).
        received = list(db.session.scalars(select(ReturnRequest).where(
            ReturnRequest.status == "received", ReturnRequest.refund_method == "original_payment")
            .order_by(ReturnRequest.rma_number)))
        deferred_return = next((r for r in received if bundles[r.order_id].payment.payment_provider != DEMO_PROVIDER), None)
        mock_return = next((r for r in received if bundles[r.order_id].payment.payment_provider == DEMO_PROVIDER), None)
        if deferred_return is not None:
            with clock_at(self.now - timedelta(hours=rng.uniform(1, 20))):
                returns.process(support, deferred_return.id)
            self.summary["workflow_refunds"] += 1
        step, target = (("return", mock_return) if mock_return is not None
                        else ("notify", next(iter(by_provider[DEMO_PROVIDER]), None)))
        if target is None:
            return

        def refused(actor, refund):
            raise DatabaseUnavailable("return" if step == "return" else "notification")

        real_step, refunds.STEPS[step] = refunds.STEPS[step], refused
        # The workflow logs the refused step as a warning; here it is the point, not news.
        log_level = current_app.logger.level
        current_app.logger.setLevel(logging.ERROR)
        try:
            if step == "return":
                with clock_at(self.now - timedelta(hours=rng.uniform(1, 20))):
                    returns.process(support, target.id)
                self.summary["workflow_refunds"] += 1
            else:
                goodwill(target, rng.uniform(1, 20))
        finally:
            refunds.STEPS[step] = real_step
            current_app.logger.setLevel(log_level)

    def settle_stock(self) -> None:
        """Inventory agrees with the orders: open orders hold stock (reserved), and
        purchase counts add up what was sold."""
        reserved: Counter = Counter()
        sold: Counter = Counter()
        for entry in self.orders:
            bundle = entry["bundle"]
            for item in bundle.items:
                if bundle.order.status in OPEN_STATUSES:
                    reserved[item.product_id] += item.quantity
                if bundle.order.status != "cancelled":
                    sold[item.product_id] += item.quantity
        inventory = {row.product_id: row for row in db.session.scalars(select(ProductInventory))}
        for product in self.products:
            row = inventory[product.id]
            held = reserved[product.id]
            if held > row.quantity:
                # More on order than on hand: the warehouse restocked to cover it.
                extra = held - row.quantity + self.rng.randint(0, 10)
                row.quantity += extra
                if product.id in self.variants:
                    self.variants[product.id][0].stock_quantity += extra
                    self.variants[product.id][0].stock_status = stock_status(self.variants[product.id][0].stock_quantity)
            row.reserved_quantity = held
            row.available_quantity = row.quantity - held
            product.stock_quantity = row.quantity
            product.stock_status = stock_status(row.available_quantity)
            product.purchase_count = sold[product.id]
        self.progress(1)

    def seed_carts(self) -> None:
        rng = self.rng
        sellable = [p for p in self.products if p.status == "active"]
        usable = [c for c in self.coupons if c.is_active and c.starts_at <= self.now
                  and (c.ends_at is None or c.ends_at >= self.now)]
        count = max(3, len(self.customers) // 2)
        for index in range(count):
            customer = rng.choice(self.customers)
            guest = index % 10 == 9  # a guest cart: only a session, no user
            status = rng.choices(("active", "abandoned", "converted"), (50, 35, 15))[0]
            lines = []
            for product in rng.sample(sellable, rng.randint(1, 4)):
                variant = rng.choice(self.variants[product.id]) if product.id in self.variants else None
                lines.append((product, rng.randint(1, 2), variant))
            # One cart in five carries a coupon code (always one that exists).
            coupon = usable[index % len(usable)] if usable and index % 5 == 1 else None
            b.make_cart(None if guest else customer["user"].id, lines, status=status, coupon=coupon,
                        created_at=self.since(customer, 0.1, 40))
        self.summary["carts"] = count
        self.progress(1)

    def seed_engagement(self) -> None:
        """Reviews, questions, stock alerts, wishlists, recently viewed, comparisons, searches."""
        rng = self.rng
        reviewed: set[tuple[str, str]] = set()
        for entry in self.orders:
            order = entry["bundle"].order
            if order.status != "delivered" or rng.random() > 0.3:
                continue
            for item in entry["bundle"].items[:1]:
                if (order.user_id, item.product_id) in reviewed:
                    continue
                reviewed.add((order.user_id, item.product_id))
                rating, title, comment = rng.choice(REVIEW_TEXTS)
                when = self.between(order.delivered_at, self.now)
                db.session.add(ProductReview(product_id=item.product_id, user_id=order.user_id, rating=rating,
                                             title=title, comment=comment, is_verified_purchase=True,
                                             is_approved=rng.random() < 0.9, helpful_count=rng.randint(0, 40),
                                             created_at=when, updated_at=when))
                self.summary["reviews"] += 1
        for product in self.products:
            for _ in range(rng.choice((0, 0, 1, 2))):
                customer = rng.choice(self.customers)
                question, answer = rng.choice(QUESTIONS)
                when = self.since(customer, 1, 150)
                db.session.add(ProductQuestion(product_id=product.id, user_id=customer["user"].id, question=question,
                                               answer=answer, answered_by=self.staff["support"].id if answer else None,
                                               upvotes=rng.randint(0, 25), is_approved=True, created_at=when,
                                               updated_at=when))
            if product.stock_quantity <= LOW_STOCK:
                for customer in rng.sample(self.customers, min(len(self.customers), rng.randint(1, 3))):
                    variants = self.variants.get(product.id)
                    db.session.add(ProductStockAlert(product_id=product.id, user_id=customer["user"].id,
                                                     email=customer["user"].email,
                                                     variant_id=rng.choice(variants).id if variants else None,
                                                     notified=False, expires_at=self.now + timedelta(days=60),
                                                     created_at=self.since(customer, 1, 30)))
        sellable = [p for p in self.products if p.status == "active"]
        for customer in self.customers:
            user = customer["user"]
            if rng.random() < 0.3:
                for product in rng.sample(sellable, rng.randint(1, 3)):
                    when = self.since(customer, 1, 90)
                    db.session.add(UserWishlistItem(
                        user_id=user.id, product_id=product.id, product_name=product.name,
                        product_image_url=f"https://cdn.example.com/products/{product.sku}/1.jpg",
                        product_price=str(product.price), notes=None, created_at=when, updated_at=when))
            if rng.random() < 0.5:
                for product in rng.sample(sellable, rng.randint(1, 5)):
                    when = self.since(customer, 0.05, 20)
                    # Both services keep their own record of the view.
                    db.session.add(UserRecentlyViewedProduct(user_id=user.id, product_id=product.id,
                                                             product_name=product.name, product_price=product.price,
                                                             viewed_at=when))
                    db.session.add(ProductRecentlyViewed(product_id=product.id, user_id=user.id, viewed_at=when))
        for customer in rng.sample(self.customers, min(10, len(self.customers))):
            picks = rng.sample(sellable, 3)
            when = self.since(customer, 1, 60)
            db.session.add(ProductComparison(user_id=customer["user"].id, name=f"Compare {picks[0].name}",
                                             product_ids=[p.id for p in picks], created_at=when, updated_at=when))
        for _ in range(max(10, len(self.customers) // 3)):
            product = rng.choice(sellable)
            term = product.name.split(" ", 1)[1].lower()
            customer = rng.choice(self.customers) if rng.random() < 0.8 else None
            db.session.add(ProductSearchHistory(
                product_id=product.id if rng.random() < 0.7 else None,
                user_id=customer["user"].id if customer else None,
                query=term, filters={"in_stock": rng.random() < 0.5}, results_count=rng.randint(0, 12),
                created_at=self.since(customer, 0.05, 60) if customer else self.ago(0.05, 60)))
        self.progress(1)

