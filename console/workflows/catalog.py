"""Catalog changes in product_db: prices (with product_price_history), status and
visibility, and the moderation of reviews and questions. Each change locks its row,
is refused with a message when it can't be, and is recorded in the audit trail with
the staff member; nothing is half-written.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import wraps

from sqlalchemy import delete, select

from console import audit
from console.extensions import db
from console.lookups import database
from console.models.product import (PRODUCT_STATUSES, Product, ProductInventory, ProductPriceHistory,
                                    ProductQuestion, ProductReview, ProductVariant)
from console.models.types import utcnow
from console.workflows import WorkflowError
from console.workflows.inventory import clean_text


def _on_product_db(workflow):
    """product_db not answering becomes DatabaseUnavailable("product") (nothing written)."""
    @wraps(workflow)
    def wrapped(*args, **kwargs):
        with database("product"):
            return workflow(*args, **kwargs)
    return wrapped

STATUSES = PRODUCT_STATUSES
# draft -> active -> archived, and back one step at a time.
STATUS_STEPS = {"draft": ("active",), "active": ("archived", "draft"), "archived": ("active",), None: STATUSES}
MAX_REASON = 200
# A new price this many times the current one, or this fraction of it, is asked about
# first: more often a slipped digit than a decision.
FAR_PRICE = 5


def lock_product(product_id: str) -> Product:
    product = db.session.scalar(select(Product).where(Product.id == product_id).with_for_update()
                                .execution_options(populate_existing=True))
    if product is None:
        db.session.rollback()
        raise WorkflowError(f"No product with id “{product_id}”.", 404)
    return product


@dataclass
class PriceChange:
    product: Product
    variant: ProductVariant | None
    before: dict
    after: dict


@_on_product_db
def price_question(before, after) -> str | None:
    """The question a price change far from the current price asks (None when near):
    "22.00 → 171.50 is 7.8 times the price: sure?"."""
    if not before or not after or before <= 0 or after <= 0:
        return None
    ratio = after / before
    if ratio >= FAR_PRICE:
        return f"{before:.2f} → {after:.2f} is {ratio:.1f} times the price: sure?"
    if ratio <= Decimal(1) / FAR_PRICE:
        return f"{before:.2f} → {after:.2f} is {ratio * 100:.0f}% of the price: sure?"
    return None


def change_price(actor, product_id: str, *, price, compare_at_price=None, reason: str,
                 variant_id: str | None = None, confirmed: bool = False) -> PriceChange:
    """A new price (and compare-at price) for the product or one of its variants: a
    product_price_history row with changed_by, the row updated, the audit trail.
    ``price``/``compare_at_price`` are Decimals (the form parses them strictly). A price
    far from the current one needs ``confirmed`` (NeedsConfirmation asks price_question)."""
    reason = clean_text(reason, "a reason", MAX_REASON, required=True)
    if price is None or price <= 0:
        raise WorkflowError("The price must be above zero.", 422)
    if compare_at_price is not None and compare_at_price <= price:
        raise WorkflowError("The compare-at price (the “was” price) must be above the price, or left empty.", 422)
    product = lock_product(product_id)
    variant = None
    if variant_id:
        variant = db.session.scalar(select(ProductVariant).where(
            ProductVariant.id == variant_id, ProductVariant.product_id == product.id).with_for_update())
        if variant is None:
            db.session.rollback()
            raise WorkflowError(f"{product.sku} has no variant {variant_id}.", 404)
        if compare_at_price is not None:
            db.session.rollback()
            raise WorkflowError("A variant has a price only; leave the compare-at price empty.", 422)
    target = variant or product
    before = {"price": target.price, "compare_at_price": getattr(target, "compare_at_price", None)}
    after = {"price": price, "compare_at_price": compare_at_price if variant is None else None}
    if before == after:
        db.session.rollback()
        raise WorkflowError(f"{target.sku} already costs {price}"
                            + (f" (was {compare_at_price})" if compare_at_price else "") + ": nothing changed.")
    question = None if confirmed else price_question(before["price"], price)
    if question:
        db.session.rollback()
        raise NeedsConfirmation(question, yes="Change the price", no=f"Keep {before['price']:.2f}")
    now = utcnow()
    target.price = price
    if variant is None:
        product.compare_at_price = compare_at_price
    target.updated_at = now
    db.session.add(ProductPriceHistory(
        product_id=product.id, price=price, compare_at_price=after["compare_at_price"],
        changed_by=getattr(actor, "id", None),
        reason=(f"variant {variant.sku}: {reason}" if variant is not None else reason)[:255], created_at=now))
    audit.record(actor, "product.price_changed", "product", product.id, before=before, after=after,
                 reason=reason, sku=product.sku, variant_id=variant_id,
                 variant_sku=variant.sku if variant is not None else None)
    db.session.commit()
    return PriceChange(product, variant, before, after)


class NeedsConfirmation(WorkflowError):
    """An action that is allowed but deserves a second look (archiving reserved stock,
    a price far from the current one): the question, and its two answers' labels."""

    def __init__(self, message: str, *, yes: str, no: str):
        super().__init__(message, 409)
        self.yes, self.no = yes, no


