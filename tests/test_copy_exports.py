"""Every list's export through the COPY path (console/exports.py): the same file as the
row-by-row path (the list's export_row over its decorated rows), and a bounded number of
statements per batch of rows whatever the number of rows."""
from __future__ import annotations

import csv
import importlib
import io
import math
from decimal import Decimal
from dataclasses import replace

import pytest
from sqlalchemy import select

from console.extensions import db

# (module, list): every list whose export reads through the COPY path.
COPY_LISTS = [
    ("console.screens.orders", "ORDERS"),
    ("console.screens.customers", "CUSTOMERS"),
    ("console.screens.returns", "RETURNS"),
    ("console.screens.refunds", "REFUNDS"),
    ("console.screens.notifications", "NOTIFICATIONS"),
    ("console.screens.coupons", "COUPONS"),
    ("console.screens.promotions", "PROMOTIONS"),
    ("console.screens.staff", "STAFF"),
    ("console.screens.stock_alerts", "ALERTS"),
    ("console.screens.product_list", "PRODUCTS"),
    ("console.screens.templates", "TEMPLATES"),
    ("console.screens.activity", "ACTIVITY"),
]
BATCH = 4  # rows per batch: the seeded lists are several batches deep
# Statements of an export besides its batches: the read (one COPY, or one streamed select),
# the PostgreSQL session settings of its transaction, and what ``prepare`` reads.
CONSTANT = 6


def _decorate_lookups(name: str) -> int:
    """Statements per batch of a list whose export is looked up by its decorate()."""
    if name == "TEMPLATES":
        return 3  # the uses (notification_db), the last changes and their staff (auth_db)
    from console.screens.activity import DETAIL_TABLES, ENTITY_TABLES

    return len({*ENTITY_TABLES.values(), *DETAIL_TABLES.values(), ("auth", "users")})  # one per table named


def _screen(module: str, name: str):
    return getattr(importlib.import_module(module), name)


@pytest.fixture
def seeded(app, monkeypatch):
    from console import exports
    from console.demo.seed import seed_demo
    from console.screens import orders

    monkeypatch.setattr(exports, "EXPORT_BATCH", BATCH)
    monkeypatch.setattr(orders, "EXPORT_BATCH", BATCH)
    with app.app_context():
        seed_demo(customers=16, orders=40, seed=4)
        _hostile_cells()
        db.session.commit()
        db.session.remove()


def _hostile_cells():
    """Cells a spreadsheet would read as formulas, and a negative amount, in each list's
    own columns: both paths must write them alike (neutralised text, numbers as numbers)."""
    from console.models.order import Order
    from console.models.payment import PaymentRefund
    from console.models.returns import ReturnRequest
    from console.models.user import UserProfile

    profile = db.session.scalars(select(UserProfile).limit(1)).first()
    profile.first_name, profile.phone = "=HYPERLINK(\"x\")", "+1 555 0100"
    request = db.session.scalars(select(ReturnRequest).limit(1)).first()
    if request is not None:
        request.return_notes = "@SUM(A1), \"quoted\"\nsecond line"
    refund = db.session.scalars(select(PaymentRefund).limit(1)).first()
    if refund is not None:
        refund.reason = "-2+3"
    # What COPY's text format escapes (a backslash, a tab, a line break) beside what CSV
    # quotes, in order_db's own cells; a number that looks like a formula.
    first, second = db.session.scalars(select(Order).limit(2)).all()
    first.tracking_number = '=1+2\t"x",\\y\nz\r'
    first.order_number = "-" + first.order_number
    second.tracking_number, second.currency = "@a\\b", "+US"
    second.discount_amount = Decimal("-1.50")


def _csv(screen, rows) -> str:
    from console.exports import csv_lines

    return "".join(csv_lines(list(screen.export_header), rows, plain_cells=screen.export_fast is not None))


@pytest.mark.parametrize("module, name", COPY_LISTS, ids=[name.lower() for _, name in COPY_LISTS])
@pytest.mark.parametrize("kept", [None, 3], ids=["kept", "few-kept"])
def test_the_copy_path_writes_the_row_by_row_file(app, auth, client, seeded, monkeypatch, module, name, kept):
    """Byte for byte, with every kept lookup's rows held between batches, and with room
    for only a few of them (let go every batch, but those the next batch found kept)."""
    from console import exports

    if kept is not None:
        monkeypatch.setattr(exports, "KEPT", kept)
    screen = _screen(module, name)
    auth.login("admin")
    endpoint = next(e for e, s in app.extensions["list_screens"].items() if s is screen)
    with app.test_request_context():
        from flask import url_for

        url = url_for(endpoint.rsplit(".", 1)[0] + "." + screen.export_endpoint)
    response = client.get(url)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    with app.test_request_context():
        filters, _ = screen.filters.parse({})
        slow = replace(screen, export_fast=None)
        expected = _csv(slow, slow.export_rows(slow.export_plan(filters, screen.ordering(None))))
    assert text == expected
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) - 1 > BATCH  # several batches


