"""The dashboard: the figures a shift lead looks at first."""
from __future__ import annotations

from flask import Blueprint, render_template

from console import links
from console.screens import dashboard
from console.models.types import utcnow
from console.permissions import permission_required

bp = Blueprint("dashboard", __name__)
bp.context_processor(links.template_helpers)


@bp.get("/")
@permission_required("dashboard.view")
def index():
    board = dashboard.collect(utcnow())
    return render_template("dashboard/index.html", board=board, revenue_chart=dashboard.revenue_chart,
                           status_chart=dashboard.status_chart, low_stock_limit=dashboard.LOW_STOCK_ROWS,
                           low_stock_threshold=dashboard.low_stock_threshold())
