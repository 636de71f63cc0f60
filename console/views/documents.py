"""An order's printable documents: the packing slip and the invoice, as pages (printed
from the browser, without the console's menus) and as PDF downloads
(console/screens/documents.py reads them, console/pdf.py draws the PDFs)."""
from __future__ import annotations

from flask import Blueprint, abort, render_template

from console import pdf
from console.lookups import DatabaseUnavailable
from console.permissions import permission_required
from console.screens import documents
from console.views.orders import order_or_404

bp = Blueprint("documents", __name__, url_prefix="/orders")


def _slip(key: str) -> documents.Slip:
    order = order_or_404(key)
    try:
        [slip] = documents.packing_slips([order.id])
    except DatabaseUnavailable:
        abort(503, "order_db is unavailable, and the order lives there. Try again shortly.")
    return slip


def _invoice(key: str) -> documents.Invoice:
    order = order_or_404(key)
    try:
        return documents.invoice(order)
    except DatabaseUnavailable:
        abort(503, "order_db is unavailable, and the order lives there. Try again shortly.")


@bp.get("/<key>/packing-slip")
@permission_required("orders.slips")
def packing_slip(key: str):
    return render_template("documents/packing_slip.html", slips=[_slip(key)], store=documents.seller())


@bp.get("/<key>/packing-slip.pdf")
@permission_required("orders.slips")
def packing_slip_pdf(key: str):
    slip = _slip(key)
    return pdf.download(pdf.packing_slips_pdf([slip], documents.seller().name),
                        f"packing-slip-{slip.order.order_number or slip.order.id}")


@bp.get("/<key>/invoice")
@permission_required("orders.invoices")
def invoice(key: str):
    return render_template("documents/invoice.html", invoice=_invoice(key), line_total=documents.line_total)


@bp.get("/<key>/invoice.pdf")
@permission_required("orders.invoices")
def invoice_pdf(key: str):
    found = _invoice(key)
    return pdf.download(pdf.invoice_pdf(found), f"invoice-{found.order.order_number or found.order.id}")
