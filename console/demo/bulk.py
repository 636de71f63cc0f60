"""Demo data at scale: customers and orders written as plain rows, a batch at a time.

The builders (console.demo.builders) make rich, ORM-backed records: right for the few
thousand orders a demo shows off, far too slow for a million (each order is a dozen
flushes). Past those, console.demo.seed hands the rest to BulkSeeder, which writes the
same kinds of rows with the same invariants (totals agree across databases, history up
to the status, payments equal totals, refunds within the payment, shipments carrying the
order's tracking number, stock reserved by open orders) as plain tuples, one batch and
one commit per database at a time, so memory stays flat however many orders are asked for.

On PostgreSQL a batch goes in as ``COPY`` text, made by a formatter compiled once per
table and sent by a background thread while the next batch is built; the tables it
fills lose their secondary indexes and foreign keys for the load and get them back,
built in one pass each, at the end (a million orders would otherwise update fifteen
indexes on ``orders`` row by row). Elsewhere (SQLite: small demos and the tests) a
batch is an executemany per table.

Every string written comes from ids, numbers, fixed words or the cleaned name and
address pools (plain()), so the ``COPY`` text needs no escaping.

What the bulk part leaves out, being texture rather than volume: coupons, promotions,
notifications, sessions and sign-in history of the extra customers.
"""
from __future__ import annotations

import json
import queue
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

from faker import Faker
from sqlalchemy import JSON, Boolean, Integer, Numeric, String, Text, select, text

from config import BIND_KEYS
from console.demo import builders as b
from console.demo.provider import DEMO_PROVIDER
from console.extensions import db
from console.models.auth import Role
from console.models.payment import (PAYMENT_METHOD_TYPES, PAYMENT_PROVIDERS, PAYMENT_STATUSES, REFUND_STATUSES,
                                    TRANSACTION_STATUSES, TRANSACTION_TYPES)
from console.models.product import Product, ProductInventory, ProductVariant
from console.models.types import UTCDateTime
from console.workflows.inventory import stock_status

BATCH_ORDERS = 5000
# Of the delivered orders, the share with a return, and the share with a goodwill refund.
RETURN_SHARE, GOODWILL_SHARE = 0.08, 0.065
BATCH_CUSTOMERS = 10000
ZERO = Decimal("0.00")
SHIPPED = ("shipped", "delivered", "refunded")
RECEIVED = ("received", "processed", "closed")
# The tables the bulk part fills; on PostgreSQL they load without secondary indexes.
BULK_TABLES = {
    "auth": ("users", "user_roles"),
    "user": ("user_profiles", "user_addresses", "user_payment_methods"),
    "order": ("orders", "order_items", "order_shipping_addresses", "order_status_history"),
    "payment": ("payment_methods", "payments", "payment_transactions", "payment_refunds"),
    "shipping": ("shipments", "shipment_tracking"),
    "return": ("return_requests", "return_items", "return_status_history", "return_authorizations",
               "return_tracking", "return_refunds"),
}


class JsonText(str):
    """A JSON value already encoded as ``COPY`` text reads it (the same few are written a
    million times): JSON's own escapes keep their backslash."""


def json_text(value) -> JsonText:
    return JsonText(json.dumps(value).replace("\\", "\\\\"))


def plain(text: str) -> str:
    """``text`` without the characters ``COPY`` text would have to escape."""
    return " ".join(text.replace("\\", "/").split())


NULL = "\\N"


class Stamps(dict):
    """Timestamps as PostgreSQL reads them, each formatted once (they repeat: a minute
    holds many orders, and their steps are whole hours and days later)."""

    def __missing__(self, value):
        if len(self) > 400_000:  # a seed's minutes come and go: keep memory flat
            self.clear()
        text = self[value] = NULL if value is None else value.isoformat(" ")
        return text


