"""Error pages: a clear message and the right status, for pages and htmx alike."""
from __future__ import annotations

from flask import render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from console.drift import NotInSchema, SchemaDrift
from console.lookups import DatabaseUnavailable

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Check the form and try again."),
    403: ("Not allowed", "Your role does not allow this. Ask an admin if you need access."),
    404: ("Not found", "Nothing here. Check the address, or search from the box above."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    409: ("Conflict", "Someone else changed this at the same time. Reload and try again."),
    500: ("Something went wrong", "The error has been logged. Before trying again, reload the page to see "
                                   "whether part of it was saved."),
}


def render_error(status: int, message: str | None = None, title: str | None = None):
    default_title, default_message = MESSAGES.get(status, MESSAGES[500])
    template = "errors/_error.html" if getattr(request, "htmx", False) else "errors/error.html"
    return render_template(template, status=status, title=title or default_title,
                           message=message or default_message), status


def register(app) -> None:
    for status in MESSAGES:
        app.register_error_handler(status, lambda exc, status=status: render_error(
            status, getattr(exc, "description", None) if status != 500 else None))

    @app.errorhandler(SchemaDrift)
    def schema_drift(exc):
        # Views show a workflow's refusal themselves; this catches the rest.
        return render_error(exc.status, exc.message, "Not in this database")

    @app.errorhandler(CSRFError)
    def csrf_failed(exc):
        return render_error(400, "The form expired or was sent without its security token. "
                                 "Reload the page and submit again.", "Form expired")

    @app.errorhandler(DatabaseUnavailable)
    def database_down(exc):
        if isinstance(exc, NotInSchema):
            return render_error(503, f"{exc.bind_key}_db {exc.what}, which this page needs: {exc.advice}. "
                                     "Other areas of the console keep working.", "Not in this database")
        return render_error(503, f"The {exc.bind_key} database ({exc.bind_key}_db) is unavailable right now. "
                                 "Other areas of the console keep working; try this page again shortly.",
                            "Database unavailable")

    @app.errorhandler(PoolTimeout)
    def no_free_connection(exc):
        # Outside a database() block: every pooled connection stayed busy for the pool's
        # timeout (config.py pool_timeout). Busy, not broken: a moment later it answers.
        return render_error(503, "The console is busy: every connection to a database it needs is in use. "
                                 "Try this page again in a few seconds.", "Busy")

    @app.after_request
    def say_when_to_try_again(response):
        # Every 503 here is a database that is down, busy or not migrated yet, whichever
        # view answered it: scripts and proxies are told when to come back.
        if response.status_code == 503:
            response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        return response


# Seconds a 503 asks the client to wait before trying again.
RETRY_AFTER_SECONDS = 5
