"""The payment providers behind a refund, as one small interface.

The refunds workflow calls ``provider_for(payment).submit_refund(payment, amount, key)``
while it holds the payment row locked, and ``refund_status(refund)`` when it follows a
refund that did not complete at once (``sync_refund``). The key is the refund's idempotency key: a real
client passes it on to the provider, so a call that is repeated after a lost answer
refunds once there too.

STRIPE and PAYPAL, and any provider no client is registered for, are executed by the
payment service, which owns the provider credentials: the console records the refund as
pending and the service picks it up; its answer is the status the service writes on the
payment_refunds row. A direct client can replace one with
``register("STRIPE", StripeClient(...))``; the demo registers its own provider, which
completes refunds at once (console/demo/provider.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from console.models.payment import PAYMENT_PROVIDERS, REFUND_STATUSES


@dataclass(frozen=True)
class ProviderResult:
    status: str  # a payment_refunds status (REFUND_STATUSES): completed, processing or pending
    provider_refund_id: str | None = None
    response: dict = field(default_factory=dict)


class ProviderDeclined(Exception):
    """The provider refused the refund; nothing was refunded."""


class RefundProvider(Protocol):
    def submit_refund(self, payment, amount: Decimal, key: str) -> ProviderResult: ...

    def refund_status(self, refund) -> ProviderResult:
        """Where the provider is with a refund submitted earlier (a payment_refunds row)."""


class DeferredProvider:
    """Leaves the refund pending for the payment service to execute with the provider."""

    def __init__(self, name: str):
        self.name = name

    def submit_refund(self, payment, amount: Decimal, key: str) -> ProviderResult:
        return ProviderResult(REFUND_STATUSES.PENDING, None, {"provider": self.name, "executed_by": "payment service"})

    def refund_status(self, refund) -> ProviderResult:
        # The payment service writes the outcome on the row itself (completed or failed,
        # with the provider's refund id): its answer is what the row says now.
        return ProviderResult(refund.status, refund.provider_refund_id)


_PROVIDERS: dict[str, RefundProvider] = {name: DeferredProvider(name) for name in PAYMENT_PROVIDERS}


def register(name: str, provider: RefundProvider) -> None:
    _PROVIDERS[name.upper()] = provider


def names() -> tuple[str, ...]:
    """The providers a client is registered for (the refunds list filters by them)."""
    return tuple(_PROVIDERS)


def provider_for(payment) -> RefundProvider | None:
    """The payment's provider client; None when the payment names no provider."""
    name = (payment.payment_provider or "").upper()
    if not name:
        return None
    return _PROVIDERS.get(name) or DeferredProvider(name)
