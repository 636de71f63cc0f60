"""One module per service database; each model class carries its bind key.

The models follow the services' Prisma schemas: table names are the schemas' ``@@map``
names, and each column carries the name the database has (``"orderNumber"`` in most
services, snake_case where a schema ``@map``s it). The Python side stays snake_case: a
column whose name differs is keyed by its attribute (``mapped_column("orderNumber", ...,
key="order_number")``), so ``Order.order_number``, ``Order.__table__.c.order_number``, a
column named in ``Index(...)`` and the rows of a select all read the attribute's name.
Code that writes SQL by hand takes the database's name from the column
(``Order.__table__.c.order_number.name``), never from a literal.
"""
from __future__ import annotations

from types import ModuleType

from console.models import (
    auth, cart, discount, notification, order, payment, product, returns, shipping, user,
)

# bind key -> module holding that database's models
MODULES: dict[str, ModuleType] = {
    "auth": auth, "user": user, "product": product, "cart": cart, "order": order,
    "payment": payment, "shipping": shipping, "return": returns, "discount": discount,
    "notification": notification,
}


def models_of(bind_key: str) -> list[type]:
    """The mapped classes of one database, in declaration order."""
    module = MODULES[bind_key]
    return [
        obj for obj in vars(module).values()
        if isinstance(obj, type) and getattr(obj, "__tablename__", None)
        and obj.__module__ == module.__name__
    ]


def all_models() -> list[type]:
    return [model for key in MODULES for model in models_of(key)]


def model_for_table(bind_key: str, table_name: str) -> type:
    for model in models_of(bind_key):
        if model.__tablename__ == table_name:
            return model
    raise KeyError(f"{bind_key}.{table_name}")