def _copy_cell(value) -> str:
    if value is None:
        return NULL
    if isinstance(value, JsonText):
        return value
    if isinstance(value, (dict, list)):
        return json_text(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat(" ")
    return str(value)


def copy_formatter(table, dialect, stamps: Stamps) -> Callable[[tuple], str]:
    """One ``COPY`` text line per row tuple of ``table``: a single f-string compiled for
    the table's column types (a generic per-value conversion costs three times as much)."""
    cells = []
    for i, column in enumerate(table.columns):
        kind = column.type.dialect_impl(dialect) if not isinstance(column.type, UTCDateTime) else column.type
        if isinstance(kind, UTCDateTime):
            cells.append(f"T[r[{i}]]")
        elif isinstance(kind, JSON):
            cells.append(f"(r[{i}] if type(r[{i}]) is J else C(r[{i}]))")
        elif isinstance(kind, Boolean):
            cells.append(f"B[r[{i}]]")
        elif isinstance(kind, (String, Text, Numeric, Integer)):
            cells.append(f"(N if r[{i}] is None else r[{i}])")
        else:
            cells.append(f"C(r[{i}])")
    source = "lambda r: f'" + "\\t".join("{" + cell + "}" for cell in cells) + "\\n'"
    return eval(source, {"T": stamps, "J": JsonText, "C": _copy_cell, "N": NULL,  # noqa: S307 (built above)
                         "B": {True: "t", False: "f", None: NULL}})


class RowBatch:
    """Rows of one batch, per database and table, written and committed together."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list[tuple]]] = defaultdict(lambda: defaultdict(list))

    def add(self, bind: str, table: str, row: tuple) -> None:
        self.rows[bind][table].append(row)

    def table(self, bind: str, table: str) -> list[tuple]:
        """The list to append ``table``'s rows to (saves a look-up per row in hot loops)."""
        return self.rows[bind][table]


class BatchWriter:
    """Writes RowBatches: on PostgreSQL as ``COPY`` text, each database's from its own
    background thread and connection (one commit per batch and database), so the ten
    databases take their rows side by side while the caller builds the next batch;
    elsewhere at once, an executemany per table."""

    def __init__(self) -> None:
        self.stamps = Stamps()
        self.formatters: dict[tuple[str, str], Callable] = {}
        # The writer threads have no app context: they get the engines from here.
        self.engines = {key: db.engines[key] for key in BIND_KEYS}
        self.postgres = {key for key, engine in self.engines.items() if engine.dialect.name == "postgresql"}
        self.copiers: dict[str, CopyThread] = {}

    def write(self, batch: RowBatch) -> None:
        for bind, tables in batch.rows.items():
            metadata = db.metadatas[bind]
            # Parents before children: order_items refer to orders inside order_db.
            ordered = [t for t in metadata.sorted_tables if t.name in tables]
            if bind in self.postgres:
                self.send(bind, [(t, self.copy_text(bind, t, tables[t.name])) for t in ordered])
            else:
                with self.engines[bind].begin() as conn:
                    for table in ordered:
                        names = [c.name for c in table.columns]
                        conn.execute(table.insert(), [dict(zip(names, _python_row(row))) for row in tables[table.name]])
        batch.rows.clear()

    def copy_text(self, bind: str, table, rows: list[tuple]) -> bytes:
        key = (bind, table.name)
        line = self.formatters.get(key)
        if line is None:
            line = self.formatters[key] = copy_formatter(table, self.engines[bind].dialect, self.stamps)
        return "".join(map(line, rows)).encode()

    def send(self, bind: str, tables) -> None:
        copier = self.copiers.get(bind)
        if copier is None:
            copier = self.copiers[bind] = CopyThread(self.engines[bind])
        for other in self.copiers.values():
            other.raise_failure()
        copier.put(tables)

    def close(self) -> None:
        """Wait until every batch is written; re-raise what a writer met."""
        copiers, self.copiers = list(self.copiers.values()), {}
        for copier in copiers:
            copier.finish()
        for copier in copiers:
            copier.raise_failure()


class CopyThread:
    """One database's writer: ``COPY`` each table's text, commit, next batch."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"demo-copy-{engine.url.database}", daemon=True)
        self.thread.start()

    def put(self, tables) -> None:
        while True:
            self.raise_failure()
            try:
                self.queue.put(tables, timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def raise_failure(self) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure

    def _run(self) -> None:
        raw = None
        try:
            raw = self.engine.raw_connection()
            cursor = raw.cursor()
            # Demo rows: losing the last batch in a crash is fine, waiting for the disk is not.
            cursor.execute("SET synchronous_commit = off")
            cursor.execute("SET statement_timeout = 0")
            raw.commit()
            while (tables := self.queue.get()) is not None:
                for table, text in tables:
                    columns = ", ".join(f'"{c.name}"' for c in table.columns)
                    with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                        copy.write(text)
                raw.commit()
        except BaseException as exc:  # handed to the caller's thread
            self.failure = exc
            while self.queue.get() is not None:  # let the caller finish putting
                pass
        finally:
            if raw is not None:
                try:  # the connection goes back to the pool as it came
                    raw.rollback()
                    for setting in ("synchronous_commit", "statement_timeout"):
                        raw.cursor().execute(f"RESET {setting}")
                    raw.commit()
                finally:
                    raw.close()


def _python_row(row: tuple) -> tuple:
    """A row for SQLAlchemy: encoded JSON decoded again."""
    return tuple(json.loads(v.replace("\\\\", "\\")) if type(v) is JsonText else v for v in row)


@contextmanager
def bulk_load_tables(binds: Iterable[str]):
    """On PostgreSQL, the bulk tables of ``binds`` without their secondary indexes and
    foreign keys while inside; afterwards each is built again in one pass (the exact
    definitions read from the database before they were dropped) and the tables are
    analyzed. Unique and primary keys stay, so duplicates are still refused as they come.
    An error or Ctrl-C still rebuilds them; a seeder killed outright leaves them missing:
    ``console create-indexes`` builds the indexes again (the keys only guard the
    services' own writes)."""
    saved = {}
    try:
        for bind in binds:
            engine = db.engines[bind]
            if engine.dialect.name != "postgresql" or bind not in BULK_TABLES:
                continue
            saved[bind] = _drop_secondary(engine, BULK_TABLES[bind])
        yield
    finally:
        _restore(saved)


def _drop_secondary(engine, tables: tuple[str, ...]) -> tuple[list, list, tuple]:
    with engine.begin() as conn:
        indexes = conn.execute(text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relname = ANY(:tables) AND t.relnamespace = current_schema()::regnamespace "
            "AND NOT i.indisprimary AND NOT i.indisunique ORDER BY c.relname"), {"tables": list(tables)}).all()
        keys = conn.execute(text(
            "SELECT t.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid WHERE c.contype = 'f' AND t.relname = ANY(:tables) "
            "AND t.relnamespace = current_schema()::regnamespace ORDER BY c.conname"), {"tables": list(tables)}).all()
        for table, name, _ in keys:
            conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
    return list(indexes), list(keys), tables


def _restore(saved: dict) -> None:
    """Build the dropped indexes and keys again: each one a task, the biggest tables
    first, three at a time (the work is PostgreSQL's, one backend per task), then
    analyze the tables."""
    from concurrent.futures import ThreadPoolExecutor

    engines = {bind: db.engines[bind] for bind in saved}  # the threads have no app context
    tasks = []
    for bind, (indexes, keys, tables) in saved.items():
        with engines[bind].connect() as conn:
            rows = dict(conn.execute(text("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:tables) "
                                          "AND relnamespace = current_schema()::regnamespace"),
                                     {"tables": list(tables)}).all())
        size = {name: rows.get(name, 0) for name in tables}
        tasks += [(size.get(_table_of(definition), 0), bind, definition) for _, definition in indexes]
        tasks += [(size.get(table, 0), bind, f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
                  for table, name, definition in keys]
    tasks.sort(key=lambda task: -task[0])

    def run(bind: str, statement: str) -> None:
        with engines[bind].connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SET statement_timeout = 0"))
            conn.execute(text("SET maintenance_work_mem = '512MB'"))
            try:
                conn.execute(text(statement))
            finally:
                conn.execute(text("RESET statement_timeout"))
                conn.execute(text("RESET maintenance_work_mem"))

    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(run, bind, statement) for _, bind, statement in tasks]:
            future.result()
        analyzed = [pool.submit(run, bind, f'ANALYZE "{table}"') for bind, (_, _, tables) in saved.items()
                    for table in tables]
        for future in analyzed:
            future.result()


def _table_of(definition: str) -> str:
    """The table a ``CREATE INDEX … ON [schema.]table …`` definition is on."""
    target = definition.split(" ON ", 1)[1].split(" ", 1)[0]
    return target.rsplit(".", 1)[-1].strip('"')


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
        self.writer = BatchWriter()
        with bulk_load_tables(BULK_TABLES):
            try:
                self.seed_customers()
                self.seed_orders()
            finally:
                self.writer.close()  # every batch is in before the indexes are built
        self.settle_stock()
        return dict(self.summary)

    def load_reference(self) -> None:
        base = self.base
        self.staff = {role: user.id for role, user in base.staff.items()}
        self.customer_role = db.session.scalar(select(Role.id).where(Role.name == "customer"))
        self.products = []
        for product in db.session.scalars(select(Product).where(Product.status == "active").order_by(Product.sku)):
            variants = [(v.id, plain(v.name), plain(v.sku), v.price) for v in db.session.scalars(
                select(ProductVariant).where(ProductVariant.product_id == product.id).order_by(ProductVariant.sku))]
            self.products.append((product.id, plain(product.name), plain(product.sku), product.price,
                                  Decimal(product.weight or 0), variants, product.stock_quantity > 0))
        self.in_stock = [p for p in self.products if p[6]]
        self.methods = {}
        for service in ("standard", "express", "overnight"):
            method = base.shipping.by_service(service)
            carrier = base.shipping.carrier_of(method)
            self.methods[service] = (method.id, carrier.id, carrier.code, method.base_price,
                                     json_text({"service": service}), json_text({"carrier": carrier.code}))
        self.warehouse = json_text(b.WAREHOUSE_ADDRESS)
        self.ups = json_text({"carrier": "ups"})
        self.empty = json_text({})
        self.declined = json_text({"decline_code": "insufficient_funds"})
        # Each customer as the orders need them (see customer()), the demo's own first.
        self.customers: list[tuple] = []
        for entry in base.customers:
            card = entry["cards"][0]
            a = entry["address"]
            self.customers.append(self.customer(entry["user"].id, plain(a["first_name"]), plain(a["last_name"]),
                                                plain(a["address_line1"]), plain(a["city"]), plain(a["postal_code"]),
                                                card.id, card.provider, entry["joined"]))
        # Faker is slow per call: draw streets and cities from pools.
        self.streets = [plain(self.fake.street_address()) for _ in range(2000)]
        self.cities = [(plain(self.fake.city()), plain(self.fake.postcode())) for _ in range(500)]
        self.first_names = [plain(self.fake.first_name()) for _ in range(700)]
        self.last_names = [plain(self.fake.last_name()) for _ in range(1000)]
        self.password_hash = base.customers[0]["user"].password_hash  # the one hash every customer shares
        db.session.commit()  # ends the read: dropping the keys waits for every open transaction

    @staticmethod
    def customer(user_id, first, last, street, city, postcode, method_id, provider, joined) -> tuple:
        destination = json_text({"first_name": first, "last_name": last, "address_line1": street, "city": city,
                                 "postal_code": postcode, "country": "US"})
        return (user_id, first, last, street, city, postcode, method_id, provider, joined, destination)

    # -- customers ---------------------------------------------------------------------------

    def seed_customers(self) -> None:
        rng = self.rng
        start = len(self.customers) + 1
        joins = sorted(self.ago(30, 420) for _ in range(self.customer_count))
        for first_number in range(start, start + self.customer_count, BATCH_CUSTOMERS):
            batch = RowBatch()
            last_number = min(first_number + BATCH_CUSTOMERS, start + self.customer_count)
            for number in range(first_number, last_number):
                self.add_customer(batch, number, joins[number - start], rng)
            self.writer.write(batch)
            self.progress(last_number - first_number)
        # Oldest account first: an order goes to one of the customers who had joined by then.
        self.customers.sort(key=lambda c: c[8])
        self.summary["customers"] += self.customer_count

    def add_customer(self, batch: RowBatch, number: int, joined: datetime, rng) -> None:
        first, last = rng.choice(self.first_names), rng.choice(self.last_names)
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        email = f"{local}{number}@example.net"
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
        provider = rng.choices((*PAYMENT_PROVIDERS, DEMO_PROVIDER), (5, 3, 2))[0]
        paypal = provider == PAYMENT_PROVIDERS.PAYPAL
        token = f"tok_{self.new_id().replace('-', '')[:20]}"
        last4 = None if paypal else f"{rng.randint(0, 9999):04d}"
        card_type = None if paypal else rng.choice(("visa", "mastercard", "amex"))
        batch.add("user", "user_payment_methods", (self.new_id(), user_id, "paypal" if paypal else "credit_card",
                                                   True, card_type, last4, token, joined, None))
        method_id = self.new_id()
        batch.add("payment", "payment_methods", (
            method_id, user_id, PAYMENT_METHOD_TYPES.PAYPAL if paypal else PAYMENT_METHOD_TYPES.CREDIT_CARD, provider,
            token, last4, card_type,
            None if paypal else f"{rng.randint(1, 12):02d}", None if paypal else str(rng.randint(2027, 2031)),
            True, joined, None))
        self.customers.append(self.customer(user_id, first, last, street, city, postcode, method_id, provider,
                                            joined))

    # -- orders ------------------------------------------------------------------------------

    def seed_orders(self) -> None:
        from console.demo.seed import OrderClock, eligible, pick_customer

        rng = self.rng
        clock = OrderClock(self.now, rng)
        joined = [c[8] for c in self.customers]
        customers = self.customers
        done = 0
        while done < self.order_count:
            batch = RowBatch()
            size = min(BATCH_ORDERS, self.order_count - done)
            for _ in range(size):
                created = clock.placed()
                customer = pick_customer(rng, customers, eligible(joined, created))
                self.add_order(batch, clock.status(created), created, customer, rng)
            self.writer.write(batch)
            done += size
            self.progress(size)
        self.summary["orders"] += self.order_count

    def add_order(self, batch: RowBatch, status: str, created: datetime, customer: tuple, rng) -> None:
        from console.demo.seed import OPEN_STATUSES

        user_id, first, last, street, city, postcode, method_id, provider, _, destination = customer
        money = b.money
        open_order = status in OPEN_STATUSES
        pool = self.in_stock if open_order else self.products
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
            if open_order:
                self.reserved[product_id] += quantity
            if status != "cancelled":
                self.sold[product_id] += quantity
        subtotal = money(sum(item[7] for item in items))
        roll = rng.random()
        service = "standard" if roll < 0.70 else "express" if roll < 0.95 else "overnight"
        method, carrier_id, carrier_code, base_price, carrier_response, carrier_data = self.methods[service]
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
        batch.add("order", "orders", (
            order_id, number, user_id, status, payment_status, subtotal, tax, shipping, ZERO, total, "USD",
            payment_id, service, tracking, estimated, shipped_at, delivered_at, cancelled_at, self.empty,
            created, created + after[status]))
        for item_id, product_id, variant_id, name, sku, unit, quantity, line_total, _ in items:
            batch.add("order", "order_items", (item_id, order_id, product_id, variant_id, name, sku, None, unit,
                                               quantity, line_total, created))
        batch.add("order", "order_shipping_addresses", (self.new_id(), order_id, first, last, street, city, postcode,
                                                        "US", created))
        previous = None
        reason = b.ORDER_STEP_REASON
        for name in path:
            # The customer placed the order (and asked to cancel it); the order service did the rest.
            batch.add("order", "order_status_history", (
                self.new_id(), order_id, name, previous, user_id if name in b.CUSTOMER_STEPS else "system",
                reason[name], created + after[name]))
            previous = name

        # payment_db: the payment, its CHARGE (and VOID when cancelled, REFUND when refunded).
        payment_state = PAYMENT_STATUSES.SUCCEEDED if paid else PAYMENT_STATUSES.CANCELLED if status == "cancelled" \
            else PAYMENT_STATUSES.FAILED if declined else PAYMENT_STATUSES.PENDING
        if status == "refunded":
            payment_state = PAYMENT_STATUSES.REFUNDED
        processed = created if paid else None
        batch.add("payment", "payments", (
            payment_id, order_id, user_id, method_id, payment_state, provider,
            f"{provider.lower()}_pay_{self.tail(payment_id)}", total, "USD", f"Order {number}",
            JsonText(f'{{"order_number": "{number}"}}'),
            processed, created, cancelled_at or (created + after["refunded"] if status == "refunded" else created)))
        charge = (TRANSACTION_STATUSES.SUCCEEDED if paid else TRANSACTION_STATUSES.FAILED if declined
                  else TRANSACTION_STATUSES.PENDING)
        charge_id = self.new_id()
        batch.add("payment", "payment_transactions", (
            charge_id, payment_id, TRANSACTION_TYPES.CHARGE, charge, f"txn_{self.tail(charge_id)}", total, "USD",
            self.declined if declined else self.empty, processed, created))
        if status == "cancelled":
            void_id = self.new_id()
            batch.add("payment", "payment_transactions", (
                void_id, payment_id, TRANSACTION_TYPES.VOID, TRANSACTION_STATUSES.SUCCEEDED, f"txn_{self.tail(void_id)}",
                total, "USD", self.empty,
                cancelled_at, cancelled_at))
        if status == "refunded":
            self.add_refund(batch, payment_id, order_id, total, "Order refunded in full",
                            created + after["refunded"], self.empty)
        if shipped_at:
            self.add_shipment(batch, order_id, carrier_id, carrier_data, method, carrier_response, tracking, rng,
                              shipped_at, estimated, delivered_at, base_price, sum(item[8] for item in items),
                              destination, city)
        if status == "delivered":
            roll = rng.random()
            if roll < RETURN_SHARE:
                self.add_return(batch, order_id, user_id, number, payment_id, items, subtotal, delivered_at, rng)
            elif roll < RETURN_SHARE + GOODWILL_SHARE:
                amount = min(money(total * Decimal("0.15")), items[0][7])
                when = delivered_at + timedelta(days=2)
                self.add_refund(batch, payment_id, order_id, amount, "Goodwill: late delivery", when,
                                json_text({"staff_id": self.staff["finance"]}))
                self.summary["partial_refunds"] += 1

    def add_refund(self, batch: RowBatch, payment_id: str, order_id: str, amount: Decimal, reason: str,
                   when: datetime, metadata: dict) -> None:
        refund_id, transaction_id = self.new_id(), self.new_id()
        batch.add("payment", "payment_refunds", (refund_id, payment_id, order_id, reason, amount, "USD",
                                                 REFUND_STATUSES.COMPLETED,
                                                 f"re_{self.tail(refund_id)}", metadata, when, when, when))
        batch.add("payment", "payment_transactions", (transaction_id, payment_id, TRANSACTION_TYPES.REFUND,
                                                      TRANSACTION_STATUSES.SUCCEEDED,
                                                      f"txn_{self.tail(transaction_id)}", amount, "USD", {}, when, when))
        self.summary["refunds"] += 1

    def add_shipment(self, batch, order_id, carrier_id, carrier_data, method_id, carrier_response, tracking, rng,
                     shipped_at, estimated, delivered_at, cost, weight, destination, city) -> None:
        state = "delivered" if delivered_at else rng.choices(("in_transit", "out_for_delivery", "exception"),
                                                             (70, 20, 10))[0]
        shipment_id = self.new_id()
        batch.add("shipping", "shipments", (
            shipment_id, order_id, carrier_id, method_id, tracking, state, b.money(weight), cost,
            self.warehouse, destination, shipped_at, estimated, delivered_at, carrier_response,
            shipped_at, delivered_at or shipped_at))
        # The first and the latest tracking event (the builders write every step between).
        latest = {"in_transit": ("In transit", b.HUBS[2], shipped_at + timedelta(hours=20)),
                  "out_for_delivery": ("Out for delivery", city, shipped_at + timedelta(hours=30)),
                  "exception": ("Delivery exception: address could not be reached", city,
                                shipped_at + timedelta(hours=40)),
                  "delivered": ("Delivered", city, delivered_at)}[state]
        for event, description, location, when in (("label_created", "Shipping label created", b.HUBS[0],
                                                     shipped_at), (state, *latest)):
            batch.add("shipping", "shipment_tracking", (self.new_id(), shipment_id, event, location, description,
                                                        when, carrier_data, when))
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
        # The items' condition is known once the warehouse has them.
        condition = rng.choice(("new", "used", "damaged", "defective")) if status in RECEIVED else None
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
                        requested + offset, self.ups, requested + offset))
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
