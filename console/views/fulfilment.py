"""Bulk fulfilment from a carrier file: upload, dry run, Apply, result CSV
(console/workflows/carrier_file.py)."""
from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console import links
from console.exports import csv_response
from console.forms import ConsoleForm
from console.permissions import permission_required
from console.views._actions import attempt, attempt_form, dry_run_or_404
from console.workflows import WorkflowError, bulk_stock, carrier_file

bp = Blueprint("fulfilment", __name__, url_prefix="/orders/carrier-file")
bp.context_processor(links.template_helpers)

SHOWN_ROWS = 500  # rows shown on the page; the CSV has all of them
MAX_MB = bulk_stock.MAX_BYTES // 1024 // 1024
TABS = (("attention", "Needs a look"), ("ship", "To ship"), ("all", "All rows"))
FINE = ("ship", "shipped", "skip")


class CsrfOnly(ConsoleForm):
    """The CSRF token only: the file and Apply work from the server's own records."""


def _upload_page(error=None, status=200):
    return make_response(render_template("fulfilment/upload.html", error=error, max_mb=MAX_MB,
                                         max_rows=carrier_file.MAX_ROWS), status)


@bp.get("")
@permission_required("orders.ship")
def upload():
    return _upload_page()


@bp.post("")
@permission_required("orders.ship")
def preview_create():
    form = CsrfOnly()
    file = request.files.get("file")

    def perform():
        if not form.validate():
            raise WorkflowError(form.error_message(), 422)
        if (request.content_length or 0) > bulk_stock.MAX_BYTES + 64 * 1024:
            raise bulk_stock.BulkFileError(f"The file is larger than {MAX_MB} MB. Split it into smaller files.")
        if file is None or not file.filename:
            raise WorkflowError("Choose the carrier's CSV file to upload.", 422)
        return carrier_file.preview(current_user, file.stream.read(bulk_stock.MAX_BYTES + 1), file.filename)
    result, refused = attempt(perform, "so the file could not be checked. Try again shortly.")
    if refused:
        return _upload_page(refused.message, refused.status)
    return redirect(url_for("fulfilment.preview", preview_id=result.id), 303)


def _preview_or_404(preview_id: str):
    return dry_run_or_404(carrier_file.load_preview, preview_id)


def _render(recorded, *, error=None, status=200, applied=False):
    show = request.args.get("show", "all")
    picks = {"attention": [r for r in recorded.rows if r.outcome not in FINE],
             "ship": [r for r in recorded.rows if r.outcome in ("ship", "shipped")]}
    rows = picks.get(show, recorded.rows)
    return make_response(render_template(
        "fulfilment/preview.html", preview=recorded, rows=rows[:SHOWN_ROWS], more=max(0, len(rows) - SHOWN_ROWS),
        show=show, tabs=[(key, label, len(picks.get(key, recorded.rows))) for key, label in TABS], error=error,
        labels=carrier_file.OUTCOME_LABELS, applied=applied, counts=recorded.counts), status)


@bp.get("/<preview_id>")
@permission_required("orders.ship")
def preview(preview_id: str):
    return _render(_preview_or_404(preview_id))


@bp.post("/<preview_id>/apply")
@permission_required("orders.ship")
def apply(preview_id: str):
    recorded = _preview_or_404(preview_id)
    form = CsrfOnly()
    done, refused = attempt_form(form, lambda: carrier_file.apply(current_user, recorded.id))
    if refused:
        return _render(recorded, error=refused.message, status=refused.status)
    counts = done.counts
    shipped, refusals = counts.get("shipped", 0), counts.get("refused", 0)
    flash(f"Applied: {shipped} order{'s' if shipped != 1 else ''} shipped, customers emailed"
          + (f"; {counts.get('skip')} already shipped with their tracking number, skipped" if counts.get("skip") else "")
          + (f"; {refusals} refused (see each row)" if refusals else "") + ".", "warning" if refusals else "success")
    return _render(done, applied=True)


@bp.get("/<preview_id>/result.csv")
@permission_required("orders.ship")
def result(preview_id: str):
    recorded = _preview_or_404(preview_id)
    return csv_response("carrier-file-dry-run", carrier_file.RESULT_HEADER, carrier_file.result_rows(recorded))
