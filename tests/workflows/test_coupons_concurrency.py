"""Two staff generating codes with the same prefix at the same moment, on PostgreSQL with
real connections: no code twice, each generation complete or absent."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from console.extensions import db
from console.models.discount import Coupon
from console.workflows import coupons as flow
from tests.returns_helpers import staff_actor
from tests.test_refunds_concurrency import close_idle_connections, run_together  # noqa: F401 - fixture

pytestmark = pytest.mark.postgres_only


def test_two_generations_with_the_same_prefix_never_duplicate(app):
    with app.app_context():
        actor = staff_actor("marketing")
        template = flow.create_coupon(actor, flow.CouponInput(code="BASE", name="Base", type="percentage",
                                                              discount_value=Decimal("5")))
        template_id = template.id
        db.session.remove()
    # 5,000 codes each out of 31**4 possible: the two draws overlap by about 27 codes,
    # so the second generation meets codes the first one has just written.
    results, refusals = run_together(app, lambda i: flow.generate_codes(actor, template_id, 5000, prefix="DUO-",
                                                                        length=4), threads=2)
    assert not refusals and len(results) == 2
    first, second = (set(r.codes) for r in results)
    assert len(first) == len(second) == 5000 and not first & second
    with app.app_context():
        codes = db.session.scalars(select(Coupon.code).where(Coupon.code.like("DUO-%"))).all()
        assert len(codes) == len(set(codes)) == 10_000
        for result in results:
            assert db.session.scalar(select(func.count()).select_from(Coupon)
                                     .where(flow.batch_condition(result.batch))) == 5000
