"""Demo data at scale: customers and orders written as plain rows, a batch at a time.

The builders (console.demo.builders) make rich, ORM-backed records: right for the few
thousand orders a demo shows off, far too slow for a million (each order is a dozen
flushes). Past those, console.demo.seed hands the rest to BulkSeeder, which writes the
same kinds of rows with the same invariants (totals agree across databases, history up
to the status, payments equal totals, refunds within the payment, shipments carrying the
order's tracking number, stock reserved by open orders) as plain rows (a dict per row,
keyed by the models' attributes), one batch and one commit per database at a time, so
memory stays flat however many orders are asked for.

On PostgreSQL a batch goes in as ``COPY`` text, made by a formatter compiled once per
table (its column list: the model's columns the rows fill, by their database names) and
sent by a background thread while the next batch is built; the tables it fills lose
their secondary indexes and foreign keys for the load and get them back, built in one
pass each, at the end (a million orders would otherwise update fifteen indexes on
``orders`` row by row). Elsewhere (SQLite: small demos and the tests) a
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
from console.models.auth import Role, User, UserRole
from console.models.order import Order, OrderItem, OrderShippingAddress, OrderStatusHistory
from console.models.payment import (PAYMENT_METHOD_TYPES, PAYMENT_PROVIDERS, PAYMENT_STATUSES, REFUND_STATUSES,
                                    TRANSACTION_STATUSES,
                                    TRANSACTION_TYPES, Payment, PaymentMethod, PaymentRefund, PaymentTransaction)
from console.models.product import Product, ProductInventory, ProductVariant
from console.models.returns import (
    ReturnAuthorization, ReturnItem, ReturnRefund, ReturnRequest, ReturnStatusHistory, ReturnTracking,
)
from console.models.shipping import Shipment, ShipmentTracking
from console.models.user import UserAddress, UserPaymentMethod, UserProfile
from console.models.types import UTCDateTime, cuid_from
from console.workflows.inventory import stock_status

BATCH_ORDERS = 5000
# Of the delivered orders, the share with a return, and the share with a goodwill refund.
RETURN_SHARE, GOODWILL_SHARE = 0.08, 0.065
BATCH_CUSTOMERS = 10000
ZERO = Decimal("0.00")
SHIPPED = ("shipped", "delivered", "refunded")
# The models whose tables the bulk part fills; on PostgreSQL they load without secondary indexes.
BULK_MODELS = (
    User, UserRole, UserProfile, UserAddress, UserPaymentMethod,
    Order, OrderItem, OrderShippingAddress, OrderStatusHistory,
    PaymentMethod, Payment, PaymentTransaction, PaymentRefund,
    Shipment, ShipmentTracking,
    ReturnRequest, ReturnItem, ReturnStatusHistory, ReturnAuthorization, ReturnTracking, ReturnRefund,
)
BULK_TABLES: dict[str, tuple[str, ...]] = {}
for _model in BULK_MODELS:
    BULK_TABLES[_model.__bind_key__] = (*BULK_TABLES.get(_model.__bind_key__, ()), _model.__tablename__)


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


def row_columns(table, keys) -> list:
    """The columns of ``table`` that rows keyed by ``keys`` (attribute names) fill, in the
    table's order. Refuses a key the model lacks, and rows that leave out a ``NOT NULL``
    column the database has no default for (an id, ``updatedAt``): ``COPY`` would stop at
    the first such row of a million."""
    known = {column.key for column in table.columns}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ValueError(f"{table.name} has no column for {', '.join(unknown)}")
    missing = [column.key for column in table.columns if column.key not in keys
               and not column.nullable and column.server_default is None]
    if missing:
        raise ValueError(f"{table.name} rows must give {', '.join(missing)} (NOT NULL, no default)")
    return [column for column in table.columns if column.key in keys]


def copy_formatter(columns, dialect, stamps: Stamps) -> Callable[[dict], str]:
    """One ``COPY`` text line per row (a dict keyed by attribute) filling ``columns``: a
    single f-string compiled for their types (a generic per-value conversion costs three
    times as much)."""
    cells = []
    for column in columns:
        kind = column.type.dialect_impl(dialect) if not isinstance(column.type, UTCDateTime) else column.type
        value = f'r["{column.key}"]'  # keys are identifiers: no quoting needed
        if isinstance(kind, UTCDateTime):
            cells.append(f"T[{value}]")
        elif isinstance(kind, JSON):
            cells.append(f"({value} if type({value}) is J else C({value}))")
        elif isinstance(kind, Boolean):
            cells.append(f"B[{value}]")
        elif isinstance(kind, (String, Text, Numeric, Integer)):
            cells.append(f"(N if {value} is None else {value})")
        else:
            cells.append(f"C({value})")
    source = "lambda r: f'" + "\\t".join("{" + cell + "}" for cell in cells) + "\\n'"
    return eval(source, {"T": stamps, "J": JsonText, "C": _copy_cell, "N": NULL,  # noqa: S307 (built above)
                         "B": {True: "t", False: "f", None: NULL}})


class RowBatch:
    """Rows of one batch, per database and table, written and committed together. A row
    is a dict keyed by the model's attributes; every row of a table in a batch gives the
    same ones."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))

    def add(self, model, **row) -> None:
        self.rows[model.__bind_key__][model.__tablename__].append(row)


