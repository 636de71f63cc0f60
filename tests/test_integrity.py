"""The integrity report (console check-refs): zero orphans on coherent data, and
exactly the rows that pointed at a deleted product once it is gone."""
from __future__ import annotations

import csv
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select

from console.demo.seed import seed_demo
from console.extensions import db
from console.integrity import check_all, check_reference
from console.models import model_for_table
from console.models.order import Order, OrderItem
from console.models.product import (
    Product, ProductCategory, ProductImage, ProductInventory, ProductPriceHistory, ProductQuestion,
    ProductRecentlyViewed, ProductReview, ProductSearchHistory, ProductStockAlert, ProductTag, ProductVariant,
)
from console.references import REFERENCES, get
from tests.second_app import app_with_unreachable

PRODUCT = "product.products.id"
# product_db rows that hang off a product by a real foreign key: the product service
# deletes them with the product.
PRODUCT_CHILDREN = (ProductImage, ProductCategory, ProductInventory, ProductReview, ProductTag, ProductQuestion,
                    ProductStockAlert, ProductRecentlyViewed, ProductPriceHistory, ProductSearchHistory)


@pytest.fixture
def seeded(ctx):
    seed_demo(customers=12, orders=40, seed=3)


def referrers_of(product_id: str) -> dict[str, set[str]]:
    """Per reference to products: ids of the source rows that point at ``product_id``."""
    found = {}
    for ref in REFERENCES:
        if ref.target != PRODUCT:
            continue
        model = model_for_table(ref.source_bind, ref.source_table)
        column = getattr(model, ref.source_column)
        if ref.many:
            rows = db.session.execute(select(model.id, column).where(column.is_not(None))).all()
            ids = {row_id for row_id, values in rows if product_id in values}
        else:
            ids = set(db.session.scalars(select(model.id).where(column == product_id)))
        if ids:
            found[ref.name] = ids
    return found


def test_seeded_data_has_no_orphans(seeded):
    reports = check_all()
    assert [(r.ref.name, r.orphans, r.error) for r in reports if not r.ok] == []
    assert len(reports) == len(REFERENCES)
    checked = {r.ref.name: r.checked for r in reports}
    # the report did look at the data, across every kind of reference
    assert checked["order.order_items.product_id"] >= 40
    assert checked["payment.payments.order_id"] == 40
    assert checked["cart.carts.coupon_code"] > 0
    assert checked["product.product_comparisons.product_ids"] > 0
    assert checked["return.refunds.payment_id"] > 0


def test_deleting_a_product_reports_exactly_the_rows_that_referenced_it(seeded):
    # The product without variants that most rows point at (variants would be orphaned too).
    with_variants = set(db.session.scalars(select(ProductVariant.product_id)))
    counts = db.session.execute(select(OrderItem.product_id, func.count()).group_by(OrderItem.product_id)).all()
    product_id = max((c for c in counts if c[0] not in with_variants), key=lambda c: (c[1], c[0]))[0]
    expected = referrers_of(product_id)
    assert "order.order_items.product_id" in expected

    for child in PRODUCT_CHILDREN:
        db.session.execute(delete(child).where(child.product_id == product_id))
    db.session.execute(delete(Product).where(Product.id == product_id))
    db.session.commit()

    reports = check_all(sample_size=10_000)
    found = {r.ref.name: set(r.sample_ids) for r in reports if r.orphans}
    assert found == expected
    for r in reports:
        assert r.orphans == len(expected.get(r.ref.name, ())), r.ref.name
    assert not any(r.error for r in reports)


