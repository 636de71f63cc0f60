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
    """Create every table and index in its own database (existing ones are left alone)."""
    from console.email_templates import install
    from console.schema_check import create_schema

    for key, problem in create_schema().items():
        click.echo(f"{key}_db: {problem}", err=True)
    click.echo(f"Created missing tables in {len(BIND_KEYS)} databases: {', '.join(BIND_KEYS)}.")
    added = install()
    db.session.commit()
    click.echo(f"Installed the email templates the workflows need: {', '.join(t.name for t in added)}."
               if added else "The workflows' email templates were already installed.")


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


@console_cli.command("seed-demo")
@click.option("--customers", default=200, show_default=True, type=click.IntRange(1), help="Customers to create.")
@click.option("--orders", default=1000, show_default=True, type=click.IntRange(1), help="Orders to create.")
@click.option("--seed", default=1, show_default=True, type=int, help="The same seed gives the same data.")
@click.option("--if-empty", is_flag=True, help="Do nothing when auth_db already has users (for `make run`).")
@click.option("--reset", is_flag=True, help="Delete every row in all ten databases first.")
@click.option("--now", "now_text", default=None, metavar="now|YYYY-MM-DD[THH:MM]",
              help="The moment the demo data leads up to, in UTC. Default: a fixed date (1 November 2026), "
                   "so runs repeat exactly; `now` dates it up to the present.")
def seed_demo_command(customers: int, orders: int, seed: int, if_empty: bool, reset: bool,
                      now_text: str | None) -> None:
    """Load coherent demo data into all ten databases, including one staff login per role."""
    from datetime import datetime, timezone

    from console.demo.seed import (
        DEMO_NOW, DEMO_STAFF_PASSWORD, database_is_empty, delete_all_rows, seed_demo, total_steps,
    )

    if now_text is None:
        now = DEMO_NOW
    elif now_text == "now":
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    else:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter("use `now`, a date like 2026-11-01 or 2026-11-01T12:00",
                                     param_hint="--now") from None
        now = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
    from console.permissions import STAFF_ROLES
    from console.schema_check import check_all

    unfit = [r for r in check_all() if not r.fits]
    if unfit:
        problems = "; ".join(f"{r.key}_db " + (f"is unreachable ({r.error})" if not r.up else "lacks tables or columns")
                             for r in unfit)
        raise click.ClickException(f"{problems}. Run `flask --app wsgi console init-db` first "
                                   "(and `console check-schema` for the details).")
    if not database_is_empty():
        if if_empty:
            click.echo("auth_db already has users: demo data not loaded (--if-empty).")
            return
        if not reset:
            raise click.ClickException("auth_db already has users, and demo data must not be mixed into real data. "
                                       "Use --reset to delete every row in all ten databases first, "
                                       "or --if-empty to leave them as they are.")
        delete_all_rows()
        click.echo("Deleted every row in all ten databases (--reset).")
    with click.progressbar(length=total_steps(customers, orders), label="Seeding demo data") as bar:
        summary = seed_demo(customers=customers, orders=orders, seed=seed, now=now, progress=bar.update)
    click.echo("Created " + ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in summary.items()) + ".")
    click.echo(f"Staff sign-in (password {DEMO_STAFF_PASSWORD}): "
               + ", ".join(f"{role}@example.com" for role in STAFF_ROLES))


@console_cli.command("sync-refunds")
def sync_refunds_command() -> None:
    """Follow the refunds the payment service executes (STRIPE, PAYPAL): once it has marked
    one COMPLETED or FAILED, complete or release it here (safe to run from cron; exit 1 if a
    refund needs attention)."""
    from console.lookups import DatabaseUnavailable
    from console.workflows.refunds import sync_open_refunds

    try:
        tally = sync_open_refunds()
    except DatabaseUnavailable as exc:
        raise click.ClickException(f"{exc.bind_key}_db is unavailable: refunds not followed past that point. "
                                   "Run the command again once it is back.") from exc
    if not tally:
        click.echo("No refund is waiting for its provider.")
        return
    total = sum(tally.values())
    click.echo(f"Checked {total} refund{'' if total == 1 else 's'}: "
               + ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in sorted(tally.items())) + ".")
    if tally["needs_attention"] or tally["refused"]:
        click.echo("Some refunds need attention: see the refunds screen (status “needs attention”).", err=True)
        raise SystemExit(1)


@console_cli.command("expire-promotions")
def expire_promotions_command() -> None:
    """Expire every active or paused promotion whose end date has passed (safe to run
    from cron; each one is audited, as done by the system)."""
    from console.lookups import DatabaseUnavailable
    from console.workflows.promotions import expire_past_end

    try:
        expired = expire_past_end()
    except DatabaseUnavailable as exc:
        raise click.ClickException(f"{exc.bind_key}_db is unavailable: no promotion was expired past that point. "
                                   "Run the command again once it is back.") from exc
    if not expired:
        click.echo("No promotion is past its end date.")
        return
    click.echo(f"Expired {len(expired)} promotion{'' if len(expired) == 1 else 's'}: "
               + ", ".join(f"“{p.name}”" for p in expired) + ".")


@console_cli.command("drop-cache-keys")
def drop_cache_keys_command() -> None:
    """Drop the keys the services' Redis caches are still owed (changes committed while a
    cache was down or slow; safe to run from cron; exit 1 while some are still waiting)."""
    from console.cache_drops import retry

    outcomes = retry()
    if not outcomes:
        click.echo("No service cache is owed anything.")
        return
    for outcome in outcomes:
        click.echo(outcome.message, err=bool(outcome.waiting))
    if any(outcome.waiting for outcome in outcomes):
        raise SystemExit(1)


@console_cli.command("check-refs")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write the report to this CSV file.")
def check_refs_command(csv_path: str | None) -> None:
    """Count rows whose logical reference points at nothing (exit 1 if any)."""
    from console.exports import csv_lines
    from console.integrity import CSV_HEADER, check_all, csv_rows, report_lines

    reports = check_all()
    for line in report_lines(reports):
        click.echo(line)
    if csv_path:
        with open(csv_path, "w", encoding="utf-8", newline="") as handle:
            handle.writelines(csv_lines(CSV_HEADER, csv_rows(reports)))
        click.echo(f"Wrote {csv_path}.")
    if not all(r.ok for r in reports):
        raise SystemExit(1)


@console_cli.command("check-schema")
def check_schema_command() -> None:
    """Compare each live database with the models: missing and extra tables and columns
    (exit 1 if a table or column is missing or a database is unreachable)."""
    from console.schema_check import check_all, report_lines

    reports = check_all()
    for line in report_lines(reports):
        click.echo(line)
    if not all(r.fits for r in reports):
        raise SystemExit(1)


@console_cli.command("create-indexes")
def create_indexes_command() -> None:
    """Build the indexes the models declare that a database lacks (CREATE INDEX
    CONCURRENTLY on PostgreSQL: the services' writes are not blocked)."""
    from console.schema_check import DatabaseDown, create_missing_indexes, ensure_extensions

    for key, problem in ensure_extensions().items():
        click.echo(f"{key}_db: {problem}", err=True)
    built, down = 0, []
    for key in BIND_KEYS:
        try:
            built += create_missing_indexes(key, echo=click.echo)
        except DatabaseDown as exc:
            down.append(key)
            click.echo(str(exc), err=True)
    click.echo(f"Built {built} index(es)." if built else "No index was missing.")
    if down:
        raise SystemExit(1)
