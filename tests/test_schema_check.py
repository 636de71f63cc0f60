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
