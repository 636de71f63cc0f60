"""The orders list's rows drawn in Python (console/tables.py) are the HTML its Jinja
template drew, escaping included, in every state a cell can be in."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
from flask import url_for

from console.lookups import Missing
from console.screens.orders import OrderRow
from console.tables import order_rows

# The row as templates/orders/_table.html drew it in Jinja before console/tables.py: the
# reference drawing. Whitespace between tags aside, the Python rows must be the same.
JINJA_ROWS = """{% from "_badges.html" import unavailable %}
    {% set detail_url = url_each('orders.order_detail', 'key') %}
    {% set payment_down, shipping_down, return_down = 'payment' in down, 'shipping' in down, 'return' in down %}
    {% set customer_down = 'user' in down and 'auth' in down %}
    {% for row in result.rows %}{% set o = row.order %}{% set oid = o.id %}
      <tr data-order="{{ o.order_number }}">
        <td class="pick"><input type="checkbox" class="form-check-input" name="order_id" value="{{ oid }}" id="pick-{{ oid }}" data-sum="1" data-decimals="0" aria-labelledby="number-{{ oid }}"></td>
        <td class="nowrap"><a class="mono" id="number-{{ oid }}" href="{{ detail_url(o.order_number or oid) }}">{{ o.order_number or oid }}</a></td>
        <td>{{ o.created_at|when }}</td>
        <td class="customer-cell">
          {% if row.account is missing %}{{ row.account|reference }}
          {% elif customer_down %}{{ unavailable("customer") }}
          {% else %}
            <div class="text-truncate">{{ row.name or ("customer data unavailable" if 'user' in down else "—") }}</div>
            <div class="small-muted text-truncate">{{ row.email or "no email" }}</div>
          {% endif %}
        </td>
        <td class="num">{{ row.units if row.units is not none else "—" }}</td>
        <td class="num">{{ o.total_amount|money(o.currency) }}</td>
        <td>{{ status_badge("order", o.status) }}</td>
        <td>
          {% if payment_down %}{{ unavailable("payment") }}
          {% elif row.payment %}{{ payment_badge(row.payment.status, row.progress) }}<div class="small-muted">{{ row.payment.payment_provider }}</div>
          {% else %}<span class="small-muted">no payment</span>{% endif %}
        </td>
        <td>
          {% if shipping_down %}{{ unavailable("shipping") }}
          {% elif row.shipment %}{{ status_badge("shipment", row.shipment.status) }}<div class="small-muted">{{ row.carrier.name if row.carrier else "unknown carrier" }}</div>
          {% else %}<span class="small-muted">not shipped</span>{% endif %}
        </td>
        <td>
          {% if return_down %}{{ unavailable("return") }}
          {% elif row.open_return %}<span class="badge text-bg-warning text-nowrap" title="open return">{{ row.open_return.rma_number }}</span>
            <div class="small-muted">{{ row.open_return.status|replace("_", " ") }}</div>
          {% else %}<span class="small-muted">—</span>{% endif %}
        </td>
      </tr>
    {% endfor %}
"""

HOSTILE = '<script>alert("x")</script> & \'quotes\''


def order(**fields):
    base = dict(id="ord-1", order_number="ORD-20261207-00001", created_at=datetime(2026, 12, 7, 9, 30, tzinfo=timezone.utc),
                total_amount=Decimal("163.76"), currency="EUR", status="processing")
    return SimpleNamespace(**{**base, **fields})


def rows():
    profile = SimpleNamespace(first_name=HOSTILE, last_name="Ng", email="copy@example.com")
    payment = SimpleNamespace(status="succeeded", payment_provider=HOSTILE)
    shipment = SimpleNamespace(status="in_transit")
    opened = SimpleNamespace(rma_number="RMA-<1>", status="in_transit")
    return [
        OrderRow(order=order(), units=3, account=SimpleNamespace(email="a&b@example.com"), profile=profile,
                 payment=payment, shipment=shipment, carrier=SimpleNamespace(name=HOSTILE), open_return=opened,
                 progress=(Decimal("24.56"), Decimal("163.76"))),
        OrderRow(order=order(id="ord-2", order_number=None, total_amount=None, status=None, created_at=None),
                 units=None, account=Missing("user-gone"), profile=None, payment=None, shipment=shipment,
                 carrier=None, open_return=None),
        OrderRow(order=order(id='ord-"3"', order_number=HOSTILE), units=0, account=None, profile=None,
                 payment=SimpleNamespace(status="failed", payment_provider="stripe"), shipment=None, carrier=None,
                 open_return=None),
    ]


def squeeze(html: str) -> str:
    return re.sub(r">\s+<", "><", str(html)).strip()


@pytest.mark.parametrize("down", [set(), {"payment"}, {"shipping"}, {"return"}, {"user"}, {"auth"},
                                  {"user", "auth"}, {"payment", "shipping", "return", "user", "auth"}])
def test_python_rows_are_the_templates_rows(app, down):
    with app.test_request_context():
        detail = app.jinja_env.globals["url_each"]("orders.order_detail", "key")
        drawn = order_rows(rows(), down, detail)
        expected = app.jinja_env.from_string(JINJA_ROWS).render(result=SimpleNamespace(rows=rows()), down=down)
        assert squeeze(drawn) == squeeze(expected)
        assert url_for("orders.order_detail", key="ORD-20261207-00001") in drawn


def test_what_comes_from_a_database_is_escaped(app):
    with app.test_request_context():
        drawn = order_rows(rows(), set(), app.jinja_env.globals["url_each"]("orders.order_detail", "key"))
    assert "<script>" not in drawn
    assert "&lt;script&gt;" in drawn and "RMA-&lt;1&gt;" in drawn and 'value="ord-&#34;3&#34;"' in drawn
    assert "missing (id user-gone)" in drawn
    assert "partially refunded (24.56 of 163.76)" in drawn
