"""Links into other screens, by path, so a page can link to a screen built separately
(orders, returns, refunds) and fall back gracefully while that screen is absent."""
from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlsplit

from flask import current_app, request, url_for
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect


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


def route_exists(path: str) -> bool:
    """True when some registered GET route answers ``path``."""
    adapter = current_app.url_map.bind("console.local")
    try:
        adapter.match(path, method="GET")
    except RequestRedirect:
        return True
    except (NotFound, MethodNotAllowed):
        return False
    return True


def order_url(order_id: str) -> str:
    return f"/orders/{quote(str(order_id), safe='')}"


def list_url(path: str, **filters) -> str | None:
    """``path?filters`` when that list exists, else None (the figure shows unlinked)."""
    if not route_exists(path):
        return None
    query = urlencode({k: v for k, v in filters.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def orders_url(**filters) -> str | None:
    return list_url("/orders", **filters)


def _detail_or_order(area: str, row_id: str, order_id: str | None) -> str | None:
    path = f"/{area}/{quote(str(row_id), safe='')}"
    if route_exists(path):
        return path
    return order_url(order_id) if order_id else None


def return_url(return_id: str, order_id: str | None) -> str | None:
    """The return's own page when the returns screen exists, else its order."""
    return _detail_or_order("returns", return_id, order_id)


def refund_url(refund_id: str, order_id: str | None) -> str | None:
    return _detail_or_order("refunds", refund_id, order_id)


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
    return {"order_url": order_url, "orders_url": orders_url, "list_url": list_url,
            "return_url": return_url, "refund_url": refund_url, "data_browser_url": data_browser_url}


def password_link_maker(trust_request_host: bool = True):
    """``token -> absolute link`` to the set-password page, for invitation and reset
    emails: CONSOLE_PUBLIC_URL, else the address this request came to when that may be
    trusted (an admin's own request); None when neither."""
    base = current_app.config.get("PUBLIC_URL")
    if not base:
        if not trust_request_host:
            return None
        base = request.url_root.rstrip("/")
    return lambda token: base + url_for("auth.set_password", token=token)
