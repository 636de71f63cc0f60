"""Back-in-stock alerts: customers waiting for a product (or one of its variants).

When stock comes back (an adjustment, a bulk update, a return), staff send **Notify N
waiting customers**: one notification per waiting alert (not yet notified, not
expired, its product or variant available again), queued through the same queue the
other workflows use, and each alert marked notified. The alerts are locked while this
happens and each message carries the alert's key, so a double click or two staff at
once queue each customer once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select

from console import audit
from console.extensions import db
from console.lookups import DatabaseUnavailable, database, fetch_in
from console.models.product import Product, ProductInventory, ProductStockAlert, ProductVariant
from console.models.types import utcnow
from console.workflows import WorkflowError, notify

TEMPLATE = "back_in_stock"


def waiting(now: datetime):
    """Alerts still waiting: never notified, not expired."""
    return and_(ProductStockAlert.notified.is_not(True),
                or_(ProductStockAlert.expires_at.is_(None), ProductStockAlert.expires_at > now))


@dataclass
class Readiness:
    """The waiting alerts of one product and how many of them can be notified now."""

    waiting: list[ProductStockAlert]
    ready: list[ProductStockAlert]


def readiness(product_id: str, now: datetime | None = None, *, lock: bool = False) -> Readiness:
    """Waiting alerts of ``product_id``; ready = its variant (or the product) has stock
    available again."""
    now = now or utcnow()
    stmt = select(ProductStockAlert).where(ProductStockAlert.product_id == product_id, waiting(now)) \
        .order_by(ProductStockAlert.id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    alerts = list(db.session.scalars(stmt))
    available = db.session.scalar(select(ProductInventory.available_quantity)
                                  .where(ProductInventory.product_id == product_id)) or 0
    variant_stock = dict(db.session.execute(select(ProductVariant.id, ProductVariant.stock_quantity)
                                            .where(ProductVariant.product_id == product_id)).all())
    ready = [a for a in alerts if available > 0 and (not a.variant_id or (variant_stock.get(a.variant_id) or 0) > 0)]
    return Readiness(alerts, ready)


@dataclass
class Notified:
    sku: str | None
    queued: int
    still_waiting: int  # alerts whose variant is still out of stock


def _first_names(user_ids) -> dict[str, str]:
    try:
        return {p.user_id: p.first_name or "" for p in fetch_in("user", "user_profiles", "user_id", user_ids)}
    except DatabaseUnavailable:
        return {}  # the greeting goes without a name; the message matters more


def notify_waiting(actor, product_id: str) -> Notified:
    """Queue one back-in-stock notification per ready alert of the product and mark
    those alerts notified, once."""
    now = utcnow()
    with database("product"):
        product = db.session.get(Product, product_id)
        if product is None:
            raise WorkflowError(f"No product with id “{product_id}”.", 404)
        sku, name = product.sku, product.name
        # Names first: a failed read rolls the session back, which must not drop the locks.
        user_ids = [a.user_id for a in readiness(product_id, now).ready]
    names = _first_names(user_ids)
    with database("product"):
        state = readiness(product_id, now, lock=True)
        if not state.waiting:
            db.session.rollback()
            raise WorkflowError(f"No customers are waiting for {sku} any more: they were notified already "
                                "(perhaps by someone else just now), or their alerts expired.")
        if not state.ready:
            db.session.rollback()
            raise WorkflowError(f"{sku} has nothing available for the {len(state.waiting)} waiting customer(s) "
                                "yet; notify them once stock is back.")
        variant_names = dict(db.session.execute(select(ProductVariant.id, ProductVariant.name)
                                                .where(ProductVariant.product_id == product_id)).all())
        with database("notification"):
            for alert in state.ready:
                label = name + (f" ({variant_names[alert.variant_id]})" if variant_names.get(alert.variant_id) else "")
                message = notify.queue(alert.user_id, TEMPLATE, {"product_name": label, "sku": sku,
                                                                 "first_name": names.get(alert.user_id, "")},
                                       key=f"{TEMPLATE}:{alert.id}")
                if message is None or message.status == "FAILED":
                    # No email could be queued: nobody may be marked notified without one.
                    why = (message.metadata_ or {}).get("render_error") if message is not None else None
                    db.session.rollback()
                    raise WorkflowError(f"The “{TEMPLATE}” email template is missing, turned off or can't be "
                                        f"rendered{f' ({why})' if why else ''}, so no customer was notified. "
                                        "Fix it on the Templates screen and notify them again.")
                if alert.email and not alert.user_id:
                    message.metadata_ = {**(message.metadata_ or {}), "email": alert.email}
                alert.notified = True
            audit.record(actor, "product.stock_alerts_notified", "product", product_id, sku=sku,
                         notified=len(state.ready), alert_ids=[a.id for a in state.ready])
            db.session.commit()
    return Notified(sku, len(state.ready), len(state.waiting) - len(state.ready))
