"""Coupons screens: the coupon page (its settings, products shown by SKU and name, the
usage report across databases) and, below, the list.

The coupon lives in discount_db; its products and categories in product_db; its uses'
customers in auth_db and user_db and their orders in order_db (console.screens.usage).
A database other than discount_db being down empties only the parts it feeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from console.charts import Chart
from console.extensions import db
from console.lookups import Lookups, database
from console.models.discount import Coupon
from console.models.types import utcnow
from console.screens import usage
from console.workflows import coupons as flow
from console.workflows.discounts import Chosen, chosen


@dataclass
class CouponPage:
    coupon: Coupon
    state: str
    usage_rows: int
    totals: usage.Totals
    chart: Chart | None
    uses: usage.UsesPage
    # Stored ids as SKUs/slugs and names; None when product_db is unavailable.
    products: list[Chosen] | None
    categories: list[Chosen] | None
    excluded: list[Chosen] | None
    unavailable: set[str] = field(default_factory=set)

    @property
    def count_differs(self) -> bool:
        """usage_count (what the discount service checks the limit against) is not the
        number of its usage rows: Recount sets it right."""
        return (self.coupon.usage_count or 0) != self.usage_rows

    @property
    def used(self) -> bool:
        return bool(self.usage_rows or self.coupon.usage_count)


def find(key: str) -> Coupon | None:
    return flow.find(key)


def coupon_page(coupon: Coupon, *, cursor: str | None = None, size: int = 25) -> CouponPage:
    with database("discount"):
        rows = flow.usage_rows(coupon.id)
    totals = usage.totals("coupon", coupon.id)
    uses = usage.uses_page("coupon", coupon.id, cursor, size)
    lookups = Lookups(detach=False)
    products = lookups.run("product", lambda: chosen("products", coupon.applicable_products), None)
    categories = lookups.run("product", lambda: chosen("categories", coupon.applicable_categories), None)
    excluded = lookups.run("product", lambda: chosen("products", coupon.excluded_products), None)
    down = set(lookups.unavailable) | totals.unavailable | uses.unavailable
    return CouponPage(coupon, flow.state_of(coupon, utcnow()), rows, totals, usage.usage_chart(totals.days), uses,
                      products, categories, excluded, down)


def coupon_for_form(coupon_id: str) -> Coupon | None:
    with database("discount"):
        return db.session.get(Coupon, coupon_id)
