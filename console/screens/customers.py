"""Customers: the searchable list and the panels of the customer page.

A customer is an auth_db user who holds no staff role. The list is driven by
user_db.user_profiles, where all three search fields live (email, denormalised from
auth; name; phone); account state (auth_db) and order counts (order_db) are joined in
per page, one query each, so a page costs the same number of queries at any size.

The customer page is a shell plus one panel per concern. Each panel loads on its own
(one request each), so a database that is down or slow only empties its own panels.
A panel names the database it reads first; a lookup into a second database (order
numbers, shipments, the payment service's cards) degrades inside the panel and is
listed in ``unavailable``.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from console.exports import CopyExport, Side, iso
from console.extensions import db
from console.filters import QueryFilters, contained_text, like_escape
from console.lookups import DatabaseUnavailable, Lookups, database, fetch_in, referrers
from console.models.auth import Device, LoginHistory, RefreshToken, Role, User, UserRole, UserSession
from console.models.cart import Cart, CartItem
from console.models.discount import Coupon, CouponUsage
from console.models.notification import Notification
from console.models.order import Order
from console.models.payment import Payment, PaymentMethod, PaymentRefund
from console.models.product import ProductQuestion, ProductReview
from console.models.returns import ReturnRequest
from console.models.types import utcnow
from console.models.user import (UserAddress, UserPaymentMethod, UserProfile, UserWishlistItem, full_name_expression,
                                 phone_digits_expression)
from console.permissions import STAFF_ROLES
from console.screens.lists import UNAVAILABLE, ListScreen, Sort, unless_down
from console.staff import is_locked, locked_until_unlocked, staff_roles_of
from console.workflows import refunds as refund_flow

# How many rows a panel shows; each panel links to the full list where one exists.
PANEL_ROWS = 20
# Auth users whose email matches a search, at most (a search term that broad is
# narrowed by the profile fields anyway).
AUTH_EMAIL_MATCHES = 500
PHONE_CHARS = re.compile(r"[\d\s()+.\-]+")


# --- who is staff ----------------------------------------------------------------------

def staff_user_ids() -> list[str]:
    """Ids of auth users holding a staff role: a handful, so lists exclude them by id.
    The staff roles' ids are read first and then given as values: PostgreSQL then knows
    from its statistics that few user_roles rows hold them and reads those through the
    role_id index (joined to roles, it reads every customer's role row)."""
    with database("auth"):
        role_ids = list(db.session.scalars(select(Role.id).where(Role.name.in_(STAFF_ROLES))))
        if not role_ids:
            return []
        return list(db.session.scalars(select(UserRole.user_id).where(UserRole.role_id.in_(role_ids)).distinct()))


def is_staff(user_id: str) -> bool:
    with database("auth"):
        return bool(staff_roles_of(user_id))


# --- the list ------------------------------------------------------------------------------

def search_condition(q: str, auth_ids: list[str]):
    """Profiles whose email, name or phone contains ``q`` (any case), or whose auth
    user's email does (``auth_ids``). Each condition is the expression of a trigram index
    (console/models/user.py), so PostgreSQL answers the OR from indexes, not a scan."""
    term = q.strip().lower()
    pattern = f"%{like_escape(term)}%"
    conditions = [
        func.lower(UserProfile.email).like(pattern, escape="\\"),
        full_name_expression().like(pattern, escape="\\"),
    ]
    digits = re.sub(r"\D", "", term)
    if len(digits) >= 3 and PHONE_CHARS.fullmatch(term):
        conditions.append(phone_digits_expression().like(f"%{digits}%"))
    if auth_ids:
        conditions.append(UserProfile.user_id.in_(auth_ids))
    return or_(*conditions)


def _auth_ids_by_email(q: str) -> list[str]:
    pattern = f"%{like_escape(q.strip().lower())}%"
    with database("auth"):
        return list(db.session.scalars(
            select(User.id).where(func.lower(User.email).like(pattern, escape="\\")).limit(AUTH_EMAIL_MATCHES)))


@dataclass
class CustomerFilters(QueryFilters):
    q: str = ""  # part of the email, name or phone

    FIELDS = ("q",)

    @classmethod
    def parse(cls, args) -> tuple["CustomerFilters", list[str]]:
        errors: list[str] = []
        return cls(q=contained_text(args, "q", "the customer's email, name or phone", errors)), errors


def customers_query(filters: CustomerFilters, lookups: Lookups):
    """Profiles of non-staff users matching the filters. Without auth_db the list still
    shows, unfiltered by staff (``lookups`` notes it down)."""
    staff_ids = lookups.run("auth", staff_user_ids, [])
    auth_ids = lookups.run("auth", lambda: _auth_ids_by_email(filters.q), []) if filters.q else []
    stmt = select(UserProfile)
    if staff_ids:
        stmt = stmt.where(or_(UserProfile.user_id.is_(None), UserProfile.user_id.not_in(staff_ids)))
    if filters.q:
        stmt = stmt.where(search_condition(filters.q, auth_ids))
    return stmt


@dataclass
class CustomerRow:
    profile: UserProfile
    account: User | None  # None: no auth user, or auth_db unavailable
    orders: int | None  # None: order_db unavailable

    @property
    def user_id(self) -> str | None:
        return self.profile.user_id

    @property
    def name(self) -> str:
        return self.profile.full_name if self.profile is not None else ""

    @property
    def email(self) -> str | None:
        return self.profile.email or (self.account.email if self.account else None)

    @property
    def locked(self) -> bool:
        return is_locked(self.account)


def order_counts(user_ids: list[str]) -> dict[str, int]:
    """{user id: number of orders}: one grouped query on order_db."""
    if not user_ids:
        return {}
    with database("order"):
        return dict(db.session.execute(
            select(Order.user_id, func.count()).where(Order.user_id.in_(user_ids)).group_by(Order.user_id)).all())


def decorate(profiles: list[UserProfile], lookups: Lookups) -> list[CustomerRow]:
    """Account state and order counts for a batch of profiles: one query per database."""
    user_ids = [p.user_id for p in profiles if p.user_id]
    accounts = lookups.run("auth", lambda: {u.id: u for u in fetch_in("auth", "users", "id", user_ids)}, {})
    counts = lookups.run("order", lambda: order_counts(user_ids), None)
    return [CustomerRow(p, accounts.get(p.user_id),
                        None if counts is None else counts.get(p.user_id, 0)) for p in profiles]


def _export_row(row: CustomerRow, lookups: Lookups) -> list:
    account = row.account
    if lookups.down("auth"):
        state = [UNAVAILABLE] * 4
    elif account is None:
        state = [None] * 4
    else:
        state = [account.is_active, account.email_verified, account.locked_until, account.mfa_enabled]
    return [row.user_id, row.profile.first_name, row.profile.last_name, row.email, row.profile.phone,
            *state, unless_down(lookups, "order", row.orders), row.profile.created_at]


# --- the export through COPY (console/exports.py, "the COPY path"): same cells as _export_row ---

_PROFILES, _USERS, _ORDERS = UserProfile.__table__.c, User.__table__.c, Order.__table__.c
_EXPORT_COLUMNS = (_PROFILES.user_id, _PROFILES.first_name, _PROFILES.last_name, _PROFILES.email, _PROFILES.phone,
                   _PROFILES.created_at)


def _by_user(batch) -> list:
    return [row[0] for row in batch]


_EXPORT_SIDES = {
    "accounts": Side("auth", _by_user, lambda ids, among: select(
        _USERS.id, _USERS.email, _USERS.is_active, _USERS.email_verified, _USERS.locked_until, _USERS.mfa_enabled)
        .where(among(_USERS.id, ids))),
    "orders": Side("order", _by_user, lambda ids, among: select(_ORDERS.user_id, func.count())
                   .where(among(_ORDERS.user_id, ids)).group_by(_ORDERS.user_id)),
}


def _export_cells(batch, found, lookups: Lookups, _) -> list[list]:
    accounts, counts = found["accounts"], found["orders"]
    no_state = [UNAVAILABLE] * 4 if lookups.down("auth") else [None] * 4
    order_down = lookups.down("order")
    rows = []
    for user_id, first_name, last_name, email, phone, joined in batch:
        account = accounts.get(user_id)
        if account:
            _, account_email, active, verified, locked_until, mfa = account[0]
            state = [active, verified, iso(locked_until), mfa]
        else:
            account_email, state = None, no_state
        orders = counts.get(user_id)
        rows.append([user_id, first_name, last_name, email or account_email, phone, *state,
                     UNAVAILABLE if order_down else orders[0][1] if orders else 0, joined])
    return rows


CUSTOMERS = ListScreen(
    name="customers", noun="customers", home="user", export_endpoint="export_customers",
    filters=CustomerFilters, statement=customers_query, id_column=UserProfile.id,
    sorts=(Sort("joined", UserProfile.created_at, "Joined"),
           Sort("name", UserProfile.last_name, "Name", descending=False),
           Sort("email", UserProfile.email, "Email", descending=False)),
    default_sort="-joined", decorate=decorate,
    export_header=("user_id", "first_name", "last_name", "email", "phone", "active", "email_verified",
                   "locked_until", "mfa_enabled", "orders", "joined"),
    export_row=_export_row, export_binds=("auth", "order"),
    export_fast=CopyExport(_EXPORT_COLUMNS, _export_cells, _EXPORT_SIDES),
    down_notes={"auth": "account state is not shown and staff accounts cannot be told apart.",
                "order": "order counts are not shown."},
)


# --- the customer page -----------------------------------------------------------------------

@dataclass
class CustomerSummary:
    """What the page header needs: from user_db and auth_db, either may be down."""

    user_id: str
    profile: UserProfile | None = None
    account: User | None = None
    staff: bool = False
    unavailable: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        # Unknown only when both databases answered and neither knows the id.
        return bool(self.profile or self.account or self.unavailable)

    @property
    def name(self) -> str:
        return self.profile.full_name if self.profile is not None else ""

    @property
    def email(self) -> str | None:
        return (self.account.email if self.account else None) or (self.profile.email if self.profile else None)


def summary(user_id: str) -> CustomerSummary:
    result = CustomerSummary(user_id)
    try:
        with database("auth"):
            result.account = db.session.get(User, user_id)
        result.staff = result.account is not None and is_staff(user_id)
    except DatabaseUnavailable:
        result.unavailable.append("auth")
    try:
        with database("user"):
            result.profile = db.session.scalar(select(UserProfile).where(UserProfile.user_id == user_id))
    except DatabaseUnavailable:
        result.unavailable.append("user")
    return result


def _optional(unavailable: list[str], bind: str, load: Callable, default):
    """A second database's part of a panel: its default, and the database named, when down."""
    try:
        return load()
    except DatabaseUnavailable:
        unavailable.append(bind)
        return default


def _order_numbers(order_ids, unavailable: list[str]) -> dict[str, str]:
    def load():
        return {row.id: row.order_number for row in fetch_in("order", "orders", "id", order_ids)}
    return _optional(unavailable, "order", load, {})


def detach(rows: list) -> list:
    """Rows shown read-only leave the session: if a later lookup finds another database
    down, its rollback would otherwise expire them and reload each one."""
    for row in rows:
        db.session.expunge(row)
    return rows


def _newest(stmt, column, limit: int = PANEL_ROWS) -> list:
    return detach(list(db.session.scalars(stmt.order_by(column.desc()).limit(limit))))


def panel_profile(user_id: str) -> dict:
    with database("user"):
        profile = db.session.scalar(select(UserProfile).where(UserProfile.user_id == user_id))
    return {"profile": profile}


def panel_account(user_id: str) -> dict:
    with database("auth"):
        account = db.session.get(User, user_id)
        roles = sorted(db.session.scalars(
            select(Role.name).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == user_id)))
    return {"account": account, "roles": roles, "staff": any(r in STAFF_ROLES for r in roles),
            "locked": is_locked(account), "locked_forever": locked_until_unlocked(account)}