def test_check_refs_command(app, seeded, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["console", "check-refs"])
    assert result.exit_code == 0, result.output
    assert "0 orphan row(s) in 0 of 49 references." in result.output

    item = db.session.scalars(select(OrderItem).order_by(OrderItem.id)).first()
    item.product_id = "deleted-product"
    db.session.commit()
    report = tmp_path / "refs.csv"
    result = runner.invoke(args=["console", "check-refs", "--csv", str(report)])
    assert result.exit_code == 1
    assert "1 orphan row(s) in 1 of 49 references." in result.output
    line = next(line for line in result.output.splitlines() if line.startswith("order.order_items.product_id"))
    assert line.split()[-2:] == ["1", item.id]
    rows = list(csv.DictReader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == len(REFERENCES)
    broken = [row for row in rows if row["orphans"] != "0"]
    assert broken == [{"reference": "order.order_items.product_id", "target": PRODUCT, "checked": str(
        db.session.scalar(select(func.count()).select_from(OrderItem))), "orphans": "1",
        "sample_source_ids": item.id, "error": ""}]


def an_order() -> Order:
    """An order of no one in particular, for rows that must belong to an order."""
    order = Order(order_number="ORD-T1", user_id="u-1", subtotal=Decimal("5.00"), total_amount=Decimal("5.00"))
    db.session.add(order)
    db.session.flush()
    return order


def test_source_is_streamed_in_batches_with_one_target_query_each(ctx, count_queries):
    product = Product(sku="P-0", name="Mug", slug="p-0", price=Decimal("5.00"))
    db.session.add(product)
    db.session.flush()
    variants = [ProductVariant(product_id=product.id, sku=f"P-0-{i}") for i in range(5)]
    db.session.add_all(variants)
    db.session.flush()
    # 25 items of a variant: 20 point at the 5 variants, 5 at variants that do not exist;
    # 3 more are of no variant (variantId is the nullable reference).
    line = {"order_id": an_order().id, "product_id": product.id, "product_name": "Mug", "product_sku": "P-0",
            "unit_price": Decimal("5.00"), "quantity": 1, "total_price": Decimal("5.00")}
    for i in range(25):
        variant_id = variants[i % 5].id if i < 20 else f"gone-{i}"
        db.session.add(OrderItem(id=f"item-{i:02d}", variant_id=variant_id, **line))
    for i in range(3):
        db.session.add(OrderItem(id=f"none-{i}", variant_id=None, **line))
    db.session.commit()

    before = count_queries.count
    report = check_reference(get("order.order_items.variant_id"), batch_size=10, sample_size=3)
    target_queries = [s for s in count_queries.statements[before:] if "FROM product_variants" in s]
    assert len(target_queries) == 3  # 25 rows in batches of 10
    assert report.checked == 25 and report.orphans == 5
    assert report.sample_ids == ["item-20", "item-21", "item-22"]


def test_list_references_and_system_values(ctx):
    from console.models.order import OrderStatusHistory
    from console.models.product import ProductComparison

    product = Product(sku="LIST-1", name="Mug", slug="list-1", price=Decimal("5.00"))
    db.session.add(product)
    db.session.flush()
    order_id = an_order().id
    db.session.add_all([
        ProductComparison(id="cmp-ok", user_id="u-1", product_ids=[product.id]),
        ProductComparison(id="cmp-broken", user_id="u-1", product_ids=[product.id, "gone"]),
        OrderStatusHistory(id="h-system", order_id=order_id, status="pending", changed_by="system"),
        OrderStatusHistory(id="h-gone", order_id=order_id, status="pending", changed_by="gone-staff"),
    ])
    db.session.commit()
    comparisons = check_reference(get("product.product_comparisons.product_ids"))
    assert (comparisons.checked, comparisons.orphans, comparisons.sample_ids) == (2, 1, ["cmp-broken"])
    history = check_reference(get("order.order_status_history.changed_by"))
    assert (history.checked, history.orphans, history.sample_ids) == (1, 1, ["h-gone"])


def test_unreachable_database_is_reported_not_raised(app, database_urls):
    with app.app_context():
        db.session.add(Order(order_number="ORD-1", user_id="u-1", payment_method_id="pay-1",
                             subtotal=Decimal("10.00"), total_amount=Decimal("10.00")))
        db.session.commit()
    with app_with_unreachable(database_urls, "payment") as broken:
        with broken.app_context():
            reports = {r.ref.name: r for r in check_all()}
        assert reports["order.orders.payment_method_id"].error == "payment_db is unavailable"
        assert reports["payment.payments.order_id"].error == "payment_db is unavailable"
        # the other databases are still checked: u-1 does not exist
        assert (reports["order.orders.user_id"].orphans, reports["order.orders.user_id"].error) == (1, "")
        result = broken.test_cli_runner().invoke(args=["console", "check-refs"])
    assert result.exit_code == 1
    assert "could not be checked: a database is unavailable" in result.output
