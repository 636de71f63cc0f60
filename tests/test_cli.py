"""The console's CLI: every command answers --help, and init-db can run again
on databases that already have their tables without touching their rows."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select

from console.cli import console_cli
from console.extensions import db
from console.models import models_of
from console.models.product import Product
from tests.databases import scratch_database
from tests.second_app import app_with_bind


@pytest.mark.parametrize("command", sorted(console_cli.commands))
def test_every_command_has_help(app, command):
    result = app.test_cli_runner().invoke(args=["console", command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"console {command} [OPTIONS]" in result.output.splitlines()[0]
    assert console_cli.commands[command].help  # a one-line description in `console --help`


def test_init_db_creates_every_table_and_is_idempotent(app, database_urls, tmp_path):
    with scratch_database(tmp_path) as url, app_with_bind(database_urls, "product", url) as fresh:
        runner = fresh.test_cli_runner()
        first = runner.invoke(args=["console", "init-db"])
        assert first.exit_code == 0, first.output
        with fresh.app_context():
            expected = {m.__tablename__ for m in models_of("product")}
            assert set(inspect(db.engines["product"]).get_table_names()) == expected
            db.session.add(Product(name="Kept through a second init-db", sku="KEEP-1", slug="keep-1",
                                   price=Decimal("5.00")))
            db.session.commit()
        second = runner.invoke(args=["console", "init-db"])
        assert second.exit_code == 0, second.output
        assert "Created missing tables in 10 databases" in second.output
        with fresh.app_context():
            assert db.session.scalar(select(func.count()).select_from(Product)) == 1
            assert set(inspect(db.engines["product"]).get_table_names()) == expected
            db.session.remove()
