"""Links into other screens, by path, so a page can link to a screen built separately
(orders, returns, refunds) and fall back gracefully while that screen is absent."""
from __future__ import annotations

from urllib.parse import quote, urlencode

from flask import current_app
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect


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


def template_helpers() -> dict:
    return {"order_url": order_url, "orders_url": orders_url, "list_url": list_url,
            "return_url": return_url, "refund_url": refund_url}
