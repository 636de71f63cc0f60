"""``flask --app wsgi console …``: database setup, demo data and integrity checks."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from config import BIND_KEYS
from console.extensions import db

console_cli = AppGroup("console", help="Operations console commands.")


@console_cli.command("init-db")
def init_db() -> None:
    """Create every table in its own database (existing tables are left alone)."""
    db.create_all(bind_key=list(BIND_KEYS))
    click.echo(f"Created missing tables in {len(BIND_KEYS)} databases: {', '.join(BIND_KEYS)}.")


@console_cli.command("refs")
def print_references() -> None:
    """Print the registry of logical references as a table."""
    from console.references import as_table

    rows = [("reference", "target", "note"), *as_table()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for source, target, note in rows:
        click.echo(f"{source:<{widths[0]}}  {target:<{widths[1]}}  {note}")
