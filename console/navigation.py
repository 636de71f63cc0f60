"""The main menu: declared once, filtered by permission."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, render_template, request
from markupsafe import Markup

# (label, endpoint, permission, group); an entry shows when the user holds its
# permission. Every endpoint exists (tests/test_links.py): a screen joins the menu with
# its blueprint. Entries of one group share a drop-down in the header when the user sees
# two or more of them (one alone is a plain link), so the header keeps to one line at a
# laptop's width whatever the role.
MENU = (
    ("Dashboard", "dashboard.index", "dashboard.view", None),
    ("Orders", "orders.list_orders", "orders.view", None),
    ("Customers", "customers.list_customers", "customers.view", None),
    ("Returns", "returns.list_returns", "returns.view", None),
    ("Refunds", "refunds.list_refunds", "refunds.view", None),
    ("Products", "products.list_products", "inventory.view", "Catalog"),
    ("Reviews", "reviews.queue", "catalog.reviews", "Catalog"),
    ("Coupons", "coupons.list_coupons", "coupons.view", "Marketing"),
    ("Promotions", "promotions.list_promotions", "coupons.view", "Marketing"),
    ("Templates", "email_templates.list_templates", "templates.manage", "Email"),
    ("Notifications", "notifications.list_notifications", "notifications.view", "Email"),
    ("Staff", "staff.list_staff", "staff.manage", "Admin"),
    ("Activity", "activity.list_activity", "activity.view", "Admin"),
    ("Databases", "system.databases", "databases.view", "Admin"),
    ("Data browser", "data.index", "data.browse", "Admin"),
)


@dataclass(frozen=True)
class MenuGroup:
    label: str
    entries: tuple[tuple[str, str], ...]  # (label, endpoint)

    @property
    def blueprints(self) -> frozenset[str]:
        return frozenset(endpoint.split(".")[0] for _, endpoint in self.entries)


def _visible(user) -> list[tuple[str, str, str | None]]:
    if not getattr(user, "is_authenticated", False):
        return []
    return [(label, endpoint, group) for label, endpoint, permission, group in MENU if user.can(permission)]


def menu_for(user) -> list[tuple[str, str]]:
    """Every menu entry ``user`` may open, in menu order: (label, endpoint)."""
    return [(label, endpoint) for label, endpoint, _ in _visible(user)]


def menu_sections_for(user) -> list[tuple[str, str] | MenuGroup]:
    """The header's items: a plain (label, endpoint) link, or a MenuGroup drop-down for
    a group of which the user sees two entries or more."""
    visible = _visible(user)
    counts: dict[str, int] = {}
    for _, _, group in visible:
        if group:
            counts[group] = counts.get(group, 0) + 1
    sections: list = []
    seen: set[str] = set()
    for label, endpoint, group in visible:
        if not group or counts[group] < 2:
            sections.append((label, endpoint))
        elif group not in seen:
            seen.add(group)
            sections.append(MenuGroup(group, tuple((lbl, ep) for lbl, ep, g in visible if g == group)))
    return sections


# Menus drawn, per app: (permissions, section, app root) -> HTML. A handful of roles and
# sections, so a few hundred entries at most; the bound only guards against surprises.
MENUS_KEPT = 1024


def main_menu(user, here: str) -> Markup:
    """The header's menu for ``user`` on a page of the blueprint ``here``: drawn from
    templates/_menu.html once per set of permissions, section and app root, then kept.
    Every page drew it anew (thirty-odd url_for and a loop of Jinja a request); what it
    shows depends on nothing else."""
    menus = current_app.extensions.setdefault("main_menus", {})
    key = (getattr(user, "permissions", None), here, request.script_root)
    menu = menus.get(key)
    if menu is None:
        menu = Markup(render_template("_menu.html", sections=menu_sections_for(user), here=here))
        if len(menus) < MENUS_KEPT:
            menus[key] = menu
    return menu
