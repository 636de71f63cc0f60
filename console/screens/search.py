"""Global search: one box, every kind of identifier staff are handed.

An order number, email, customer name or phone, RMA number, tracking number, coupon
code, SKU or payment provider id is looked up in the database that owns it: exact
matches first (case variants, so the unique indexes are used), and only when nothing
matches exactly, prefix matches, a few per kind. Each database is asked one statement
(``Lookup``): a UNION ALL of bounded index lookups, the exact ones and the prefix ones
together, each row tagged with which it met (so a broad prefix costs no second round of
statements): no ORDER BY for PostgreSQL to walk a date index for, no function around a
column to hide its index; the few rows found are sorted here. The statements are built
once per shape (how many case variants, which kinds of condition) with the term as
parameters, so a search costs SQLAlchemy no statement building and no cache-key walk.
A kind with more matches than shown links to its list filtered by the term ("see
all"). A database that is down is skipped and named. Links are built from endpoints
(console/links.py).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

from flask import url_for
from sqlalchemy import bindparam, exists, false, null, or_, select, true, union_all

from console.extensions import db
from console.filters import CONTAINED_MIN, like_escape
from console.links import customer_url, list_url, order_url, orders_url, return_url
from console.lookups import DatabaseUnavailable, database, read_apart
from console.models.auth import Role, User, UserRole
from console.models.discount import Coupon
from console.models.order import Order
from console.models.payment import Payment
from console.models.product import Product, ProductVariant
from console.models.returns import ReturnAuthorization, ReturnRequest
from console.models.shipping import Shipment
from console.models.user import UserProfile, full_name_expression, phone_digits_expression
from console.permissions import STAFF_ROLES
from console.screens.coupons import coupon_key

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


# The term's parameters, as every statement names them: its case variants (for IN), one
# LIKE pattern per variant, the full name and its pattern, the phone digits' pattern.
VARIANTS = bindparam("variants", expanding=True)
PATTERNS = tuple(bindparam(f"prefix_{n}") for n in range(3))
NAME, NAME_PATTERN, PHONE_PATTERN = bindparam("name"), bindparam("name_prefix"), bindparam("phone_suffix")


@dataclass(frozen=True)
class Shape:
    """What decides a statement's text: how many prefix lookups per column (one per case
    variant of a term long enough, else none), whether the term can be a full name, and
    whether it reads as a phone number. The term itself only fills parameters."""

    prefixes: int
    name: bool
    phone: bool


class Matcher:
    """One search term: its shape and parameters. Carries the searching user, whose
    permissions decide where a match links to."""

    def __init__(self, term: str, user):
        self.term = term
        self.variants = list(dict.fromkeys((term, term.upper(), term.lower())))
        self.prefix = len(term) >= MIN_PREFIX
        self.user = user
        name = term.lower()
        digits = re.sub(r"\D", "", term)
        phone = bool(PHONE_TEXT.match(term)) and len(digits) >= MIN_PHONE_DIGITS
        self.shape = Shape(len(self.variants) if self.prefix else 0,
                           " " in name.strip() or not any(ch.isdigit() or ch in "@." for ch in name), phone)
        self.params = {"variants": self.variants, "name": name, "name_prefix": like_escape(name) + "%",
                       "phone_suffix": "%" + digits}
        self.params.update((p.key, like_escape(v) + "%") for p, v in zip(PATTERNS, self.variants))
        # {Lookup: the future of its rows}: read at once on PostgreSQL (_fetch_ahead).
        self.fetched: dict = {}

    def found(self, value: str | None) -> bool:
        """Whether ``value`` itself matches the term, exactly or by its start (for saying what matched)."""
        return bool(value) and any(value.startswith(v) for v in self.variants)


def exact(*columns) -> list[tuple]:
    """One lookup for the term's case variants in any of ``columns`` (``IN`` on each one's
    unique or plain btree index; PostgreSQL ORs the few entries found)."""
    return [(or_(*(column.in_(VARIANTS) for column in columns)), True)]


def prefixes(shape: Shape, *columns) -> list[tuple]:
    """One ``LIKE 'v%'`` lookup per case variant per column: its varchar_pattern_ops index,
    which PostgreSQL walks and stops after a few rows (an OR of the variants would become
    a bitmap of every match first)."""
    return [(column.like(pattern, escape="\\"), False) for column in columns for pattern in PATTERNS[:shape.prefixes]]


@dataclass(frozen=True)
class Lookup:
    """A finder's one statement, and the model whose database runs it."""

    statement: object
    model: type

    def rows(self, match: Matcher, key: Callable = lambda row: row[0]) -> list:
        """The rows for ``match``, each ending with ``exact``: whether an exact lookup found
        it. A row found twice (same ``key``) is kept once, as an exact match when it is
        one; the rows come in no particular order (the caller sorts the few)."""
        unique: dict = {}
        ahead = match.fetched.pop(self, None)
        if ahead is not None:
            rows = ahead.result()  # or what reading it raised, inside the finder's database()
        else:
            # A UNION names no table for the session to pick a database by: the model does.
            rows = db.session.execute(self.statement, match.params, bind_arguments={"mapper": self.model})
        for row in rows:
            found = key(row)
            known = unique.get(found)
            if known is None or (row.exact and not known.exact):
                unique[found] = row
        return list(unique.values())


