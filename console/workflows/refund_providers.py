"""The payment providers behind a refund, as one small interface.

The refunds workflow calls ``provider_for(payment).submit_refund(payment, amount, key)``
while it holds the payment row locked, and ``refund_status(refund)`` when it follows a
refund that did not complete at once (``sync_refund``). The key is the refund's idempotency key: a real
client passes it on to the provider, so a call that is repeated after a lost answer
refunds once there too.

- MOCK completes at once.
- STRIPE and PAYPAL are executed by the payment service, which owns the provider
  credentials: the console records the refund as PENDING and the service picks it up;
  its answer is the status the service writes on the payment_refunds row.
  A direct client can replace them with ``register("STRIPE", StripeClient(...))``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class ProviderResult:
    status: str  # a payment_refunds status: COMPLETED, PROCESSING or PENDING
    provider_refund_id: str | None = None
    response: dict = field(default_factory=dict)


class ProviderDeclined(Exception):
    """The provider refused the refund; nothing was refunded."""


class RefundProvider(Protocol):
    def submit_refund(self, payment, amount: Decimal, key: str) -> ProviderResult: ...

    def refund_status(self, refund) -> ProviderResult:
        """Where the provider is with a refund submitted earlier (a payment_refunds row)."""


class MockProvider:
    """Completes every refund at once. The refund id derives from the key, so a
    repeated call answers with the same id, as a real provider would."""

    def submit_refund(self, payment, amount: Decimal, key: str) -> ProviderResult:
        refund_id = "mock_re_" + hashlib.sha256(key.encode()).hexdigest()[:20]
        return ProviderResult("COMPLETED", refund_id, {"provider": "MOCK", "id": refund_id, "amount": str(amount)})

    def refund_status(self, refund) -> ProviderResult:
        return ProviderResult("COMPLETED", refund.provider_refund_id)


class DeferredProvider:
    """Leaves the refund PENDING for the payment service to execute with the provider."""

    def __init__(self, name: str):
        self.name = name

    def submit_refund(self, payment, amount: Decimal, key: str) -> ProviderResult:
        return ProviderResult("PENDING", None, {"provider": self.name, "executed_by": "payment service"})

    def refund_status(self, refund) -> ProviderResult:
        # The payment service writes the outcome on the row itself (COMPLETED or FAILED,
        # with the provider's refund id): its answer is what the row says now.
        return ProviderResult(refund.status, refund.provider_refund_id)


_PROVIDERS: dict[str, RefundProvider] = {
    "MOCK": MockProvider(),
    "STRIPE": DeferredProvider("STRIPE"),
    "PAYPAL": DeferredProvider("PAYPAL"),
}


def register(name: str, provider: RefundProvider) -> None:
    _PROVIDERS[name.upper()] = provider


def provider_for(payment) -> RefundProvider | None:
    return _PROVIDERS.get((payment.payment_provider or "").upper())
