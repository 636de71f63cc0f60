"""product_db: the product service's tables, as its Prisma schema creates them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import plain_index, prefix_index, service_index
from console.models.types import (JSONType, Money, TextArray, UTCDateTime, Vocabulary, foreign_key, new_id,
                                  sort_indexes, utcnow)


class ProductModel(db.Model):
    __abstract__ = True
    __bind_key__ = "product"


# products.status and products/product_variants.stockStatus, as the product service writes
# them. Low stock is not a stock status: it is read from the available quantity.
PRODUCT_STATUSES = Vocabulary("draft", "active", "archived")
STOCK_STATUSES = Vocabulary("in_stock", "out_of_stock", "backorder")


class Product(ProductModel):
    __tablename__ = "products"
    # The products list's sort columns (console/screens/product_list.py).
    __table_args__ = sort_indexes("products", "sku", "name", "price", "updated_at", screen="the products list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    sku: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    slug: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    short_description: Mapped[str | None] = mapped_column("shortDescription", Text, key="short_description")
    price: Mapped[Decimal] = mapped_column(Money)
    compare_at_price: Mapped[Decimal | None] = mapped_column("compareAtPrice", Money, key="compare_at_price")
    cost_price: Mapped[Decimal | None] = mapped_column("costPrice", Money, key="cost_price")
    status: Mapped[str] = mapped_column(Text, server_default="draft")  # draft|active|archived
    is_visible: Mapped[bool] = mapped_column(
        "isVisible", Boolean, key="is_visible", server_default=text("true"))
    stock_quantity: Mapped[int] = mapped_column(
        "stockQuantity", Integer, key="stock_quantity", server_default=text("0"))
    stock_status: Mapped[str] = mapped_column(
        "stockStatus", Text, key="stock_status", server_default="out_of_stock")  # STOCK_STATUSES
    weight: Mapped[Decimal | None] = mapped_column(Money)
    length: Mapped[Decimal | None] = mapped_column(Money)
    width: Mapped[Decimal | None] = mapped_column(Money)
    height: Mapped[Decimal | None] = mapped_column(Money)
    meta_title: Mapped[str | None] = mapped_column("metaTitle", Text, key="meta_title")
    meta_description: Mapped[str | None] = mapped_column("metaDescription", Text, key="meta_description")
    attributes: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column("publishedAt", UTCDateTime, key="published_at")
    badges: Mapped[list[str] | None] = mapped_column(TextArray)
    view_count: Mapped[int] = mapped_column("viewCount", Integer, key="view_count", server_default=text("0"))
    purchase_count: Mapped[int] = mapped_column(
        "purchaseCount", Integer, key="purchase_count", server_default=text("0"))
    search_count: Mapped[int] = mapped_column(
        "searchCount", Integer, key="search_count", server_default=text("0"))


# The product service's own indexes on products (its schema's @@index and @unique).
service_index("products_sku_key", Product.sku, unique=True)
service_index("products_slug_key", Product.slug, unique=True)
service_index("products_name_idx", Product.name)
service_index("products_price_idx", Product.price)
service_index("products_status_idx", Product.status)
service_index("products_isVisible_idx", Product.is_visible)


# The products list's search by the start of a name, any case (PostgreSQL; SQLite's LIKE
# cannot use an index for it anyway).
prefix_index("ix_products_sku_prefix", Product.sku, "the products list and search: SKU prefix")
Index("ix_products_lower_name_prefix", func.lower(Product.__table__.c.name).label("lower_name"),
      postgresql_ops={"lower_name": "varchar_pattern_ops"},
      info={"serves": "the products list: name prefix, any case", "only": "postgresql"}).ddl_if(dialect="postgresql")


class ProductVariant(ProductModel):
    __tablename__ = "product_variants"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text, foreign_key("products.id", "product_variants_productId_fkey", on_delete="CASCADE"),
        key="product_id")
    sku: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal | None] = mapped_column(Money)
    compare_at_price: Mapped[Decimal | None] = mapped_column("compareAtPrice", Money, key="compare_at_price")
    stock_quantity: Mapped[int] = mapped_column(
        "stockQuantity", Integer, key="stock_quantity", server_default=text("0"))
    stock_status: Mapped[str] = mapped_column(
        "stockStatus", Text, key="stock_status", server_default="out_of_stock")  # STOCK_STATUSES
    attributes: Mapped[Any | None] = mapped_column(JSONType)
    image_url: Mapped[str | None] = mapped_column("imageUrl", Text, key="image_url")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The product service's own indexes on product_variants (its schema's @@index and @unique).
service_index("product_variants_sku_key", ProductVariant.sku, unique=True)
service_index("product_variants_productId_idx", ProductVariant.product_id)


class ProductImage(ProductModel):
    __tablename__ = "product_images"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text, foreign_key("products.id", "product_images_productId_fkey", on_delete="CASCADE"),
        key="product_id")
    url: Mapped[str] = mapped_column(Text)
    alt_text: Mapped[str | None] = mapped_column("altText", Text, key="alt_text")
    sort_order: Mapped[int] = mapped_column("sortOrder", Integer, key="sort_order", server_default=text("0"))
    is_primary: Mapped[bool] = mapped_column(
        "isPrimary", Boolean, key="is_primary", server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The product service's own indexes on product_images (its schema's @@index and @unique).
service_index("product_images_productId_idx", ProductImage.product_id)
service_index("product_images_productId_sortOrder_idx", ProductImage.product_id, ProductImage.sort_order)


class Category(ProductModel):
    __tablename__ = "categories"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text)
    slug: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(
        "parentId", Text, foreign_key("categories.id", "categories_parentId_fkey", on_delete="SET NULL"),
        key="parent_id")
    level: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    sort_order: Mapped[int] = mapped_column("sortOrder", Integer, key="sort_order", server_default=text("0"))
    image_url: Mapped[str | None] = mapped_column("imageUrl", Text, key="image_url")
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, key="is_active", server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The product service's own indexes on categories (its schema's @@index and @unique).
service_index("categories_slug_key", Category.slug, unique=True)
service_index("categories_name_idx", Category.name)
service_index("categories_parentId_idx", Category.parent_id)
service_index("categories_isActive_idx", Category.is_active)


class ProductCategory(ProductModel):
    __tablename__ = "product_categories"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text,
        foreign_key("products.id", "product_categories_productId_fkey", on_delete="CASCADE"),
        key="product_id")
    category_id: Mapped[str] = mapped_column(
        "categoryId", Text,
        foreign_key("categories.id", "product_categories_categoryId_fkey", on_delete="CASCADE"),
        key="category_id")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The product service's own indexes on product_categories (its schema's @@index and @unique).
service_index("product_categories_productId_idx", ProductCategory.product_id)
service_index("product_categories_categoryId_idx", ProductCategory.category_id)
service_index("product_categories_productId_categoryId_key", ProductCategory.product_id,
              ProductCategory.category_id, unique=True)


class ProductInventory(ProductModel):
    __tablename__ = "product_inventory"
    # The products list by what is available (its default, lowest first), and the
    # dashboard's low-stock figure.
    __table_args__ = (Index("ix_product_inventory_available_quantity_product_id", "available_quantity", "product_id",
                            info={"serves": "the products list by availability, and the dashboard's low stock"}),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text,
        foreign_key("products.id", "product_inventory_productId_fkey", on_delete="CASCADE"), key="product_id")
    variant_id: Mapped[str | None] = mapped_column(
        "variantId", Text,
        foreign_key("product_variants.id", "product_inventory_variantId_fkey", on_delete="SET NULL"),
        key="variant_id")
    quantity: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reserved_quantity: Mapped[int] = mapped_column(
        "reservedQuantity", Integer, key="reserved_quantity", server_default=text("0"))
    available_quantity: Mapped[int] = mapped_column(
        "availableQuantity", Integer, key="available_quantity", server_default=text("0"))
    location: Mapped[str | None] = mapped_column(Text)
    last_restocked_at: Mapped[datetime | None] = mapped_column(
        "lastRestockedAt", UTCDateTime, key="last_restocked_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The product service's own indexes on product_inventory (its schema's @@index and @unique).
service_index("product_inventory_productId_key", ProductInventory.product_id, unique=True)
service_index("product_inventory_productId_idx", ProductInventory.product_id)
service_index("product_inventory_variantId_idx", ProductInventory.variant_id)
service_index("product_inventory_productId_variantId_key", ProductInventory.product_id,
              ProductInventory.variant_id, unique=True)


class ProductReview(ProductModel):
    __tablename__ = "product_reviews"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text, foreign_key("products.id", "product_reviews_productId_fkey", on_delete="CASCADE"),
        key="product_id")
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    rating: Mapped[int] = mapped_column(Integer)  # 1-5
    title: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    is_verified_purchase: Mapped[bool] = mapped_column(
        "isVerifiedPurchase", Boolean, key="is_verified_purchase", server_default=text("false"))
    is_approved: Mapped[bool] = mapped_column(
        "isApproved", Boolean, key="is_approved", server_default=text("false"))
    helpful_count: Mapped[int] = mapped_column(
        "helpfulCount", Integer, key="helpful_count", server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The product service's own indexes on product_reviews (its schema's @@index and @unique).
service_index("product_reviews_productId_idx", ProductReview.product_id)
service_index("product_reviews_userId_idx", ProductReview.user_id)
service_index("product_reviews_rating_idx", ProductReview.rating)
service_index("product_reviews_isApproved_idx", ProductReview.is_approved)
service_index("product_reviews_createdAt_idx", ProductReview.created_at)
service_index("product_reviews_productId_isApproved_rating_idx", ProductReview.product_id,
              ProductReview.is_approved, ProductReview.rating)


# The moderation queue, oldest first: only the reviews still waiting are indexed.
Index("ix_product_reviews_waiting", ProductReview.created_at, ProductReview.id,
      postgresql_where=ProductReview.is_approved.is_not(True), sqlite_where=ProductReview.is_approved.is_not(True),
      info={"serves": "the reviews moderation queue, oldest first"})


class ProductTag(ProductModel):
    __tablename__ = "product_tags"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text, foreign_key("products.id", "product_tags_productId_fkey", on_delete="CASCADE"),
        key="product_id")
    tag: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The product service's own indexes on product_tags (its schema's @@index and @unique).
service_index("product_tags_productId_idx", ProductTag.product_id)
service_index("product_tags_tag_idx", ProductTag.tag)
service_index("product_tags_productId_tag_idx", ProductTag.product_id, ProductTag.tag)


class ProductQuestion(ProductModel):
    __tablename__ = "product_questions"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text,
        foreign_key("products.id", "product_questions_productId_fkey", on_delete="CASCADE"), key="product_id")
    # references auth.users.id *logical*
    user_id: Mapped[str | None] = mapped_column("userId", Text, key="user_id")
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    # the staff user (auth.users.id), logical
    answered_by: Mapped[str | None] = mapped_column("answeredBy", Text, key="answered_by")
    answered_at: Mapped[datetime | None] = mapped_column("answeredAt", UTCDateTime, key="answered_at")
    upvotes: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    is_approved: Mapped[bool] = mapped_column(
        "isApproved", Boolean, key="is_approved", server_default=text("false"))
    reported_count: Mapped[int] = mapped_column(
        "reportedCount", Integer, key="reported_count", server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The product service's own indexes on product_questions (its schema's @@index and @unique).
service_index("product_questions_productId_idx", ProductQuestion.product_id)
service_index("product_questions_userId_idx", ProductQuestion.user_id)
service_index("product_questions_isApproved_idx", ProductQuestion.is_approved)
service_index("product_questions_createdAt_idx", ProductQuestion.created_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_product_questions_answered_by", ProductQuestion.answered_by,
            serves="logical reference lookups by answered_by (batch loader, check-refs)")


# Questions waiting for an answer, oldest first.
Index("ix_product_questions_unanswered", ProductQuestion.created_at, ProductQuestion.id,
      postgresql_where=ProductQuestion.answer.is_(None), sqlite_where=ProductQuestion.answer.is_(None),
      info={"serves": "the questions waiting for an answer, oldest first"})


class ProductStockAlert(ProductModel):
    __tablename__ = "stock_alerts"
    # The back-in-stock alerts list's sort columns.
    __table_args__ = sort_indexes("stock_alerts", "created_at", "expires_at", screen="the back-in-stock alerts list")

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text, foreign_key("products.id", "stock_alerts_productId_fkey", on_delete="CASCADE"),
        key="product_id")
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    email: Mapped[str] = mapped_column(Text)
    # No FK drawn for variant_id on stock alerts; the registry checks it.
    variant_id: Mapped[str | None] = mapped_column("variantId", Text, key="variant_id")
    notified: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    notified_at: Mapped[datetime | None] = mapped_column("notifiedAt", UTCDateTime, key="notified_at")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, key="expires_at")


# The product service's own indexes on stock_alerts (its schema's @@index and @unique).
service_index("stock_alerts_productId_idx", ProductStockAlert.product_id)
service_index("stock_alerts_userId_idx", ProductStockAlert.user_id)
service_index("stock_alerts_notified_idx", ProductStockAlert.notified)
service_index("stock_alerts_expiresAt_idx", ProductStockAlert.expires_at)
service_index("stock_alerts_userId_productId_variantId_key", ProductStockAlert.user_id,
              ProductStockAlert.product_id, ProductStockAlert.variant_id, unique=True)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_stock_alerts_variant_id", ProductStockAlert.variant_id,
            serves="logical reference lookups by variant_id (batch loader, check-refs)")


class ProductRecentlyViewed(ProductModel):
    __tablename__ = "recently_viewed_products"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text,
        foreign_key("products.id", "recently_viewed_products_productId_fkey", on_delete="CASCADE"),
        key="product_id")
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    viewed_at: Mapped[datetime] = mapped_column(
        "viewedAt", UTCDateTime, key="viewed_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The product service's own indexes on recently_viewed_products (its schema's @@index and @unique).
service_index("recently_viewed_products_userId_idx", ProductRecentlyViewed.user_id)
service_index("recently_viewed_products_productId_idx", ProductRecentlyViewed.product_id)
service_index("recently_viewed_products_userId_viewedAt_idx", ProductRecentlyViewed.user_id,
              ProductRecentlyViewed.viewed_at)
service_index("recently_viewed_products_userId_productId_key", ProductRecentlyViewed.user_id,
              ProductRecentlyViewed.product_id, unique=True)


class ProductComparison(ProductModel):
    __tablename__ = "product_comparisons"
    # A list of product ids: GIN on PostgreSQL answers "which comparisons hold this
    # product" (array containment); elsewhere a plain index on the stored list.
    __table_args__ = (Index("ix_product_comparisons_product_ids", "product_ids", postgresql_using="gin",
                            info={"serves": "logical reference lookups by product_ids (check-refs)"}),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column("userId", Text, key="user_id")  # references auth.users.id *logical*
    name: Mapped[str | None] = mapped_column(Text)
    # references product.products.id *logical*
    product_ids: Mapped[list[str] | None] = mapped_column("productIds", TextArray, key="product_ids")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime, key="updated_at", default=utcnow, onupdate=utcnow)


# The product service's own indexes on product_comparisons (its schema's @@index and @unique).
service_index("product_comparisons_userId_idx", ProductComparison.user_id)
service_index("product_comparisons_createdAt_idx", ProductComparison.created_at)


class ProductPriceHistory(ProductModel):
    __tablename__ = "price_history"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        "productId", Text, foreign_key("products.id", "price_history_productId_fkey", on_delete="CASCADE"),
        key="product_id")
    price: Mapped[Decimal] = mapped_column(Money)
    compare_at_price: Mapped[Decimal | None] = mapped_column("compareAtPrice", Money, key="compare_at_price")
    changed_by: Mapped[str | None] = mapped_column("changedBy", Text, key="changed_by")
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The product service's own indexes on price_history (its schema's @@index and @unique).
service_index("price_history_productId_idx", ProductPriceHistory.product_id)
service_index("price_history_createdAt_idx", ProductPriceHistory.created_at)
service_index("price_history_productId_createdAt_idx", ProductPriceHistory.product_id,
              ProductPriceHistory.created_at)
# The console's own: no index of the service's leads with these columns.
plain_index("ix_price_history_changed_by", ProductPriceHistory.changed_by,
            serves="logical reference lookups by changed_by (batch loader, check-refs)")


class ProductSearchHistory(ProductModel):
    __tablename__ = "product_search_history"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(
        "productId", Text,
        foreign_key("products.id", "product_search_history_productId_fkey", on_delete="SET NULL"),
        key="product_id")
    # references auth.users.id *logical*
    user_id: Mapped[str | None] = mapped_column("userId", Text, key="user_id")
    query: Mapped[str] = mapped_column(Text)
    filters: Mapped[Any | None] = mapped_column(JSONType)
    results_count: Mapped[int | None] = mapped_column("resultsCount", Integer, key="results_count")
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime, key="created_at", default=utcnow, server_default=text("CURRENT_TIMESTAMP"))


# The product service's own indexes on product_search_history (its schema's @@index and @unique).
service_index("product_search_history_userId_idx", ProductSearchHistory.user_id)
service_index("product_search_history_query_idx", ProductSearchHistory.query)
service_index("product_search_history_createdAt_idx", ProductSearchHistory.created_at)
service_index("product_search_history_userId_createdAt_idx", ProductSearchHistory.user_id,
              ProductSearchHistory.created_at)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_product_variants_sku_prefix", ProductVariant.sku, "search: variant SKU prefix")