def panel_signins(user_id: str) -> dict:
    with database("auth"):
        history = _newest(select(LoginHistory).where(LoginHistory.user_id == user_id), LoginHistory.created_at, 10)
        devices = _newest(select(Device).where(Device.user_id == user_id), Device.last_used_at, 10)
        known = {d.id: d for d in devices}
        extra = [h.device_id for h in history if h.device_id and h.device_id not in known]
        known.update({d.id: d for d in fetch_in("auth", "devices", "id", extra)})
    return {"history": history, "devices": devices, "device_names": {k: d.device_name for k, d in known.items()}}


def panel_sessions(user_id: str) -> dict:
    now = utcnow()
    with database("auth"):
        sessions = _newest(select(UserSession).where(UserSession.user_id == user_id, UserSession.is_active.is_(True)),
                           UserSession.created_at)
        devices = {d.id: d.device_name for d in fetch_in("auth", "devices", "id", [s.device_id for s in sessions])}
        live_tokens = db.session.scalar(select(func.count()).select_from(RefreshToken).where(
            RefreshToken.user_id == user_id, or_(RefreshToken.revoked.is_(None), RefreshToken.revoked.is_(False)),
            or_(RefreshToken.expires_at.is_(None), RefreshToken.expires_at > now)))
    return {"sessions": sessions, "device_names": devices, "live_tokens": live_tokens, "now": now}


