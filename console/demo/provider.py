"""The demo's own payment provider, MOCK: its refunds complete at once, so the demo shows
a refund through to its end without a payment service behind it. It exists only in the
demo data (and the development and test settings that install it, DEMO_REFUNDS_AT_ONCE);
a deployment knows STRIPE and PAYPAL, whose refunds the payment service executes later.
"""
from __future__ import annotations

import hashlib
from decimal import Decimal

from console.models.payment import REFUND_STATUSES
from console.workflows.refund_providers import ProviderResult, register

DEMO_PROVIDER = "MOCK"


class DemoProvider:
    """Completes every refund at once. The refund id derives from the key, so a
    repeated call answers with the same id, as a real provider would."""

    def submit_refund(self, payment, amount: Decimal, key: str) -> ProviderResult:
        refund_id = "mock_re_" + hashlib.sha256(key.encode()).hexdigest()[:20]
        return ProviderResult(REFUND_STATUSES.COMPLETED, refund_id,
                              {"provider": DEMO_PROVIDER, "id": refund_id, "amount": str(amount)})

    def refund_status(self, refund) -> ProviderResult:
        return ProviderResult(REFUND_STATUSES.COMPLETED, refund.provider_refund_id)


def install() -> None:
    register(DEMO_PROVIDER, DemoProvider())
