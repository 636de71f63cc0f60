"""PDFs of the printable documents (fpdf2): packing slips (one order per page, many
orders in one file) and invoices, with the order number's Code 128 barcode drawn as
rectangles.

The text is set in DejaVu Sans, carried in static/fonts/ (its licence,
LICENSE-DejaVu.txt, allows it), so names and addresses in any script the font
covers print on any machine.
"""
from __future__ import annotations

from pathlib import Path

from flask import Response
from fpdf import FPDF

from console import barcode
from console.formatting import money, when
from console.screens.documents import Invoice, Slip, line_total

FONTS = Path(__file__).resolve().parent.parent / "static" / "fonts"
FONT = "DejaVu"
MODULE_MM = 0.33  # one barcode module, narrower for a long text so it stays within BARCODE_MAX_MM
BARCODE_MAX_MM = 90
BAR_HEIGHT_MM = 14


def barcode_module(code: barcode.Barcode) -> float:
    """The width of one module in mm: MODULE_MM, or less so the barcode fits BARCODE_MAX_MM."""
    return min(MODULE_MM, BARCODE_MAX_MM / code.width)


def download(data: bytes, stem: str) -> Response:
    """A PDF download named ``<stem>.pdf`` (an order number or a fixed word)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)[:80] or "document"
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}.pdf"'
    return response


class Document(FPDF):
    def __init__(self, title: str):
        super().__init__(format="A4")
        self.set_title(title)
        self.set_creator("Operations console")
        self.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(True, margin=15)
        self.set_margins(15, 15, 15)

    def text_line(self, text: str, size: float = 10, bold: bool = False, height: float = 5.5,
                  width: float = 0) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(width, height, text, new_x="LMARGIN", new_y="NEXT")

    def barcode(self, text: str, x: float, y: float) -> None:
        """The Code 128 barcode of ``text`` with its top-left corner at (x, y); nothing
        when the text can't be encoded."""
        try:
            code = barcode.code128(text)
        except ValueError:
            return
        module = barcode_module(code)
        self.set_fill_color(0, 0, 0)
        for start, width in code.bars:
            self.rect(x + start * module, y, width * module, BAR_HEIGHT_MM, style="F")
        self.set_font(FONT, "", 8)
        self.set_xy(x, y + BAR_HEIGHT_MM + 0.5)
        self.cell(code.width * module, 4, text, align="C")

    def heading(self, title: str, number: str) -> None:
        top = self.get_y()
        self.text_line(title, 18, bold=True, height=9)
        self.text_line(f"Order {number}", 11)
        try:
            code = barcode.code128(number)
            width = code.width * barcode_module(code)
        except ValueError:
            width = 0
        self.barcode(number, self.w - self.r_margin - width, top)  # right-aligned
        self.set_y(max(self.get_y(), top + BAR_HEIGHT_MM + 6) + 4)

    def table(self, header: list[str], widths: list[float], rows: list[list[str]], right: set[int]) -> None:
        self.set_font(FONT, "B", 9)
        self.set_fill_color(235, 235, 235)
        for text, width, index in zip(header, widths, range(len(header))):
            self.cell(width, 7, text, border="B", fill=True, align="R" if index in right else "L")
        self.ln()
        self.set_font(FONT, "", 9)
        for row in rows:
            for text, width, index in zip(row, widths, range(len(row))):
                shown = text if self.get_string_width(text) <= width - 2 else _fit(self, text, width - 2)
                self.cell(width, 6.5, shown, border="B", align="R" if index in right else "L")
            self.ln()


