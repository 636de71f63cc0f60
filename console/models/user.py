"""user_db: the user service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Integer, Text, func, literal_column, text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import contains_index, expression_prefix_index, prefix_index, service_index
from console.models.types import JSONType, Money, UTCDateTime, foreign_key, new_id, sort_indexes, utcnow


class UserModel(db.Model):
    __abstract__ = True
    __bind_key__ = "user"


def full_name(first: str | None, last: str | None) -> str:
    """"First Last", either part left out when empty; "" when both are."""
    return " ".join(part for part in (first, last) if part)


class UserProfile(UserModel):
    __tablename__ = "user_profiles"
    # The customers list's sort columns (console/screens/customers.py).
    __table_args__ = sort_indexes("user_profiles", "created_at", "last_name", "email", screen="the customers list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    email: Mapped[str] = mapped_column(Text)  # denormalized
    first_name: Mapped[str | None] = mapped_column("firstName", Text, key="first_name")
    last_name: Mapped[str | None] = mapped_column("lastName", Text, key="last_name")
    phone: Mapped[str | None] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column("avatarUrl", Text, key="avatar_url")
    date_of_birth: Mapped[datetime | None] = mapped_column("dateOfBirth", UTCDateTime, key="date_of_birth")
    gender: Mapped[str | None] = mapped_column(Text)
    preferred_currency: Mapped[str | None] = mapped_column(
        "preferredCurrency", Text, key="preferred_currency", server_default="USD")
    preferred_language: Mapped[str | None] = mapped_column(
        "preferredLanguage", Text, key="preferred_language", server_default="en")
    newsletter_subscribed: Mapped[bool] = mapped_column(
        "newsletterSubscribed", Boolean, key="newsletter_subscribed", server_default=text("false"))
    marketing_opt_in: Mapped[bool] = mapped_column(
        "marketingOptIn", Boolean, key="marketing_opt_in", server_default=text("false"))
    # synced from auth
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    email_verified: Mapped[bool] = mapped_column(
        "emailVerified", Boolean, key="email_verified", server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column("lastLoginAt", UTCDateTime, key="last_login_at")
    profile_completion_score: Mapped[int] = mapped_column(
        "profileCompletionScore", Integer, key="profile_completion_score", server_default=text("0"))

    @hybrid_property
    def full_name(self) -> str:
        return full_name(self.first_name, self.last_name)

    @full_name.inplace.expression
    @classmethod
    def _full_name_expression(cls):
        # In SQL, for searching: both parts with one space between ("" for a missing part).
        return func.coalesce(cls.first_name, "") + " " + func.coalesce(cls.last_name, "")


# The user service's own indexes on user_profiles (its schema's @@index and @unique).
service_index("user_profiles_userId_key", UserProfile.user_id, unique=True)
service_index("user_profiles_email_key", UserProfile.email, unique=True)
service_index("user_profiles_userId_idx", UserProfile.user_id)
service_index("user_profiles_email_idx", UserProfile.email)
service_index("user_profiles_isActive_idx", UserProfile.is_active)
service_index("user_profiles_profileCompletionScore_idx", UserProfile.profile_completion_score)


# In user_db every user_id holds the auth user id; the FK goes to user_profiles.user_id.
class UserAddress(UserModel):
    __tablename__ = "addresses"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, foreign_key("user_profiles.user_id", "addresses_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    type: Mapped[str] = mapped_column(Text)  # shipping|billing|both
    is_default: Mapped[bool] = mapped_column(
        "isDefault", Boolean, key="is_default", server_default=text("false"))
    first_name: Mapped[str] = mapped_column("firstName", Text, key="first_name")
    last_name: Mapped[str] = mapped_column("lastName", Text, key="last_name")
    company: Mapped[str | None] = mapped_column(Text)
    address_line1: Mapped[str] = mapped_column("addressLine1", Text, key="address_line1")
    address_line2: Mapped[str | None] = mapped_column("addressLine2", Text, key="address_line2")
    city: Mapped[str] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    postal_code: Mapped[str] = mapped_column("postalCode", Text, key="postal_code")
    country: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The user service's own indexes on addresses (its schema's @@index and @unique).
service_index("addresses_userId_idx", UserAddress.user_id)
service_index("addresses_userId_type_idx", UserAddress.user_id, UserAddress.type)


class UserPaymentMethod(UserModel):
    __tablename__ = "payment_methods"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text,
        foreign_key("user_profiles.user_id", "payment_methods_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    type: Mapped[str] = mapped_column(Text)  # credit_card|paypal|bank_account
    is_default: Mapped[bool] = mapped_column(
        "isDefault", Boolean, key="is_default", server_default=text("false"))
    card_type: Mapped[str | None] = mapped_column("cardType", Text, key="card_type")
    last4: Mapped[str | None] = mapped_column(Text)
    expiry_month: Mapped[str | None] = mapped_column("expiryMonth", Text, key="expiry_month")
    expiry_year: Mapped[str | None] = mapped_column("expiryYear", Text, key="expiry_year")
    cardholder_name: Mapped[str | None] = mapped_column("cardholderName", Text, key="cardholder_name")
    billing_address_id: Mapped[str | None] = mapped_column("billingAddressId", Text, key="billing_address_id")
    # encrypted
    provider_token: Mapped[str | None] = mapped_column("providerToken", Text, key="provider_token")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The user service's own indexes on payment_methods (its schema's @@index and @unique).
service_index("payment_methods_userId_idx", UserPaymentMethod.user_id)
service_index("payment_methods_userId_type_idx", UserPaymentMethod.user_id, UserPaymentMethod.type)


class UserPreference(UserModel):
    __tablename__ = "user_preferences"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text,
        foreign_key("user_profiles.user_id", "user_preferences_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    # The diagram marks key alone as UK (not user_id + key); kept as drawn so the
    # console matches the service's real table.
    key: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The user service's own indexes on user_preferences (its schema's @@index and @unique).
service_index("user_preferences_userId_idx", UserPreference.user_id)
service_index("user_preferences_userId_key_key", UserPreference.user_id, UserPreference.key, unique=True)


class UserWishlistItem(UserModel):
    __tablename__ = "wishlist_items"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text,
        foreign_key("user_profiles.user_id", "wishlist_items_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    # references product.products.id *logical*
    product_id: Mapped[str] = mapped_column("productId", Text, key="product_id")
    product_name: Mapped[str | None] = mapped_column("productName", Text, key="product_name")  # denormalized
    # denormalized
    product_image_url: Mapped[str | None] = mapped_column("productImageUrl", Text, key="product_image_url")
    # denormalized
    product_price: Mapped[str | None] = mapped_column("productPrice", Text, key="product_price")
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The user service's own indexes on wishlist_items (its schema's @@index and @unique).
service_index("wishlist_items_userId_idx", UserWishlistItem.user_id)
service_index("wishlist_items_productId_idx", UserWishlistItem.product_id)
service_index("wishlist_items_userId_productId_key", UserWishlistItem.user_id, UserWishlistItem.product_id,
              unique=True)


class UserRecentlyViewedProduct(UserModel):
    __tablename__ = "recently_viewed_products"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text,
        foreign_key("user_profiles.user_id", "recently_viewed_products_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    # references product.products.id *logical*
    product_id: Mapped[str] = mapped_column("productId", Text, key="product_id")
    product_name: Mapped[str | None] = mapped_column("productName", Text, key="product_name")  # denormalized
    product_image_url: Mapped[str | None] = mapped_column("productImageUrl", Text, key="product_image_url")
    # denormalized
    product_price: Mapped[Decimal | None] = mapped_column("productPrice", Money, key="product_price")
    viewed_at: Mapped[datetime] = mapped_column(
        "viewedAt", UTCDateTime, key="viewed_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The user service's own indexes on recently_viewed_products (its schema's @@index and @unique).
service_index("recently_viewed_products_userId_idx", UserRecentlyViewedProduct.user_id)
service_index("recently_viewed_products_productId_idx", UserRecentlyViewedProduct.product_id)
service_index("recently_viewed_products_userId_viewedAt_idx", UserRecentlyViewedProduct.user_id,
              UserRecentlyViewedProduct.viewed_at)
service_index("recently_viewed_products_userId_productId_key", UserRecentlyViewedProduct.user_id,
              UserRecentlyViewedProduct.product_id, unique=True)


class UserActivity(UserModel):
    __tablename__ = "user_activities"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text,
        foreign_key("user_profiles.user_id", "user_activities_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    activity_type: Mapped[str] = mapped_column("activityType", Text, key="activity_type")
    entity_type: Mapped[str | None] = mapped_column("entityType", Text, key="entity_type")
    entity_id: Mapped[str | None] = mapped_column("entityId", Text, key="entity_id")
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType, key="metadata_")
    ip_address: Mapped[str | None] = mapped_column("ipAddress", Text, key="ip_address")
    user_agent: Mapped[str | None] = mapped_column("userAgent", Text, key="user_agent")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The user service's own indexes on user_activities (its schema's @@index and @unique).
service_index("user_activities_userId_idx", UserActivity.user_id)
service_index("user_activities_activityType_idx", UserActivity.activity_type)
service_index("user_activities_createdAt_idx", UserActivity.created_at)
service_index("user_activities_userId_createdAt_idx", UserActivity.user_id, UserActivity.created_at)


class UserNotificationPreference(UserModel):
    __tablename__ = "notification_preferences"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId", Text,
        foreign_key("user_profiles.user_id", "notification_preferences_userId_fkey", on_delete="CASCADE"),
        key="user_id")
    channel: Mapped[str] = mapped_column(Text)  # email|sms|push
    category: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    frequency: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The user service's own indexes on notification_preferences (its schema's @@index and @unique).
service_index("notification_preferences_userId_idx", UserNotificationPreference.user_id)
service_index("notification_preferences_channel_idx", UserNotificationPreference.channel)
service_index("notification_preferences_userId_channel_category_key", UserNotificationPreference.user_id,
              UserNotificationPreference.channel, UserNotificationPreference.category, unique=True)


class UserEventLog(UserModel):
    __tablename__ = "event_logs"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column("eventId", Text, key="event_id")
    event_type: Mapped[str] = mapped_column("eventType", Text, key="event_type")
    source: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    processed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    processed_at: Mapped[datetime | None] = mapped_column("processedAt", UTCDateTime, key="processed_at")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The user service's own indexes on event_logs (its schema's @@index and @unique).
service_index("event_logs_eventId_key", UserEventLog.event_id, unique=True)
service_index("event_logs_eventId_idx", UserEventLog.event_id)
service_index("event_logs_eventType_idx", UserEventLog.event_type)
service_index("event_logs_processed_idx", UserEventLog.processed)


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
