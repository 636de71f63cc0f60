"""Global search: one box, every kind of identifier staff are handed.

An order number, email, customer name or phone, RMA number, tracking number, coupon
code, SKU or payment provider id is looked up in the database that owns it: exact
matches first (case variants, so the unique indexes are used), and only when nothing
matches exactly, prefix matches, a few per kind. Each kind is one statement of bounded
index lookups (``lookup``), the exact ones and the prefix ones together, each row
tagged with which it met (so a broad prefix costs no second round of statements): no ORDER BY for PostgreSQL to walk a date index for, no
function around a column to hide its index; the few rows found are sorted here. A kind
with more matches than shown links to its list filtered by the term ("see all"). A
database that is down is skipped and named. Links are built from endpoints (console/links.py).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask import url_for
from sqlalchemy import literal, select, union_all

from console.extensions import db
from console.filters import like_escape
from console.links import customer_url, list_url, order_url, orders_url, return_url
from console.lookups import DatabaseUnavailable, database
from console.models.auth import User
from console.models.discount import Coupon
from console.models.order import Order
from console.models.payment import Payment
from console.models.product import Product, ProductVariant
from console.models.returns import ReturnAuthorization, ReturnRequest
from console.models.shipping import Shipment
from console.models.user import UserProfile, full_name_expression, phone_digits_expression
from console.screens.coupons import coupon_key
from console.screens.customers import staff_user_ids

PER_KIND = 10
MIN_PREFIX = 3
MAX_TERM = 200

# kind -> (heading, permission needed to open what it links to)
KINDS: dict[str, tuple[str, str]] = {
    "order": ("Orders", "orders.view"),
    "customer": ("Customers", "customers.view"),
    "return": ("Returns", "returns.view"),
    "shipment": ("Shipments", "orders.view"),
    "payment": ("Payments", "orders.view"),
    "coupon": ("Coupons", "coupons.view"),
    "product": ("Products", "orders.view"),
}
# kind -> (list endpoint, its filter) that shows every match: the "see all" link.
SEE_ALL: dict[str, tuple[str, str]] = {
    "order": ("orders.list_orders", "q"),
    "customer": ("customers.list_customers", "q"),
    "return": ("returns.list_returns", "rma"),
}
SEARCHABLE = ("order numbers (ORD-…)", "customer emails, names and phone numbers", "RMA numbers (RMA-…)",
              "tracking numbers", "coupon codes", "SKUs", "payment provider ids")
# A phone number: digits with the usual separators, at least this many digits.
PHONE_TEXT = re.compile(r"^\+?[\d\s().\-]+$")
MIN_PHONE_DIGITS = 6
_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Hit:
    kind: str
    label: str  # the identifier that matched
    detail: str
    url: str | None
    exact: bool = True  # matched exactly, not by a prefix


class Matcher:
    """Column conditions for one search term: exact (any of its case variants) and, for a
    term long enough, prefix. Carries the searching user, whose permissions decide where
    a match links to."""

    def __init__(self, term: str, user):
        self.term = term
        self.variants = list(dict.fromkeys((term, term.upper(), term.lower())))
        self.prefix = len(term) >= MIN_PREFIX
        self.user = user

    def conditions(self, column) -> list[tuple]:
        """(condition, exact) per index lookup on ``column``: exact, every case variant at
        once (``IN``, its unique or plain btree index); prefix, one ``LIKE 'v%'`` per variant
        (its varchar_pattern_ops index, which PostgreSQL walks and stops after a few rows; an
        OR of the variants would become a bitmap of every match first)."""
        found = [(column.in_(self.variants), True)]
        if self.prefix:
            found += [(column.like(like_escape(v) + "%", escape="\\"), False) for v in self.variants]
        return found

    def found(self, value: str | None) -> bool:
        """Whether ``value`` itself matches the term, exactly or by its start (for saying what matched)."""
        return bool(value) and any(value.startswith(v) for v in self.variants)


def lookup(columns, conditions: list[tuple], *where) -> list:
    """Rows of ``columns`` meeting any of ``conditions`` ((condition, exact) pairs, and all
    of ``where``), in one statement: a UNION ALL of one bounded lookup per condition, each
    ``LIMIT PER_KIND + 1`` with no ORDER BY, so each is a short walk of its own index at any
    table size. Each row ends with ``exact``, whether an exact condition found it. A row
    found twice is kept once, as an exact match when it is one; the rows come in no
    particular order (the caller sorts the few)."""
    parts = [select(*columns, literal(exact).label("exact")).where(condition, *where).limit(PER_KIND + 1)
             for condition, exact in conditions]
    stmt = parts[0] if len(parts) == 1 else union_all(*(select(part.subquery()) for part in parts))
    unique: dict = {}
    # A UNION names no table for the session to pick a database by: the first column's does.
    for row in db.session.execute(stmt, bind_arguments={"mapper": columns[0].class_}):
        known = unique.get(row[0])
        if known is None or (row.exact and not known.exact):
            unique[row[0]] = row
    return list(unique.values())


def _newest_first(rows: list) -> list:
    # Exact matches first, so prefix matches never push one out.
    return sorted(rows, key=lambda r: (bool(r.exact), r.created_at or _OLDEST, r.id), reverse=True)[:PER_KIND + 1]


def _by(attribute: str):
    return lambda rows: sorted(rows, key=lambda r: (not r.exact, getattr(r, attribute) or "", r[0]))[:PER_KIND + 1]


def find_orders(match: Matcher) -> list[Hit]:
    conditions = match.conditions(Order.order_number) + match.conditions(Order.tracking_number)
    conditions.append((Order.id.in_(match.variants), True))
    rows = _newest_first(lookup((Order.id, Order.order_number, Order.tracking_number, Order.status,
                                 Order.total_amount, Order.currency, Order.created_at), conditions))
    hits = []
    for order in rows:
        detail = f"{order.status or 'no status'} · {order.total_amount or 0:,.2f} {order.currency or ''}".strip()
        if match.found(order.tracking_number):
            detail += f" · tracking {order.tracking_number}"
        hits.append(Hit("order", order.order_number or order.id, detail, order_url(order.id), bool(order.exact)))
    return hits


def find_customers_by_profile(match: Matcher) -> list[Hit]:
    """By email; by full name ("Robert Thompson", exactly, else its start); by phone
    (the digits typed, at the end of the stored number, so "555 0100" finds "+1 555-0100").
    Name and phone are matched on the expressions their trigram indexes hold."""
    conditions = match.conditions(UserProfile.email)
    name = match.term.lower()
    if " " in name.strip() or not any(ch.isdigit() or ch in "@." for ch in name):
        full_name = full_name_expression()
        conditions.append((full_name == name, True))
        if match.prefix:
            conditions.append((full_name.like(like_escape(name) + "%", escape="\\"), False))
    digits = re.sub(r"\D", "", match.term)
    if PHONE_TEXT.match(match.term) and len(digits) >= MIN_PHONE_DIGITS:
        conditions.append((phone_digits_expression().like("%" + digits), True))
    # Profiles without a user (none link anywhere) are left out here: in SQL that condition
    # would offer PostgreSQL the user_id index as another way to read every row.
    rows = _by("email")([p for p in lookup((UserProfile.id, UserProfile.user_id, UserProfile.email,
                                            UserProfile.first_name, UserProfile.last_name, UserProfile.phone),
                                           conditions) if p.user_id])
    return [_customer_hit(p.user_id, p.email, " · ".join(filter(None, (
        " ".join(filter(None, (p.first_name, p.last_name))), p.phone))), p.exact) for p in rows]


def find_customers_by_account(match: Matcher) -> list[Hit]:
    staff = set(staff_user_ids())
    rows = _by("email")(lookup((User.id, User.email), match.conditions(User.email)))
    return [_customer_hit(u.id, u.email, "", u.exact) for u in rows if u.id not in staff]


def _customer_hit(user_id: str, email: str | None, name: str, exact: bool) -> Hit:
    return Hit("customer", email or user_id, name or "customer", customer_url(user_id), bool(exact))


def _return_hit(match: Matcher, request, label: str, detail: str, exact: bool) -> Hit:
    """A return opens on the returns screen when the user may use it, else on its order."""
    if match.user.can("returns.view"):
        return Hit("return", label, detail, return_url(request.id), bool(exact))
    url = order_url(request.order_id) if request.order_id and match.user.can("orders.view") else None
    return Hit("return", label, detail, url, bool(exact))


_REQUEST_COLUMNS = (ReturnRequest.id, ReturnRequest.rma_number, ReturnRequest.status, ReturnRequest.return_reason,
                    ReturnRequest.order_id, ReturnRequest.created_at)


def _return_detail(request) -> str:
    status = (request.status or "no status").replace("_", " ")
    return f"{status} · {(request.return_reason or '').replace('_', ' ')}".strip(" ·")


def find_returns(match: Matcher) -> list[Hit]:
    hits = [_return_hit(match, r, r.rma_number or r.id, _return_detail(r), r.exact)
            for r in _newest_first(lookup(_REQUEST_COLUMNS, match.conditions(ReturnRequest.rma_number)))]
    # Return parcels: the authorization carries its own RMA copy and the tracking number.
    authorizations = _by("rma_number")(lookup(
        (ReturnAuthorization.id, ReturnAuthorization.return_request_id, ReturnAuthorization.rma_number,
         ReturnAuthorization.tracking_number),
        match.conditions(ReturnAuthorization.rma_number) + match.conditions(ReturnAuthorization.tracking_number)))
    wanted = [a.return_request_id for a in authorizations if a.return_request_id]
    requests = {r.id: r for r in db.session.execute(
        select(*_REQUEST_COLUMNS).where(ReturnRequest.id.in_(wanted)))} if wanted else {}
    for auth in authorizations:
        request = requests.get(auth.return_request_id)
        if request is None:
            continue
        if match.found(auth.tracking_number):
            hits.append(_return_hit(match, request, auth.tracking_number, f"return parcel of {request.rma_number}",
                                    auth.exact))
        else:
            hits.append(_return_hit(match, request, auth.rma_number or request.rma_number or request.id,
                                    f"{request.status or 'no status'}", auth.exact))
    return hits


def find_shipments(match: Matcher) -> list[Hit]:
    rows = _by("tracking_number")(lookup((Shipment.id, Shipment.tracking_number, Shipment.status, Shipment.order_id),
                                         match.conditions(Shipment.tracking_number)))
    return [Hit("shipment", s.tracking_number, f"shipment {(s.status or '').replace('_', ' ')}".strip(),
                order_url(s.order_id) if s.order_id else None, bool(s.exact)) for s in rows]


def find_payments(match: Matcher) -> list[Hit]:
    rows = _by("provider_payment_id")(lookup(
        (Payment.id, Payment.provider_payment_id, Payment.payment_provider, Payment.status, Payment.amount,
         Payment.currency, Payment.order_id), match.conditions(Payment.provider_payment_id)))
    return [Hit("payment", p.provider_payment_id,
                f"{p.payment_provider or ''} {p.status or ''} · {p.amount or 0:,.2f} {p.currency or ''}".strip(),
                order_url(p.order_id) if p.order_id else None, bool(p.exact)) for p in rows]


def find_coupons(match: Matcher) -> list[Hit]:
    rows = _by("code")(lookup((Coupon.id, Coupon.code, Coupon.name, Coupon.is_active), match.conditions(Coupon.code)))
    own = match.user.can("coupons.view")
    return [Hit("coupon", c.code, f"{c.name or ''}{'' if c.is_active else ' (inactive)'}".strip(),
                url_for("coupons.coupon_detail", key=coupon_key(c)) if own else orders_url(coupon=c.code), bool(c.exact))
            for c in rows]


def find_products(match: Matcher) -> list[Hit]:
    products = _by("sku")(lookup((Product.id, Product.sku, Product.name), match.conditions(Product.sku)))
    variants = _by("sku")(lookup((ProductVariant.id, ProductVariant.sku, ProductVariant.name),
                                 match.conditions(ProductVariant.sku)))
    hits = [Hit("product", p.sku, p.name or "", orders_url(sku=p.sku), bool(p.exact)) for p in products]
    hits += [Hit("product", v.sku, f"variant {v.name or ''}".strip(), orders_url(sku=v.sku), bool(v.exact))
             for v in variants]
    return hits


# (kind, database, finder): each finder reads only its own database.
FINDERS: tuple[tuple[str, str, Callable[[Matcher], list[Hit]]], ...] = (
    ("order", "order", find_orders),
    ("customer", "user", find_customers_by_profile),
    ("customer", "auth", find_customers_by_account),
    ("return", "return", find_returns),
    ("shipment", "shipping", find_shipments),
    ("payment", "payment", find_payments),
    ("coupon", "discount", find_coupons),
    ("product", "product", find_products),
)


@dataclass
class Group:
    heading: str
    hits: list[Hit]  # PER_KIND at most
    more: bool  # more matched than are shown
    see_all: str | None  # the list filtered by the term, when there are more and one exists


@dataclass
class Results:
    term: str
    hits: list[Hit] = field(default_factory=list)
    exact: bool = True
    unavailable: list[str] = field(default_factory=list)

    @property
    def single(self) -> Hit | None:
        """The one place to go: exactly one distinct match with a link, and every
        database answered (otherwise a second match may be hiding in the one that didn't)."""
        targets = {hit.url for hit in self.hits}
        if len(targets) == 1 and not self.unavailable and self.hits[0].url:
            return self.hits[0]
        return None

    def grouped(self) -> list[Group]:
        groups: dict[str, list[Hit]] = {}
        for hit in self.hits:
            groups.setdefault(hit.kind, []).append(hit)
        return [self._group(kind, groups[kind]) for kind in KINDS if kind in groups]

    def _group(self, kind: str, hits: list[Hit]) -> Group:
        more = len(hits) > PER_KIND
        see_all = None
        if more and kind in SEE_ALL:
            endpoint, argument = SEE_ALL[kind]
            see_all = list_url(endpoint, **{argument: self.term})
        return Group(KINDS[kind][0], hits[:PER_KIND], more, see_all)


def allowed_kinds(user) -> set[str]:
    kinds = {kind for kind, (_, permission) in KINDS.items() if user.can(permission)}
    if "return" not in kinds and user.can("orders.view"):
        kinds.add("return")  # a return opens its order when the user may not see returns
    if "coupon" not in kinds and user.can("orders.view"):
        kinds.add("coupon")  # a coupon opens the orders that used it when the user may not see coupons
    return kinds


def _run(term: str, user, down: list[str]) -> list[Hit]:
    match = Matcher(term, user)
    kinds = allowed_kinds(user)
    hits: list[Hit] = []
    for kind, bind, finder in FINDERS:
        if kind not in kinds or bind in down:
            continue
        try:
            with database(bind):
                hits.extend(finder(match))
        except DatabaseUnavailable as exc:
            down.append(exc.bind_key)
    # One record found twice (an order by number and by tracking number) shows once.
    unique: dict[tuple[str, str | None, str], Hit] = {}
    for hit in hits:
        unique.setdefault((hit.kind, hit.url, hit.label), hit)
    return list(unique.values())


def search(term: str, user) -> Results:
    """Matches for ``term`` of the kinds ``user`` may open: exact ones, or if there are
    none, prefix ones."""
    term = (term or "").strip()[:MAX_TERM]
    results = Results(term)
    if not term:
        return results
    hits = _run(term, user, results.unavailable)
    results.hits = [hit for hit in hits if hit.exact]
    if not results.hits:
        results.exact = False
        results.hits = hits
    return results
