"""How every screen runs an action: the workflow does it, or refuses it.

A refusal is a WorkflowError (its message and 4xx status) or a database that didn't
answer (503, naming it, and saying what that means for this action). The views then
answer the refusal their own way: the page again, a partial, or an error page.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import abort

from console.lookups import DatabaseUnavailable
from console.workflows import WorkflowError

# What a database being down means for most actions: a workflow writes all or nothing.
NOTHING_CHANGED = "so nothing was changed. Try again when it is back (the Databases page shows its state)."


@dataclass
class Refusal:
    message: str
    status: int


def attempt(perform, unavailable: str = NOTHING_CHANGED):
    """Run ``perform()``: ``(its result, None)`` when done, ``(None, Refusal)`` when not.
    ``unavailable`` finishes the sentence "<name>_db is unavailable, …"."""
    try:
        return perform(), None
    except WorkflowError as exc:
        return None, Refusal(exc.message, exc.status)
    except DatabaseUnavailable as exc:
        return None, Refusal(f"{exc.bind_key}_db is unavailable, {unavailable}", 503)


def attempt_form(form, perform, unavailable: str = NOTHING_CHANGED):
    """``attempt(perform)`` once ``form`` validates; its messages as one 422 refusal
    (nothing run) when it does not."""
    if not form.validate():
        return None, Refusal(form.error_message(), 422)
    return attempt(perform, unavailable)


def dry_run_or_404(load, preview_id: str):
    """A CSV upload's recorded dry run (``load`` reads it from auth_db), or the 404 or
    503 that says what to do: the carrier file and the bulk stock update share it."""
    if len(preview_id) > 64 or not preview_id.isprintable():
        abort(404, "No such dry run. Upload the file again.")
    try:
        recorded = load(preview_id)
    except DatabaseUnavailable:
        abort(503, "auth_db is unavailable, and the dry run's record lives there. Try again shortly.")
    if recorded is None:
        abort(404, "No such dry run. Upload the file again.")
    return recorded