def panel_addresses(user_id: str) -> dict:
    with database("user"):
        addresses = list(db.session.scalars(select(UserAddress).where(UserAddress.user_id == user_id)
                                            .order_by(UserAddress.is_default.desc(), UserAddress.created_at.desc())
                                            .limit(PANEL_ROWS)))
    return {"addresses": addresses}


@dataclass(frozen=True)
class MaskedCard:
    """A payment method as staff may see it: never the provider token."""

    source: str
    type: str | None
    card_type: str | None
    last4: str | None
    provider: str | None = None
    expiry: str | None = None
    is_default: bool | None = None


def _masked_user_methods(user_id: str) -> list[MaskedCard]:
    with database("user"):
        rows = db.session.scalars(select(UserPaymentMethod).where(UserPaymentMethod.user_id == user_id)
                                  .order_by(UserPaymentMethod.created_at.desc()).limit(PANEL_ROWS))
        return [MaskedCard("saved in profile", r.type, r.card_type, r.last4, is_default=r.is_default) for r in rows]


def _masked_payment_methods(user_id: str) -> list[MaskedCard]:
    with database("payment"):
        rows = db.session.scalars(select(PaymentMethod).where(PaymentMethod.user_id == user_id)
                                  .order_by(PaymentMethod.created_at.desc()).limit(PANEL_ROWS))
        return [MaskedCard("payment service", r.type, r.card_type, r.last4, r.provider,
                           f"{r.expiry_month}/{r.expiry_year}" if r.expiry_month and r.expiry_year else None,
                           r.is_default) for r in rows]


