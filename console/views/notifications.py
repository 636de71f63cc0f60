"""The notification log: the list (filters, sort, export), one notification's page,
Resend, and Resend all for the filtered failures after a confirmation."""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from console import links
from console.filters import FilterError
from console.formatting import when
from console.lookups import DatabaseUnavailable
from console.permissions import permission_required
from console.screens import notifications as screens
from console.security import allow_email_styles
from console.views._actions import attempt
from console.views._listing import add_list_routes
from console.workflows import notifications as flow

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
bp.context_processor(links.template_helpers)


def _choices() -> dict:
    try:
        templates, providers = screens.template_names(), screens.providers()
    except DatabaseUnavailable:
        templates, providers = [], []
    return {"types": screens.TYPES, "statuses": screens.STATUS_CHOICES, "status_labels": screens.STATUS_LABELS,
            "template_choices": templates, "provider_choices": providers,
            "can_resend": current_user.can("notifications.resend")}


add_list_routes(bp, screens.NOTIFICATIONS, "notifications.view", context=_choices)


@bp.get("/<notification_id>")
@permission_required("notifications.view")
def notification_detail(notification_id: str):
    try:
        page = screens.notification_page(notification_id)
    except DatabaseUnavailable as exc:
        abort(503, f"{exc.bind_key}_db is unavailable, and the notifications live there. Try again shortly.")
    if page is None:
        abort(404, f"There is no notification “{notification_id[:80]}”. The notification log lists them all.")
    body = render_template("notifications/detail.html", page=page, n=page.row.notification,
                           can_resend=current_user.can("notifications.resend"))
    return allow_email_styles(make_response(body))


@bp.post("/<notification_id>/resend")
@permission_required("notifications.resend")
def resend(notification_id: str):
    """Resend once: a second click (or another staff member's) is shown the first resend."""
    outcome, refused = attempt(lambda: flow.resend(current_user, notification_id),
                               "so nothing was resent. Try again shortly.")
    if refused is not None:
        if refused.status == 404:
            abort(404, refused.message)
        flash(refused.message, "warning" if refused.status == 409 else "danger")
        return redirect(url_for("notifications.notification_detail", notification_id=notification_id), 303)
    if outcome.already:
        copy = outcome.resend
        flash(Markup('Already resent: <a href="{}" id="resent-copy">the copy queued {}</a> is {}. '
                     "Nothing new was queued.").format(
            url_for("notifications.notification_detail", notification_id=copy.id), when(copy.created_at),
            (copy.status or "of unknown status").lower()), "info")
    else:
        flash("Resent: a new notification with the same content is queued for the notification service.",
              "success")
    return redirect(url_for("notifications.notification_detail", notification_id=outcome.resend.id), 303)


def _filters_or_400():
    filters, errors = screens.NotificationFilters.parse(request.values)
    if errors:
        abort(400, " ".join(errors))
    return filters


@bp.get("/resend-all")
@permission_required("notifications.resend")
def confirm_resend_all():
    """How many failed or bounced notifications these filters would resend, to confirm."""
    filters = _filters_or_400()
    try:
        count, more = screens.resend_all_count(filters)
    except FilterError as exc:
        abort(400, str(exc))
    except DatabaseUnavailable as exc:
        abort(503, f"{exc.bind_key}_db {exc.reason}, so the notifications can't be counted. Try again shortly.")
    return render_template("notifications/resend_all.html", filters=filters, count=count, more=more,
                           limit=flow.RESEND_ALL_LIMIT)


@bp.post("/resend-all")
@permission_required("notifications.resend")
def resend_all():
    filters = _filters_or_400()
    back = url_for("notifications.list_notifications", **filters.as_args())

    def perform():
        plan = screens.resend_all_plan(filters)
        return plan, flow.resend_all(current_user, plan.ids)

    try:
        done, refused = attempt(perform, "so nothing more was resent. What was resent before it stopped stays "
                                         "queued; Resend all again picks up the rest.")
    except FilterError as exc:
        abort(400, str(exc))
    if refused is not None:
        flash(refused.message, "danger")
        return redirect(back, 303)
    plan, summary = done
    parts = [f"Resent {summary.queued:,}"]
    if summary.already:
        parts.append(f"{summary.already:,} had been resent already")
    for reason, count in summary.refused.items():
        parts.append(f"{count:,} not resent: {reason[0].lower() + reason[1:]}")
    if summary.skipped:
        parts.append(f"{summary.skipped:,} were no longer failed")
    if plan.more:
        parts.append(f"more than {flow.RESEND_ALL_LIMIT:,} matched: the oldest {flow.RESEND_ALL_LIMIT:,} were "
                     "taken, Resend all again for the rest")
    flash("; ".join(parts) + ".", "success" if summary.queued else "info")
    return redirect(back, 303)