class BatchWriter:
    """Writes RowBatches: on PostgreSQL as ``COPY`` text, each database's from its own
    background thread and connection (one commit per batch and database), so the ten
    databases take their rows side by side while the caller builds the next batch;
    elsewhere at once, an executemany per table."""

    def __init__(self) -> None:
        self.stamps = Stamps()
        self.formatters: dict[tuple, tuple[list, Callable]] = {}
        # The writer threads have no app context: they get the engines from here.
        self.engines = {key: db.engines[key] for key in BIND_KEYS}
        self.postgres = {key for key, engine in self.engines.items() if engine.dialect.name == "postgresql"}
        self.copiers: dict[str, CopyThread] = {}

    def write(self, batch: RowBatch) -> None:
        for bind, tables in batch.rows.items():
            ordered = parents_first([t for t in db.metadatas[bind].sorted_tables if t.name in tables])
            if bind in self.postgres:
                self.send(bind, [(t, *self.copy_text(bind, t, tables[t.name])) for t in ordered])
            else:
                with self.engines[bind].begin() as conn:
                    for table in ordered:
                        rows = tables[table.name]
                        _same_keys(table, rows, row_columns(table, rows[0]))
                        conn.execute(table.insert(), [_python_row(row) for row in rows])
        batch.rows.clear()

    def copy_text(self, bind: str, table, rows: list[dict]) -> tuple[list, bytes]:
        """The columns the rows fill and their ``COPY`` text."""
        key = (bind, table.name, tuple(rows[0]))
        known = self.formatters.get(key)
        if known is None:
            columns = row_columns(table, rows[0])
            known = self.formatters[key] = (columns, copy_formatter(columns, self.engines[bind].dialect,
                                                                    self.stamps))
        columns, line = known
        _same_keys(table, rows, columns)
        return columns, "".join(map(line, rows)).encode()

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
                for table, columns, text in tables:
                    names = ", ".join(f'"{c.name}"' for c in columns)
                    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
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


def parents_first(tables: list) -> list:
    """``tables`` with each after the tables its foreign keys point at (order_items after
    orders; addresses after user_profiles, whose keys sorted_tables leaves out: they are
    added after the tables, as the services' DDL adds them)."""
    ordered: list = []

    def visit(table, path=()):
        if table in ordered or table in path:
            return
        for key in table.foreign_keys:
            if key.column.table in tables and key.column.table is not table:
                visit(key.column.table, (*path, table))
        ordered.append(table)

    for table in tables:
        visit(table)
    return ordered


def _same_keys(table, rows: list[dict], columns: list) -> None:
    """Every row of a batch fills the same columns (the first row's)."""
    if any(len(row) != len(columns) for row in rows):
        odd = next(row for row in rows if len(row) != len(columns))
        raise ValueError(f"{table.name} rows differ: {sorted(odd)} against {[c.key for c in columns]}")