def limited(parts: list[tuple]) -> list:
    """Each of ``parts`` ((select, exact) pairs) tagged with ``exact`` and cut at
    ``LIMIT PER_KIND + 1``, with no ORDER BY: a short walk of its own index at any size."""
    return [part.add_columns((true() if is_exact else false()).label("exact")).limit(PER_KIND + 1)
            for part, is_exact in parts]


def union(selects: list):
    """``selects`` (of the same columns) as one statement."""
    return selects[0] if len(selects) == 1 else union_all(*(select(part.subquery()) for part in selects))


def lookup(model, parts: list[tuple]) -> Lookup:
    """One statement of ``parts`` ((select, exact) pairs, the selects of the same columns)."""
    return Lookup(union(limited(parts)), model)


def on(columns, conditions: list[tuple], *where) -> list[tuple]:
    """(select of ``columns`` where condition and ``where``, exact) per condition."""
    return [(select(*columns).where(condition, *where), is_exact) for condition, is_exact in conditions]


def _newest_first(rows: list) -> list:
    # Exact matches first, so prefix matches never push one out.
    return sorted(rows, key=lambda r: (bool(r.exact), r.created_at or _OLDEST, r.id), reverse=True)[:PER_KIND + 1]


def _by(attribute: str):
    return lambda rows: sorted(rows, key=lambda r: (not r.exact, getattr(r, attribute) or "", r[0]))[:PER_KIND + 1]


@lru_cache(maxsize=None)
def orders_lookup(shape: Shape) -> Lookup:
    """By order number or tracking number (exact or prefix), or by id (exact)."""
    columns = (Order.id, Order.order_number, Order.tracking_number, Order.status, Order.total_amount,
               Order.currency, Order.created_at)
    return lookup(Order, on(columns, exact(Order.order_number, Order.tracking_number, Order.id)
                            + prefixes(shape, Order.order_number, Order.tracking_number)))


def find_orders(match: Matcher) -> list[Hit]:
    hits = []
    for order in _newest_first(orders_lookup(match.shape).rows(match)):
        detail = f"{order.status or 'no status'} · {order.total_amount or 0:,.2f} {order.currency or ''}".strip()
        if match.found(order.tracking_number):
            detail += f" · tracking {order.tracking_number}"
        hits.append(Hit("order", order.order_number or order.id, detail, order_url(order.id), bool(order.exact)))
    return hits


@lru_cache(maxsize=None)
def profiles_lookup(shape: Shape) -> Lookup:
    """By email; by full name ("Robert Thompson", exactly, else its start); by phone
    (the digits typed, at the end of the stored number, so "555 0100" finds "+1 555-0100").
    Name and phone are matched on the expressions their indexes hold. Profiles without a
    user (none link anywhere) are left out afterwards: in SQL that condition would offer
    PostgreSQL the user_id index as another way to read every row."""
    full_name = full_name_expression()
    conditions = [(or_(UserProfile.email.in_(VARIANTS), *([full_name == NAME] if shape.name else [])), True)]
    conditions += prefixes(shape, UserProfile.email)
    if shape.name and shape.prefixes:
        conditions.append((full_name.like(NAME_PATTERN, escape="\\"), False))
    if shape.phone:
        conditions.append((phone_digits_expression().like(PHONE_PATTERN), True))
    return lookup(UserProfile, on((UserProfile.id, UserProfile.user_id, UserProfile.email, UserProfile.first_name,
                                   UserProfile.last_name, UserProfile.phone), conditions))


def find_customers_by_profile(match: Matcher) -> list[Hit]:
    rows = _by("email")([p for p in profiles_lookup(match.shape).rows(match) if p.user_id])
    return [_customer_hit(p.user_id, p.email, " · ".join(filter(None, (
        " ".join(filter(None, (p.first_name, p.last_name))), p.phone))), p.exact) for p in rows]


