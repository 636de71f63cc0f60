"""The main menu: declared once, filtered by permission and by what exists."""
from __future__ import annotations

from flask import current_app

# (label, endpoint, permission); an entry shows only when its endpoint is registered
# and the user holds its permission.
MENU = (
    ("Dashboard", "dashboard.index", "dashboard.view"),
    ("Orders", "orders.list_orders", "orders.view"),
    ("Customers", "customers.list_customers", "customers.view"),
    ("Returns", "returns.list_returns", "returns.view"),
    ("Refunds", "refunds.list_refunds", "refunds.view"),
    ("Products", "products.list_products", "inventory.view"),
    ("Reviews", "reviews.queue", "catalog.reviews"),
    ("Coupons", "coupons.list_coupons", "coupons.view"),
    ("Promotions", "promotions.list_promotions", "coupons.view"),
    ("Templates", "email_templates.list_templates", "templates.manage"),
    ("Notifications", "notifications.list_notifications", "notifications.view"),
    ("Staff", "staff.list_staff", "staff.manage"),
    ("Activity", "activity.list_activity", "activity.view"),
    ("Databases", "system.databases", "databases.view"),
    ("Data browser", "data.index", "data.browse"),
)


def menu_for(user) -> list[tuple[str, str]]:
    if not getattr(user, "is_authenticated", False):
        return []
    registered = current_app.view_functions
    return [(label, endpoint) for label, endpoint, permission in MENU
            if endpoint in registered and user.can(permission)]
