"""Links into the console's screens, built from endpoints with ``url_for``.

An endpoint that does not exist raises BuildError when the link is built, so a typo
or a missing screen fails in the tests (tests/test_links.py renders every menu entry,
dashboard link and search result) instead of silently showing an unlinked figure.
Also the one check that a "next" address is a path on this site.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import current_app, request, url_for
from werkzeug.routing import UnicodeConverter

# Browsers drop tabs and line breaks anywhere in a URL and treat "\\" as "/", so
# "/\t/evil.example" or "/\\evil.example" would leave the site: any of them disqualifies.
_NOT_IN_LOCAL_PATH = re.compile(r"[\x00-\x20\x7f\\]")


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None. The one check for every
    "next" or "back to" value a request carries, before it becomes a redirect."""
    if not target or len(target) > 2048 or _NOT_IN_LOCAL_PATH.search(target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def url_each(endpoint: str, name: str):
    """``url_for(endpoint, **{name: value})`` for the many values of one page (a link on
    every row): the address around the value is built once by url_for, and each value is
    quoted as the rule's plain ``<name>`` (string) converter quotes it."""
    marker = "0url0each0"
    head, tail = url_for(endpoint, **{name: marker}).split(marker)
    converter = UnicodeConverter(current_app.url_map)
    return lambda value: f"{head}{converter.to_url(value)}{tail}"


def list_url(endpoint: str, **filters) -> str:
    """The list at ``endpoint``, filtered by the non-empty ``filters``."""
    return url_for(endpoint, **{k: v for k, v in filters.items() if v not in (None, "")})


def orders_url(**filters) -> str:
    return list_url("orders.list_orders", **filters)


def order_url(key: str) -> str:
    """The order page, by order number or id."""
    return url_for("orders.order_detail", key=key)


def return_url(return_id: str, order_id: str | None = None) -> str:
    return url_for("returns.return_detail", key=return_id)


def refund_url(refund_id: str, order_id: str | None) -> str | None:
    """A refund shows on its order's page (its refund panel); None without an order."""
    return order_url(order_id) if order_id else None


def customer_url(user_id: str) -> str:
    return url_for("customers.customer_detail", user_id=user_id)


def data_browser_url(bind_key: str, table: str, column: str, operation: str, value: str) -> str | None:
    """The data browser's list of ``bind_key.table`` filtered on ``column`` (``operation``
    as the browser names it, e.g. "in list"), or None when the browser lacks that view.
    For figures whose only list is the data browser (failed notifications)."""
    endpoint = f"data_{bind_key}_{table}"
    for admin in current_app.extensions.get("admin", []):
        for view in getattr(admin, "_views", []):
            if getattr(view, "endpoint", None) != endpoint:
                continue
            # The browser's filter arguments are numbered by the view's filter list.
            for index, flt in enumerate(view.get_filters() or []):
                if getattr(getattr(flt, "column", None), "key", None) == column and flt.operation() == operation:
                    return url_for(f"{endpoint}.index_view", **{f"flt0_{index}": value})
    return None


def template_helpers() -> dict:
    return {"order_url": order_url, "orders_url": orders_url, "list_url": list_url, "return_url": return_url,
            "refund_url": refund_url, "customer_url": customer_url, "data_browser_url": data_browser_url}


def password_link_maker(trust_request_host: bool = True):
    """``token -> absolute link`` to the set-password page, for invitation and reset
    emails: CONSOLE_PUBLIC_URL, else the address this request came to when that may be
    trusted (an admin's own request); None when neither."""
    base = current_app.config.get("PUBLIC_URL")
    if not base:
        if not trust_request_host:
            return None
        base = request.url_root.rstrip("/")
    return lambda token: base + url_for("auth.open_password_link", token=token)
