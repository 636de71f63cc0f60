"""Search at scale: each kind is a bounded index lookup on PostgreSQL (EXPLAIN names the
index, never a sequential scan), and a search costs the same number of statements
however many rows match."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import event, select

from console import lookups
from console.demo.builders import make_order, make_product
from console.extensions import db
from console.models.returns import ReturnAuthorization
from console.models.user import UserProfile
from console.screens.customers import search_condition
from tests.customer_helpers import full_customer


@pytest.fixture
def jane(app):
    with app.app_context():
        c = full_customer()
        parcel = db.session.scalar(select(ReturnAuthorization.tracking_number)
                                   .where(ReturnAuthorization.return_request_id == c.ret.id))
        db.session.commit()
        return SimpleNamespace(user=c.user, order_number=c.order.order_number, rma=c.ret.rma_number,
                               parcel=parcel, tracking=c.shipment.tracking_number,
                               provider_payment_id=c.payment.provider_payment_id, email=c.user.email)


def statements_of(app, run) -> list[tuple]:
    """(engine, statement, parameters) of every statement ``run()`` sends."""
    seen: list[tuple] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "pg_catalog" not in statement:
            seen.append((conn.engine, statement, parameters))

    with app.app_context():
        engines = list(db.engines.values())
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    return seen


def plans(statements) -> list[str]:
    """EXPLAIN of each statement with sequential scans priced out (the test tables hold a
    few rows, where a scan is cheapest): a Seq Scan left in a plan means no index can
    answer that statement."""
    found = []
    for engine, statement, parameters in statements:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())
        found.append(plan)
    return found


def index_scans(plan: str) -> set[str]:
    """Names of the indexes a plan reads."""
    return {a or b for a, b in re.findall(r"Index (?:Only )?Scan (?:Backward )?using (\w+)|Bitmap Index Scan on (\w+)",
                                          plan)}


# (what is typed, the indexes its lookups must use): prefixes first (nothing matches them
# exactly), then exact values (found by their unique or plain btree indexes).
PREFIX_SEARCHES = {
    "order number": (lambda j: j.order_number[:-2], {"ix_orders_order_number_prefix",
                                                      "ix_orders_tracking_number_prefix"}),
    "tracking number": (lambda j: j.tracking[:-2], {"ix_shipments_tracking_number_prefix",
                                                     "ix_orders_tracking_number_prefix",
                                                     "ix_return_authorizations_tracking_number_prefix"}),
    "payment provider id": (lambda j: j.provider_payment_id[:-2], {"ix_payments_provider_payment_id_prefix"}),
    "email": (lambda j: j.email[:6], {"ix_user_profiles_email_prefix", "ix_users_email_prefix"}),
    "RMA number": (lambda j: j.rma[:-2], {"ix_return_requests_rma_number_prefix",
                                          "ix_return_authorizations_rma_number_prefix"}),
    "customer name": (lambda j: "jane d", {"ix_user_profiles_name_prefix"}),
    "phone digits": (lambda j: "555 010 0199", {"ix_user_profiles_phone_digits_trgm"}),
}
EXACT_SEARCHES = {
    "order number": (lambda j: j.order_number, "orders"),
    "tracking number": (lambda j: j.tracking, "shipments"),
    "payment provider id": (lambda j: j.provider_payment_id, "payments"),
    "email": (lambda j: j.email, "user_profiles"),
    "RMA number": (lambda j: j.rma, "return_requests"),
}


@pytest.mark.postgres_only
@pytest.mark.parametrize("kind", PREFIX_SEARCHES)
def test_each_prefix_search_walks_its_index(app, auth, client, jane, kind):
    term_of, expected = PREFIX_SEARCHES[kind]
    auth.login("admin")
    term = term_of(jane)
    statements = statements_of(app, lambda: client.get("/search", query_string={"q": term}))
    found = plans(statements)
    assert not [p for p in found if "Seq Scan" in p], "\n\n".join(p for p in found if "Seq Scan" in p)
    used = set().union(*(index_scans(p) for p in found))
    assert expected <= used, (kind, term, expected - used, [p for p in found if "user_profiles" in p])


@pytest.mark.postgres_only
@pytest.mark.parametrize("kind", EXACT_SEARCHES)
def test_each_exact_search_uses_an_index(app, auth, client, jane, kind):
    term_of, table = EXACT_SEARCHES[kind]
    auth.login("admin")
    term = term_of(jane)
    statements = statements_of(app, lambda: client.get("/search", query_string={"q": term}))
    found = plans(statements)
    assert not [p for p in found if "Seq Scan" in p], "\n\n".join(p for p in found if "Seq Scan" in p)
    assert any(re.search(rf"Index (Only )?Scan (Backward )?using \w+ on {table}\b|Bitmap Heap Scan on {table}\b", p)
               for p in found), (kind, term)


@pytest.mark.postgres_only
@pytest.mark.parametrize("q", ["jane", "DOE@exa", "555 0100"])
def test_customer_filters_read_their_trigram_indexes(app, jane, q):
    """The customers list's ?q= condition (email, name, phone digits contain) as a whole
    is answered from trigram indexes; its order and page are the list's keyset."""
    with app.app_context():
        engine = db.engines["user"]
        stmt = select(UserProfile.id).where(search_condition(q, []))
        compiled = stmt.compile(dialect=engine.dialect)
        plan = plans([(engine, compiled.string, compiled.params)])[0]
    assert "Seq Scan" not in plan, plan
    wanted = {"ix_user_profiles_email_trgm", "ix_user_profiles_name_trgm"}
    if any(ch.isdigit() for ch in q):
        wanted.add("ix_user_profiles_phone_digits_trgm")
    assert index_scans(plan) == wanted, plan


