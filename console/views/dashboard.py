"""The dashboard: the figures a shift lead looks at first."""
from __future__ import annotations

from flask import Blueprint, render_template

from console.permissions import permission_required

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@permission_required("dashboard.view")
def index():
    return render_template("dashboard/index.html")
