"""Promotions: the list and its export, the promotion page (offer, rules by priority,
status actions, usage report) and the form per type."""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console import links
from console.exports import csv_response
from console.permissions import permission_required
from console.screens import promotions as screens
from console.screens import usage
from console.views._actions import attempt
from console.views._listing import vary, wants_partial
from console.workflows import promotions as flow

bp = Blueprint("promotions", __name__, url_prefix="/promotions")
bp.context_processor(links.template_helpers)
USES_PAGE = 25
# What each status button says it does.
STATUS_ACTIONS = {"ACTIVE": "Activate", "PAUSED": "Pause", "EXPIRED": "Expire"}


def _promotion_or_404(key: str):
    promotion = screens.find(key)
    if promotion is None:
        abort(404, f"No promotion with id “{key[:60]}”. Search the promotions list instead.")
    return promotion


def _render_detail(promotion, *, status: int = 200, error: str | None = None):
    cursor = request.args.get("cursor") or None
    page = screens.promotion_page(promotion, cursor=cursor, size=USES_PAGE)
    context = {"page": page, "key": promotion.id, "cursor": cursor, "size": USES_PAGE, "error": error,
               "type_labels": flow.TYPE_LABELS, "status_actions": STATUS_ACTIONS}
    if wants_partial("uses-table"):
        return vary(make_response(render_template("promotions/_uses.html", **context), status))
    return vary(make_response(render_template("promotions/detail.html", **context), status))


@bp.get("/<key>")
@permission_required("coupons.view")
def promotion_detail(key: str):
    return _render_detail(_promotion_or_404(key))


@bp.get("/<key>/uses.csv")
@permission_required("coupons.view")
def export_uses(key: str):
    promotion = _promotion_or_404(key)
    return csv_response("promotion-uses", usage.EXPORT_HEADER, usage.export_rows("promotion", promotion.id))


def _act(key: str, perform, message):
    promotion = _promotion_or_404(key)
    result, refused = attempt(lambda: perform(current_user, promotion.id))
    if refused is None:
        flash(message(result), "success")
        return redirect(url_for("promotions.promotion_detail", key=promotion.id), 303)
    return _render_detail(_promotion_or_404(promotion.id), status=refused.status, error=refused.message)


@bp.post("/<key>/status")
@permission_required("coupons.manage")
def change_status(key: str):
    wanted = request.form.get("status", "")
    if wanted not in STATUS_ACTIONS:
        abort(400, "Choose ACTIVE, PAUSED or EXPIRED.")
    return _act(key, lambda actor, pid: flow.change_status(actor, pid, wanted),
                lambda p: f"“{p.name}” is now {p.status.lower()}.")


@bp.post("/<key>/rules/<rule_id>/move")
@permission_required("coupons.manage")
def move_rule(key: str, rule_id: str):
    direction = request.form.get("direction", "")
    return _act(key, lambda actor, pid: flow.move_rule(actor, pid, rule_id, direction),
                lambda rules: "Rule order saved: the discount service tries them from the top.")
