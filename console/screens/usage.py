"""The usage report of a coupon or a promotion, joined across databases.

Every use (discount_db's ``coupon_usage`` or ``promotion_usage``) with its customer
(auth_db email, user_db name) and its order (order_db number, total, status), the
discount, and the totals: uses, distinct customers, discount given, revenue of the
orders that used it (cancelled and refunded orders counted apart), the average order
value with it and without it (other orders placed over the same days), and uses per
day. The references followed are those of ``console.references``; the batch loader
reads each target table once per page or per export batch.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import and_, case, false, func, or_, select

from console.charts import Chart, column_chart, nice_ceiling
from console import localtime
from console.screens.dashboard import _as_date
from console.exports import CopyExport, Side, copy_export
from console.extensions import db
from console.screens.keyset import Page, keyset_page
from console.lookups import DatabaseUnavailable, Lookups, Missing, chunks, database, fetch_in, resolve, target_or_missing
from console.models.auth import User
from console.models.discount import CouponUsage, PromotionUsage
from console.models.order import Order
from console.models.user import UserProfile

CENTS = Decimal("0.01")
# Orders in these statuses brought no revenue: they are counted apart.
APART = ("cancelled", "refunded")
CHART_DAYS = 120

# kind -> (usage model, the column naming its coupon or promotion, reference prefix)
KINDS = {
    "coupon": (CouponUsage, CouponUsage.coupon_id, "discount.coupon_usage"),
    "promotion": (PromotionUsage, PromotionUsage.promotion_id, "discount.promotion_usage"),
}


def _kind(kind: str):
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"no usage report for {kind!r}") from None


# --- each use -------------------------------------------------------------------------------

@dataclass
class Use:
    usage: CouponUsage | PromotionUsage
    account: User | Missing | None  # None: no user id, or auth_db unavailable
    profile: UserProfile | None
    order: Order | Missing | None  # None: no order id, or order_db unavailable

    @property
    def email(self) -> str:
        if isinstance(self.account, User):
            return self.account.email or ""
        return self.profile.email if self.profile is not None and self.profile.email else ""

    @property
    def name(self) -> str:
        if self.profile is None:
            return ""
        return " ".join(p for p in (self.profile.first_name, self.profile.last_name) if p)


def decorate(kind: str, rows: list, lookups: Lookups) -> list[Use]:
    """Customers and orders for a page of usage rows: one query per target table."""
    _, _, ref = _kind(kind)
    users = lookups.run("auth", lambda: resolve(f"{ref}.user_id", [r.user_id for r in rows]), {})
    profiles = {p.user_id: p for p in lookups.run("user", lambda: fetch_in(
        "user", "user_profiles", "user_id", [r.user_id for r in rows]), [])}
    orders = lookups.run("order", lambda: resolve(f"{ref}.order_id", [r.order_id for r in rows]), {})
    return [Use(r,
                None if lookups.down("auth") else target_or_missing(users, r.user_id),
                profiles.get(r.user_id),
                None if lookups.down("order") else target_or_missing(orders, r.order_id))
            for r in rows]


def uses_statement(kind: str, owner_id: str):
    model, owner, _ = _kind(kind)
    return select(model).where(owner == owner_id)


@dataclass
class UsesPage:
    page: Page
    uses: list[Use]
    unavailable: set[str]


def uses_page(kind: str, owner_id: str, cursor: str | None, size: int, before: str | None = None) -> UsesPage:
    """One page of uses, newest first (keyset on used_at, id): after ``cursor`` (older
    uses) or ``before`` (newer ones)."""
    model, _, _ = _kind(kind)
    with database("discount"):
        page = keyset_page(uses_statement(kind, owner_id), model.used_at, model.id, sort_key="used",
                           descending=True, size=size, after=cursor, before=before, count=False)
    lookups = Lookups()
    return UsesPage(page, decorate(kind, page.rows, lookups), lookups.unavailable)


EXPORT_HEADER = ["used_at", "customer_email", "customer_name", "order_number", "order_status", "order_total",
                 "currency", "discount_amount", "user_id", "order_id", "usage_id"]


def _absent(target, down: bool) -> str:
    # Missing reads "missing (id …)" (and is falsy); None is an empty id or a database down.
    return "unavailable" if down else ("" if target is None else str(target))


def export_rows(kind: str, owner_id: str) -> Iterator[list]:
    """Every use, newest first, streamed through the COPY path (console/exports.py); a
    database found down is not asked again."""
    model, _, _ = _kind(kind)
    stmt = uses_statement(kind, owner_id).order_by(model.used_at.desc(), model.id.desc())
    return copy_export(_EXPORTS[kind], "discount", stmt, set())


def _export_of(model) -> CopyExport:
    """The uses' export: each use's own columns, its customer (auth_db, user_db) and its
    order (order_db) looked up once per batch; the cells of the decorated rows."""
    uses, users, profiles, orders = (model.__table__.c, User.__table__.c, UserProfile.__table__.c,
                                     Order.__table__.c)
    columns = tuple(uses[name] for name in ("used_at", "discount_amount", "user_id", "order_id", "id"))

    def by_user(batch):
        return [row[2] for row in batch]

    sides = {
        "accounts": Side("auth", by_user, lambda ids, among: select(users.id, users.email)
                         .where(among(users.id, ids)), kept=True),
        "profiles": Side("user", by_user, lambda ids, among: select(
            profiles.user_id, profiles.first_name, profiles.last_name, profiles.email)
            .where(among(profiles.user_id, ids)), kept=True),
        "orders": Side("order", lambda batch: [row[3] for row in batch], lambda ids, among: select(
            orders.id, orders.order_number, orders.status, orders.total_amount, orders.currency)
            .where(among(orders.id, ids))),
    }

    def cells(batch, found, lookups: Lookups, _) -> list[list]:
        accounts, people, bought = found["accounts"], found["profiles"], found["orders"]
        auth_down, order_down = lookups.down("auth"), lookups.down("order")
        rows = []
        for used_at, discount, user_id, order_id, usage_id in batch:
            account, profile, order = accounts.get(user_id), people.get(user_id), bought.get(order_id)
            profile = profile[-1] if profile else None
            email = (account[0][1] if account else None) or (profile[3] if profile else None) \
                or ("unavailable" if auth_down else str(Missing(user_id)) if user_id else "")
            name = " ".join(part for part in profile[1:3] if part) if profile else ""
            order = order[0] if order else None
            rows.append([used_at, email, name,
                         order[1] if order else "unavailable" if order_down else str(Missing(order_id)) if order_id
                         else "", *(order[2:5] if order else ("", "", "")), discount, user_id, order_id, usage_id])
        return rows
    return CopyExport(columns, cells, sides)


_EXPORTS = {kind: _export_of(model) for kind, (model, _, _) in KINDS.items()}


# --- the totals -----------------------------------------------------------------------------

@dataclass
class OrderFigures:
    """Orders of one kind (kept, cancelled or refunded): how many and their value, by currency."""
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    amounts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: Decimal("0.00")))

    def add(self, currency: str | None, amount, count: int = 1) -> None:
        self.counts[currency or ""] += count
        self.amounts[currency or ""] += Decimal(amount or 0)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def average(self, minus: "OrderFigures | None" = None) -> dict[str, Decimal]:
        """Average order value by currency (less the orders in ``minus``)."""
        result = {}
        for currency, amount in self.amounts.items():
            count = self.counts[currency] - (minus.counts.get(currency, 0) if minus else 0)
            if count > 0:
                amount -= minus.amounts.get(currency, Decimal(0)) if minus else Decimal(0)
                result[currency] = (amount / count).quantize(CENTS)
        return result


@dataclass
class UsageDay:
    day: date
    uses: int
    discount: Decimal


@dataclass
class Totals:
    uses: int
    customers: int
    discount: Decimal
    first_use: datetime | None
    last_use: datetime | None
    days: list[UsageDay]
    # Order figures; None when order_db is unavailable.
    kept: OrderFigures | None = None
    cancelled: OrderFigures | None = None
    refunded: OrderFigures | None = None
    missing_orders: int = 0
    # Average order value by currency: the orders that used it (kept ones), and the
    # other orders placed from its first use to its last (cancelled and refunded left out).
    average_with: dict[str, Decimal] = field(default_factory=dict)
    average_without: dict[str, Decimal] = field(default_factory=dict)
    other_orders: int = 0
    unavailable: set[str] = field(default_factory=set)

    @property
    def revenue(self) -> dict[str, Decimal]:
        return dict(self.kept.amounts) if self.kept else {}


def totals(kind: str, owner_id: str) -> Totals:
    """The report's figures. discount_db must answer (DatabaseUnavailable otherwise);
    order_db being down leaves the order figures empty and names it."""
    model, owner, _ = _kind(kind)
    day = localtime.local_date(model.used_at)
    with database("discount"):
        uses, customers, discount, first, last = db.session.execute(select(
            func.count(), func.count(func.distinct(model.user_id)), func.sum(model.discount_amount),
            func.min(model.used_at), func.max(model.used_at)).where(owner == owner_id)).one()
        per_day = db.session.execute(select(day, func.count(), func.sum(model.discount_amount))
                                     .where(owner == owner_id).group_by(day)).all()
    first = _aware(first)
    last = _aware(last)
    result = Totals(uses=uses, customers=customers, discount=Decimal(discount or 0).quantize(CENTS),
                    first_use=first, last_use=last, days=_filled_days(per_day))
    try:
        _order_figures(kind, owner_id, result)
    except DatabaseUnavailable as exc:
        result.kept = result.cancelled = result.refunded = None
        result.unavailable.add(exc.bind_key)
    return result


def _aware(value):
    # SQLite hands aggregates of timestamps back as text or naive values.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _filled_days(rows) -> list[UsageDay]:
    known = {_as_date(d): UsageDay(_as_date(d), int(n), Decimal(s or 0).quantize(CENTS)) for d, n, s in rows}
    if not known:
        return []
    last = max(known)
    first = max(min(known), last - timedelta(days=CHART_DAYS - 1))
    return [known.get(first + timedelta(days=i)) or UsageDay(first + timedelta(days=i), 0, Decimal("0.00"))
            for i in range((last - first).days + 1)]


def _order_figures(kind: str, owner_id: str, result: Totals) -> None:
    """Streams the report's order ids in chunks: one order_db query per chunk."""
    model, owner, _ = _kind(kind)
    kept, cancelled, refunded = OrderFigures(), OrderFigures(), OrderFigures()
    in_period = OrderFigures()  # kept orders of the report placed within the period
    start = localtime.start_of_day(localtime.today(result.first_use)) if result.first_use else None
    end = localtime.start_of_day(localtime.today(result.last_use) + timedelta(days=1)) if result.last_use else None
    wanted = found = 0
    with database("discount"):
        order_ids = list(db.session.scalars(select(model.order_id).where(owner == owner_id,
                                                                          model.order_id.isnot(None)).distinct()))
    with database("order"):
        for chunk in chunks(order_ids):
            wanted += len(chunk)
            # Summed in the database: one row per status and currency, not one per order.
            placed = and_(Order.created_at >= start, Order.created_at < end) if start is not None else false()
            for status, currency, count, total, count_in, total_in in db.session.execute(
                    select(Order.status, Order.currency, func.count(), func.sum(Order.total_amount),
                           func.sum(case((placed, 1), else_=0)), func.sum(case((placed, Order.total_amount), else_=0)))
                    .where(Order.id.in_(chunk)).group_by(Order.status, Order.currency)):
                found += count
                figures = cancelled if status == "cancelled" else refunded if status == "refunded" else kept
                figures.add(currency, total, count)
                if figures is kept and count_in:
                    in_period.add(currency, total_in, int(count_in))
        others = OrderFigures()
        if start is not None:
            for currency, count, total in db.session.execute(
                    select(Order.currency, func.count(), func.sum(Order.total_amount))
                    .where(Order.created_at >= start, Order.created_at < end,
                           or_(Order.status.is_(None), Order.status.notin_(APART)))
                    .group_by(Order.currency)):
                others.add(currency, total or 0, count)
    result.kept, result.cancelled, result.refunded = kept, cancelled, refunded
    result.missing_orders = wanted - found
    result.average_with = kept.average()
    result.average_without = others.average(minus=in_period)
    result.other_orders = others.count - in_period.count


def usage_chart(days: list[UsageDay]) -> Chart | None:
    """Uses per store-local day, one bar each (the last CHART_DAYS days of use at most)."""
    if not days:
        return None
    points = [(d.day.strftime("%d %b"), d.uses, None,
               f"{d.day.isoformat()}: {d.uses:,} use{'' if d.uses == 1 else 's'}, {d.discount:,.2f} off")
              for d in days]
    # Uses are whole numbers: up to 5 the axis counts them one by one, above it in fifths
    # of a round top (10, 20, 25, 50 …), so no tick reads 0.8 of a use.
    top = nice_ceiling(max(d.uses for d in days))
    return column_chart(points, tick_format=lambda v: f"{v:,.0f}", ticks=int(top) if top <= 5 else 5,
                        label_every=max(1, len(days) // 8))