def _python_row(row: dict) -> dict:
    """A row for SQLAlchemy: encoded JSON decoded again."""
    return {k: json.loads(v.replace("\\\\", "\\")) if type(v) is JsonText else v for k, v in row.items()}


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
        self.id_head = cuid_from(self.rng.getrandbits(128))[:13]
        self.ids = 0
        self.sold: Counter = Counter()

    def new_id(self) -> str:
        """An id shaped like new_id()'s (25 base-36 characters): a seeded random head and a
        counting tail of decimal digits, so ids are distinct by construction and cost one
        format each."""
        self.ids += 1
        return self.id_head + "%012d" % self.ids

    @staticmethod
    def tail(row_id: str) -> str:
        """16 characters that differ for every id new_id() gives (provider ids are unique)."""
        return row_id[-16:]

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
        batch.add(User, id=user_id, email=email, password_hash=self.password_hash, email_verified=True,
                  is_active=True, failed_login_attempts=0, mfa_enabled=False, created_at=joined, updated_at=joined)
        batch.add(UserRole, id=self.new_id(), user_id=user_id, role_id=self.customer_role, created_at=joined)
        phone = f"+1 {rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
        newsletter = rng.random() < 0.45
        batch.add(UserProfile, id=self.new_id(), user_id=user_id, email=email, first_name=first, last_name=last,
                  phone=phone, date_of_birth=self.now - timedelta(days=rng.randint(18 * 365, 75 * 365)),
                  gender=rng.choice(("female", "male", "other", None)), preferred_currency="USD",
                  preferred_language="en", newsletter_subscribed=newsletter, marketing_opt_in=newsletter,
                  is_active=True, email_verified=True, profile_completion_score=rng.choice((40, 60, 80, 100)),
                  created_at=joined, updated_at=joined)
        street = rng.choice(self.streets)
        city, postcode = rng.choice(self.cities)
        batch.add(UserAddress, id=self.new_id(), user_id=user_id, type="shipping", is_default=True,
                  first_name=first, last_name=last, address_line1=street, city=city, postal_code=postcode,
                  country="US", created_at=joined, updated_at=joined)
        provider = rng.choices((*PAYMENT_PROVIDERS, DEMO_PROVIDER), (5, 3, 2))[0]
        paypal = provider == PAYMENT_PROVIDERS.PAYPAL
        token = f"tok_{self.tail(self.new_id())}"
        last4 = None if paypal else f"{rng.randint(0, 9999):04d}"
        card_type = None if paypal else rng.choice(("visa", "mastercard", "amex"))
        expiry_month = None if paypal else f"{rng.randint(1, 12):02d}"
        expiry_year = None if paypal else str(rng.randint(2027, 2031))
        batch.add(UserPaymentMethod, id=self.new_id(), user_id=user_id, type="paypal" if paypal else "credit_card",
                  is_default=True, card_type=card_type, last4=last4, expiry_month=expiry_month,
                  expiry_year=expiry_year, provider_token=token, created_at=joined, updated_at=joined)
        method_id = self.new_id()
        batch.add(PaymentMethod, id=method_id, user_id=user_id, type=PAYMENT_METHOD_TYPES.PAYPAL if paypal else PAYMENT_METHOD_TYPES.CREDIT_CARD,
                  provider=provider, provider_token=token, last4=last4, card_type=card_type,
                  expiry_month=expiry_month, expiry_year=expiry_year, is_default=True, created_at=joined,
                  updated_at=joined)
        self.customers.append(self.customer(user_id, first, last, street, city, postcode, method_id, provider,
                                            joined))

    # -- orders ------------------------------------------------------------------------------

    def seed_orders(self) -> None:
        from console.demo.seed import OrderClock, eligible, pick_customer

        rng = self.rng
        clock = OrderClock(self.now, rng)
        joined = [c[8] for c in self.customers]
        customers = self.customers
        # Written in the order they were placed, as the services write them: each table's
        # rows (and their ids, which grow with time like cuid()'s) follow time, so an
        # order's payment and shipment lie beside those of the orders placed around it.
        placed = sorted(clock.placed() for _ in range(self.order_count))
        for start in range(0, self.order_count, BATCH_ORDERS):
            batch = RowBatch()
            times = placed[start:start + BATCH_ORDERS]
            for created in times:
                customer = pick_customer(rng, customers, eligible(joined, created))
                self.add_order(batch, clock.status(created), created, customer, rng)
            self.writer.write(batch)
            self.progress(len(times))
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
        batch.add(Order, id=order_id, order_number=number, user_id=user_id, status=status,
                  payment_status=payment_status, subtotal=subtotal, tax_amount=tax, shipping_amount=shipping,
                  discount_amount=ZERO, total_amount=total, currency="USD", payment_method_id=payment_id,
                  shipping_method=service, tracking_number=tracking, estimated_delivery_date=estimated,
                  shipped_at=shipped_at, delivered_at=delivered_at, cancelled_at=cancelled_at, metadata_=self.empty,
                  created_at=created, updated_at=created + after[status])
        for item_id, product_id, variant_id, name, sku, unit, quantity, line_total, _ in items:
            batch.add(OrderItem, id=item_id, order_id=order_id, product_id=product_id, variant_id=variant_id,
                      product_name=name, product_sku=sku, unit_price=unit, quantity=quantity,
                      total_price=line_total, created_at=created)
        batch.add(OrderShippingAddress, id=self.new_id(), order_id=order_id, first_name=first, last_name=last,
                  address_line1=street, city=city, postal_code=postcode, country="US", created_at=created)
        previous = None
        reason = b.ORDER_STEP_REASON
        for name in path:
            # The customer placed the order (and asked to cancel it); the order service did the rest.
            batch.add(OrderStatusHistory, id=self.new_id(), order_id=order_id, status=name, previous_status=previous,
                      changed_by=user_id if name in b.CUSTOMER_STEPS else "system", reason=reason[name],
                      created_at=created + after[name])
            previous = name

        # payment_db: the payment, its CHARGE (and VOID when cancelled, REFUND when refunded).
        payment_state = PAYMENT_STATUSES.SUCCEEDED if paid else PAYMENT_STATUSES.CANCELLED if status == "cancelled" \
            else PAYMENT_STATUSES.FAILED if declined else PAYMENT_STATUSES.PENDING
        if status == "refunded":
            payment_state = PAYMENT_STATUSES.REFUNDED
        processed = created if paid else None
        batch.add(Payment, id=payment_id, order_id=order_id, user_id=user_id, payment_method_id=method_id,
                  status=payment_state, payment_provider=provider,
                  provider_payment_id=f"{provider.lower()}_pay_{self.tail(payment_id)}", amount=total, currency="USD",
                  description=f"Order {number}", metadata_=JsonText(f'{{"order_number": "{number}"}}'),
                  processed_at=processed, created_at=created,
                  updated_at=cancelled_at or (created + after["refunded"] if status == "refunded" else created))
        charge = (TRANSACTION_STATUSES.SUCCEEDED if paid else TRANSACTION_STATUSES.FAILED if declined
                  else TRANSACTION_STATUSES.PENDING)
        charge_id = self.new_id()
        batch.add(PaymentTransaction, id=charge_id, payment_id=payment_id, transaction_type=TRANSACTION_TYPES.CHARGE, status=charge,
                  provider_transaction_id=f"txn_{self.tail(charge_id)}", amount=total, currency="USD",
                  provider_response=self.declined if declined else self.empty, processed_at=processed,
                  created_at=created)
        if status == "cancelled":
            void_id = self.new_id()
            batch.add(PaymentTransaction, id=void_id, payment_id=payment_id, transaction_type=TRANSACTION_TYPES.VOID,
                      status=TRANSACTION_STATUSES.SUCCEEDED, provider_transaction_id=f"txn_{self.tail(void_id)}", amount=total,
                      currency="USD", provider_response=self.empty, processed_at=cancelled_at,
                      created_at=cancelled_at)
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
        batch.add(PaymentRefund, id=refund_id, payment_id=payment_id, order_id=order_id, reason=reason, amount=amount,
                  currency="USD", status=REFUND_STATUSES.COMPLETED, provider_refund_id=f"re_{self.tail(refund_id)}",
                  metadata_=metadata, processed_at=when, created_at=when, updated_at=when)
        batch.add(PaymentTransaction, id=transaction_id, payment_id=payment_id, transaction_type=TRANSACTION_TYPES.REFUND,
                  status=TRANSACTION_STATUSES.SUCCEEDED, provider_transaction_id=f"txn_{self.tail(transaction_id)}", amount=amount,
                  currency="USD", provider_response=self.empty, processed_at=when, created_at=when)
        self.summary["refunds"] += 1

    def add_shipment(self, batch, order_id, carrier_id, carrier_data, method_id, carrier_response, tracking, rng,
                     shipped_at, estimated, delivered_at, cost, weight, destination, city) -> None:
        state = "delivered" if delivered_at else rng.choices(("in_transit", "out_for_delivery", "exception"),
                                                             (70, 20, 10))[0]
        shipment_id = self.new_id()
        batch.add(Shipment, id=shipment_id, order_id=order_id, carrier_id=carrier_id, method_id=method_id,
                  tracking_number=tracking, status=state, weight=b.money(weight), cost=cost,
                  origin_address=self.warehouse, destination_address=destination, shipped_at=shipped_at,
                  estimated_delivery_date=estimated, delivered_at=delivered_at, carrier_response=carrier_response,
                  created_at=shipped_at, updated_at=delivered_at or shipped_at)
        # The first and the latest tracking event (the builders write every step between).
        latest = {"in_transit": ("In transit", b.HUBS[2], shipped_at + timedelta(hours=20)),
                  "out_for_delivery": ("Out for delivery", city, shipped_at + timedelta(hours=30)),
                  "exception": ("Delivery exception: address could not be reached", city,
                                shipped_at + timedelta(hours=40)),
                  "delivered": ("Delivered", city, delivered_at)}[state]
        for event, description, location, when in (("label_created", "Shipping label created", b.HUBS[0],
                                                     shipped_at), (state, *latest)):
            batch.add(ShipmentTracking, id=self.new_id(), shipment_id=shipment_id, status=event, location=location,
                      description=description, timestamp=when, carrier_data=carrier_data, created_at=when)
        self.summary["shipments"] += 1

    def add_return(self, batch, order_id, user_id, order_number, payment_id, items, subtotal, delivered_at,
                   rng) -> None:
        from console.demo.seed import RETURN_NOTES, RETURN_REASONS, RETURN_STATUSES, RETURN_WEIGHTS
        from console.workflows.returns import CONDITIONS

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
        # The condition the customer states with the request (the warehouse's, once received).
        condition = rng.choice(CONDITIONS)
        lines = [(item, rng.randint(1, item[6])) for item in rng.sample(items, rng.randint(1, len(items)))]
        refunds = [b.money(item[5] * quantity) for item, quantity in lines]  # no discount on bulk orders
        amount = b.money(sum(refunds))
        path = b.return_path(status)
        stamps = {stamp: requested + after[name] for name, stamp in b.RETURN_STAMPS.items() if name in path}
        staff = self.staff["warehouse"] if status == "received" else self.staff["support"]
        request_id = self.new_id()
        batch.add(ReturnRequest, id=request_id, order_id=order_id, user_id=user_id, rma_number=rma, status=status,
                  return_reason=reason, return_notes=rng.choice(RETURN_NOTES) if rng.random() < 0.5 else None,
                  refund_method=refund_method, refund_amount=amount, currency="USD", requested_at=requested,
                  **{stamp: stamps.get(stamp) for stamp in b.RETURN_STAMPS.values()},
                  metadata_={"order_number": order_number}, created_at=requested, updated_at=requested + after[status])
        for (item, quantity), refund in zip(lines, refunds):
            item_id, product_id, variant_id, name, sku, unit = item[:6]
            batch.add(ReturnItem, id=self.new_id(), return_request_id=request_id, order_item_id=item_id,
                      product_id=product_id, variant_id=variant_id, product_name=name, product_sku=sku,
                      quantity=quantity, unit_price=unit, refund_amount=refund, return_reason=reason,
                      condition=condition, created_at=requested, updated_at=requested + after[status])
        previous = None
        for name in path:
            batch.add(ReturnStatusHistory, id=self.new_id(), return_request_id=request_id, status=name,
                      previous_status=previous, changed_by=user_id if name == "pending" else staff,
                      notes=b.RETURN_STEP_NOTE[name], created_at=requested + after[name])
            previous = name
        if "approved" in path:
            approved = stamps["approved_at"]
            authorization_id = self.new_id()
            batch.add(ReturnAuthorization, id=authorization_id, return_request_id=request_id, rma_number=rma,
                      return_address=self.warehouse,
                      return_instructions=f"Pack the items securely and write {rma} on the parcel.",
                      tracking_number=self.numbers.tracking("ups") if "in_transit" in path else None,
                      expires_at=approved + timedelta(days=30), created_at=approved, updated_at=approved)
            if "in_transit" in path:
                events = [("in_transit", "Parcel handed to the carrier", after["in_transit"])]
                if "received" in path:
                    events.append(("delivered", "Delivered to the returns department", after["received"]))
                for event, description, offset in events:
                    batch.add(ReturnTracking, id=self.new_id(), authorization_id=authorization_id, status=event,
                              location=b.WAREHOUSE_ADDRESS["city"], description=description,
                              timestamp=requested + offset, carrier_data=self.ups, created_at=requested + offset)
        if "processed" in path:
            processed = stamps["processed_at"]
            metadata = {"return_request_id": request_id, "rma_number": rma, "staff_id": staff}
            self.add_refund(batch, payment_id, order_id, amount, f"Return {rma}", processed, metadata)
            batch.add(ReturnRefund, id=self.new_id(), return_request_id=request_id, payment_id=payment_id,
                      order_id=order_id, user_id=user_id, refund_method=refund_method, amount=amount, currency="USD",
                      status="completed", reason=f"Return {rma}", processed_at=processed, created_at=processed,
                      updated_at=processed)
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
            product.stock_status = stock_status(row.available_quantity)
            product.purchase_count = (product.purchase_count or 0) + self.sold[product.id]
        db.session.commit()


def merge_summaries(*summaries: Iterable[dict]) -> dict[str, int]:
    total: Counter = Counter()
    for summary in summaries:
        total.update(summary)
    return dict(total)
