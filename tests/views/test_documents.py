"""An order's packing slip and invoice: the printable pages, their PDFs (parsed back),
the totals, the barcode and who may see them."""
from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from pypdf import PdfReader

from console import barcode
from console.demo.builders import make_customer, make_order, make_product, make_refund
from console.extensions import db
from console.formatting import money


@pytest.fixture
def sold(app):
    """An order to a customer with a non-ASCII name and address, a discount, paid, and
    partly refunded."""
    with app.app_context():
        customer, _ = make_customer("zoe@example.com", "Zoë", "Ødegård")
        mug = make_product("MUG-ÆØ-1", "Tasse à café", "12.50", stock=50)
        lamp = make_product("LAMP-2", "Lampe Лампа", "30.00", stock=50)
        bundle = make_order(customer, [(mug, 2), (lamp, 1)], status="delivered", discount=Decimal("5.00"),
                            address={"first_name": "Zoë", "last_name": "Ødegård", "address_line1": "Straße 7",
                                     "city": "Tromsø", "postal_code": "9008", "country": "NO"})
        make_refund(bundle.payment, "12.50", order=bundle.order, reason="Mug arrived chipped")
        db.session.commit()
        o = bundle.order
        return {"number": o.order_number, "id": o.id, "total": o.total_amount, "tax": o.tax_amount,
                "shipping": o.shipping_amount, "discount": o.discount_amount, "currency": o.currency,
                "paid": bundle.payment.amount}


def test_the_invoice_totals_are_the_orders_and_it_lists_payment_and_refunds(auth, client, sold):
    auth.login("finance")
    response = client.get(f"/orders/{sold['number']}/invoice")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    items = Decimal("12.50") * 2 + Decimal("30.00")
    assert items + sold["tax"] + sold["shipping"] - sold["discount"] == sold["total"]
    cur = sold["currency"]
    assert f'id="total-items">{money(items, cur)}' in html
    assert f'id="total-tax">{money(sold["tax"], cur)}' in html
    assert f'id="total-shipping">{money(sold["shipping"], cur)}' in html
    assert f'id="total-discount">−{money(sold["discount"], cur)}' in html
    assert f'id="total-due">{money(sold["total"], cur)}' in html
    assert 'id="total-differs"' not in html
    assert sold["paid"] == sold["total"]
    assert f"Paid {money(sold['paid'], cur)} · refunded {money(Decimal('12.50'), cur)}" in html
    assert "Mug arrived chipped" in html and "Zoë Ødegård" in html and "Tromsø" in html
    assert "Online Store" in html  # the configured seller's default
    assert '<svg class="barcode"' in html


def test_the_invoice_pdf_opens_with_the_order_number_skus_names_and_totals(auth, client, sold):
    auth.login("support")
    response = client.get(f"/orders/{sold['number']}/invoice.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert f'filename="invoice-{sold["number"]}.pdf"' in response.headers["Content-Disposition"]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    for expected in (sold["number"], "MUG-ÆØ-1", "LAMP-2", "Zoë Ødegård", "Tromsø", "Лампа",
                     money(sold["total"], sold["currency"]), "Mug arrived chipped"):
        assert expected in text, expected


def test_the_packing_slip_page_and_pdf(auth, client, sold):
    auth.login("warehouse")
    html = client.get(f"/orders/{sold['number']}/packing-slip").get_data(as_text=True)
    assert sold["number"] in html and "MUG-ÆØ-1" in html and "Straße 7" in html
    assert re.search(r'<svg class="barcode"[^>]*aria-label="Barcode ' + re.escape(sold["number"]), html)
    assert "Tasse à café" in html and 'id="download-pdf"' in html
    response = client.get(f"/orders/{sold['id']}/packing-slip.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for expected in (sold["number"], "MUG-ÆØ-1", "LAMP-2", "Zoë Ødegård", "Straße 7", "Tromsø"):
        assert expected in text, expected


@pytest.mark.parametrize("role,slip,invoice", [
    ("warehouse", 200, 403), ("support", 200, 200), ("finance", 403, 200), ("admin", 200, 200),
    ("marketing", 403, 403),
])
def test_who_may_see_slips_and_invoices(auth, client, sold, role, slip, invoice):
    auth.login(role)
    assert client.get(f"/orders/{sold['number']}/packing-slip").status_code == slip
    assert client.get(f"/orders/{sold['number']}/packing-slip.pdf").status_code == slip
    assert client.get(f"/orders/{sold['number']}/invoice").status_code == invoice
    assert client.get(f"/orders/{sold['number']}/invoice.pdf").status_code == invoice


def test_the_order_page_links_its_documents(auth, client, sold):
    auth.login("support")
    html = client.get(f"/orders/{sold['number']}").get_data(as_text=True)
    assert f'href="/orders/{sold["number"]}/packing-slip"' in html and f'href="/orders/{sold["number"]}/invoice"' in html
    assert client.get("/orders/NO-SUCH-ORDER/invoice").status_code == 404


def test_the_seller_comes_from_the_configuration(app, auth, client, sold):
    app.config.update(STORE_NAME="Fjord Goods AS", STORE_ADDRESS="Kaigata 1|5016 Bergen|Norway", STORE_TAX_ID="NO123")
    auth.login("finance")
    html = client.get(f"/orders/{sold['number']}/invoice").get_data(as_text=True)
    assert "Fjord Goods AS<br>Kaigata 1<br>5016 Bergen<br>Norway<br>Tax id NO123" in html


def _decode(code: barcode.Barcode) -> str:
    """Read the bars back: widths of bars and spaces, symbol by symbol, to values."""
    edges = []
    for (x, width), following in zip(code.bars, list(code.bars[1:]) + [None]):
        edges.append(width)
        if following is not None:
            edges.append(following[0] - x - width)
    lookup = {pattern: value for value, pattern in enumerate(barcode.PATTERNS)}
    values = []
    while len(edges) > 7:
        values.append(lookup["".join(map(str, edges[:6]))])
        edges = edges[6:]
    assert lookup["".join(map(str, edges))] == barcode.STOP
    start, *chars, checksum = values
    assert start == barcode.START_B
    assert checksum == (start + sum(i * v for i, v in enumerate(chars, 1))) % 103
    return "".join(chr(v + 32) for v in chars)


@pytest.mark.parametrize("text", ["ORD-20261130-0001", "a b~", "PJJ123C"])
def test_code128_bars_read_back_to_the_text(text):
    code = barcode.code128(text)
    assert _decode(code) == text
    assert code.width == barcode.QUIET * 2 + 11 * (len(text) + 2) + 13


def test_code128_refuses_what_it_cannot_write():
    for bad in ("", "Ø-1", "x" * 81):
        with pytest.raises(ValueError):
            barcode.code128(bad)
    assert str(barcode.svg("Ø")) == ""
