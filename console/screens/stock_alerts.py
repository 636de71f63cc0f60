"""The back-in-stock alerts list: customers waiting for a product or variant, across
products, with what is available of it now (its page has the Notify button)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from console.exports import CopyExport, Side, time_of
from console.extensions import db
from console.filters import FilterError, QueryFilters, choice, text
from console.lookups import Lookups, Missing, database, fetch_in, resolve, target_or_missing
from console.models.auth import User
from console.models.product import Product, ProductInventory, ProductStockAlert, ProductVariant
from console.models.types import utcnow
from console.screens.lists import ListScreen, Sort, unless_down
from console.workflows.stock_alerts import waiting

STATES = ("waiting", "notified", "expired")


@dataclass
class AlertFilters(QueryFilters):
    state: str = ""
    sku: str = ""  # a product's or a variant's SKU, exact (any case)

    FIELDS = ("state", "sku")

    @classmethod
    def parse(cls, args) -> tuple["AlertFilters", list[str]]:
        errors: list[str] = []
        return cls(state=choice(args, "state", STATES, "State", errors), sku=text(args, "sku", errors)), errors


def alerts_statement(filters: AlertFilters, lookups: Lookups | None = None):
    alert = ProductStockAlert
    stmt = select(alert)
    now = utcnow()
    if filters.state == "waiting":
        stmt = stmt.where(waiting(now))
    elif filters.state == "notified":
        stmt = stmt.where(alert.notified.is_(True))
    elif filters.state == "expired":
        stmt = stmt.where(alert.notified.is_not(True), alert.expires_at <= now)
    if filters.sku:
        sku = filters.sku.upper()
        with database("product"):
            product_ids = list(db.session.scalars(select(Product.id).where(Product.sku == sku)))
            variant_ids = list(db.session.scalars(select(ProductVariant.id).where(ProductVariant.sku == sku)))
        if not product_ids and not variant_ids:
            raise FilterError(f"No product or variant has the SKU “{filters.sku}”.")
        stmt = stmt.where(or_(alert.product_id.in_(product_ids), alert.variant_id.in_(variant_ids)))
    return stmt


@dataclass
class AlertRow:
    alert: ProductStockAlert
    product: Product | Missing | None
    variant: ProductVariant | Missing | None
    available: int | None
    customer: object  # the auth User, Missing, or None

    @property
    def state(self) -> str:
        if self.alert.notified:
            return "notified"
        if self.alert.expires_at is not None and self.alert.expires_at <= utcnow():
            return "expired"
        return "waiting"


def decorate(alerts: list[ProductStockAlert], lookups: Lookups) -> list[AlertRow]:
    product_ids = [a.product_id for a in alerts]
    products = lookups.run("product", lambda: {p.id: p for p in fetch_in("product", "products", "id", product_ids)}, {})
    variants = lookups.run("product", lambda: {v.id: v for v in fetch_in(
        "product", "product_variants", "id", [a.variant_id for a in alerts])}, {})
    available = lookups.run("product", lambda: {i.product_id: i.available_quantity for i in fetch_in(
        "product", "product_inventory", "product_id", product_ids)}, {})
    users = lookups.run("auth", lambda: resolve("product.stock_alerts.user_id", [a.user_id for a in alerts]), {})
    return [AlertRow(a, target_or_missing(products, a.product_id), target_or_missing(variants, a.variant_id),
                     None if lookups.down("product") else available.get(a.product_id),
                     None if lookups.down("auth") else target_or_missing(users, a.user_id))
            for a in alerts]


def _export_row(row: AlertRow, lookups: Lookups) -> list:
    a, p, v = row.alert, row.product, row.variant
    return [a.created_at, row.state, unless_down(lookups, "product", p.sku if isinstance(p, Product) else ""),
            unless_down(lookups, "product", v.sku if isinstance(v, ProductVariant) else ""),
            unless_down(lookups, "product", row.available),
            unless_down(lookups, "auth", getattr(row.customer, "email", "") or a.email), a.expires_at, a.id]


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as _export_row ---

_ALERTS, _PRODUCTS, _VARIANTS, _INVENTORY, _USERS = (
    ProductStockAlert.__table__.c, Product.__table__.c, ProductVariant.__table__.c, ProductInventory.__table__.c,
    User.__table__.c)
_EXPORT_COLUMNS = (
    *(_ALERTS[name] for name in ("created_at", "notified", "expires_at", "id", "product_id", "user_id", "email")),
    # The product and the variant live in the same database: their SKUs come with the alert.
    select(_PRODUCTS.sku).where(_PRODUCTS.id == _ALERTS.product_id).scalar_subquery().label("sku"),
    select(_VARIANTS.sku).where(_VARIANTS.id == _ALERTS.variant_id).scalar_subquery().label("variant_sku"))
_EXPORT_SIDES = {
    # A lookup of its own, as the list reads it: the last inventory row read per product.
    "available": Side("product", lambda batch: [row[4] for row in batch], lambda ids, among: select(
        _INVENTORY.product_id, _INVENTORY.available_quantity).where(among(_INVENTORY.product_id, ids))),
    "customers": Side("auth", lambda batch: [row[5] for row in batch], lambda ids, among: select(
        _USERS.id, _USERS.email).where(among(_USERS.id, ids)), kept=True),
}


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    available, customers = found["available"], found["customers"]
    auth_down, now = lookups.down("auth"), utcnow()
    rows = []
    for created, notified, expires, alert_id, product_id, user_id, email, sku, variant_sku in batch:
        state = ("notified" if notified else "expired" if expires and time_of(expires) <= now else "waiting")
        stock = available.get(product_id)
        customer = customers.get(user_id)
        rows.append([created, state, sku or "", variant_sku or "", stock[-1][1] if stock else None,
                     "unavailable" if auth_down else (customer[0][1] if customer else None) or email,
                     expires, alert_id])
    return rows


ALERTS = ListScreen(
    name="alerts", noun="alerts", home="product", title="Back-in-stock alerts",
    filters=AlertFilters, statement=alerts_statement, id_column=ProductStockAlert.id,
    sorts=(Sort("created", ProductStockAlert.created_at, "Asked"),
           Sort("expires", ProductStockAlert.expires_at, "Expires", descending=False)),
    default_sort="-created", decorate=decorate, endpoint="list_alerts", export_endpoint="export_alerts",
    export_header=("created_at", "state", "sku", "variant_sku", "available_now", "customer_email", "expires_at",
                   "alert_id"),
    export_row=_export_row, export_binds=("auth",),
    export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells, _EXPORT_SIDES),
)
