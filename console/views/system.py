"""Database health: the Databases page and GET /healthz."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from console.health import check_all
from console.permissions import permission_required

bp = Blueprint("system", __name__)


@bp.get("/healthz")
def healthz():
    """For load balancers, without sign-in: up or down per database, nothing more (the
    errors, which can name hosts, ports and databases, are on the Databases page)."""
    results = check_all(with_details=False)
    body = {
        "status": "ok" if all(h.up for h in results) else "degraded",
        "databases": {h.key: {"up": h.up} for h in results},
        "down": [h.key for h in results if not h.up],
    }
    return jsonify(body), 200 if not body["down"] else 503


@bp.get("/databases")
@permission_required("databases.view")
def databases():
    return render_template("system/databases.html", results=check_all())