def _fit(pdf: FPDF, text: str, width: float) -> str:
    while text and pdf.get_string_width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _slip_page(pdf: Document, slip: Slip, store: str) -> None:
    pdf.add_page()
    order = slip.order
    pdf.heading("Packing slip", order.order_number or order.id)
    pdf.text_line("Ship to", 9, bold=True)
    for line in slip.ship_to or ["No shipping address on the order"]:
        pdf.text_line(line)
    pdf.ln(2)
    pdf.text_line(f"Ordered {when(order.created_at)} · {slip.units} item{'s' if slip.units != 1 else ''}", 9)
    pdf.ln(3)
    rows = [[item.product_sku or "—", item.product_name or "—", str(item.quantity or 0)] for item in slip.items]
    pdf.table(["SKU", "Item", "Quantity"], [45, 110, 25], rows or [["—", "No items on the order", "0"]], {2})
    pdf.ln(6)
    pdf.text_line(f"Thank you for shopping with {store}.", 9)


def packing_slips_pdf(slips: list[Slip], store: str) -> bytes:
    """One page (or more for a long order) per slip."""
    pdf = Document("Packing slips" if len(slips) != 1 else f"Packing slip {slips[0].order.order_number}")
    for slip in slips:
        _slip_page(pdf, slip, store)
    return bytes(pdf.output())


def invoice_pdf(invoice: Invoice) -> bytes:
    order, currency = invoice.order, invoice.currency
    pdf = Document(f"Invoice {order.order_number}")
    pdf.add_page()
    pdf.heading("Invoice", order.order_number or order.id)
    top = pdf.get_y()
    pdf.text_line("Seller", 9, bold=True)
    for line in (invoice.seller.name, *invoice.seller.address) + ((f"Tax id {invoice.seller.tax_id}",)
                                                                   if invoice.seller.tax_id else ()):
        pdf.text_line(line, width=90)  # the buyer's column starts at 110 mm
    left_end = pdf.get_y()
    pdf.set_y(top)
    for line in ["Bill to", *(invoice.bill_to or ["—"]), invoice.customer_email]:
        if line:
            pdf.set_x(110)
            pdf.set_font(FONT, "B" if line == "Bill to" else "", 9 if line == "Bill to" else 10)
            pdf.multi_cell(85, 5.5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(left_end, pdf.get_y()) + 3)
    pdf.text_line(f"Order date {when(order.created_at)} · Currency {currency}", 9)
    pdf.ln(3)
    rows = [[item.product_sku or "—", item.product_name or "—", str(item.quantity or 0),
             money(item.unit_price), money(line_total(item))] for item in invoice.items]
    pdf.table(["SKU", "Item", "Qty", "Unit price", "Amount"], [35, 80, 15, 25, 25],
              rows or [["—", "No items", "0", "—", money(0)]], {2, 3, 4})
    pdf.ln(2)
    figures = [("Items", invoice.items_total), ("Tax", invoice.tax), ("Shipping", invoice.shipping),
               ("Discount", -invoice.discount), ("Total", invoice.total)]
    for label, amount in figures:
        pdf.set_font(FONT, "B" if label == "Total" else "", 10)
        pdf.set_x(110)
        pdf.cell(50, 6, label)
        pdf.cell(35, 6, money(amount, currency), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.text_line("Payment", 9, bold=True)
    if "payment" in invoice.unavailable:
        pdf.text_line("payment_db is unavailable: payments and refunds are not shown.")
    else:
        for p in invoice.payments:
            pdf.text_line(f"{p.payment_provider or 'payment'} · {(p.status or '').lower()} · "
                          f"{money(p.amount, p.currency)} · {when(p.processed_at or p.created_at)}")
        if not invoice.payments:
            pdf.text_line("No payment recorded.")
        for r in invoice.refunds:
            pdf.text_line(f"Refund {(r.status or '').lower()} · {money(r.amount, r.currency)} · "
                          f"{when(r.processed_at or r.created_at)} · {r.reason or 'no reason given'}")
        pdf.text_line(f"Paid {money(invoice.paid, currency)} · refunded {money(invoice.refunded, currency)} · "
                      f"net {money(invoice.balance, currency)}", bold=True)
    return bytes(pdf.output())
