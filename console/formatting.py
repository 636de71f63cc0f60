"""Jinja filters: money, times in the store's zone, references that may be missing."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from markupsafe import Markup, escape

from console.drift import NotInDatabase
from console.localtime import local, zone_name
from console.lookups import Missing
from console.models.types import CENTS


def money(value, currency: str | None = None) -> str:
    if value is None:
        return "—"
    if isinstance(value, NotInDatabase):
        return value  # renders as "not in this database"
    amount = Decimal(value).quantize(CENTS)
    text = f"{amount:,.2f}"
    return f"{text} {currency}" if currency else text


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) moment in the store's zone (CONSOLE_TIMEZONE); a time of day
    carries the zone's abbreviation ("UTC", "NZDT"), a bare date is the store's day."""
    if value is None:
        return "—"
    if isinstance(value, NotInDatabase):
        return value
    if isinstance(value, datetime):
        moment = local(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
        return moment.strftime(fmt) + (f" {moment.strftime('%Z')}" if "%H" in fmt else "")
    return value.strftime(fmt)  # a date: already a day


def reference(value, label: str = "") -> Markup:
    """A resolved reference, or a visible 'missing (id …)' badge."""
    if value is None:
        return Markup('<span class="text-body-secondary">—</span>')
    if isinstance(value, Missing):
        return Markup('<span class="badge text-bg-warning" title="the referenced row does not exist">{}</span>').format(str(value))
    if isinstance(value, NotInDatabase):
        return Markup(value.__html__())
    return escape(label or value)


def register(app) -> None:
    from console.barcode import svg
    from console.workflows.inventory import STOCK_LEVEL_LABELS, stock_level

    app.jinja_env.filters.update(money=money, when=when, reference=reference, barcode=svg)
    app.jinja_env.globals["store_zone"] = zone_name
    app.jinja_env.globals["stock_level"] = stock_level
    app.jinja_env.globals["stock_level_labels"] = STOCK_LEVEL_LABELS
    # The services' vocabularies, so templates name a value (PAYMENT_STATUSES.SUCCEEDED)
    # instead of spelling it.
    from console.models.discount import COUPON_TYPES, PROMOTION_STATUSES, PROMOTION_TYPES
    from console.models.notification import NOTIFICATION_STATUSES
    from console.models.payment import PAYMENT_PROVIDERS, PAYMENT_STATUSES, REFUND_STATUSES

    app.jinja_env.globals.update(
        COUPON_TYPES=COUPON_TYPES, PROMOTION_STATUSES=PROMOTION_STATUSES, PROMOTION_TYPES=PROMOTION_TYPES,
        NOTIFICATION_STATUSES=NOTIFICATION_STATUSES, PAYMENT_PROVIDERS=PAYMENT_PROVIDERS,
        PAYMENT_STATUSES=PAYMENT_STATUSES, REFUND_STATUSES=REFUND_STATUSES)
    app.jinja_env.tests["missing"] = lambda value: isinstance(value, Missing)
    app.jinja_env.tests["not_in_database"] = lambda value: isinstance(value, NotInDatabase)
