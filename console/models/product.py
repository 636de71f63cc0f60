"""product_db: the product service's tables, exactly as the master ER diagram gives them."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from console.extensions import db
from console.models.indexing import prefix_index
from console.models.types import JSONType, TextArray, UTCDateTime, Vocabulary, new_id, sort_indexes, utcnow


class ProductModel(db.Model):
    __abstract__ = True
    __bind_key__ = "product"


# products.status and products/product_variants.stockStatus, as the product service writes
# them. Low stock is not a stock status: it is read from the available quantity.
PRODUCT_STATUSES = Vocabulary("draft", "active", "archived")
STOCK_STATUSES = Vocabulary("in_stock", "out_of_stock", "backorder")


class Product(ProductModel):
    __tablename__ = "products"
    # The products list's sort columns (console/screens/product_list.py), and its search
    # by the start of a SKU or a name (pattern ops: prefix LIKE under any collation).
    __table_args__ = (
        *sort_indexes("products", "sku", "name", "price", "updated_at"),
        Index("ix_products_sku_prefix", "sku", postgresql_ops={"sku": "varchar_pattern_ops"}),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    sku: Mapped[str | None] = mapped_column(String, unique=True)
    name: Mapped[str | None] = mapped_column(String, index=True)
    slug: Mapped[str | None] = mapped_column(String, unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    compare_at_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    status: Mapped[str | None] = mapped_column(String, index=True)  # draft|active|archived
    is_visible: Mapped[bool | None] = mapped_column(Boolean)
    stock_quantity: Mapped[int | None] = mapped_column(Integer)
    stock_status: Mapped[str | None] = mapped_column(String)  # in_stock|out_of_stock|backorder
    weight: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    badges: Mapped[list[str] | None] = mapped_column(TextArray)
    view_count: Mapped[int | None] = mapped_column(Integer)
    purchase_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The products list's search by the start of a name, any case (PostgreSQL; SQLite's LIKE
# cannot use an index for it anyway).
Index("ix_products_lower_name_prefix", func.lower(Product.__table__.c.name).label("lower_name"),
      postgresql_ops={"lower_name": "varchar_pattern_ops"}).ddl_if(dialect="postgresql")


class ProductVariant(ProductModel):
    __tablename__ = "product_variants"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    sku: Mapped[str | None] = mapped_column(String, unique=True)
    name: Mapped[str | None] = mapped_column(String, index=True)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    stock_quantity: Mapped[int | None] = mapped_column(Integer)
    stock_status: Mapped[str | None] = mapped_column(String)
    attributes: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProductImage(ProductModel):
    __tablename__ = "product_images"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    url: Mapped[str | None] = mapped_column(String)
    alt_text: Mapped[str | None] = mapped_column(String)
    sort_order: Mapped[int | None] = mapped_column(Integer)
    is_primary: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class Category(ProductModel):
    __tablename__ = "categories"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String, index=True)
    slug: Mapped[str | None] = mapped_column(String, unique=True)
    parent_id: Mapped[str | None] = mapped_column(String, ForeignKey("categories.id"), index=True)
    level: Mapped[int | None] = mapped_column(Integer)
    sort_order: Mapped[int | None] = mapped_column(Integer)
    image_url: Mapped[str | None] = mapped_column(String)
    is_active: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProductCategory(ProductModel):
    __tablename__ = "product_categories"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    category_id: Mapped[str | None] = mapped_column(String, ForeignKey("categories.id"), index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class ProductInventory(ProductModel):
    __tablename__ = "product_inventory"
    # The products list by what is available (its default, lowest first), and the
    # dashboard's low-stock figure.
    __table_args__ = (Index("ix_product_inventory_available_quantity_product_id", "available_quantity", "product_id"),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), unique=True)
    variant_id: Mapped[str | None] = mapped_column(String, ForeignKey("product_variants.id"), index=True)
    quantity: Mapped[int | None] = mapped_column(Integer)
    reserved_quantity: Mapped[int | None] = mapped_column(Integer)
    available_quantity: Mapped[int | None] = mapped_column(Integer)
    location: Mapped[str | None] = mapped_column(String)
    last_restocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProductReview(ProductModel):
    __tablename__ = "product_reviews"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    rating: Mapped[int | None] = mapped_column(Integer)  # 1-5
    title: Mapped[str | None] = mapped_column(String)
    comment: Mapped[str | None] = mapped_column(Text)
    is_verified_purchase: Mapped[bool | None] = mapped_column(Boolean)
    is_approved: Mapped[bool | None] = mapped_column(Boolean)
    helpful_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The moderation queue, oldest first: only the reviews still waiting are indexed.
Index("ix_product_reviews_waiting", ProductReview.created_at, ProductReview.id,
      postgresql_where=ProductReview.is_approved.is_not(True), sqlite_where=ProductReview.is_approved.is_not(True))


class ProductTag(ProductModel):
    __tablename__ = "product_tags"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    tag: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class ProductQuestion(ProductModel):
    __tablename__ = "product_questions"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    question: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String, index=True)  # the staff user (auth.users.id), logical
    upvotes: Mapped[int | None] = mapped_column(Integer)
    is_approved: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# Questions waiting for an answer, oldest first.
Index("ix_product_questions_unanswered", ProductQuestion.created_at, ProductQuestion.id,
      postgresql_where=ProductQuestion.answer.is_(None), sqlite_where=ProductQuestion.answer.is_(None))


class ProductStockAlert(ProductModel):
    __tablename__ = "product_stock_alerts"
    # The back-in-stock alerts list's sort columns.
    __table_args__ = sort_indexes("product_stock_alerts", "created_at", "expires_at")

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    email: Mapped[str | None] = mapped_column(String, index=True)
    # No FK drawn for variant_id on stock alerts; the registry checks it.
    variant_id: Mapped[str | None] = mapped_column(String, index=True)
    notified: Mapped[bool | None] = mapped_column(Boolean)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class ProductRecentlyViewed(ProductModel):
    __tablename__ = "product_recently_viewed"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class ProductComparison(ProductModel):
    __tablename__ = "product_comparisons"
    # A list of product ids: GIN on PostgreSQL answers "which comparisons hold this
    # product" (array containment); elsewhere a plain index on the stored list.
    __table_args__ = (Index("ix_product_comparisons_product_ids", "product_ids", postgresql_using="gin"),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    name: Mapped[str | None] = mapped_column(String, index=True)
    product_ids: Mapped[list[str] | None] = mapped_column(TextArray)  # references product.products.id *logical*
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProductPriceHistory(ProductModel):
    __tablename__ = "product_price_history"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    compare_at_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    changed_by: Mapped[str | None] = mapped_column(String, index=True)
    reason: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


class ProductSearchHistory(ProductModel):
    __tablename__ = "product_search_history"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    product_id: Mapped[str | None] = mapped_column(String, ForeignKey("products.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String, index=True)  # references auth.users.id *logical*
    query: Mapped[str | None] = mapped_column(String)
    filters: Mapped[Any | None] = mapped_column(JSONType)
    results_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=utcnow)


# --- indexes the screens rely on (console/models/indexing.py) ------------------------------
prefix_index("ix_product_variants_sku_prefix", ProductVariant.sku, "search: variant SKU prefix")
