"""shipping_db: the shipping service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import prefix_index, service_index
from console.models.types import JSONType, Money, UTCDateTime, foreign_key, new_id, utcnow


class ShippingModel(db.Model):
    __abstract__ = True
    __bind_key__ = "shipping"


class ShippingZone(ShippingModel):
    __tablename__ = "shipping_zones"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(20))  # country|state|postal_code|custom
    countries: Mapped[Any] = mapped_column(JSONType)
    states: Mapped[Any | None] = mapped_column(JSONType)
    postal_codes: Mapped[Any | None] = mapped_column("postalCodes", JSONType, key="postal_codes")
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The shipping service's own indexes on shipping_zones (its schema's @@index and @unique).
service_index("shipping_zones_isActive_idx", ShippingZone.is_active)


class ShippingMethod(ShippingModel):
    __tablename__ = "shipping_methods"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    zone_id: Mapped[str] = mapped_column(
        Text, foreign_key("shipping_zones.id", "shipping_methods_zone_id_fkey", on_delete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    carrier: Mapped[str] = mapped_column(String(50))  # fedex|ups|dhl|usps|custom
    service_type: Mapped[str] = mapped_column(String(50))  # standard|express|overnight
    base_price: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    price_per_kg: Mapped[Decimal | None] = mapped_column(Money)
    price_per_item: Mapped[Decimal | None] = mapped_column(Money)
    estimated_days: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    configuration: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The shipping service's own indexes on shipping_methods (its schema's @@index and @unique).
service_index("shipping_methods_zone_id_idx", ShippingMethod.zone_id)
service_index("shipping_methods_isActive_idx", ShippingMethod.is_active)


class ShippingRate(ShippingModel):
    __tablename__ = "shipping_rates"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    method_id: Mapped[str] = mapped_column(
        Text, foreign_key("shipping_methods.id", "shipping_rates_method_id_fkey", on_delete="CASCADE"))
    min_weight: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    max_weight: Mapped[Decimal | None] = mapped_column(Money)
    min_amount: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    max_amount: Mapped[Decimal | None] = mapped_column(Money)
    rate: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The shipping service's own indexes on shipping_rates (its schema's @@index and @unique).
service_index("shipping_rates_method_id_idx", ShippingRate.method_id)
service_index("shipping_rates_method_id_min_weight_max_weight_idx", ShippingRate.method_id,
              ShippingRate.min_weight, ShippingRate.max_weight)


class Shipment(ShippingModel):
    __tablename__ = "shipments"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(Text)  # references order.orders.id *logical*
    carrier_id: Mapped[str | None] = mapped_column(
        Text, foreign_key("carriers.id", "shipments_carrier_id_fkey", on_delete="SET NULL"))
    method_id: Mapped[str | None] = mapped_column(
        Text, foreign_key("shipping_methods.id", "shipments_method_id_fkey", on_delete="SET NULL"))
    tracking_number: Mapped[str] = mapped_column(String(100))
    # pending|in_transit|out_for_delivery|delivered|exception
    status: Mapped[str] = mapped_column(String(50), server_default="pending")
    weight: Mapped[Decimal] = mapped_column(Money)
    cost: Mapped[Decimal] = mapped_column(Money)
    origin_address: Mapped[Any] = mapped_column(JSONType)
    destination_address: Mapped[Any] = mapped_column(JSONType)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    estimated_delivery_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    carrier_response: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The shipping service's own indexes on shipments (its schema's @@index and @unique).
service_index("shipments_tracking_number_key", Shipment.tracking_number, unique=True)
service_index("shipments_order_id_idx", Shipment.order_id)
service_index("shipments_status_idx", Shipment.status)
service_index("shipments_created_at_idx", Shipment.created_at)


class ShipmentTracking(ShippingModel):
    __tablename__ = "shipment_tracking"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    shipment_id: Mapped[str] = mapped_column(
        Text, foreign_key("shipments.id", "shipment_tracking_shipment_id_fkey", on_delete="CASCADE"))
    status: Mapped[str] = mapped_column(String(50))
    location: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    carrier_data: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The shipping service's own indexes on shipment_tracking (its schema's @@index and @unique).
service_index("shipment_tracking_shipment_id_idx", ShipmentTracking.shipment_id)
service_index("shipment_tracking_timestamp_idx", ShipmentTracking.timestamp)
service_index("shipment_tracking_shipment_id_timestamp_idx", ShipmentTracking.shipment_id,
              ShipmentTracking.timestamp)


class Carrier(ShippingModel):
    __tablename__ = "carriers"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(50))  # fedex|ups|dhl|usps
    api_endpoint: Mapped[str] = mapped_column(String(500))
    api_key: Mapped[str] = mapped_column(String(500))  # encrypted
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    configuration: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The shipping service's own indexes on carriers (its schema's @@index and @unique).
service_index("carriers_code_key", Carrier.code, unique=True)
service_index("carriers_isActive_idx", Carrier.is_active)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_shipments_tracking_number_prefix", Shipment.tracking_number, "search: tracking number prefix")
