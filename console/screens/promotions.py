"""Promotions screens: the promotion page (its offer, its rules in priority order, its
status and the actions it allows, the usage report) and, below, the list."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import func, select

from console.charts import Chart
from console.exports import CopyExport, time_of
from console.extensions import db
from console.filters import QueryFilters, choice, date_range, where_equal, window_overlaps
from console.lookups import Lookups, chunks, database
from console.models.discount import Promotion, PromotionRule, PromotionUsage
from console.models.types import utcnow
from console.screens.lists import ListScreen, Sort
from console.screens import usage
from console.screens.coupons import plain_text
from console.workflows import promotions as flow
from console.workflows.discounts import CENTS, chosen


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
        return status in flow.TRANSITIONS.get(self.promotion.status or flow.STATUSES.DRAFT, ())


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
        if promotion.type == flow.TYPES.BUY_X_GET_Y:
            buy, get = config["buy"], config["get"]
            lines.append(("Buy", f"{buy['quantity']} of the products or categories below"))
            lists["Buy: products"], lists["Buy: categories"] = buy["product_ids"], buy["category_ids"]
            reward = "free" if str(get["percent_off"]) in ("100", "100.00") else f"at {_percent(get['percent_off'])} off"
            lines.append(("Get", f"{get['quantity']} {reward}" + ("" if get["product_ids"] else ", of the same items")))
            lists["Get: products"] = get["product_ids"]
        elif promotion.type == flow.TYPES.BUNDLE:
            price = config.get("price")
            lines.append(("Bundle", "all of the products below together"))
            lines.append(("Price", f"{price['amount']} {price['currency']}" if price
                          else f"{_percent(config['percent_off'])} off"))
            lists["Bundle: products"] = config["bundle"]["product_ids"]
        elif promotion.type == flow.TYPES.VOLUME_DISCOUNT:
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


# --- the list ----------------------------------------------------------------------------------

@dataclass
class PromotionFilters(QueryFilters):
    name: str = ""
    type: str = ""
    status: str = ""  # as shown: an active or paused promotion past its end is expired
    window_from: date | None = None
    window_to: date | None = None

    FIELDS = ("name", "type", "status", "window_from", "window_to")

    @classmethod
    def parse(cls, args) -> tuple["PromotionFilters", list[str]]:
        errors: list[str] = []
        f = cls(name=plain_text(args, "name", errors))
        f.type = choice(args, "type", flow.TYPES, "Type", errors)
        f.status = choice(args, "status", flow.STATUSES, "Status", errors)
        f.window_from, f.window_to = date_range(args, ("window_from", "Window from"), ("window_to", "Window to"),
                                                errors)
        return f, errors


def promotions_statement(filters: PromotionFilters, lookups: Lookups | None = None):
    stmt = select(Promotion)
    if filters.name:
        stmt = stmt.where(func.lower(Promotion.name).contains(filters.name.lower(), autoescape=True))
    stmt = where_equal(stmt, (Promotion.type, filters.type))
    if filters.status:
        stmt = stmt.where(flow.status_condition(filters.status, utcnow()))
    stmt = window_overlaps(stmt, Promotion.starts_at, Promotion.ends_at, filters.window_from, filters.window_to)
    return stmt


@dataclass
class PromotionRow:
    promotion: Promotion
    status: str
    uses: int | None
    discount_given: Decimal | None


def usage_figures(ids: list[str]) -> dict[str, tuple[int, Decimal]]:
    """(uses, discount given) per promotion: one grouped query per page."""
    figures: dict[str, tuple[int, Decimal]] = {}
    owner = PromotionUsage.promotion_id
    with database("discount"):
        for chunk in chunks(ids):
            for promotion_id, uses, given in db.session.execute(
                    select(owner, func.count(), func.sum(PromotionUsage.discount_amount))
                    .where(owner.in_(chunk)).group_by(owner)):
                figures[promotion_id] = (uses, Decimal(given or 0).quantize(CENTS))
    return figures


def decorate(promotions: list[Promotion], lookups: Lookups) -> list[PromotionRow]:
    now = utcnow()
    figures = lookups.run("discount", lambda: usage_figures([p.id for p in promotions]), None)
    rows = []
    for p in promotions:
        uses, given = (figures or {}).get(p.id, (0, Decimal("0.00")))
        rows.append(PromotionRow(p, flow.shown_status(p, now), None if figures is None else uses,
                                 None if figures is None else given))
    return rows


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as export_row ---

_PROMOTIONS, _USES = Promotion.__table__.c, PromotionUsage.__table__.c
# The uses live in the same database: their count and sum come with the promotion.
_EXPORT_COLUMNS = (
    *(_PROMOTIONS[name] for name in ("name", "type", "status", "starts_at", "ends_at", "id")),
    select(func.count()).where(_USES.promotion_id == _PROMOTIONS.id).scalar_subquery().label("uses"),
    Promotion.discount_given.expression)


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    now = utcnow()
    return [[name, kind, flow.shown_status(SimpleNamespace(status=status, ends_at=time_of(ends)), now), status,
             starts, ends, uses, Decimal(given or 0).quantize(CENTS), promotion_id]
            for name, kind, status, starts, ends, promotion_id, uses, given in batch]


PROMOTIONS = ListScreen(
    name="promotions", noun="promotions", home="discount",
    filters=PromotionFilters, statement=promotions_statement, id_column=Promotion.id,
    sorts=(Sort("created", Promotion.created_at, "Created"),
           Sort("name", Promotion.name, "Name", descending=False),
           Sort("starts", Promotion.starts_at, "Starts"),
           Sort("ends", Promotion.ends_at, "Ends", descending=False),
           Sort("given", Promotion.discount_given, "Discount given", numeric=True)),
    default_sort="-created", decorate=decorate,
    export_header=("name", "type", "status", "stored_status", "starts_at", "ends_at", "uses", "discount_given",
                   "promotion_id"),
    export_row=lambda row, lookups: [
        row.promotion.name, row.promotion.type, row.status, row.promotion.status, row.promotion.starts_at,
        row.promotion.ends_at, row.uses, row.discount_given, row.promotion.id],
    export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells))
