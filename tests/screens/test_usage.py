"""The usage report of coupons and promotions: figures equal an independent computation
(from the builders' own totals, and from plain SQL over the demo data), the uses are
joined to their customers and orders, and a database that is down is named."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from console.screens import usage as report
from console.demo.builders import make_coupon, make_customer, make_order, make_product, make_promotion, use_coupon, use_promotion
from console.demo.seed import seed_demo
from console.extensions import db
from console.models.discount import Coupon, CouponUsage, Promotion
from tests.second_app import app_with_unreachable

T0 = datetime(2026, 10, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def built(ctx):
    """A coupon used on five orders by two customers: three kept, one cancelled, one
    refunded, plus a use whose order has gone; and two other orders the same days."""
    ana, _ = make_customer("ana@example.com", "Ana", "Silva")
    ben, _ = make_customer("ben@example.com", "Ben", "Okafor")
    lamp = make_product("LAMP-1", "Lamp", "40.00")
    coupon = make_coupon("TEN", usage_limit=None)
    totals = {}

    def order(customer, quantity, status, day, *, use=True):
        bundle = make_order(customer, [(lamp, quantity)], status=status, created_at=T0 + timedelta(days=day),
                            discount=Decimal("4.00") if use else Decimal("0.00"))
        if use:
            use_coupon(coupon, bundle.order)
        totals[bundle.order.id] = bundle.order.total_amount
        return bundle.order

    kept = [order(ana, 1, "delivered", 0), order(ana, 2, "shipped", 0), order(ben, 3, "pending", 2)]
    cancelled = order(ben, 1, "cancelled", 1)
    refunded = order(ana, 2, "refunded", 2)
    others = [order(ben, 5, "delivered", 1, use=False), order(ana, 1, "confirmed", 2, use=False),
              order(ben, 1, "cancelled", 2, use=False), order(ana, 9, "delivered", 5, use=False)]  # last: after
    db.session.add(CouponUsage(coupon_id=coupon.id, user_id=ben.id, order_id="gone-order", used_at=T0 + timedelta(days=1),
                               discount_amount=Decimal("4.00")))
    coupon.usage_count += 1
    db.session.commit()
    return coupon, kept, cancelled, refunded, others, totals, (ana, ben)


def test_figures_equal_the_builders_totals(built):
    coupon, kept, cancelled, refunded, others, totals, (ana, ben) = built
    figures = report.totals("coupon", coupon.id)
    assert (figures.uses, figures.customers, figures.discount) == (6, 2, Decimal("24.00"))
    kept_sum = sum(totals[o.id] for o in kept)
    assert figures.kept.count == 3 and figures.revenue == {"USD": kept_sum}
    assert (figures.cancelled.count, figures.cancelled.amounts["USD"]) == (1, totals[cancelled.id])
    assert (figures.refunded.count, figures.refunded.amounts["USD"]) == (1, totals[refunded.id])
    assert figures.missing_orders == 1
    assert figures.average_with == {"USD": (kept_sum / 3).quantize(Decimal("0.01"))}
    # the same days (1 to 3 October): the delivered and the confirmed order; the cancelled
    # one and the one after the last use are left out
    other_sum = totals[others[0].id] + totals[others[1].id]
    assert figures.other_orders == 2
    assert figures.average_without == {"USD": (other_sum / 2).quantize(Decimal("0.01"))}
    assert [(d.day.day, d.uses, d.discount) for d in figures.days] == [
        (1, 2, Decimal("8.00")), (2, 2, Decimal("8.00")), (3, 2, Decimal("8.00"))]
    assert report.usage_chart(figures.days).bars[0].title == "2026-10-01: 2 uses, 8.00 off"


def test_each_use_with_its_customer_and_order(built):
    coupon, kept, *_ = built
    coupon_id, first_id, first_number = coupon.id, kept[0].id, kept[0].order_number
    page = report.uses_page("coupon", coupon_id, None, 10)  # (the batch loader detaches what it loaded)
    assert len(page.uses) == 6 and not page.unavailable
    by_order = {u.usage.order_id: u for u in page.uses}
    first = by_order[first_id]
    assert (first.email, first.name, first.order.order_number) == ("ana@example.com", "Ana Silva", first_number)
    assert str(by_order["gone-order"].order) == "missing (id gone-order)"
    # newest first, paged by keyset
    top = report.uses_page("coupon", coupon_id, None, 4)
    rest = report.uses_page("coupon", coupon_id, top.page.next_cursor, 4)
    assert len(top.uses) == 4 and len(rest.uses) == 2 and rest.page.next_cursor is None
    times = [u.usage.used_at for u in top.uses + rest.uses]
    assert times == sorted(times, reverse=True)
    rows = list(report.export_rows("coupon", coupon_id))
    assert len(rows) == 6 and {r[1] for r in rows} == {"ana@example.com", "ben@example.com"}
    assert [r for r in rows if r[9] == "gone-order"][0][3] == "missing (id gone-order)"


def test_order_db_down_leaves_the_discount_figures(database_urls, built):
    coupon = built[0]
    coupon_id = coupon.id
    with app_with_unreachable(database_urls, "order") as down, down.app_context():
        figures = report.totals("coupon", coupon_id)
        assert figures.uses == 6 and figures.kept is None and figures.unavailable == {"order"}
        page = report.uses_page("coupon", coupon_id, None, 10)
        assert page.unavailable == {"order"} and all(u.order is None for u in page.uses)


def test_promotions_have_the_same_report(ctx):
    customer, _ = make_customer("cy@example.com", "Cy", "Ng")
    promotion = make_promotion("Volume", "volume_discount", "active", starts_at=T0)
    order = make_order(customer, [(make_product("X-1", "X", "20.00"), 2)], status="delivered", created_at=T0,
                       discount=Decimal("2.00")).order
    use_promotion(promotion, order)
    db.session.commit()
    figures = report.totals("promotion", promotion.id)
    assert (figures.uses, figures.customers, figures.discount, figures.revenue) == (
        1, 1, Decimal("2.00"), {"USD": order.total_amount})


def _sql(bind: str, statement: str, **params):
    return db.session.execute(text(statement), params, bind_arguments={"bind": db.engines[bind]}).all()


def test_figures_over_the_demo_data_equal_plain_sql(ctx):
    seed_demo(customers=30, orders=150, seed=3)
    checked = 0
    for coupon_id, in _sql("discount", "SELECT id FROM coupons"):
        uses, customers, discount = _sql("discount", "SELECT count(*), count(DISTINCT \"userId\"), "
                                         "coalesce(sum(\"discountAmount\"), 0) FROM coupon_usage WHERE \"couponId\" = :c",
                                         c=coupon_id)[0]
        order_ids = [o for o, in _sql("discount", "SELECT DISTINCT \"orderId\" FROM coupon_usage WHERE \"couponId\" = :c",
                                      c=coupon_id)]
        expected = defaultdict(lambda: [0, Decimal("0")])
        for order_id in order_ids:
            [(status, total)] = _sql("order", "SELECT status, \"totalAmount\" FROM orders WHERE id = :o", o=order_id)
            group = status if status in ("cancelled", "refunded") else "kept"
            expected[group][0] += 1
            expected[group][1] += Decimal(str(total))
        figures = report.totals("coupon", coupon_id)
        assert (figures.uses, figures.customers) == (uses, customers)
        assert figures.discount == Decimal(str(discount)).quantize(Decimal("0.01"))
        for group in ("kept", "cancelled", "refunded"):
            got = getattr(figures, group)
            assert (got.count, sum(got.amounts.values(), Decimal("0"))) == tuple(expected[group]), group
        count, amount = expected["kept"]
        assert figures.average_with == ({"USD": (amount / count).quantize(Decimal("0.01"))} if count else {})
        assert sum(d.uses for d in figures.days) == uses or len(figures.days) == report.CHART_DAYS
        checked += uses
    assert checked > 0
