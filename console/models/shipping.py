"""shipping_db: the shipping service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import prefix_index
from console.models.types import JSONType, TextArray, UTCDateTime, new_id, utcnow


class ShippingModel(db.Model):
    __abstract__ = True
    __bind_key__ = "shipping"


class ShippingZone(ShippingModel):
    __tablename__ = "shipping_zones"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String, index=True)
    type: Mapped[str | None] = mapped_column(String)  # country|state|postal_code|custom
    countries: Mapped[Any | None] = mapped_column(JSONType)
    states: Mapped[Any | None] = mapped_column(JSONType)
    postal_codes: Mapped[Any | None] = mapped_column(JSONType)
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ShippingMethod(ShippingModel):
    __tablename__ = "shipping_methods"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    zone_id: Mapped[str | None] = mapped_column(String, ForeignKey("shipping_zones.id"), index=True)
    name: Mapped[str | None] = mapped_column(String, index=True)
    carrier: Mapped[str | None] = mapped_column(String)  # fedex|ups|dhl|usps|custom
    service_type: Mapped[str | None] = mapped_column(String)  # standard|express|overnight
    base_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    price_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    price_per_item: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    estimated_days: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    configuration: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ShippingRate(ShippingModel):
    __tablename__ = "shipping_rates"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    method_id: Mapped[str | None] = mapped_column(String, ForeignKey("shipping_methods.id"), index=True)
    min_weight: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    max_weight: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    min_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    max_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    rate: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Shipment(ShippingModel):
    __tablename__ = "shipments"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    order_id: Mapped[str | None] = mapped_column(String, index=True)  # references order.orders.id *logical*
    carrier_id: Mapped[str | None] = mapped_column(String, ForeignKey("carriers.id"), index=True)
    method_id: Mapped[str | None] = mapped_column(String, ForeignKey("shipping_methods.id"), index=True)
    tracking_number: Mapped[str | None] = mapped_column(String, unique=True)
    status: Mapped[str | None] = mapped_column(String, index=True)  # pending|in_transit|out_for_delivery|delivered|exception
    weight: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    origin_address: Mapped[Any | None] = mapped_column(JSONType)
    destination_address: Mapped[Any | None] = mapped_column(JSONType)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    estimated_delivery_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    carrier_response: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ShipmentTracking(ShippingModel):
    __tablename__ = "shipment_tracking"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    shipment_id: Mapped[str | None] = mapped_column(String, ForeignKey("shipments.id"), index=True)
    status: Mapped[str | None] = mapped_column(String, index=True)
    location: Mapped[str | None] = mapped_column(String)
    description: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    carrier_data: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class Carrier(ShippingModel):
    __tablename__ = "carriers"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String, index=True)
    code: Mapped[str | None] = mapped_column(String, unique=True)  # fedex|ups|dhl|usps
    api_endpoint: Mapped[str | None] = mapped_column(String)
    api_key: Mapped[str | None] = mapped_column(String)  # encrypted
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    configuration: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_shipments_tracking_number_prefix", Shipment.tracking_number, "search: tracking number prefix")
