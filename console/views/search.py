"""Global search: the box in the header, and its results page."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_login import current_user

from console.screens import search as finder
from console.permissions import permission_required

bp = Blueprint("search", __name__)


@bp.get("/search")
@permission_required("dashboard.view")
def search():
    results = finder.search(request.args.get("q", ""), current_user)
    hit = results.single
    if hit is not None:
        return redirect(hit.url)
    return render_template("search/results.html", results=results, kinds=finder.KINDS,
                           searchable=finder.SEARCHABLE, min_prefix=finder.MIN_PREFIX,
                           per_kind=finder.PER_KIND)