@_on_product_db
def change_status(actor, product_id: str, status: str, *, reason: str, confirmed: bool = False) -> Product:
    """draft -> active -> archived and back one step. Archiving a product whose stock
    open orders still reserve needs ``confirmed`` (NeedsConfirmation says why)."""
    reason = clean_text(reason, "a reason", MAX_REASON, required=True)
    if status not in STATUSES:
        raise WorkflowError(f"Status must be one of: {', '.join(STATUSES)}.", 422)
    product = lock_product(product_id)
    current = product.status
    if current == status:
        db.session.rollback()
        raise WorkflowError(f"{product.sku} is already {status}.")
    if status not in STATUS_STEPS.get(current, STATUSES):
        db.session.rollback()
        raise WorkflowError(f"{product.sku} is {current}: it can go to "
                            f"{' or '.join(STATUS_STEPS.get(current, STATUSES))}, not straight to {status}.")
    if status == "archived" and not confirmed:
        reserved = db.session.scalar(select(ProductInventory.reserved_quantity)
                                     .where(ProductInventory.product_id == product.id)) or 0
        if reserved > 0:
            db.session.rollback()
            raise NeedsConfirmation(f"{reserved} unit{'s' if reserved != 1 else ''} of {product.sku} "
                                    "are reserved by open orders. Archive it anyway? The orders keep their "
                                    "items; the shop stops offering it.",
                                    yes="Archive anyway", no=f"Keep it {current}")
    product.status = status
    product.updated_at = utcnow()
    audit.record(actor, "product.status_changed", "product", product.id, before={"status": current},
                 after={"status": status}, reason=reason, sku=product.sku)
    db.session.commit()
    return product


@_on_product_db
def set_visibility(actor, product_id: str, visible: bool, *, reason: str) -> Product:
    reason = clean_text(reason, "a reason", MAX_REASON, required=True)
    product = lock_product(product_id)
    if bool(product.is_visible) == visible:
        db.session.rollback()
        raise WorkflowError(f"{product.sku} is already {'visible' if visible else 'hidden'}.")
    before = product.is_visible
    product.is_visible = visible
    product.updated_at = utcnow()
    audit.record(actor, "product.visibility_changed", "product", product.id, before={"is_visible": before},
                 after={"is_visible": visible}, reason=reason, sku=product.sku)
    db.session.commit()
    return product


# --- reviews and questions ------------------------------------------------------------------

MAX_ANSWER = 2000
MAX_BATCH = 200  # a page of the moderation queue


def review_waiting():
    """Reviews waiting for approval (the shop shows only approved ones)."""
    return ProductReview.is_approved.is_not(True)


def question_waiting():
    """Questions nobody has answered yet."""
    return ProductQuestion.answer.is_(None)


@dataclass
class Moderated:
    decision: str
    done: list[str]  # ids changed
    skipped: int  # already moderated meanwhile, or gone


