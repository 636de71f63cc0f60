"""The orders list's rows, drawn in Python.

The orders list is the console's busiest page: fifty to five hundred rows a request,
each of ten cells. Drawn by Jinja, every cell was a handful of generator steps, escapes,
attribute look-ups through the environment and calls through the context, and the rows
were a third of the page's CPU (README, "Performance"). Here a row is one f-string: the
text that comes from a database is escaped (``html_text``), the markup around it is
constant, and the badges are formatting.py's, as everywhere else. The table around the
rows (headings, bulk bar, pager) stays in templates/orders/_table.html; the expected
HTML is checked against a row drawn by hand in tests/test_tables.py.
"""
from __future__ import annotations

from collections.abc import Callable, Container, Iterable

from markupsafe import Markup, escape

from console.formatting import html_text, money, payment_badge, reference, status_badge, when
from console.localtime import zone
from console.lookups import Missing

NOTHING = '<span class="small-muted">—</span>'


def unavailable(name: str) -> Markup:
    """What a cell says when the database that holds its data is down (also the
    ``unavailable`` macro of templates/_badges.html)."""
    return Markup(f'<span class="data-unavailable">{escape(name)} data unavailable</span>')


def order_rows(rows: Iterable, down: Container[str], detail_url: Callable[[str], str]) -> Markup:
    """The ``<tr>`` of each OrderRow (console/screens/orders.py); ``down``: the databases
    that could not be read; ``detail_url(key)``: an order page's address."""
    payment_down, shipping_down, return_down = "payment" in down, "shipping" in down, "return" in down
    customer_down = "user" in down and "auth" in down
    no_name = "customer data unavailable" if "user" in down else "—"
    store = zone()
    drawn = []
    for row in rows:
        order = row.order
        oid = html_text(order.id)
        key = order.order_number or order.id
        if isinstance(row.account, Missing):
            customer = reference(row.account)
        elif customer_down:
            customer = unavailable("customer")
        else:
            customer = (f'<div class="text-truncate">{html_text(row.name or no_name)}</div>'
                        f'<div class="small-muted text-truncate">{html_text(row.email or "no email")}</div>')
        if payment_down:
            payment = unavailable("payment")
        elif row.payment:
            payment = (f'{payment_badge(row.payment.status, row.progress)}'
                       f'<div class="small-muted">{html_text(row.payment.payment_provider)}</div>')
        else:
            payment = '<span class="small-muted">no payment</span>'
        if shipping_down:
            shipment = unavailable("shipping")
        elif row.shipment:
            carrier = row.carrier.name if row.carrier else "unknown carrier"
            shipment = f'{status_badge("shipment", row.shipment.status)}<div class="small-muted">{html_text(carrier)}</div>'
        else:
            shipment = '<span class="small-muted">not shipped</span>'
        if return_down:
            returned = unavailable("return")
        elif row.open_return:
            returned = (f'<span class="badge text-bg-warning text-nowrap" title="open return">'
                        f'{html_text(row.open_return.rma_number)}</span>'
                        f'<div class="small-muted">{html_text(str(row.open_return.status).replace("_", " "))}</div>')
        else:
            returned = NOTHING
        drawn.append(
            f'<tr data-order="{html_text(order.order_number)}">'
            f'<td class="pick"><input type="checkbox" class="form-check-input" name="order_id" value="{oid}" '
            f'id="pick-{oid}" data-sum="1" data-decimals="0" aria-labelledby="number-{oid}"></td>'
            f'<td class="nowrap"><a class="mono" id="number-{oid}" href="{html_text(detail_url(key))}">{html_text(key)}</a></td>'
            f'<td>{html_text(when(order.created_at, store=store))}</td>'
            f'<td class="customer-cell">{customer}</td>'
            f'<td class="num">{"—" if row.units is None else html_text(row.units)}</td>'
            f'<td class="num">{html_text(money(order.total_amount, order.currency))}</td>'
            f'<td>{status_badge("order", order.status)}</td>'
            f'<td>{payment}</td><td>{shipment}</td><td>{returned}</td></tr>\n')
    return Markup("".join(drawn))
