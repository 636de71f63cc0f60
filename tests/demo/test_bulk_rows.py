"""The bulk writer: rows go in as they were built, on SQLite and through PostgreSQL's
COPY text alike (JSON with quotes, escapes and accents, NULLs, booleans, timestamps)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from console.demo.bulk import BatchWriter, RowBatch, json_text, plain
from console.extensions import db
from console.models.shipping import Shipment
from console.models.user import UserAddress, UserProfile


def test_rows_come_back_as_written(ctx):
    when = datetime(2026, 3, 4, 5, 6, tzinfo=timezone.utc)
    destination = {"first_name": 'Zoë "Z"', "city": "Saint-Étienne", "note": "back\\slash\ttab\nline"}
    batch = RowBatch()
    batch.add("shipping", "shipments", ("s-1", "o-1", None, None, "UPS000000000001", "in_transit", Decimal("1.50"),
                                        Decimal("5.00"), json_text({"city": "Columbus"}), json_text(destination),
                                        when, None, None, {"service": "standard", "quote": '"'}, when, when))
    batch.add("user", "user_profiles", ("p-1", "u-1", "a@example.net", plain("Ann\tMarie"), "Lee", None, None, None,
                                        None, "USD", "en", False, True, 60, when, when))
    batch.add("user", "addresses", ("a-1", "u-1", "shipping", True, "Ann", "Lee", plain("1 Main St\\\n"),
                                         "Springfield", "12345", "US", when, None))
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
