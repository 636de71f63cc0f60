"""user_db: the user service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text, func, literal_column
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import contains_index, expression_prefix_index, prefix_index
from console.models.types import JSONType, TextArray, UTCDateTime, new_id, sort_indexes, utcnow


class UserModel(db.Model):
    __abstract__ = True
    __bind_key__ = "user"


class UserProfile(UserModel):
    __tablename__ = "user_profiles"
    # The customers list's sort columns (console/screens/customers.py).
    __table_args__ = sort_indexes("user_profiles", "created_at", "last_name", "email")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, unique=True)  # references auth.users.id *logical*
    email: Mapped[str | None] = mapped_column(String, unique=True)  # denormalized
    first_name: Mapped[str | None] = mapped_column(String)
    last_name: Mapped[str | None] = mapped_column(String, index=True)
    phone: Mapped[str | None] = mapped_column(String, index=True)
    avatar_url: Mapped[str | None] = mapped_column(String)
    date_of_birth: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gender: Mapped[str | None] = mapped_column(String)
    preferred_currency: Mapped[str | None] = mapped_column(String)
    preferred_language: Mapped[str | None] = mapped_column(String)
    newsletter_subscribed: Mapped[bool | None] = mapped_column(Boolean)
    is_active: Mapped[bool | None] = mapped_column(Boolean)  # synced from auth
    profile_completion_score: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @hybrid_property
    def full_name(self) -> str:
        """"First Last", either part left out when empty; "" when both are."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @full_name.inplace.expression
    @classmethod
    def _full_name_expression(cls):
        # In SQL, for searching: both parts with one space between ("" for a missing part).
        return func.coalesce(cls.first_name, "") + " " + func.coalesce(cls.last_name, "")


# In user_db every user_id holds the auth user id; the FK goes to user_profiles.user_id.
class UserAddress(UserModel):
    __tablename__ = "user_addresses"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("user_profiles.user_id"), index=True)
    type: Mapped[str | None] = mapped_column(String)  # shipping|billing|both
    is_default: Mapped[bool | None] = mapped_column(Boolean)
    first_name: Mapped[str | None] = mapped_column(String)
    last_name: Mapped[str | None] = mapped_column(String, index=True)
    address_line1: Mapped[str | None] = mapped_column(String)
    city: Mapped[str | None] = mapped_column(String)
    postal_code: Mapped[str | None] = mapped_column(String)
    country: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserPaymentMethod(UserModel):
    __tablename__ = "user_payment_methods"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("user_profiles.user_id"), index=True)
    type: Mapped[str | None] = mapped_column(String)  # credit_card|paypal|bank_account
    is_default: Mapped[bool | None] = mapped_column(Boolean)
    card_type: Mapped[str | None] = mapped_column(String)
    last4: Mapped[str | None] = mapped_column(String)
    provider_token: Mapped[str | None] = mapped_column(String)  # encrypted
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserPreference(UserModel):
    __tablename__ = "user_preferences"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("user_profiles.user_id"), index=True)
    # The diagram marks key alone as UK (not user_id + key); kept as drawn so the
    # console matches the service's real table.
    key: Mapped[str | None] = mapped_column(String, unique=True)
    value: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserWishlistItem(UserModel):
    __tablename__ = "user_wishlist_items"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("user_profiles.user_id"), index=True)
    product_id: Mapped[str | None] = mapped_column(String, index=True)  # references product.products.id *logical*
    product_name: Mapped[str | None] = mapped_column(String)  # denormalized
    product_image_url: Mapped[str | None] = mapped_column(String)  # denormalized
    product_price: Mapped[str | None] = mapped_column(String)  # denormalized
    notes: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserRecentlyViewedProduct(UserModel):
    __tablename__ = "user_recently_viewed_products"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("user_profiles.user_id"), index=True)
    product_id: Mapped[str | None] = mapped_column(String, index=True)  # references product.products.id *logical*
    product_name: Mapped[str | None] = mapped_column(String)  # denormalized
    product_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # denormalized
    viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class UserActivity(UserModel):
    __tablename__ = "user_activities"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("user_profiles.user_id"), index=True)
    activity_type: Mapped[str | None] = mapped_column(String)
    entity_type: Mapped[str | None] = mapped_column(String)
    entity_id: Mapped[str | None] = mapped_column(String, index=True)
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class UserNotificationPreference(UserModel):
    __tablename__ = "user_notification_preferences"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, ForeignKey("user_profiles.user_id"), index=True)
    channel: Mapped[str | None] = mapped_column(String)  # email|sms|push
    category: Mapped[str | None] = mapped_column(String)
    enabled: Mapped[bool | None] = mapped_column(Boolean)
    frequency: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserEventLog(UserModel):
    __tablename__ = "user_event_logs"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    event_id: Mapped[str | None] = mapped_column(String, unique=True)
    event_type: Mapped[str | None] = mapped_column(String, index=True)
    source: Mapped[str | None] = mapped_column(String)
    payload: Mapped[str | None] = mapped_column(String)
    processed: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


def full_name_expression():
    """``first last`` in lower case, as the customer filters match it and its trigram
    index holds it (constants written inline, so PostgreSQL sees the indexed expression)."""
    blank = literal_column("''")
    return func.lower(func.coalesce(UserProfile.first_name, blank) + literal_column("' '")
                      + func.coalesce(UserProfile.last_name, blank))


PHONE_SEPARATORS = (" ", "-", "(", ")", ".", "+")


def phone_digits_expression():
    """The profile's phone with its separators taken out ("+1 (555) 010-0199" reads
    "15550100199"), as the customer filters and search match typed digits against it and its
    trigram index holds it (constants inline, so PostgreSQL sees the indexed expression)."""
    digits = UserProfile.phone
    for char in PHONE_SEPARATORS:
        digits = func.replace(digits, literal_column(f"'{char}'"), literal_column("''"))
    return digits


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_user_profiles_email_prefix", UserProfile.email, "search: customer email prefix")
contains_index("ix_user_profiles_email_trgm", UserProfile.__table__, func.lower(UserProfile.email),
               "customers list and customer filters: email contains")
contains_index("ix_user_profiles_name_trgm", UserProfile.__table__, full_name_expression(),
               "customers list and customer filters: name contains")
expression_prefix_index("ix_user_profiles_name_prefix", UserProfile.__table__, full_name_expression(),
                        "search: customer full name, exactly or its start")
contains_index("ix_user_profiles_phone_digits_trgm", UserProfile.__table__, phone_digits_expression(),
               "customers list and search: phone digits")
