"""The Activity screen (admins): the audit trail of every staff change."""
from __future__ import annotations

from flask import Blueprint, abort, request

from console import activity
from console.exports import csv_response
from console.permissions import permission_required
from console.views._listing import render_list

bp = Blueprint("activity", __name__, url_prefix="/activity")


@bp.get("")
@permission_required("activity.view")
def list_activity():
    filters, errors = activity.ActivityFilters.parse(request.args)
    return render_list("activity", activity.list_activity, filters, errors, noun="changes", home="auth")


@bp.get("/export.csv")
@permission_required("activity.view")
def export_activity():
    filters, errors = activity.ActivityFilters.parse(request.args)
    if errors:
        abort(400, " ".join(errors))
    return csv_response("activity", activity.EXPORT_HEADER, activity.export_rows(filters))