@pytest.mark.parametrize("module, name", COPY_LISTS, ids=[name.lower() for _, name in COPY_LISTS])
def test_statements_per_export_grow_by_batch_not_by_row(app, seeded, count_queries, monkeypatch, module, name):
    """N rows cost at most ceil(N / batch) x (1 + the databases looked up) + a constant:
    one read of the list's database for the whole export, one statement per looked-up
    database per batch (fewer when a batch's keys were all seen before)."""
    from console import exports

    copies = []
    read = exports.copy_batches

    def counted(connection, stmt, batch_size):
        copies.append(stmt)
        return read(connection, stmt, batch_size)

    def counted_text(connection, stmt, batch_size):
        copies.append(stmt)
        return read_text(connection, stmt, batch_size)

    read_text = exports.copy_text_batches
    # The COPY bypasses SQLAlchemy's events.
    monkeypatch.setattr(exports, "copy_batches", counted)
    monkeypatch.setattr(exports, "copy_text_batches", counted_text)
    screen = _screen(module, name)
    with app.test_request_context():
        filters, _ = screen.filters.parse({})
        plan = screen.export_plan(filters, screen.ordering(None))
        count_queries.statements.clear()
        rows = list(screen.export_rows(plan))
        statements = len(count_queries.statements) + len(copies)
        postgres = db.engines[screen.home].dialect.name == "postgresql"
    lookups = len(screen.export_fast.sides) or _decorate_lookups(name)
    batches = math.ceil(len(rows) / BATCH)
    assert batches > 1
    assert statements <= batches * (1 + lookups) + CONSTANT, count_queries.statements
    # The list's own database is read once, however many batches.
    assert len(copies) == (1 if postgres else 0)


@pytest.mark.parametrize("kind", ["coupon", "promotion"])
def test_the_uses_export_costs_statements_per_batch_not_per_use(app, seeded, count_queries, monkeypatch, kind):
    """A coupon's or promotion's uses (console/screens/usage.py) through the same path: one
    read of discount_db, then per batch one statement per database looked up (auth, user,
    order)."""
    from sqlalchemy import func

    from console import exports
    from console.screens import usage

    copies = []
    read = exports.copy_batches
    monkeypatch.setattr(exports, "copy_batches", lambda *args: copies.append(args) or read(*args))
    monkeypatch.setattr(exports, "EXPORT_BATCH", 1)  # the seeded coupons and promotions have a few uses each
    model, owner, _ = usage.KINDS[kind]
    with app.app_context():
        owner_id, uses = db.session.execute(select(owner, func.count()).group_by(owner)
                                            .order_by(func.count().desc()).limit(1)).one()
        count_queries.statements.clear()
        rows = list(usage.export_rows(kind, owner_id))
        statements = len(count_queries.statements) + len(copies)
    assert len(rows) == uses and uses > 1  # several batches
    assert statements <= uses * (1 + 3) + CONSTANT, count_queries.statements


def test_a_customer_is_asked_once_per_export_found_or_not(app, auth, client, seeded):
    """The customers' rows are kept between batches, and a customer found in no database is
    remembered as absent: the export asks auth_db and user_db about a customer again only
    while the batch before is still being written (a batch's lookups start before the one
    before it is collected), never later, however many batches their orders span."""
    from collections import Counter

    from console.models.order import Order
    from tests.conftest import every_statement

    ghost = "ghost-customer-0001"
    with app.app_context():
        orders = db.session.scalars(select(Order).order_by(Order.created_at.desc(), Order.id.desc())).all()
        for order in (orders[0], orders[BATCH * 3], orders[BATCH * 6]):  # batches 1, 4 and 7
            order.user_id = ghost
        db.session.commit()
        db.session.remove()
    asked = {"users": Counter(), "user_profiles": Counter()}

    def record(conn, cursor, statement, parameters, context, executemany):
        table = next((t for t in asked if f"FROM {t} " in statement and "user_sessions" not in statement), None)
        if table:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            for value in values:
                for key in (value if isinstance(value, (list, tuple)) else str(value).split(",")):
                    asked[table][key] += 1

    auth.login("admin")
    with every_statement(app, record):
        response = client.get("/orders/export.csv")
        text = response.get_data(as_text=True)
    assert response.status_code == 200 and text.count("\r\n") == len(orders) + 1
    for table, keys in asked.items():
        assert keys[ghost] == 1, table
        assert keys and max(keys.values()) <= 2, (table, keys.most_common(3))