@lru_cache(maxsize=None)
def accounts_lookup(shape: Shape) -> Lookup:
    """Customers' accounts by email, staff left out in the same statement: each row found
    is checked against its user_roles rows (their user_id index), so the few rows of
    each lookup are customers."""
    staff = exists().where(UserRole.user_id == User.id, Role.id == UserRole.role_id, Role.name.in_(STAFF_ROLES))
    return lookup(User, on((User.id, User.email), exact(User.email) + prefixes(shape, User.email), ~staff))


def find_customers_by_account(match: Matcher) -> list[Hit]:
    return [_customer_hit(u.id, u.email, "", u.exact) for u in _by("email")(accounts_lookup(match.shape).rows(match))]


def _customer_hit(user_id: str, email: str | None, name: str, exact: bool) -> Hit:
    return Hit("customer", email or user_id, name or "customer", customer_url(user_id), bool(exact))


def _return_hit(match: Matcher, request, label: str, detail: str, exact: bool) -> Hit:
    """A return opens on the returns screen when the user may use it, else on its order."""
    if match.user.can("returns.view"):
        return Hit("return", label, detail, return_url(request.id), bool(exact))
    url = order_url(request.order_id) if request.order_id and match.user.can("orders.view") else None
    return Hit("return", label, detail, url, bool(exact))


def _return_detail(request) -> str:
    status = (request.status or "no status").replace("_", " ")
    return f"{status} · {(request.return_reason or '').replace('_', ' ')}".strip(" ·")


@lru_cache(maxsize=None)
def returns_lookup(shape: Shape) -> Lookup:
    """Return requests by RMA number, and return parcels (authorizations, which carry their
    own RMA copy and the tracking number) by either, each with its request: one statement,
    each row keyed by the request or the parcel it found. The parcels' lookups are joined
    to their requests once, over their union (a join inside each would cost PostgreSQL
    planning it once per lookup)."""
    request = (ReturnRequest.id, ReturnRequest.rma_number, ReturnRequest.status, ReturnRequest.return_reason,
               ReturnRequest.order_id, ReturnRequest.created_at)
    requests = limited(on((ReturnRequest.id.label("key"), false().label("parcel"), *request,
                           null().label("parcel_rma"), null().label("parcel_tracking")),
                          exact(ReturnRequest.rma_number) + prefixes(shape, ReturnRequest.rma_number)))
    found = union(limited(on((ReturnAuthorization.id.label("key"), ReturnAuthorization.return_request_id,
                              ReturnAuthorization.rma_number.label("parcel_rma"),
                              ReturnAuthorization.tracking_number.label("parcel_tracking")),
                             exact(ReturnAuthorization.rma_number, ReturnAuthorization.tracking_number)
                             + prefixes(shape, ReturnAuthorization.rma_number,
                                        ReturnAuthorization.tracking_number)))).subquery()
    parcels = select(found.c.key, true().label("parcel"), *request, found.c.parcel_rma, found.c.parcel_tracking,
                     found.c.exact).join_from(found, ReturnRequest, ReturnRequest.id == found.c.return_request_id)
    return Lookup(union_all(*(select(part.subquery()) for part in requests), parcels), ReturnRequest)


def find_returns(match: Matcher) -> list[Hit]:
    rows = returns_lookup(match.shape).rows(match, key=lambda row: (bool(row.parcel), row.key))
    hits = [_return_hit(match, r, r.rma_number or r.id, _return_detail(r), r.exact)
            for r in _newest_first([r for r in rows if not r.parcel])]
    for parcel in _by("parcel_rma")([r for r in rows if r.parcel]):
        if match.found(parcel.parcel_tracking):
            hits.append(_return_hit(match, parcel, parcel.parcel_tracking, f"return parcel of {parcel.rma_number}",
                                    parcel.exact))
        else:
            hits.append(_return_hit(match, parcel, parcel.parcel_rma or parcel.rma_number or parcel.id,
                                    f"{parcel.status or 'no status'}", parcel.exact))
    return hits


@lru_cache(maxsize=None)
def shipments_lookup(shape: Shape) -> Lookup:
    return lookup(Shipment, on((Shipment.id, Shipment.tracking_number, Shipment.status, Shipment.order_id),
                               exact(Shipment.tracking_number) + prefixes(shape, Shipment.tracking_number)))


def find_shipments(match: Matcher) -> list[Hit]:
    rows = _by("tracking_number")(shipments_lookup(match.shape).rows(match))
    return [Hit("shipment", s.tracking_number, f"shipment {(s.status or '').replace('_', ' ')}".strip(),
                order_url(s.order_id) if s.order_id else None, bool(s.exact)) for s in rows]


