"""Demo data at scale: customers and orders written as plain rows, a batch at a time.

The builders (console.demo.builders) make rich, ORM-backed records: right for the few
thousand orders a demo shows off, far too slow for a million (each order is a dozen
flushes). Past those, console.demo.seed hands the rest to BulkSeeder, which writes the
same kinds of rows with the same invariants (totals agree across databases, history up
to the status, payments equal totals, refunds within the payment, shipments carrying the
order's tracking number, stock reserved by open orders) as plain tuples: ``COPY`` on
PostgreSQL, executemany elsewhere, one commit per batch and database, so memory stays
flat however many orders are asked for.

What the bulk part leaves out, being texture rather than volume: coupons, promotions,
notifications, sessions and sign-in history of the extra customers.
"""
from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from faker import Faker
from sqlalchemy import JSON, select

from console.demo import builders as b
from console.extensions import db
from console.models.auth import Role
from console.models.product import Product, ProductInventory, ProductVariant
from console.workflows.inventory import stock_status

BATCH_ORDERS = 4000
BATCH_CUSTOMERS = 5000
ZERO = Decimal("0.00")
SHIPPED = ("shipped", "delivered", "refunded")


class RowBatch:
    """Rows of one batch, per database and table, written and committed together."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list[tuple]]] = defaultdict(lambda: defaultdict(list))

    def add(self, bind: str, table: str, row: tuple) -> None:
        self.rows[bind][table].append(row)

    def write(self) -> None:
        for bind, tables in self.rows.items():
            metadata = db.metadatas[bind]
            # Parents before children: order_items refer to orders inside order_db.
            ordered = [t for t in metadata.sorted_tables if t.name in tables]
            engine = db.engines[bind]
            if engine.dialect.name == "postgresql":
                copy_rows(engine, [(t, tables[t.name]) for t in ordered])
            else:
                with engine.begin() as conn:
                    for table in ordered:
                        names = [c.name for c in table.columns]
                        conn.execute(table.insert(), [dict(zip(names, row)) for row in tables[table.name]])
        self.rows.clear()


def copy_rows(engine, tables) -> None:
    """COPY each table's rows in, then commit once (the fastest way into PostgreSQL)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        # Demo rows: losing the last batch in a crash is fine, waiting for the disk is not.
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL statement_timeout = 0")
        for table, rows in tables:
            json_at = [i for i, c in enumerate(table.columns) if isinstance(c.type, JSON)]
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                for row in rows:
                    if json_at:
                        row = list(row)
                        for i in json_at:
                            if row[i] is not None:
                                row[i] = json.dumps(row[i])
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


