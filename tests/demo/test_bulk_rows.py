"""The bulk writer: rows go in as they were built, on SQLite and through PostgreSQL's
COPY text alike (JSON with quotes, escapes and accents, NULLs, booleans, timestamps)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from console.demo.bulk import BatchWriter, RowBatch, json_text, plain
from console.extensions import db
from console.models.shipping import Shipment
from console.models.user import UserAddress, UserProfile


def test_rows_come_back_as_written(ctx):
    when = datetime(2026, 3, 4, 5, 6, tzinfo=timezone.utc)
    destination = {"first_name": 'Zoë "Z"', "city": "Saint-Étienne", "note": "back\\slash\ttab\nline"}
    batch = RowBatch()
    batch.add(Shipment, id="s-1", order_id="o-1", tracking_number="UPS000000000001", status="in_transit",
              weight=Decimal("1.50"), cost=Decimal("5.00"), origin_address=json_text({"city": "Columbus"}),
              destination_address=json_text(destination), shipped_at=when, delivered_at=None,
              carrier_response={"service": "standard", "quote": '"'}, created_at=when, updated_at=when)
    batch.add(UserProfile, id="p-1", user_id="u-1", email="a@example.net", first_name=plain("Ann\tMarie"),
              last_name="Lee", phone=None, newsletter_subscribed=False, created_at=when, updated_at=when)
    batch.add(UserAddress, id="a-1", user_id="u-1", type="shipping", is_default=True, first_name="Ann",
              last_name="Lee", address_line1=plain("1 Main St\\\n"), city="Springfield", postal_code="12345",
              country="US", created_at=when, updated_at=when)
    writer = BatchWriter()
    writer.write(batch)
    writer.close()
    db.session.expire_all()
    shipment = db.session.get(Shipment, "s-1")
    assert shipment.destination_address == destination
    assert shipment.carrier_response == {"service": "standard", "quote": '"'}
    assert shipment.origin_address == {"city": "Columbus"}
    assert shipment.weight == Decimal("1.50") and shipment.shipped_at == when and shipment.delivered_at is None
    profile = db.session.scalar(select(UserProfile).where(UserProfile.user_id == "u-1"))
    assert profile.first_name == "Ann Marie" and profile.newsletter_subscribed is False and profile.phone is None
    assert db.session.get(UserAddress, "a-1").address_line1 == "1 Main St/"


def test_rows_must_give_every_column_without_a_default(ctx):
    """A row that leaves out a NOT NULL column the database has no default for (here
    updatedAt) is refused before anything is sent, naming the column."""
    when = datetime(2026, 3, 4, 5, 6, tzinfo=timezone.utc)
    batch = RowBatch()
    batch.add(UserAddress, id="a-2", user_id="u-2", type="shipping", first_name="Ann", last_name="Lee",
              address_line1="1 Main St", city="Springfield", postal_code="12345", country="US", created_at=when)
    writer = BatchWriter()
    with pytest.raises(ValueError, match="updated_at"):
        writer.write(batch)
        writer.close()
    writer.close()
    batch = RowBatch()
    batch.add(UserAddress, id="a-3", town="Springfield")
    with pytest.raises(ValueError, match="town"):
        BatchWriter().write(batch)
