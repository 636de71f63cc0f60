"""seed-demo's bulk path at 100,000 orders on ten databases made from the platform's own
DDL, every session in a time zone far from UTC, then check-refs over all of it: what a
real deployment's shape holds at a size where every bulk batch and index rebuild runs."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from console.extensions import db
from console.models.order import Order
from tests import databases
from tests.conftest import make_app

pytestmark = pytest.mark.skipif(databases.BACKEND != "postgres",
                                reason="the 100,000-order seed runs in the PostgreSQL pass (real DDL)")


@pytest.fixture
def platform_app():
    tag = databases.run_tag() + "_scale"
    urls = databases.create_postgres_databases(tag)
    application = make_app(urls)
    try:
        yield application
    finally:
        with application.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
        databases.drop_postgres_databases(tag)


def test_seed_demo_of_100000_orders_passes_check_refs(platform_app):
    runner = platform_app.test_cli_runner()
    indexed = runner.invoke(args=["console", "create-indexes"])
    assert indexed.exit_code == 0, indexed.output
    seeded = runner.invoke(args=["console", "seed-demo", "--orders", "100000", "--customers", "10000",
                                 "--now", "2026-11-01T12:00"])
    assert seeded.exit_code == 0, seeded.output
    with platform_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 100_000
        # TIMESTAMP(3) holds UTC: the newest order is no later than --now, whatever the session's zone.
        newest = db.session.scalar(select(func.max(Order.created_at)))
        assert newest.isoformat() <= "2026-11-01T12:00:00+00:00"
    refs = runner.invoke(args=["console", "check-refs"])
    assert refs.exit_code == 0, refs.output
    client = platform_app.test_client()
    response = client.post("/login", data={"email": "support@example.com", "password": "console-demo-1"})
    assert response.status_code == 302
    for path in ("/", "/orders", "/orders?sort=-total", "/customers", "/returns", "/refunds", "/search?q=ORD-"):
        assert client.get(path).status_code == 200, path