class BulkSeeder:
    """Adds ``customers`` customers and ``orders`` orders to a seeded demo.

    ``base`` is the DemoSeeder that ran first: its staff, catalog, shipping options,
    customers and number sequences are reused, so bulk orders also go to the rich
    customers and their numbers never clash with the rich orders'.
    """

    def __init__(self, base, customers: int, orders: int, seed: int, progress: Callable[[int], None]):
        self.base = base
        self.now = base.now
        self.customer_count = customers
        self.order_count = orders
        self.rng = random.Random(f"bulk-{seed}")
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed + 1)
        self.progress = progress
        self.numbers: b.HumanNumbers = base.numbers
        self.summary: Counter = Counter()
        self.reserved: Counter = Counter()
        head = "%020x" % self.rng.getrandbits(80)
        self.id_head = f"{head[:8]}-{head[8:12]}-4{head[13:16]}-{'89ab'[int(head[16], 16) & 3]}{head[17:20]}-"
        self.ids = 0
        self.sold: Counter = Counter()

    def new_id(self) -> str:
        """A UUID4 string: a seeded random head and a counting tail, so ids are distinct by
        construction and cost one format each (uuid.UUID is slow at this volume)."""
        self.ids += 1
        return self.id_head + "%012x" % self.ids

    @staticmethod
    def tail(row_id: str) -> str:
        """16 hex digits that differ for every id new_id() gives (provider ids are unique)."""
        return row_id[-17:].replace("-", "")

    def ago(self, low_days: float, high_days: float) -> datetime:
        return self.now - timedelta(minutes=int((low_days + self.rng.random() * (high_days - low_days)) * 1440))

    # -- run ---------------------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        self.load_reference()
        self.seed_customers()
        self.seed_orders()
        self.settle_stock()
        return dict(self.summary)

    def load_reference(self) -> None:
        base = self.base
        self.staff = {role: user.id for role, user in base.staff.items()}
        self.customer_role = db.session.scalar(select(Role.id).where(Role.name == "customer"))
        self.products = []
        for product in db.session.scalars(select(Product).where(Product.status == "active").order_by(Product.sku)):
            variants = [(v.id, v.name, v.sku, v.price) for v in db.session.scalars(
                select(ProductVariant).where(ProductVariant.product_id == product.id).order_by(ProductVariant.sku))]
            self.products.append((product.id, product.name, product.sku, product.price,
                                  Decimal(product.weight or 0), variants, product.stock_quantity > 0))
        self.in_stock = [p for p in self.products if p[6]]
        self.methods = {}
        for service in ("standard", "express", "overnight"):
            method = base.shipping.by_service(service)
            carrier = base.shipping.carrier_of(method)
            self.methods[service] = (method.id, carrier.id, carrier.code, method.base_price)
        # Each customer as the orders need them: id, first and last name, address, card.
        self.customers: list[tuple] = []
        for entry in base.customers:
            card = entry["cards"][0]
            a = entry["address"]
            self.customers.append((entry["user"].id, a["first_name"], a["last_name"],
                                   (a["address_line1"], a["city"], a["postal_code"]), card.id, card.provider))
        # Faker is slow per call: draw streets and cities from pools.
        self.streets = [self.fake.street_address() for _ in range(2000)]
        self.cities = [(self.fake.city(), self.fake.postcode()) for _ in range(500)]
        self.first_names = [self.fake.first_name() for _ in range(700)]
        self.last_names = [self.fake.last_name() for _ in range(1000)]
        self.password_hash = base.customers[0]["user"].password_hash  # the one hash every customer shares

    # -- customers ---------------------------------------------------------------------------

    def seed_customers(self) -> None:
        rng = self.rng
        start = len(self.customers) + 1
        for first_number in range(start, start + self.customer_count, BATCH_CUSTOMERS):
            batch = RowBatch()
            last_number = min(first_number + BATCH_CUSTOMERS, start + self.customer_count)
            for number in range(first_number, last_number):
                self.add_customer(batch, number, rng)
            batch.write()
            self.progress(last_number - first_number)
        self.summary["customers"] += self.customer_count

    def add_customer(self, batch: RowBatch, number: int, rng) -> None:
        first, last = rng.choice(self.first_names), rng.choice(self.last_names)
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        email = f"{local}{number}@example.net"
        joined = self.ago(30, 420)
        user_id = self.new_id()
        batch.add("auth", "users", (user_id, email, self.password_hash, True, True, 0, None, False, None,
                                    joined, joined))
        batch.add("auth", "user_roles", (self.new_id(), user_id, self.customer_role, joined))
        phone = f"+1 {rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
        batch.add("user", "user_profiles", (
            self.new_id(), user_id, email, first, last, phone, None,
            self.now - timedelta(days=rng.randint(18 * 365, 75 * 365)),
            rng.choice(("female", "male", "other", None)), "USD", "en", rng.random() < 0.45, True,
            rng.choice((40, 60, 80, 100)), joined, joined))
        street = rng.choice(self.streets)
        city, postcode = rng.choice(self.cities)
        batch.add("user", "user_addresses", (self.new_id(), user_id, "shipping", True, first, last, street, city,
                                             postcode, "US", joined, None))
        provider = rng.choices(("STRIPE", "PAYPAL", "MOCK"), (5, 3, 2))[0]
        paypal = provider == "PAYPAL"
        token = f"tok_{self.new_id().replace('-', '')[:20]}"
        last4 = None if paypal else f"{rng.randint(0, 9999):04d}"
        card_type = None if paypal else rng.choice(("visa", "mastercard", "amex"))
        batch.add("user", "user_payment_methods", (self.new_id(), user_id, "paypal" if paypal else "credit_card",
                                                   True, card_type, last4, token, joined, None))
        method_id = self.new_id()
        batch.add("payment", "payment_methods", (
            method_id, user_id, "PAYPAL" if paypal else "CREDIT_CARD", provider, token, last4, card_type,
            None if paypal else f"{rng.randint(1, 12):02d}", None if paypal else str(rng.randint(2027, 2031)),
            True, joined, None))
        self.customers.append((user_id, first, last, (street, city, postcode), method_id, provider))

    # -- orders ------------------------------------------------------------------------------

    def seed_orders(self) -> None:
        from console.demo.seed import ORDER_AGE_DAYS, ORDER_STATUSES, ORDER_WEIGHTS

        rng = self.rng
        regulars = self.customers[: max(1, len(self.customers) // 3)]
        done = 0
        while done < self.order_count:
            batch = RowBatch()
            size = min(BATCH_ORDERS, self.order_count - done)
            statuses = rng.choices(ORDER_STATUSES, ORDER_WEIGHTS, k=size)
            for status in statuses:
                created = self.ago(*ORDER_AGE_DAYS[status])
                pool = regulars if rng.random() < 0.6 else self.customers
                customer = pool[int(rng.random() * len(pool))]
                self.add_order(batch, status, created, customer, rng)
            batch.write()
            done += size
            self.progress(size)
        self.summary["orders"] += self.order_count

    def add_order(self, batch: RowBatch, status: str, created: datetime, customer: tuple, rng) -> None:
        from console.demo.seed import OPEN_STATUSES

        user_id, first, last, (street, city, postcode), method_id, provider = customer
        money = b.money
        pool = self.in_stock if status in OPEN_STATUSES else self.products
        order_id = self.new_id()
        items = []
        for product in rng.sample(pool, rng.choice((1, 1, 2, 2, 3, 4))):
            product_id, name, sku, price, weight, variants, _ = product
            quantity = rng.choice((1, 1, 1, 2, 3))
            variant = rng.choice(variants) if variants else None
            unit = variant[3] if variant and variant[3] is not None else price
            items.append((self.new_id(), product_id, variant[0] if variant else None,
                          name + (f" ({variant[1]})" if variant else ""), variant[2] if variant else sku,
                          unit, quantity, money(unit * quantity), weight * quantity))
            if status in OPEN_STATUSES:
                self.reserved[product_id] += quantity
            if status != "cancelled":
                self.sold[product_id] += quantity
        subtotal = money(sum(item[7] for item in items))
        roll = rng.random()
        service = "standard" if roll < 0.70 else "express" if roll < 0.95 else "overnight"
        method, carrier_id, carrier_code, base_price = self.methods[service]
        shipping = ZERO if service == "standard" and subtotal >= 150 else base_price
        tax = money(subtotal * b.TAX_RATE)
        total = money(subtotal + tax + shipping)
        number = self.numbers.order(created)
        after = b.ORDER_STEP_AFTER
        path = b.ORDER_PATH[: b.ORDER_PATH.index(status) + 1] if status in b.ORDER_PATH else \
            (*b.ORDER_PATH, "refunded") if status == "refunded" else ("pending", status)
        shipped_at = created + after["shipped"] if "shipped" in path else None
        estimated = shipped_at + timedelta(days=4) if shipped_at else None
        delivered_at = created + after["delivered"] if "delivered" in path else None
        cancelled_at = created + after["cancelled"] if status == "cancelled" else None
        paid = status not in ("pending", "cancelled")
        payment_id = self.new_id()
        payment_status = "refunded" if status == "refunded" else "paid" if paid else "pending"
        declined = status == "pending" and rng.random() < 0.3
        if declined:
            payment_status = "failed"
        tracking = self.numbers.tracking(carrier_code) if shipped_at else None
        changed_by = rng.choice((self.staff["support"], self.staff["warehouse"], "system"))
        batch.add("order", "orders", (
            order_id, number, user_id, status, payment_status, subtotal, tax, shipping, ZERO, total, "USD",
            payment_id, service, tracking, estimated, shipped_at, delivered_at, cancelled_at, {},
            created, created + after[status]))
        for item_id, product_id, variant_id, name, sku, unit, quantity, line_total, _ in items:
            batch.add("order", "order_items", (item_id, order_id, product_id, variant_id, name, sku, None, unit,
                                               quantity, line_total, created))
        batch.add("order", "order_shipping_addresses", (self.new_id(), order_id, first, last, street, city, postcode,
                                                        "US", created))
        previous = None
        for name in path:
            batch.add("order", "order_status_history", (self.new_id(), order_id, name, previous, changed_by,
                                                        b.ORDER_STEP_REASON.get(name, name), created + after[name]))
            previous = name

        # payment_db: the payment, its CHARGE (and VOID when cancelled, REFUND when refunded).
        payment_state = "SUCCEEDED" if paid else "CANCELLED" if status == "cancelled" else \
            "FAILED" if declined else "PENDING"
        if status == "refunded":
            payment_state = "REFUNDED"
        processed = created if paid else None
        batch.add("payment", "payments", (
            payment_id, order_id, user_id, method_id, payment_state, provider,
            f"{provider.lower()}_pay_{self.tail(payment_id)}", total, "USD", f"Order {number}", {"order_number": number},
            processed, created, cancelled_at or (created + after["refunded"] if status == "refunded" else created)))
        charge = "SUCCEEDED" if paid else "FAILED" if declined else "PENDING"
        charge_id = self.new_id()
        batch.add("payment", "payment_transactions", (
            charge_id, payment_id, "CHARGE", charge, f"txn_{self.tail(charge_id)}", total, "USD",
            {"decline_code": "insufficient_funds"} if declined else {}, processed, created))
        if status == "cancelled":
            void_id = self.new_id()
            batch.add("payment", "payment_transactions", (
                void_id, payment_id, "VOID", "SUCCEEDED", f"txn_{self.tail(void_id)}", total, "USD", {},
                cancelled_at, cancelled_at))
        if status == "refunded":
            self.add_refund(batch, payment_id, order_id, total, "Order refunded in full",
                            created + after["refunded"], {})
        if shipped_at:
            self.add_shipment(batch, order_id, carrier_id, carrier_code, method, service, tracking, rng, shipped_at,
                              estimated, delivered_at, base_price, sum(item[8] for item in items),
                              {"first_name": first, "last_name": last, "address_line1": street, "city": city,
                               "postal_code": postcode, "country": "US"})
        if status == "delivered":
            roll = rng.random()
            if roll < 0.13:
                self.add_return(batch, order_id, user_id, number, payment_id, items, subtotal, delivered_at, rng)
            elif roll < 0.20:
                amount = min(money(total * Decimal("0.15")), items[0][7])
                when = delivered_at + timedelta(days=2)
                self.add_refund(batch, payment_id, order_id, amount, "Goodwill: late delivery", when,
                                {"staff_id": self.staff["finance"]})
                self.summary["partial_refunds"] += 1

    def add_refund(self, batch: RowBatch, payment_id: str, order_id: str, amount: Decimal, reason: str,
                   when: datetime, metadata: dict) -> None:
        refund_id, transaction_id = self.new_id(), self.new_id()
        batch.add("payment", "payment_refunds", (refund_id, payment_id, order_id, reason, amount, "USD", "COMPLETED",
                                                 f"re_{self.tail(refund_id)}", metadata, when, when, when))
        batch.add("payment", "payment_transactions", (transaction_id, payment_id, "REFUND", "SUCCEEDED",
                                                      f"txn_{self.tail(transaction_id)}", amount, "USD", {}, when, when))
        self.summary["refunds"] += 1

    def add_shipment(self, batch, order_id, carrier_id, carrier_code, method_id, service, tracking, rng, shipped_at,
                     estimated, delivered_at, cost, weight, destination) -> None:
        state = "delivered" if delivered_at else rng.choices(("in_transit", "out_for_delivery", "exception"),
                                                             (70, 20, 10))[0]
        shipment_id = self.new_id()
        batch.add("shipping", "shipments", (
            shipment_id, order_id, carrier_id, method_id, tracking, state, b.money(weight), cost,
            b.WAREHOUSE_ADDRESS, destination, shipped_at, estimated, delivered_at, {"service": service},
            shipped_at, delivered_at or shipped_at))
        # The first and the latest tracking event (the builders write every step between).
        events = [("label_created", "Shipping label created", b.HUBS[0], shipped_at)]
        latest = {"in_transit": ("In transit", b.HUBS[2], shipped_at + timedelta(hours=20)),
                  "out_for_delivery": ("Out for delivery", destination["city"], shipped_at + timedelta(hours=30)),
                  "exception": ("Delivery exception: address could not be reached", destination["city"],
                                shipped_at + timedelta(hours=40)),
                  "delivered": ("Delivered", destination["city"], delivered_at)}[state]
        events.append((state, *latest))
        for event, description, location, when in events:
            batch.add("shipping", "shipment_tracking", (self.new_id(), shipment_id, event, location, description,
                                                        when, {"carrier": carrier_code}, when))
        self.summary["shipments"] += 1

    def add_return(self, batch, order_id, user_id, order_number, payment_id, items, subtotal, delivered_at,
                   rng) -> None:
        from console.demo.seed import RETURN_NOTES, RETURN_REASONS, RETURN_STATUSES, RETURN_WEIGHTS

        status = rng.choices(RETURN_STATUSES, RETURN_WEIGHTS)[0]
        after = b.RETURN_STEP_AFTER
        latest = min(self.now - after[status], delivered_at + timedelta(days=30))
        earliest = delivered_at + timedelta(days=1)
        if latest <= earliest:
            return  # delivered too recently for a return to have come this far
        requested = earliest + timedelta(minutes=rng.randint(0, int((latest - earliest).total_seconds() // 60)))
        rma = self.numbers.rma(requested)
        reason = rng.choice(RETURN_REASONS)
        refund_method = "original_payment" if status in ("processed", "closed") or rng.random() < 0.8 \
            else "store_credit"
        condition = rng.choice(("new", "used", "damaged", "defective"))
        lines = [(item, rng.randint(1, item[6])) for item in rng.sample(items, rng.randint(1, len(items)))]
        refunds = [b.money(item[5] * quantity) for item, quantity in lines]  # no discount on bulk orders
        amount = b.money(sum(refunds))
        path = b.return_path(status)
        stamps = {stamp: requested + after[name] for name, stamp in b.RETURN_STAMPS.items() if name in path}
        staff = self.staff["warehouse"] if status == "received" else self.staff["support"]
        request_id = self.new_id()
        batch.add("return", "return_requests", (
            request_id, order_id, user_id, rma, status, reason,
            rng.choice(RETURN_NOTES) if rng.random() < 0.5 else None, refund_method, amount, "USD", requested,
            stamps.get("approved_at"), stamps.get("rejected_at"), stamps.get("received_at"),
            stamps.get("processed_at"), stamps.get("closed_at"), {"order_number": order_number}, requested,
            requested + after[status]))
        for (item, quantity), refund in zip(lines, refunds):
            item_id, product_id, variant_id, name, sku, unit = item[:6]
            batch.add("return", "return_items", (self.new_id(), request_id, item_id, product_id, variant_id, name,
                                                 sku, quantity, unit, refund, reason, condition, requested, None))
        previous = None
        for name in path:
            batch.add("return", "return_status_history", (
                self.new_id(), request_id, name, previous, user_id if name == "pending" else staff,
                b.RETURN_STEP_NOTE[name], requested + after[name]))
            previous = name
        if "approved" in path:
            approved = stamps["approved_at"]
            authorization_id = self.new_id()
            batch.add("return", "return_authorizations", (
                authorization_id, request_id, rma, b.WAREHOUSE_ADDRESS,
                f"Pack the items securely and write {rma} on the parcel.",
                self.numbers.tracking("ups") if "in_transit" in path else None, approved + timedelta(days=30),
                approved, approved))
            if "in_transit" in path:
                events = [("in_transit", "Parcel handed to the carrier", after["in_transit"])]
                if "received" in path:
                    events.append(("delivered", "Delivered to the returns department", after["received"]))
                for event, description, offset in events:
                    batch.add("return", "return_tracking", (
                        self.new_id(), authorization_id, event, b.WAREHOUSE_ADDRESS["city"], description,
                        requested + offset, {"carrier": "ups"}, requested + offset))
        if "processed" in path:
            processed = stamps["processed_at"]
            metadata = {"return_request_id": request_id, "rma_number": rma, "staff_id": staff}
            self.add_refund(batch, payment_id, order_id, amount, f"Return {rma}", processed, metadata)
            batch.add("return", "return_refunds", (
                self.new_id(), request_id, payment_id, order_id, user_id, refund_method, amount, "USD", "completed",
                f"Return {rma}", processed, processed, processed))
        self.summary["returns"] += 1

    # -- stock -------------------------------------------------------------------------------

    def settle_stock(self) -> None:
        """Add the bulk orders to the stock the rich part settled: open orders hold stock,
        and the warehouse restocked whatever they hold beyond what was on hand."""
        inventory = {row.product_id: row for row in db.session.scalars(select(ProductInventory))}
        for product in db.session.scalars(select(Product)):
            row = inventory[product.id]
            held = (row.reserved_quantity or 0) + self.reserved[product.id]
            if held > row.quantity:
                extra = held - row.quantity + self.rng.randint(0, 10)
                row.quantity += extra
                first = db.session.scalar(select(ProductVariant).where(ProductVariant.product_id == product.id)
                                          .order_by(ProductVariant.sku).limit(1))
                if first is not None:
                    first.stock_quantity += extra
                    first.stock_status = stock_status(first.stock_quantity)
            row.reserved_quantity = held
            row.available_quantity = row.quantity - held
            product.stock_quantity = row.quantity
            product.stock_status = stock_status(row.quantity)
            product.purchase_count = (product.purchase_count or 0) + self.sold[product.id]
        db.session.commit()


def merge_summaries(*summaries: Iterable[dict]) -> dict[str, int]:
    total: Counter = Counter()
    for summary in summaries:
        total.update(summary)
    return dict(total)
