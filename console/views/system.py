"""Database health: the Databases page and GET /healthz."""
from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user

from config import BIND_KEYS
from console import audit, cache_drops
from console.drift import drift
from console.extensions import db
from console.lookups import DatabaseUnavailable, database
from console.health import check_all
from console.permissions import permission_required

bp = Blueprint("system", __name__)


@bp.get("/healthz")
def healthz():
    """For load balancers, without sign-in: up or down per database, nothing more (the
    errors, which can name hosts, ports and databases, are on the Databases page)."""
    results = check_all(with_details=False)
    # Each database that is up is read once, at the first /healthz (or its first use, or
    # the Databases page), and again only on "check again": a load balancer's probe
    # knows the drift from the start and then costs no more than the up-or-down check.
    registry = drift()
    registry.check([h.key for h in results if h.up])
    body = {
        "status": "ok" if all(h.up for h in results) else "degraded",
        "databases": {h.key: {"up": h.up} for h in results},
        "down": [h.key for h in results if not h.up],
        # Tables and columns the console expects but the databases lack or type
        # otherwise; which ones is on the Databases page.
        "schema": "drifted" if registry.count else "ok",
        "drifted": registry.count,
    }
    return jsonify(body), 200 if not body["down"] else 503


@bp.get("/databases")
@permission_required("databases.view")
def databases():
    results = check_all()
    registry = drift()
    registry.check([h.key for h in results if h.up])
    return render_template("system/databases.html", results=results,
                           drift=[registry.binds[key] for key in BIND_KEYS
                                  if key in registry.binds and registry.binds[key].count],
                           caches=cache_drops.health())


@bp.post("/databases/check-schema")
@permission_required("databases.view")
def check_schema_again():
    """Read every database's columns again: after a service migrated, no restart needed."""
    registry = drift()
    registry.check([h.key for h in check_all(with_details=False) if h.up], force=True)
    count = registry.count
    flash(f"Checked again: {count} table(s) or column(s) still differ from what the console expects."
          if count else "Checked again: every database has the tables and columns the console needs.",
          "warning" if count else "success")
    return redirect(url_for("system.databases"))


@bp.post("/databases/service-caches/retry")
@permission_required("databases.view")
def retry_cache_drops():
    """Drop what the services' caches are still owed, now (audited)."""
    outcomes = cache_drops.retry()
    if not outcomes:
        flash("No service cache is owed anything.", "success")
        return redirect(url_for("system.databases", _anchor="service-caches"))
    try:
        with database("auth"):
            audit.record(current_user, "service_cache.retried", "service_cache", None,
                         after={o.service: {"dropped": o.dropped, "waiting": o.waiting, "error": o.error or None}
                                for o in outcomes})
            db.session.commit()
    except DatabaseUnavailable:
        flash("The audit trail (auth_db) is unavailable: this retry is not recorded there.", "warning")
    for outcome in outcomes:
        flash(outcome.message, "warning" if outcome.waiting else "success")
    return redirect(url_for("system.databases", _anchor="service-caches"))
