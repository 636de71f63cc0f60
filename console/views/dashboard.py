"""The dashboard: the figures a shift lead looks at first, for a chosen period."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from console import links
from console.screens import dashboard
from console.models.types import utcnow
from console.permissions import permission_required

bp = Blueprint("dashboard", __name__)
bp.context_processor(links.template_helpers)


@bp.get("/")
@permission_required("dashboard.view")
def index():
    now = utcnow()
    # A period that can't be used is named in a message (400) and today is shown instead.
    period, errors = dashboard.parse_period(request.args, now)
    board = dashboard.collect(now, period)
    html = render_template("dashboard/index.html", board=board, period=period, errors=errors,
                           periods=dashboard.PERIODS, typed=request.args, kpis=dashboard.period_kpis(board),
                           currency_rows=dashboard.currency_rows(board), revenue_chart=dashboard.revenue_chart,
                           status_chart=dashboard.status_chart, low_stock_limit=dashboard.LOW_STOCK_ROWS,
                           low_stock_threshold=dashboard.low_stock_threshold())
    return html, 400 if errors else 200
