"""Who may do what: one declared map from staff role to permissions.

Every route declares the permission it needs (``@permission_required``); menus are
built from the same map, so a user sees exactly the areas they may use.
"""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required

STAFF_ROLES = ("admin", "support", "warehouse", "marketing", "finance")

# permission -> what it allows
PERMISSIONS = {
    "dashboard.view": "see the dashboard and use global search",
    "orders.view": "list, open and export orders",
    "orders.manage": "change order status, cancel, add notes",
    "orders.ship": "mark orders shipped",
    "orders.slips": "print packing slips",
    "orders.invoices": "see and print invoices",
    "customers.view": "look customers up",
    "customers.manage": "lock/unlock customer accounts, revoke their sessions",
    "returns.view": "list, open and export returns",
    "returns.manage": "create, approve, reject, process and close returns",
    "returns.receive": "record return tracking and receive returned items",
    "refunds.view": "list, open and export refunds and payments",
    "refunds.issue": "issue and retry refunds",
    "inventory.view": "list, open and export products and their stock",
    "inventory.manage": "adjust stock",
    "inventory.bulk": "update stock in bulk from a CSV file",
    "inventory.alerts": "see back-in-stock alerts and notify the waiting customers",
    "catalog.prices": "change product prices",
    "catalog.status": "change a product's status and visibility",
    "catalog.reviews": "moderate product reviews and answer questions",
    "coupons.view": "see coupons and promotions, their usage reports and exports",
    "coupons.manage": "create, edit, generate, disable and delete coupons; create, edit and change the status of promotions",
    "templates.manage": "see and edit email templates, preview them, send tests and revert versions",
    # The staff sign-in emails carry one-time links to set a password: whoever shapes them
    # could route a link to themselves, so only those who may manage staff edit them.
    "templates.staff": "edit the staff sign-in email templates (invitation, password reset)",
    "notifications.view": "read the notification log and open each notification",
    "notifications.resend": "resend failed or bounced notifications",
    "activity.view": "read the staff activity (audit) log",
    "staff.manage": "manage staff roles, locks and MFA",
    "databases.view": "see database health",
    "data.browse": "browse every table in the data browser",
    "profile.manage": "sign out, see one's own profile, enrol in and turn off MFA",
}

# What every staff member may do, whatever their role.
EVERY_STAFF = frozenset({"profile.manage"})

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "support": EVERY_STAFF | frozenset({
        "dashboard.view", "orders.view", "orders.manage", "orders.ship", "orders.slips", "orders.invoices",
        "customers.view", "customers.manage", "returns.view", "returns.manage",
        "returns.receive", "refunds.view", "refunds.issue", "inventory.view", "coupons.view",
        "notifications.view", "notifications.resend",
    }),
    "warehouse": EVERY_STAFF | frozenset({
        "dashboard.view", "orders.view", "orders.ship", "orders.slips", "returns.view",
        "returns.receive", "inventory.view", "inventory.manage", "inventory.bulk", "inventory.alerts",
    }),
    "marketing": EVERY_STAFF | frozenset({"dashboard.view", "customers.view",
                                          "inventory.view", "catalog.prices", "catalog.status", "catalog.reviews",
                                          "coupons.view", "coupons.manage", "templates.manage", "notifications.view"}),
    "finance": EVERY_STAFF | frozenset({
        "dashboard.view", "orders.view", "orders.invoices", "customers.view", "returns.view",
        "refunds.view", "refunds.issue", "databases.view", "coupons.view",
    }),
}


def permissions_of(roles) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def forbidden_message(permission: str) -> str:
    return (f"Your role does not allow this: it needs permission to {PERMISSIONS[permission]}. "
            "Ask an admin if you need access.")


def permission_required(permission: str):
    """Sign-in required; then 403 unless the user's roles grant ``permission``."""
    if permission not in PERMISSIONS:
        raise KeyError(f"undeclared permission {permission!r}")

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.can(permission):
                abort(403, forbidden_message(permission))
            return view(*args, **kwargs)

        wrapped.permission = permission
        return wrapped

    return decorator
