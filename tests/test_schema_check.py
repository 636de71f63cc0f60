"""check-schema: a live database compared with the models, table by table and
column by column; an unreachable database is reported, not a crash."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from console.extensions import db
from console.schema_check import check_all, check_bind, expected_columns
from tests.databases import scratch_database
from tests.second_app import UNOPENABLE_SQLITE, UNREACHABLE_POSTGRES, app_with_bind, app_with_unreachable


def test_databases_made_by_init_db_fit(app):
    with app.app_context():
        reports = check_all()
    assert [r.key for r in reports if not r.fits] == []
    assert all(not r.extra_tables and not r.extra_columns for r in reports)
    assert sum(r.tables_expected for r in reports) == 70
    result = app.test_cli_runner().invoke(args=["console", "check-schema"])
    assert result.exit_code == 0, result.output
    assert "All 10 databases have every table and column the console needs." in result.output


def test_missing_and_extra_tables_and_columns_are_listed(app, database_urls, tmp_path):
    with scratch_database(tmp_path) as url, app_with_bind(database_urls, "product", url) as other:
        with other.app_context():
            db.create_all(bind_key="product")
            with db.engines["product"].begin() as conn:
                conn.execute(text("ALTER TABLE products DROP COLUMN weight"))
                conn.execute(text("DROP TABLE product_tags"))
                conn.execute(text("CREATE TABLE legacy_notes (id varchar PRIMARY KEY)"))
                conn.execute(text("ALTER TABLE products ADD COLUMN legacy_code varchar"))
            report = check_bind("product")
            assert report.up and not report.fits
            assert report.missing_columns == ["products.weight"]
            assert report.missing_tables == ["product_tags"]
            assert report.extra_tables == ["legacy_notes"]
            assert report.extra_columns == ["products.legacy_code"]
            assert len(expected_columns("product")) == report.tables_expected == 14
        result = other.test_cli_runner().invoke(args=["console", "check-schema"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("product_db: DOES NOT FIT, 13 of 14 tables") for line in lines)
    assert "  missing column  products.weight" in lines
    assert "  missing table   product_tags" in lines
    assert any(line.startswith("  extra column    products.legacy_code") for line in lines)
    assert any(line.startswith("order_db: fits, 5 of 5 tables") for line in lines)
    assert "lack tables or columns the console needs: product_db" in result.output


@pytest.mark.parametrize("url", [UNREACHABLE_POSTGRES, UNOPENABLE_SQLITE], ids=["postgres", "sqlite"])
def test_an_unreachable_database_is_reported(app, database_urls, url):
    with app_with_unreachable(database_urls, "payment", url) as broken:
        started = time.perf_counter()
        with broken.app_context():
            reports = {r.key: r for r in check_all()}
        result = broken.test_cli_runner().invoke(args=["console", "check-schema"])
        elapsed = time.perf_counter() - started
    assert not reports["payment"].up and reports["payment"].error
    assert all(r.fits for key, r in reports.items() if key != "payment")
    assert result.exit_code == 1
    assert any(line.startswith("payment_db: DOWN, could not connect") for line in result.output.splitlines())
    assert "could not be checked: payment_db" in result.output
    assert elapsed < 5


def live_indexes(bind_key: str) -> set[str]:
    from console.schema_check import live_index_names

    with db.engines[bind_key].connect() as conn:
        return live_index_names(conn)


def test_declared_indexes_exist_after_init_db(app, database_urls, tmp_path):
    """init-db builds every index the models declare: the PostgreSQL-only ones (prefix
    search, trigram "contains", the dashboard's covering index) only on PostgreSQL."""
    from console.schema_check import declared_indexes

    with app.app_context():
        assert [(r.key, r.missing_indexes, r.skipped_indexes) for r in check_all()
                if r.missing_indexes or r.skipped_indexes] == []
    with scratch_database(tmp_path) as url, app_with_bind(database_urls, "order", url) as other:
        result = other.test_cli_runner().invoke(args=["console", "init-db"])
        assert result.exit_code == 0, result.output
        with other.app_context():
            postgres = db.engines["order"].dialect.name == "postgresql"
            present = live_indexes("order")
            declared = {i.name for i in declared_indexes("order")}
            # the console's own and the service's own (as the order service's DDL names them)
            assert "ix_orders_order_number_upper" in present and "orders_status_idx" in present
            pg_only = {"ix_orders_order_number_prefix", "ix_orders_tracking_number_prefix",
                       "ix_orders_created_at_figures"}
            assert pg_only <= declared
            if postgres:
                assert declared <= present
            else:
                assert not pg_only & present and declared - pg_only <= present


def test_check_schema_reports_a_dropped_index_and_create_indexes_builds_it(app, database_urls, tmp_path):
    from console.health import check_all as health_of_all

    with scratch_database(tmp_path) as url, app_with_bind(database_urls, "order", url) as other:
        runner = other.test_cli_runner()
        with other.app_context():
            db.create_all(bind_key="order")
            postgres = db.engines["order"].dialect.name == "postgresql"
            dropped = ["ix_orders_order_number_upper"] + (["ix_orders_order_number_prefix"] if postgres else [])
            with db.engines["order"].begin() as conn:
                for name in dropped:
                    conn.execute(text(f'DROP INDEX "{name}"'))
            report = check_bind("order")
            assert report.fits  # the console still works without them
            assert sorted(i.name for i in report.missing_indexes) == sorted(dropped)
            health = {h.key: h for h in health_of_all()}["order"]
            assert sorted(i.name for i in health.missing_indexes) == sorted(dropped)  # the Databases page
        result = runner.invoke(args=["console", "check-schema"])
        assert result.exit_code == 0, result.output
        assert ("  missing index   orders.ix_orders_order_number_upper  serves order number filters of "
                "orders, returns and refunds (any case)") in result.output.splitlines()
        assert f"{len(dropped)} index(es) missing in order_db" in result.output
        assert "console create-indexes" in result.output

        result = runner.invoke(args=["console", "create-indexes"])
        assert result.exit_code == 0, result.output
        assert f"Built {len(dropped)} index(es)." in result.output
        with other.app_context():
            assert check_bind("order").missing_indexes == []
            assert set(dropped) <= live_indexes("order")
        result = runner.invoke(args=["console", "create-indexes"])
        assert result.exit_code == 0 and "No index was missing." in result.output