def test_statements_do_not_grow_with_the_matches(app, auth, client, jane, count_queries):
    """Thirty orders matching a prefix cost the same statements as one: one per database
    searched and the signed-in user's own, whatever the term."""
    auth.login("admin")
    with app.app_context():
        mug = make_product("BULK-MUG", "Mug", "5.00", stock=100)
        user = db.session.merge(jane.user)
        numbers = []
        for _ in range(30):
            order = make_order(user, [(mug, 1)]).order
            numbers.append(order.order_number)
        db.session.commit()
    # The exact search for one number, then a prefix several hundred match (every order).
    client.get("/search", query_string={"q": numbers[0]})
    before = count_queries.count
    client.get("/search", query_string={"q": numbers[0]})
    exact = count_queries.count - before
    before = count_queries.count
    response = client.get("/search", query_string={"q": numbers[0][:4]})
    prefix = count_queries.count - before
    assert response.status_code == 200 and "see all" in response.get_data(as_text=True).lower()
    # Eight databases (order, user, auth, return, shipping, payment, discount, product), one
    # statement each: the exact and prefix lookups, a return's parcels with their requests,
    # products with their variants and the staff left out of customers all in it; plus the
    # session check.
    assert exact == prefix == 9, (exact, prefix)


@pytest.mark.parametrize("term", ["jane d", "555 010 0199", "Jane.Doe@EXAMPLE.com", "RMA-", "x"])
def test_one_statement_per_database_for_every_shape_of_term(app, auth, client, jane, term):
    """A full name, a phone number, an email in mixed case, a prefix, a term too short for
    prefixes: each database searched is asked once."""
    auth.login("admin")
    client.get("/search", query_string={"q": term})
    statements = statements_of(app, lambda: client.get("/search", query_string={"q": term}))
    databases = [engine.url.database for engine, _, _ in statements]
    searched = databases[1:]  # after the session check
    assert len(searched) == 8 and len(set(searched)) == 8, databases


def test_see_all_customers_only_for_a_term_the_customers_list_takes(app):
    from console.filters import CONTAINED_MIN
    from console.screens.search import PER_KIND, Hit, Results

    hits = [Hit("customer", f"c{n}@example.com", "", None) for n in range(PER_KIND + 1)]
    with app.test_request_context():
        assert Results("smi")._group("customer", hits).see_all == "/customers?q=smi"
        assert Results("sm")._group("customer", hits).see_all is None  # the list would refuse it
        assert Results("OR")._group("order", hits).see_all  # the orders list takes any start of a number
    assert CONTAINED_MIN == 3


@pytest.mark.postgres_only
def test_the_databases_are_searched_at_the_same_time(app, auth, client, jane, monkeypatch):
    """Each database's lookup is read on its own connection while the others are: seven
    reads that each wait for all seven to have started would never finish one by one
    (a database that fails to answer would keep the search from going straight to the
    one order found). auth_db, whose connection the session check holds, is read there."""
    import threading

    from console.screens import search as screen

    others = len(screen.FINDERS) - 1
    started = threading.Barrier(others, timeout=10)
    read, databases = lookups._read, []

    def together(engine, statement, params):
        databases.append(engine.url.database)
        started.wait()
        return read(engine, statement, params)

    monkeypatch.setattr(lookups, "_read", together)
    auth.login("admin")
    response = client.get("/search", query_string={"q": jane.order_number})
    assert response.status_code == 302 and "/orders/" in response.headers["Location"]
    assert not started.broken and len(set(databases)) == others
    assert not any(name.endswith("_auth") for name in databases), databases


@pytest.mark.postgres_only
def test_a_database_that_fails_while_searched_at_once_is_named_and_the_rest_answer(app, auth, client, jane,
                                                                                   monkeypatch):
    from sqlalchemy.exc import OperationalError

    read = lookups._read
    with app.app_context():
        payment_db = db.engines["payment"]

    def payment_gone(engine, statement, params):
        if engine is payment_db:
            raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))
        return read(engine, statement, params)

    monkeypatch.setattr(lookups, "_read", payment_gone)
    auth.login("admin")
    response = client.get("/search", query_string={"q": jane.tracking})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and jane.tracking in page
    assert re.search(r"payment[^<]*unavailable|unavailable[^<]*payment", page, re.I), page[:3000]


@pytest.mark.postgres_only
def test_searching_at_once_needs_no_second_connection_to_a_database_the_request_holds(app, auth, database_urls,
                                                                                      jane):
    """The request already holds an auth_db connection (its session check): the accounts
    lookup reads there, so a pool of one connection a database serves a search instead
    of leaving it waiting for a connection its own request will not give back."""
    import config
    from tests.conftest import make_app
    from tests.test_auth import sign_in

    auth.create("admin")
    binds = {key: {**config.bind_config(url), "pool_size": 1, "max_overflow": 0, "pool_timeout": 1}
             for key, url in database_urls.items()}
    narrow = make_app(database_urls, SQLALCHEMY_BINDS=binds)
    client = narrow.test_client()
    try:
        assert sign_in(client, "admin@staff.test").status_code == 302
        response = client.get("/search", query_string={"q": jane.email})
        # Found in auth_db and user_db alike, one customer: straight to them.
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]
        assert "/customers/" in response.headers["Location"]
    finally:
        with narrow.app_context():
            for engine in db.engines.values():
                engine.dispose()
