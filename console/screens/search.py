"""Global search: one box, every kind of identifier staff are handed.

An order number, email, customer name or phone, RMA number, tracking number, coupon
code, SKU or payment provider id is looked up in the database that owns it: exact
matches first (case variants, so the unique indexes are used), and only when nothing
matches exactly, prefix matches, a few per kind. A kind with more matches than shown
links to its list filtered by the term ("see all"). A database that is down is skipped
and named. Links are built from endpoints (console/links.py).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import url_for
from sqlalchemy import func, or_, select

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
from console.models.user import UserProfile
from console.screens.coupons import coupon_key
from console.screens.customers import digits_only, staff_user_ids

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


@dataclass(frozen=True)
class Hit:
    kind: str
    label: str  # the identifier that matched
    detail: str
    url: str | None


class Matcher:
    """Column conditions for one search term: exact (any of its case variants) or prefix.
    Carries the searching user, whose permissions decide where a match links to."""

    def __init__(self, term: str, exact: bool, user):
        self.term = term
        self.variants = list(dict.fromkeys((term, term.upper(), term.lower())))
        self.exact = exact
        self.user = user

    def __call__(self, column):
        if self.exact:
            return column.in_(self.variants)
        return or_(*(column.like(like_escape(v) + "%", escape="\\") for v in self.variants))


def find_orders(match: Matcher) -> list[Hit]:
    conditions = [match(Order.order_number), match(Order.tracking_number)]
    if match.exact:
        conditions.append(Order.id.in_(match.variants))
    rows = db.session.scalars(select(Order).where(or_(*conditions)).order_by(Order.created_at.desc())
                              .limit(PER_KIND + 1))
    hits = []
    for order in rows:
        detail = f"{order.status or 'no status'} · {order.total_amount or 0:,.2f} {order.currency or ''}".strip()
        if order.tracking_number and _found(match, order.tracking_number):
            detail += f" · tracking {order.tracking_number}"
        hits.append(Hit("order", order.order_number or order.id, detail, order_url(order.id)))
    return hits


def _found(match: Matcher, value: str) -> list[str]:
    """``[value]`` when ``value`` itself matches the term, for saying what matched."""
    if match.exact:
        return [value] if value in match.variants else []
    return [value] if any(value.startswith(v) for v in match.variants) else []


def find_customers_by_profile(match: Matcher) -> list[Hit]:
    """By email; by full name ("Robert Thompson", exactly, else its start); by phone
    (the digits typed, at the end of the stored number, so "555 0100" finds "+1 555-0100")."""
    conditions = [match(UserProfile.email)]
    name = match.term.lower()
    if " " in name.strip() or not any(ch.isdigit() or ch in "@." for ch in name):
        full_name = func.lower(UserProfile.full_name)
        conditions.append(full_name == name if match.exact
                          else full_name.like(like_escape(name) + "%", escape="\\"))
    digits = re.sub(r"\D", "", match.term)
    if PHONE_TEXT.match(match.term) and len(digits) >= MIN_PHONE_DIGITS:
        conditions.append(digits_only(UserProfile.phone).like("%" + digits))
    rows = db.session.scalars(select(UserProfile).where(or_(*conditions), UserProfile.user_id.isnot(None))
                              .order_by(UserProfile.email).limit(PER_KIND + 1))
    return [_customer_hit(p.user_id, p.email, " · ".join(filter(None, (p.full_name, p.phone)))) for p in rows]



def find_customers_by_account(match: Matcher) -> list[Hit]:
    staff = set(staff_user_ids())
    rows = db.session.scalars(select(User).where(match(User.email)).order_by(User.email).limit(PER_KIND + 1))
    return [_customer_hit(u.id, u.email, "") for u in rows if u.id not in staff]


def _customer_hit(user_id: str, email: str | None, name: str) -> Hit:
    return Hit("customer", email or user_id, name or "customer", customer_url(user_id))


def _return_hit(match: Matcher, request: ReturnRequest, label: str, detail: str) -> Hit:
    """A return opens on the returns screen when the user may use it, else on its order."""
    if match.user.can("returns.view"):
        return Hit("return", label, detail, return_url(request.id))
    url = order_url(request.order_id) if request.order_id and match.user.can("orders.view") else None
    return Hit("return", label, detail, url)


def find_returns(match: Matcher) -> list[Hit]:
    hits = [_return_hit(match, r, r.rma_number or r.id,
                        f"{(r.status or 'no status').replace('_', ' ')} · {(r.return_reason or '').replace('_', ' ')}".strip(" ·"))
            for r in db.session.scalars(select(ReturnRequest).where(match(ReturnRequest.rma_number))
                                        .order_by(ReturnRequest.created_at.desc()).limit(PER_KIND + 1))]
    # Return parcels: the authorization carries its own RMA copy and the tracking number.
    authorizations = list(db.session.scalars(
        select(ReturnAuthorization).where(or_(match(ReturnAuthorization.rma_number),
                                              match(ReturnAuthorization.tracking_number))).limit(PER_KIND + 1)))
    requests = {r.id: r for r in db.session.scalars(select(ReturnRequest).where(
        ReturnRequest.id.in_([a.return_request_id for a in authorizations])))} if authorizations else {}
    for auth in authorizations:
        request = requests.get(auth.return_request_id)
        if request is None:
            continue
        if auth.tracking_number and _found(match, auth.tracking_number):
            hits.append(_return_hit(match, request, auth.tracking_number, f"return parcel of {request.rma_number}"))
        else:
            hits.append(_return_hit(match, request, auth.rma_number or request.rma_number or request.id,
                                    f"{request.status or 'no status'}"))
    return hits


def find_shipments(match: Matcher) -> list[Hit]:
    rows = db.session.scalars(select(Shipment).where(match(Shipment.tracking_number)).limit(PER_KIND + 1))
    return [Hit("shipment", s.tracking_number, f"shipment {(s.status or '').replace('_', ' ')}".strip(),
                order_url(s.order_id) if s.order_id else None) for s in rows]


def find_payments(match: Matcher) -> list[Hit]:
    rows = db.session.scalars(select(Payment).where(match(Payment.provider_payment_id)).limit(PER_KIND + 1))
    return [Hit("payment", p.provider_payment_id,
                f"{p.payment_provider or ''} {p.status or ''} · {p.amount or 0:,.2f} {p.currency or ''}".strip(),
                order_url(p.order_id) if p.order_id else None) for p in rows]


def find_coupons(match: Matcher) -> list[Hit]:
    rows = db.session.scalars(select(Coupon).where(match(Coupon.code)).order_by(Coupon.code).limit(PER_KIND + 1))
    own = match.user.can("coupons.view")
    return [Hit("coupon", c.code, f"{c.name or ''}{'' if c.is_active else ' (inactive)'}".strip(),
                url_for("coupons.coupon_detail", key=coupon_key(c)) if own else orders_url(coupon=c.code))
            for c in rows]


def find_products(match: Matcher) -> list[Hit]:
    products = list(db.session.scalars(select(Product).where(match(Product.sku)).order_by(Product.sku)
                                       .limit(PER_KIND + 1)))
    variants = list(db.session.scalars(select(ProductVariant).where(match(ProductVariant.sku))
                                       .order_by(ProductVariant.sku).limit(PER_KIND + 1)))
    hits = [Hit("product", p.sku, p.name or "", orders_url(sku=p.sku)) for p in products]
    hits += [Hit("product", v.sku, f"variant {v.name or ''}".strip(), orders_url(sku=v.sku)) for v in variants]
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


def _run(term: str, exact: bool, user, down: list[str]) -> list[Hit]:
    match = Matcher(term, exact, user)
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
    results.hits = _run(term, True, user, results.unavailable)
    if not results.hits and len(term) >= MIN_PREFIX:
        results.exact = False
        results.hits = _run(term, False, user, results.unavailable)
    return results