def panel_payment_methods(user_id: str) -> dict:
    unavailable: list[str] = []
    cards = _masked_user_methods(user_id)
    cards += _optional(unavailable, "payment", lambda: _masked_payment_methods(user_id), [])
    return {"cards": cards, "unavailable": unavailable}


def panel_orders(user_id: str) -> dict:
    unavailable: list[str] = []
    with database("order"):
        orders = _newest(select(Order).where(Order.user_id == user_id), Order.created_at)
        total = db.session.scalar(select(func.count()).select_from(Order).where(Order.user_id == user_id))
    shipments = _optional(unavailable, "shipping",
                          lambda: referrers("shipping.shipments.order_id", [o.id for o in orders]), {})
    # The orders list filters customers by email: link to it when the email is known.
    email = _optional(unavailable, "user", lambda: _profile_email(user_id), None) if orders else None
    # {order id: (refunded, captured)} for the "partially refunded" badges; empty when payment_db is down.
    progress = refund_flow.refund_progress([o.id for o in orders]) if orders else {}
    return {"orders": orders, "total": total, "shipments": shipments, "email": email, "progress": progress,
            "unavailable": unavailable}


def _profile_email(user_id: str) -> str | None:
    with database("user"):
        return db.session.scalar(select(UserProfile.email).where(UserProfile.user_id == user_id))


def panel_returns(user_id: str) -> dict:
    unavailable: list[str] = []
    with database("return"):
        returns = _newest(select(ReturnRequest).where(ReturnRequest.user_id == user_id), ReturnRequest.created_at)
    numbers = _order_numbers([r.order_id for r in returns], unavailable)
    return {"returns": returns, "order_numbers": numbers, "unavailable": unavailable}