@lru_cache(maxsize=None)
def payments_lookup(shape: Shape) -> Lookup:
    return lookup(Payment, on((Payment.id, Payment.provider_payment_id, Payment.payment_provider, Payment.status,
                               Payment.amount, Payment.currency, Payment.order_id),
                              exact(Payment.provider_payment_id) + prefixes(shape, Payment.provider_payment_id)))


def find_payments(match: Matcher) -> list[Hit]:
    rows = _by("provider_payment_id")(payments_lookup(match.shape).rows(match))
    return [Hit("payment", p.provider_payment_id,
                f"{p.payment_provider or ''} {p.status or ''} · {p.amount or 0:,.2f} {p.currency or ''}".strip(),
                order_url(p.order_id) if p.order_id else None, bool(p.exact)) for p in rows]


@lru_cache(maxsize=None)
def coupons_lookup(shape: Shape) -> Lookup:
    return lookup(Coupon, on((Coupon.id, Coupon.code, Coupon.name, Coupon.is_active),
                             exact(Coupon.code) + prefixes(shape, Coupon.code)))


def find_coupons(match: Matcher) -> list[Hit]:
    rows = _by("code")(coupons_lookup(match.shape).rows(match))
    own = match.user.can("coupons.view")
    return [Hit("coupon", c.code, f"{c.name or ''}{'' if c.is_active else ' (inactive)'}".strip(),
                url_for("coupons.coupon_detail", key=coupon_key(c)) if own else orders_url(coupon=c.code), bool(c.exact))
            for c in rows]


@lru_cache(maxsize=None)
def products_lookup(shape: Shape) -> Lookup:
    """Products and their variants by SKU, in one statement."""
    def of(model, variant: bool) -> list[tuple]:
        return on((model.id, (true() if variant else false()).label("variant"), model.sku, model.name),
                  exact(model.sku) + prefixes(shape, model.sku))
    return lookup(Product, of(Product, False) + of(ProductVariant, True))


def find_products(match: Matcher) -> list[Hit]:
    rows = products_lookup(match.shape).rows(match, key=lambda row: (bool(row.variant), row.id))
    hits = [Hit("product", p.sku, p.name or "", orders_url(sku=p.sku), bool(p.exact))
            for p in _by("sku")([r for r in rows if not r.variant])]
    hits += [Hit("product", v.sku, f"variant {v.name or ''}".strip(), orders_url(sku=v.sku), bool(v.exact))
             for v in _by("sku")([r for r in rows if r.variant])]
    return hits


# (kind, database, its lookup, finder): each finder reads only its own database, through
# its one lookup.
FINDERS: tuple[tuple[str, str, Callable[[Shape], Lookup], Callable[[Matcher], list[Hit]]], ...] = (
    ("order", "order", orders_lookup, find_orders),
    ("customer", "user", profiles_lookup, find_customers_by_profile),
    ("customer", "auth", accounts_lookup, find_customers_by_account),
    ("return", "return", returns_lookup, find_returns),
    ("shipment", "shipping", shipments_lookup, find_shipments),
    ("payment", "payment", payments_lookup, find_payments),
    ("coupon", "discount", coupons_lookup, find_coupons),
    ("product", "product", products_lookup, find_products),
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
        # The customers list finds a term inside emails and names, from CONTAINED_MIN
        # characters on: a shorter one has no list to see.
        if more and kind in SEE_ALL and (kind != "customer" or len(self.term.strip()) >= CONTAINED_MIN):
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


def _fetch_ahead(match: Matcher, wanted: list[tuple[str, Lookup]]) -> None:
    """On PostgreSQL, every database's lookup read at the same time, each on a connection
    of its own (``read_apart``): a search's eight statements took their time one after the
    other (17 of its 25 ms at a million orders), and each database answers on its own.
    Each finder takes its rows, or what its read raised (a database down, a column not in
    the database), where it reads them. A database the request already holds a
    connection to (auth_db, from the session check) is read by its finder there."""
    for bind, found in wanted:
        ahead = read_apart(bind, found.statement, match.params)
        if ahead is not None:
            match.fetched[found] = ahead


def _run(term: str, user, down: list[str]) -> list[Hit]:
    match = Matcher(term, user)
    kinds = allowed_kinds(user)
    searched = [(kind, bind, lookup_of, finder) for kind, bind, lookup_of, finder in FINDERS
                if kind in kinds and bind not in down]
    _fetch_ahead(match, [(bind, lookup_of(match.shape)) for _, bind, lookup_of, _ in searched])
    hits: list[Hit] = []
    for kind, bind, _, finder in searched:
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