@_on_product_db
def moderate_reviews(actor, review_ids, decision: str) -> Moderated:
    """Approve (the shop shows it) or reject (removed; the audit trail keeps its whole
    text) the waiting reviews among ``review_ids``. Reviews moderated meanwhile by
    someone else are skipped, not changed twice."""
    if decision not in ("approve", "reject"):
        raise WorkflowError("Choose approve or reject.", 422)
    ids = sorted({i for i in review_ids or [] if isinstance(i, str) and i and len(i) <= 64 and i.isprintable()})
    if not ids:
        raise WorkflowError("Select at least one review.", 422)
    if len(ids) > MAX_BATCH:
        raise WorkflowError(f"Moderate at most {MAX_BATCH} reviews at once.", 422)
    rows = list(db.session.scalars(select(ProductReview).where(ProductReview.id.in_(ids), review_waiting())
                                   .order_by(ProductReview.id).with_for_update()
                                   .execution_options(populate_existing=True)))
    now = utcnow()
    for review in rows:
        content = {"rating": review.rating, "title": review.title, "comment": review.comment,
                   "user_id": review.user_id, "product_id": review.product_id,
                   "is_verified_purchase": review.is_verified_purchase}
        if decision == "approve":
            review.is_approved = True
            review.updated_at = now
            audit.record(actor, "review.approved", "product_review", review.id, before={"is_approved": False},
                         after={"is_approved": True}, product_id=review.product_id)
        else:
            audit.record(actor, "review.rejected", "product_review", review.id, before=content, after=None,
                         product_id=review.product_id)
    if decision == "reject" and rows:
        db.session.execute(delete(ProductReview).where(ProductReview.id.in_([r.id for r in rows])))
    db.session.commit()
    return Moderated(decision, [r.id for r in rows], len(ids) - len(rows))


@_on_product_db
def _question_id(question_id: str) -> str:
    if not isinstance(question_id, str) or len(question_id) > 64 or not question_id.isprintable():
        raise WorkflowError("No such question.", 404)
    return question_id


def answer_question(actor, question_id: str, answer: str) -> ProductQuestion:
    """The staff member's answer, published (approved); answering one already answered
    meanwhile is refused rather than overwriting it."""
    answer = clean_text(answer, "the answer", MAX_ANSWER, required=True)
    question_id = _question_id(question_id)
    question = db.session.scalar(select(ProductQuestion).where(ProductQuestion.id == question_id)
                                 .with_for_update().execution_options(populate_existing=True))
    if question is None:
        db.session.rollback()
        raise WorkflowError(f"No question with id “{question_id}”.", 404)
    if question.answer:
        db.session.rollback()
        raise WorkflowError("This question was answered meanwhile; its answer is shown. Nothing was changed.")
    question.answer, question.answered_by, question.is_approved = answer, getattr(actor, "id", None), True
    question.updated_at = utcnow()
    audit.record(actor, "question.answered", "product_question", question.id, before={"answer": None},
                 after={"answer": answer}, product_id=question.product_id)
    db.session.commit()
    return question


@_on_product_db
def reject_question(actor, question_id: str, reason: str | None = None) -> None:
    """Remove a question that should not be published (spam, abuse); the audit trail
    keeps its text."""
    reason = clean_text(reason, "a reason", MAX_REASON)
    question_id = _question_id(question_id)
    question = db.session.scalar(select(ProductQuestion).where(ProductQuestion.id == question_id)
                                 .with_for_update().execution_options(populate_existing=True))
    if question is None:
        db.session.rollback()
        raise WorkflowError("This question is gone: someone removed it meanwhile.", 404)
    if question.answer:
        db.session.rollback()
        raise WorkflowError("This question was answered meanwhile; it stays.")
    audit.record(actor, "question.rejected", "product_question", question.id,
                 before={"question": question.question, "user_id": question.user_id}, after=None,
                 product_id=question.product_id, reason=reason)
    db.session.delete(question)
    db.session.commit()
