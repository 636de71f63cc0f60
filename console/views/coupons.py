"""Coupons: the list and its export, the coupon page with its usage report, the create
and edit forms, bulk generation, and the actions (disable, enable, delete, recount)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from console import links
from console.exports import csv_response
from console.permissions import permission_required
from console.screens import coupons as screens
from console.screens.coupons import coupon_key
from console.screens import usage
from console.views._actions import attempt
from console.views._discount_forms import CouponForm, GenerateForm, apply_errors, more_problems
from console.views._listing import add_list_routes, vary, wants_partial
from console.workflows import coupons as flow
from console.workflows.discounts import Invalid

bp = Blueprint("coupons", __name__, url_prefix="/coupons")
bp.context_processor(links.template_helpers)
USES_PAGE = 25


def type_label(kind: str | None) -> str:
    return flow.TYPE_LABELS.get(kind or "", kind or "—")


def type_short(kind: str | None) -> str:
    short = {flow.TYPES.PERCENTAGE: "percent", flow.TYPES.FIXED_AMOUNT: "fixed", flow.TYPES.FREE_SHIPPING: "free shipping"}
    return short.get(kind or "", kind or "—")


@bp.context_processor
def helpers():
    return {"type_label": type_label, "type_short": type_short, "coupon_key": coupon_key}


add_list_routes(bp, screens.COUPONS, "coupons.view", lambda: {
    "types": flow.TYPES, "states": flow.STATES, "sources": screens.SOURCES, "source_labels": screens.SOURCE_LABELS})


def _coupon_or_404(key: str):
    coupon = screens.find(key)
    if coupon is None:
        abort(404, f"No coupon with id or code “{key[:60]}”. Search the coupons list instead.")
    return coupon


def _key(coupon) -> str:
    return coupon_key(coupon)


def _render_detail(coupon, *, status: int = 200, error: str | None = None):
    cursor = request.args.get("cursor") or None
    page = screens.coupon_page(coupon, cursor=cursor, size=USES_PAGE)
    context = {"page": page, "key": _key(coupon), "cursor": cursor, "size": USES_PAGE, "error": error,
               "type_labels": flow.TYPE_LABELS}
    if wants_partial("uses-table"):
        return vary(make_response(render_template("coupons/_uses.html", **context), status))
    return vary(make_response(render_template("coupons/detail.html", **context), status))


@bp.get("/<key>")
@permission_required("coupons.view")
def coupon_detail(key: str):
    return _render_detail(_coupon_or_404(key))


@bp.get("/<key>/uses.csv")
@permission_required("coupons.view")
def export_uses(key: str):
    coupon = _coupon_or_404(key)
    return csv_response(f"coupon-{_key(coupon).lower()}-uses", usage.EXPORT_HEADER,
                        usage.export_rows("coupon", coupon.id), plain_cells=True)


def _act(key: str, perform, done):
    """One action on a coupon: a flash and the coupon page when done; the page again with
    the refusal (its 4xx, or 503 naming the database) when not."""
    coupon = _coupon_or_404(key)
    result, refused = attempt(lambda: perform(current_user, coupon.id))
    if refused is None:
        message, target = done(result)
        flash(message, "success")
        return redirect(target, 303)
    return _render_detail(_coupon_or_404(coupon.id), status=refused.status, error=refused.message)


def _back_to(coupon) -> str:
    return url_for("coupons.coupon_detail", key=_key(coupon))


@bp.post("/<key>/disable")
@permission_required("coupons.manage")
def disable(key: str):
    return _act(key, flow.disable, lambda c: (f"{c.code} is disabled: checkouts refuse it from now on.", _back_to(c)))


@bp.post("/<key>/enable")
@permission_required("coupons.manage")
def enable(key: str):
    return _act(key, flow.enable, lambda c: (f"{c.code} is enabled again.", _back_to(c)))


@bp.post("/<key>/delete")
@permission_required("coupons.manage")
def delete(key: str):
    return _act(key, flow.delete_coupon,
                lambda code: (f"Coupon {code} deleted (it had never been used).", url_for("coupons.list_coupons")))


@bp.post("/<key>/recount")
@permission_required("coupons.manage")
def recount(key: str):
    return _act(key, flow.recount, lambda r: (
        f"{r.coupon.code}'s usage count is now {r.after:,} (it said {r.before if r.before is not None else 'nothing'}).",
        _back_to(r.coupon)))


# --- create, edit, generate -------------------------------------------------------------------

def _render_form(form, coupon=None, *, status: int = 200, refusal: str | None = None):
    return make_response(render_template("coupons/form.html", form=form, coupon=coupon, refusal=refusal), status)


def _save(form, coupon, perform):
    """Validate the form, run the workflow; the form again with each refusal next to its
    field (422), or the coupon page."""
    if not form.validate_on_submit():
        if request.method == "POST":
            more_problems(form, lambda: flow.problems(form.input(), coupon))
        return _render_form(form, coupon, status=422 if request.method == "POST" else 200)
    saved, refused = attempt(lambda: perform(form.input()))
    if refused is None:
        flash(f"Coupon {saved.code} saved.", "success")
        return redirect(url_for("coupons.coupon_detail", key=coupon_key(saved)), 303)
    marked = any(f.errors for f in form) or form.form_errors
    return _render_form(form, coupon, status=refused.status, refusal=None if marked else refused.message)


def _attempt_with_fields(form, perform):
    try:
        return perform()
    except Invalid as exc:
        apply_errors(form, exc.errors)
        raise


@bp.route("/new", methods=["GET", "POST"])
@permission_required("coupons.manage")
def new_coupon():
    form = CouponForm()
    if request.method == "GET":
        return _render_form(form)
    return _save(form, None, lambda data: _attempt_with_fields(form, lambda: flow.create_coupon(current_user, data)))


@bp.route("/<key>/edit", methods=["GET", "POST"])
@permission_required("coupons.manage")
def edit_coupon(key: str):
    coupon = _coupon_or_404(key)
    form = CouponForm()
    if request.method == "GET":
        form.fill(_read_back(coupon))
        return _render_form(form, coupon)
    return _save(form, coupon, lambda data: _attempt_with_fields(
        form, lambda: flow.update_coupon(current_user, coupon.id, data)))


def _read_back(coupon):
    data, refused = attempt(lambda: flow.input_of(coupon),
                            "so the form can't show the coupon's products. Try again shortly.")
    if refused is not None:
        abort(refused.status, refused.message)
    return data


@bp.route("/<key>/generate", methods=["GET", "POST"])
@permission_required("coupons.manage")
def generate(key: str):
    coupon = _coupon_or_404(key)
    form = GenerateForm()
    if request.method == "GET" or not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return make_response(render_template("coupons/generate.html", form=form, coupon=coupon), status)
    result, refused = attempt(lambda: _attempt_with_fields(form, lambda: flow.generate_codes(
        current_user, coupon.id, form.count.data, form.prefix.data or "", form.length.data,
        uses_per_code=form.uses_per_code.data)))
    if refused is not None:
        marked = any(f.errors for f in form) or form.form_errors
        return make_response(render_template("coupons/generate.html", form=form, coupon=coupon,
                                             refusal=None if marked else refused.message), refused.status)
    # A redirect, so reloading the page that follows never generates a second batch.
    return redirect(url_for("coupons.generated", key=_key(coupon), batch=result.batch, prefix=result.prefix or None), 303)


@bp.get("/<key>/generated/<batch>")
@permission_required("coupons.manage")
def generated(key: str, batch: str):
    coupon = _coupon_or_404(key)
    prefix = flow.normalise_code(request.args.get("prefix"))
    found, refused = attempt(lambda: screens.generated_batch(batch, prefix))
    if refused is not None:
        abort(refused.status, refused.message)
    count, sample = found
    if not count:
        abort(404, "No codes of that generation: they were deleted, or the link is not complete.")
    return render_template("coupons/generated.html", template=coupon, batch=batch, prefix=prefix, count=count,
                           codes=sample)
