"""Jinja filters: money, times in the store's zone, references that may be missing."""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from functools import lru_cache
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


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", store: tzinfo | None = None) -> str:
    """A stored (UTC) moment in the store's zone (CONSOLE_TIMEZONE; ``store``: that zone,
    looked up once by a caller writing many); a time of day carries the zone's
    abbreviation ("UTC", "NZDT"), a bare date is the store's day."""
    if value is None:
        return "—"
    if isinstance(value, NotInDatabase):
        return value
    if isinstance(value, datetime):
        moment = local(value if value.tzinfo else value.replace(tzinfo=timezone.utc), store)
        return moment.strftime(fmt + " %Z" if "%H" in fmt else fmt)
    return value.strftime(fmt)  # a date: already a day


def html_text(value) -> str:
    """``value`` as HTML text, as markupsafe's escape() writes it (a value with its own
    ``__html__``, such as a column not in this database, as that), as a plain str: the
    rows drawn in Python (console/tables.py) escape a dozen texts a row, and escape()'s
    Markup cost twice the escaping itself."""
    if type(value) is not str:
        return str(escape(value))
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;") \
        .replace('"', "&#34;")


# Badge colours (Bootstrap's text-bg-*) of the statuses the screens show, by kind; a
# status not listed is "light". templates/_badges.html's macros and the lists' cells
# both draw them with status_badge() (a Python call per cell, not a macro).
def _badge_colours() -> dict[str, dict[str, str]]:
    from console.models.payment import PAYMENT_STATUSES, REFUND_STATUSES

    return {
        "order": {"pending": "secondary", "confirmed": "info", "processing": "primary", "shipped": "primary",
                  "delivered": "success", "cancelled": "dark", "refunded": "warning"},
        # A payment's status, or an order's payment status (pending, paid, failed, refunded).
        "payment": {PAYMENT_STATUSES.PENDING: "secondary", PAYMENT_STATUSES.PROCESSING: "info",
                    PAYMENT_STATUSES.SUCCEEDED: "success", PAYMENT_STATUSES.FAILED: "danger",
                    PAYMENT_STATUSES.CANCELLED: "dark", PAYMENT_STATUSES.REFUNDED: "warning", "paid": "success"},
        "shipment": {"pending": "secondary", "in_transit": "primary", "out_for_delivery": "info",
                     "delivered": "success", "exception": "danger"},
        "return": {"pending": "secondary", "approved": "info", "rejected": "dark", "in_transit": "primary",
                   "received": "primary", "processed": "success", "closed": "light"},
        # A payment_db refund's status, or a return_db return refund's (the same values).
        "refund": {REFUND_STATUSES.PENDING: "secondary", REFUND_STATUSES.PROCESSING: "info",
                   REFUND_STATUSES.COMPLETED: "success", REFUND_STATUSES.FAILED: "danger"},
    }


BADGE_COLOURS = _badge_colours()
# What a badge says without a status, and whether underscores read as spaces.
_BADGE_TEXT = {"order": ("no status", False), "payment": ("unknown", False), "shipment": ("unknown", True),
               "return": ("no status", True), "refund": ("unknown", False)}


def status_badge(kind: str, status) -> Markup:
    """The badge of a ``kind`` ("order", "payment", "shipment", "return", "refund") status."""
    if status is None or type(status) is str:  # a handful of them, drawn on every row
        return _status_badge(kind, status)
    return _draw_badge(kind, status)


def _draw_badge(kind: str, status) -> Markup:
    empty, spaced = _BADGE_TEXT[kind]
    text = str(status or empty)
    if spaced:
        text = text.replace("_", " ")
    border = " border" if kind == "return" and status == "closed" else ""
    # The colour and border come from the tables above; only the text is escaped (plain
    # concatenation: Markup.format costs ten times as much, on every cell).
    return Markup(f'<span class="badge text-bg-{BADGE_COLOURS[kind].get(status, "light")}{border}">{html_text(text)}</span>')


_status_badge = lru_cache(maxsize=512)(_draw_badge)


def payment_badge(status, progress=None) -> Markup:
    """A payment's (or an order's payment) status; ``progress`` is (completed refunds,
    captured) of the order (console/workflows/refunds.py progress_from): a payment
    refunded in part reads "partially refunded (49.00 of 57.92)"."""
    from console.models.payment import PAYMENT_STATUSES

    if progress and status in ("paid", PAYMENT_STATUSES.SUCCEEDED) and 0 < progress[0] < progress[1]:
        return Markup('<span class="badge text-bg-info partial-refund">partially refunded ({} of {})</span>').format(
            money(progress[0]), money(progress[1]))
    return status_badge("payment", status)


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

    from console.links import url_each
    from console.tables import order_rows, unavailable

    app.jinja_env.filters.update(money=money, when=when, reference=reference, barcode=svg)
    app.jinja_env.globals.update(status_badge=status_badge, payment_badge=payment_badge, url_each=url_each,
                                 order_rows=order_rows, data_unavailable=unavailable)
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
