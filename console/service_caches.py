"""What the services keep in Redis, and which of those keys a change of each row makes stale.

Six of the ten services keep copies of their entities in a Redis of their own (each
service's REDIS_URL; keys carry no prefix) and serve them until they expire: orders and
payments 10 minutes, users 15 (with their roles 10, role lists 2 hours), profiles 15,
carts 10, products 15, categories 30. Each service's repositories drop the keys declared
below after their own writes. The console writes the same rows directly, so after its
commit it drops the same keys (console/cache_drops.py does it for every write, whatever
the workflow); otherwise the platform goes on serving the old state (an order cancelled
here read "pending" through the order service, a member locked here was served unlocked).

Declared once per table, as a function of a row: ``@cached(Model, *attributes)`` names
the attributes its keys are made of, and the function returns the row's ``key(...)``
(one key), ``prefix(...)`` (every key starting so: a service's ``<prefix>*`` pattern) and
``Pattern(...)`` (a Redis glob) items; an item with a missing part (None, or a column
the database lacks) is no key at all. A changed row owes the keys of its values before
and after the change (an email changed drops the old email's keys too); an inserted or
deleted row, those of its values. The same function serves the session's own writes and
the statements workflows send themselves (bulk stock, generated coupons).

Every other table is cached by no service, and a change to it owes nothing: shipments,
returns, coupons, promotions and notifications (their services have a Redis client but
keep no entity in it), and the tables of these six services not named here (variants,
inventory, order items, sessions, ...). A service's own deletes of some rows drop wider
patterns (every ``order:number:*``, every ``cart:userId:*``) only because they no longer
hold the values; the console has the row, so it drops that row's keys.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import event

from console.models.auth import User, UserRole
from console.models.cart import Cart, CartItem
from console.models.order import Order
from console.models.payment import Payment
from console.models.product import Category, Product
from console.models.user import UserProfile


class Key(str):
    """One key, dropped as it is."""


class Prefix(str):
    """Every key that starts with this (a service's ``<prefix>*``, its parts taken literally)."""


class Pattern(str):
    """Every key matching this Redis glob: ``*`` stands for any run of characters."""


def _joined(kind: type, parts) -> str | None:
    # A falsy part (None, "", a column the database lacks) means the row has no such key.
    if not all(parts):
        return None
    return kind("".join(str(part) for part in parts))


def key(*parts) -> Key | None:
    return _joined(Key, parts)


def prefix(*parts) -> Prefix | None:
    return _joined(Prefix, parts)


@dataclass
class Owed:
    """The keys one service's cache owes: exact keys, prefixes and glob patterns."""

    keys: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)

    def add(self, items: Iterable[str | None]) -> None:
        for item in items:
            if isinstance(item, Prefix):
                self.prefixes.add(str(item))
            elif isinstance(item, Pattern):
                self.patterns.add(str(item))
            elif item:
                self.keys.add(str(item))

    def update(self, other: Owed) -> None:
        self.keys |= other.keys
        self.prefixes |= other.prefixes
        self.patterns |= other.patterns

    def __bool__(self) -> bool:
        return bool(self.keys or self.prefixes or self.patterns)

    def __len__(self) -> int:
        return len(self.keys) + len(self.prefixes) + len(self.patterns)

    def as_json(self) -> dict:
        return {"keys": sorted(self.keys), "prefixes": sorted(self.prefixes), "patterns": sorted(self.patterns)}

    @classmethod
    def from_json(cls, data: dict) -> Owed:
        return cls(set(data.get("keys", ())), set(data.get("prefixes", ())), set(data.get("patterns", ())))


@dataclass(frozen=True)
class Cached:
    """A table some service caches: whose cache, what its keys are made of, and the keys."""

    model: type
    attributes: tuple[str, ...]
    keys_of: Callable[[object], Iterable[str | None]]

    @property
    def service(self) -> str:
        """The bind key of the service that owns the table, and so holds the cache."""
        return self.model.__bind_key__

    @property
    def table(self):
        return self.model.__table__

    def owed(self, rows: Iterable[object]) -> Owed:
        owed = Owed()
        for row in rows:
            owed.add(self.keys_of(row))
        return owed