def panel_refunds(user_id: str) -> dict:
    unavailable: list[str] = []
    with database("payment"):
        payments = select(Payment.id).where(Payment.user_id == user_id)
        refunds = _newest(select(PaymentRefund).where(PaymentRefund.payment_id.in_(payments)),
                          PaymentRefund.created_at)
    numbers = _order_numbers([r.order_id for r in refunds], unavailable)
    return {"refunds": refunds, "order_numbers": numbers, "unavailable": unavailable}


def panel_cart(user_id: str) -> dict:
    with database("cart"):
        carts = _newest(select(Cart).where(Cart.user_id == user_id), Cart.updated_at, 5)
        items = fetch_in("cart", "cart_items", "cart_id", [c.id for c in carts])
    by_cart: dict[str, list[CartItem]] = {}
    for item in items:
        by_cart.setdefault(item.cart_id, []).append(item)
    return {"carts": carts, "items": by_cart}


def panel_wishlist(user_id: str) -> dict:
    with database("user"):
        items = _newest(select(UserWishlistItem).where(UserWishlistItem.user_id == user_id),
                        UserWishlistItem.created_at)
    return {"items": items}


def panel_reviews(user_id: str) -> dict:
    with database("product"):
        reviews = _newest(select(ProductReview).where(ProductReview.user_id == user_id), ProductReview.created_at)
        questions = _newest(select(ProductQuestion).where(ProductQuestion.user_id == user_id),
                            ProductQuestion.created_at)
        products = {p.id: p for p in fetch_in("product", "products", "id",
                                              [r.product_id for r in [*reviews, *questions]])}
    return {"reviews": reviews, "questions": questions, "products": products}


def panel_coupons(user_id: str) -> dict:
    unavailable: list[str] = []
    with database("discount"):
        usage = _newest(select(CouponUsage).where(CouponUsage.user_id == user_id), CouponUsage.used_at)
        coupons: dict[str, Coupon] = {c.id: c for c in fetch_in("discount", "coupons", "id",
                                                                  [u.coupon_id for u in usage])}
    numbers = _order_numbers([u.order_id for u in usage], unavailable)
    return {"usage": usage, "coupons": coupons, "order_numbers": numbers, "unavailable": unavailable}


def panel_notifications(user_id: str) -> dict:
    with database("notification"):
        notifications = _newest(select(Notification).where(Notification.user_id == user_id),
                                Notification.created_at)
    return {"notifications": notifications}


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    bind: str  # the database the panel reads; named when it is down
    load: Callable[[str], dict]


PANELS: dict[str, Panel] = {panel.key: panel for panel in (
    Panel("account", "Account", "auth", panel_account),
    Panel("profile", "Profile", "user", panel_profile),
    Panel("signins", "Recent sign-ins and devices", "auth", panel_signins),
    Panel("sessions", "Active sessions", "auth", panel_sessions),
    Panel("orders", "Orders", "order", panel_orders),
    Panel("returns", "Returns", "return", panel_returns),
    Panel("refunds", "Refunds", "payment", panel_refunds),
    Panel("payment_methods", "Payment methods", "user", panel_payment_methods),
    Panel("addresses", "Addresses", "user", panel_addresses),
    Panel("cart", "Cart", "cart", panel_cart),
    Panel("wishlist", "Wishlist", "user", panel_wishlist),
    Panel("reviews", "Reviews and questions", "product", panel_reviews),
    Panel("coupons", "Coupon usage", "discount", panel_coupons),
    Panel("notifications", "Notifications", "notification", panel_notifications),
)}


@dataclass
class PanelResult:
    panel: Panel
    data: dict = field(default_factory=dict)
    down: str | None = None  # the panel's database, when it could not be read

    @property
    def unavailable(self) -> list[str]:
        return self.data.get("unavailable", [])


def load_panel(key: str, user_id: str) -> PanelResult:
    """A panel's data; a database that is down becomes ``down``, never an exception."""
    panel = PANELS[key]
    try:
        return PanelResult(panel, panel.load(user_id))
    except DatabaseUnavailable as exc:
        return PanelResult(panel, down=exc.bind_key)
