"""Promotions screens: the promotion page (its offer, its rules in priority order, its
status and the actions it allows, the usage report) and, below, the list."""
from __future__ import annotations

from dataclasses import dataclass, field

from console.charts import Chart
from console.lookups import Lookups, database
from console.models.discount import Promotion, PromotionRule
from console.models.types import utcnow
from console.screens import usage
from console.workflows import promotions as flow
from console.workflows.discounts import chosen


@dataclass
class Offer:
    """The offer as staff read it: lines of (label, value) and the products and
    categories it names, by SKU/slug and name (None when product_db is down)."""

    lines: list[tuple[str, str]]
    chosen: dict[str, list] | None


@dataclass
class PromotionPage:
    promotion: Promotion
    shown_status: str
    rules: list[PromotionRule]
    rules_match: bool
    offer: Offer | None  # None: the configuration is not in the console's shape
    totals: usage.Totals
    chart: Chart | None
    uses: usage.UsesPage
    unavailable: set[str] = field(default_factory=set)

    @property
    def past_end(self) -> bool:
        return flow.past_end(self.promotion)

    def can(self, status: str) -> bool:
        return status in flow.TRANSITIONS.get(self.promotion.status or "DRAFT", ())


def find(promotion_id: str) -> Promotion | None:
    return flow.find(promotion_id)


def _percent(text) -> str:
    return f"{str(text).removesuffix('.00')}%"


def offer_of(promotion: Promotion, lookups: Lookups) -> Offer | None:
    config = promotion.configuration
    if not flow.readable(config):
        return None
    lines: list[tuple[str, str]] = []
    lists: dict[str, list] = {}
    try:
        if promotion.type == "BUY_X_GET_Y":
            buy, get = config["buy"], config["get"]
            lines.append(("Buy", f"{buy['quantity']} of the products or categories below"))
            lists["Buy: products"], lists["Buy: categories"] = buy["product_ids"], buy["category_ids"]
            reward = "free" if str(get["percent_off"]) in ("100", "100.00") else f"at {_percent(get['percent_off'])} off"
            lines.append(("Get", f"{get['quantity']} {reward}" + ("" if get["product_ids"] else ", of the same items")))
            lists["Get: products"] = get["product_ids"]
        elif promotion.type == "BUNDLE":
            price = config.get("price")
            lines.append(("Bundle", "all of the products below together"))
            lines.append(("Price", f"{price['amount']} {price['currency']}" if price
                          else f"{_percent(config['percent_off'])} off"))
            lists["Bundle: products"] = config["bundle"]["product_ids"]
        elif promotion.type == "VOLUME_DISCOUNT":
            for tier in config["tiers"]:
                lines.append((f"From {tier['min_quantity']} items", f"{_percent(tier['percent_off'])} off"))
            lists["Products"], lists["Categories"] = config["scope"]["product_ids"], config["scope"]["category_ids"]
    except (KeyError, TypeError):
        return None

    def load():
        return {label: chosen("categories" if "categor" in label.lower() else "products", ids)
                for label, ids in lists.items()}
    return Offer(lines, lookups.run("product", load, None))


def promotion_page(promotion: Promotion, *, cursor: str | None = None, size: int = 25) -> PromotionPage:
    with database("discount"):
        rules = flow.rules_of(promotion.id)
        matches = flow.rules_match(promotion, rules)
    totals = usage.totals("promotion", promotion.id)
    uses = usage.uses_page("promotion", promotion.id, cursor, size)
    lookups = Lookups(detach=False)
    offer = offer_of(promotion, lookups)
    down = set(lookups.unavailable) | totals.unavailable | uses.unavailable
    return PromotionPage(promotion, flow.shown_status(promotion, utcnow()), rules, matches, offer, totals,
                         usage.usage_chart(totals.days), uses, down)