CACHED: dict[type, Cached] = {}


def cached(model: type, *attributes: str):
    """Declare that ``model``'s service caches its rows, under the keys the decorated
    function returns for a row; ``attributes`` are what those keys are made of."""
    def declare(function):
        CACHED[model] = Cached(model, attributes, function)
        primary = {column.key for column in model.__table__.primary_key}
        for name in attributes:
            if name not in primary:
                # A key made of a column that changes needs the value it replaces: load it on
                # assignment even when the row was expired (SQLAlchemy otherwise skips that).
                event.listen(getattr(model, name), "set", _keep_old_value, active_history=True)
        return function
    return declare


def _keep_old_value(target, value, oldvalue, initiator) -> None:
    """Listens only so that SQLAlchemy keeps the value replaced (active_history)."""


def for_table(table) -> Cached | None:
    """The declaration of a table (a Table, or the annotated one of an ORM statement)."""
    return BY_TABLE.get(table._deannotate())


# --- the declarations -----------------------------------------------------------------------

@cached(Order, "id", "order_number", "user_id")
def _order(order):
    """The order service, after creating or updating an order: the order by id and by
    number, and the lists of the customer's orders."""
    return (key("order:id:", order.id), key("order:number:", order.order_number),
            prefix("order:userId:", order.user_id))


@cached(Payment, "id", "order_id", "user_id")
def _payment(payment):
    """The payment service, after creating or updating a payment: the payment by id and by
    order, and the lists of the customer's payments."""
    return (key("payment:id:", payment.id), key("payment:order:", payment.order_id),
            prefix("payment:userId:", payment.user_id))


@cached(User, "id", "email")
def _user(user):
    """The auth service, after updating a user: everything under its id and its email (the
    user, and by email with its roles). Its lock and failed-sign-in writes drop every
    ``user:email:*`` only because they hold no email; the console has it (old and new)."""
    return prefix("user:id:", user.id), prefix("user:email:", user.email)


# Users with their roles are cached by email (``user:email:<email>:roles``); a change of a
# role assignment holds only the user id, so the auth service drops all of them.
ROLES_BY_EMAIL = Pattern("user:email:*:roles")


@cached(UserRole, "user_id")
def _user_role(assignment):
    """The auth service, after assigning a role: the user's role list and every user cached
    with roles by email. (Its role removal drops nothing, leaving a revoked role served for
    up to two hours; the console drops the same keys for both.)"""
    return key("user:", assignment.user_id, ":roles"), ROLES_BY_EMAIL


@cached(UserProfile, "id", "user_id", "email")
def _profile(profile):
    """The user service, after updating a profile: everything under its user id, its email
    and its id."""
    return (prefix("profile:userId:", profile.user_id), prefix("profile:email:", profile.email),
            prefix("profile:id:", profile.id))


@cached(Cart, "id", "user_id", "session_id")
def _cart(cart):
    """The cart service, after updating a cart: everything under its id, its user and its
    session (a cart is cached with its items)."""
    return (prefix("cart:id:", cart.id), prefix("cart:userId:", cart.user_id),
            prefix("cart:sessionId:", cart.session_id))


@cached(CartItem, "cart_id")
def _cart_item(item):
    """The cart service, after adding, changing or removing an item: its cart's item lists."""
    return (prefix("cartItems:cartId:", item.cart_id),)


@cached(Product, "id")
def _product(product):
    """The product service, after updating or deleting a product: the product (its products
    row alone: stock, price, status and visibility) and every product list."""
    return key("product:", product.id), prefix("product:list:")


@cached(Category)
def _category(category):
    """The product service, after any category write: every category and category list."""
    return prefix("category:"), prefix("categories:")


BY_TABLE = {entry.table: entry for entry in CACHED.values()}


def caches_of(service: str) -> list[Cached]:
    """The tables ``service`` (a bind key) caches, in declaration order."""
    return [entry for entry in CACHED.values() if entry.service == service]
