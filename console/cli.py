"""``flask --app wsgi console …``: database setup, demo data and integrity checks."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from config import BIND_KEYS
from console.extensions import db
from console.permissions import STAFF_ROLES

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


@console_cli.command("create-staff")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES),
              help="The staff role to give.")
def create_staff(email: str, role: str) -> None:
    """Create a staff account (asks for its password), or give an existing account a role.

    This is how a new deployment gets its first admin."""
    from console.workflows import WorkflowError
    from console.workflows import staff

    existing = staff.find_user(email)
    try:
        if existing is not None:
            staff.grant_role(None, existing.id, role)
            click.echo(f"{existing.email} already exists: granted the {role} role.")
            if not existing.is_active:
                click.echo("Note: this account is inactive, so it still cannot sign in.")
            return
        while True:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            problems = staff.password_problems(password, email)
            if not problems:
                break
            click.echo("Password refused: " + "; ".join(problems) + ".", err=True)
        user = staff.create_staff(email, password, role)
    except WorkflowError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Created {user.email} with the {role} role.")
