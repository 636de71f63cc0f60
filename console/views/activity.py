"""The Activity screen (admins): the audit trail of every staff change."""
from __future__ import annotations

from flask import Blueprint, abort, make_response, render_template, request

from console import activity
from console.exports import csv_response
from console.listing import BadCursor, page_size
from console.permissions import permission_required

bp = Blueprint("activity", __name__, url_prefix="/activity")


def _vary(response):
    # One URL answers with a partial (htmx) or a whole page: caches must keep both.
    response.headers["Vary"] = "HX-Request"
    return response


def _filters() -> activity.ActivityFilters:
    try:
        return activity.ActivityFilters.from_args(request.args)
    except activity.BadFilter as exc:
        abort(400, str(exc))


@bp.get("")
@permission_required("activity.view")
def list_activity():
    filters = _filters()
    size = page_size(request.args.get("size"), default=50)
    try:
        page = activity.list_activity(filters, request.args.get("cursor"), size)
    except BadCursor as exc:
        abort(400, str(exc))
    template = "activity/_table.html" if request.htmx else "activity/list.html"
    return _vary(make_response(render_template(template, page=page, filters=filters, size=size)))


@bp.get("/export.csv")
@permission_required("activity.view")
def export_activity():
    return csv_response("activity", activity.EXPORT_HEADER, activity.export_rows(_filters()))
