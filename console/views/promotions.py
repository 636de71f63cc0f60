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
from console.views._discount_forms import PromotionForm, apply_errors, more_problems
from console.views._listing import add_list_routes, vary, wants_partial
from console.workflows import promotions as flow
from console.workflows.discounts import Invalid

bp = Blueprint("promotions", __name__, url_prefix="/promotions")
bp.context_processor(links.template_helpers)
USES_PAGE = 25
# What each status button says it does.
STATUS_ACTIONS = {flow.STATUSES.ACTIVE: "Activate", flow.STATUSES.PAUSED: "Pause", flow.STATUSES.EXPIRED: "Expire"}


def type_label(kind: str | None) -> str:
    return flow.TYPE_LABELS.get(kind or "", kind or "—")


@bp.context_processor
def helpers():
    return {"type_label": type_label, "lower": lambda value: (value or "").lower()}


add_list_routes(bp, screens.PROMOTIONS, "coupons.view", lambda: {"types": flow.TYPES, "statuses": flow.STATUSES})


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
    return csv_response("promotion-uses", usage.EXPORT_HEADER, usage.export_rows("promotion", promotion.id),
                        plain_cells=True)


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
        abort(400, "Choose active, paused or expired.")
    return _act(key, lambda actor, pid: flow.change_status(actor, pid, wanted),
                lambda p: f"“{p.name}” is now {p.status}.")


@bp.post("/<key>/rules/<rule_id>/move")
@permission_required("coupons.manage")
def move_rule(key: str, rule_id: str):
    direction = request.form.get("direction", "")
    return _act(key, lambda actor, pid: flow.move_rule(actor, pid, rule_id, direction),
                lambda rules: "Rule order saved: the discount service tries them from the top.")


# --- the form per type ---------------------------------------------------------------------

def _kind(default: str) -> str:
    kind = request.values.get("type") or default
    if kind not in flow.TYPES:
        abort(400, f"Choose a promotion type: {', '.join(flow.TYPES)}.")
    return kind


def _render_form(form, kind: str, promotion=None, *, status: int = 200, refusal: str | None = None):
    can_change = promotion is None or promotion.status == flow.STATUSES.DRAFT
    foreign = promotion is not None and not flow.readable(promotion.configuration)
    return make_response(render_template("promotions/form.html", form=form, kind=kind, promotion=promotion,
                                         types=flow.TYPES, can_change_type=can_change, foreign=foreign,
                                         refusal=refusal), status)


def _save(form, kind: str, promotion, perform):
    if not form.validate_on_submit():
        if request.method == "POST":
            more_problems(form, lambda: flow.problems(form.input(kind), promotion))
        return _render_form(form, kind, promotion, status=422)
    data = form.input(kind)

    def run():
        try:
            return perform(data)
        except Invalid as exc:
            apply_errors(form, exc.errors)
            raise
    saved, refused = attempt(run)
    if refused is None:
        flash(f"Promotion “{saved.name}” saved ({saved.status}).", "success")
        return redirect(url_for("promotions.promotion_detail", key=saved.id), 303)
    return _render_form(form, kind, promotion, status=refused.status,
                        refusal=None if any(f.errors for f in form) or form.form_errors else refused.message)


@bp.route("/new", methods=["GET", "POST"])
@permission_required("coupons.manage")
def new_promotion():
    kind = _kind(flow.TYPES.BUY_X_GET_Y)
    form = PromotionForm()
    if request.method == "GET":
        form.get_reward.process_data("free")
        form.bundle_pricing.process_data("price")
        return _render_form(form, kind)
    return _save(form, kind, None, lambda data: flow.create_promotion(current_user, data))


@bp.route("/<key>/edit", methods=["GET", "POST"])
@permission_required("coupons.manage")
def edit_promotion(key: str):
    promotion = _promotion_or_404(key)
    if promotion.status == flow.STATUSES.EXPIRED:
        abort(409, f"“{promotion.name}” has expired: it can't be edited any more.")
    kind = _kind(promotion.type or flow.TYPES.BUY_X_GET_Y)
    if kind != promotion.type and promotion.status != flow.STATUSES.DRAFT:
        abort(409, "The type of a promotion changes only while it is a draft.")
    form = PromotionForm()
    if request.method == "GET":
        data, refused = attempt(lambda: flow.input_of(promotion),
                                "so the form can't show the promotion's products. Try again shortly.")
        if refused is not None:
            abort(refused.status, refused.message)
        form.fill(data)
        return _render_form(form, kind, promotion)
    return _save(form, kind, promotion, lambda data: flow.update_promotion(current_user, promotion.id, data))
