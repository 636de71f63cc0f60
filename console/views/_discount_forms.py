"""The coupon, bulk generation and promotion forms (Flask-WTF, the console's strict
fields), and their translation into the workflows' inputs.

The fields parse what people type (amounts, whole numbers, capped text without control
characters); the workflows (console/workflows/coupons.py, promotions.py) then check
what the values mean together and against the databases, and name the field of each
refusal, which the view puts next to that field.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from wtforms import BooleanField, Field
from wtforms.validators import StopValidation
from wtforms.widgets import TextInput

from console import localtime
from console.forms import ChoiceField, ConsoleForm, DecimalNumberField, MoneyField, NoteField, TextField, WholeNumberField
from console.models.types import MAX_MONEY
from console.workflows import coupons as coupon_flow
from console.workflows import promotions as promotion_flow
from console.workflows.discounts import split_list

MAX_INT = coupon_flow.MAX_INT
LIST_MAX = 20_000  # a pasted list of SKUs or slugs
TIER_ROWS = 6  # rows the form shows (the workflow accepts up to promotions.MAX_TIERS)
DATETIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


class LocalDateTimeField(Field):
    """A moment typed as 2026-12-01 09:00 in the store's zone (CONSOLE_TIMEZONE), held as
    UTC; empty means none. The label names the zone. A text field, not the browser's
    date-time picker, which shows the browser's locale (12/01/2026, 09:00 AM) where
    the console writes ISO dates."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs):
        # Bound when the form is built, inside the request: the app's zone is known.
        kwargs.setdefault("render_kw", {"placeholder": "YYYY-MM-DD HH:MM", "inputmode": "numeric",
                                        "maxlength": 25, "autocomplete": "off"})
        super().__init__(f"{label} ({localtime.zone_name()})" if label else label, validators, **kwargs)
        self.raw = ""

    def process_formdata(self, valuelist):
        self.raw = str(valuelist[0]) if valuelist else ""
        self.data = None

    def process_data(self, value):
        self.data = value
        self.raw = localtime.local(value).strftime("%Y-%m-%d %H:%M") if value else ""

    def _value(self):
        return self.raw

    def pre_validate(self, form):
        text = self.raw.strip()
        if not text:
            self.data = None
            raise StopValidation()
        if len(text) <= 25:
            for fmt in DATETIME_FORMATS:
                try:
                    wall = datetime.strptime(text, fmt)
                    self.data = wall.replace(tzinfo=localtime.zone()).astimezone(timezone.utc)
                    return
                except ValueError:
                    continue
        self.data = None
        shown = text[:25] + ("…" if len(text) > 25 else "")
        raise StopValidation(f"“{shown}” is not a date and time: type it like 2026-12-01 09:00 "
                              f"({localtime.zone_name()}).")


def _list_field(label: str, hint: str):
    return NoteField(label, max_length=LIST_MAX, description=hint,
                     render_kw={"rows": 2, "maxlength": LIST_MAX, "spellcheck": "false"})


def _metadata_pairs(text: str | None) -> list[tuple[str, str]]:
    pairs = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        pairs.append((key, value) if sep else (line, ""))
    return pairs


def _metadata_text(pairs) -> str:
    return "\n".join(f"{k} = {v}" for k, v in pairs)


def apply_errors(form: ConsoleForm, errors: dict[str, str], *, only_clean: bool = False) -> None:
    """Put a workflow's refusals (field -> message) next to the form's fields; one with
    no field of its own goes to the form as a whole. ``only_clean``: leave out fields that
    already have an error of their own (their value could not even be read)."""
    for name, message in errors.items():
        field = form._fields.get(name)
        if field is not None:
            if only_clean and field.errors:
                continue
            field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]
        elif message not in form.form_errors:
            form.form_errors.append(message)


def more_problems(form: ConsoleForm, check) -> None:
    """After a form failed to parse: add what the workflow would also refuse (``check()``
    gives field -> message), so every problem shows at once. A database that can't be
    asked adds nothing; the next save says so."""
    from console.lookups import DatabaseUnavailable

    csrf = getattr(form, "csrf_token", None)
    if csrf is not None and csrf.errors:
        return  # not a form this staff member sent from the console: ask nothing more
    try:
        apply_errors(form, check(), only_clean=True)
    except DatabaseUnavailable:
        pass


# --- coupons --------------------------------------------------------------------------------

class CouponForm(ConsoleForm):
    code = TextField("Code", max_length=coupon_flow.CODE_MAX, required=True,
                     description="Letters, digits and dashes; saved in capitals; unique ignoring case.")
    name = TextField("Name", required=True)
    description = NoteField("Description", render_kw={"rows": 2})
    type = ChoiceField("Type", choices=[(t, coupon_flow.TYPE_LABELS[t]) for t in coupon_flow.TYPES])
    discount_value = DecimalNumberField("Value", required=False, places=2, maximum=MAX_MONEY,
                                        what="a percentage or an amount", example="10",
                                        description="Percent off (more than 0, at most 100) or the amount off; "
                                                    "empty for free shipping.")
    currency = TextField("Currency", max_length=3, description="Three letters, like USD.",
                         render_kw={"maxlength": 3, "class": "text-uppercase"})
    minimum_amount = MoneyField("Minimum order", required=False, currency=lambda form: form.currency.data)
    maximum_discount = MoneyField("Maximum discount", required=False, currency=lambda form: form.currency.data)
    usage_limit = WholeNumberField("Usage limit", required=False, minimum=0, maximum=MAX_INT,
                                   what="a number of uses", description="Empty: no limit.")
    usage_limit_per_user = WholeNumberField("Uses per customer", required=False, minimum=0, maximum=MAX_INT,
                                            what="a number of uses", description="Empty: no limit.")
    starts_at = LocalDateTimeField("Starts")
    ends_at = LocalDateTimeField("Ends")
    is_active = BooleanField("Enabled", default=True)
    applicable_products = _list_field("Only these products (SKUs)", "Empty: every product.")
    applicable_categories = _list_field("Only these categories (slugs)", "Empty: every category.")
    excluded_products = _list_field("Never these products (SKUs)", "")
    metadata = NoteField("Metadata", max_length=10_000, description="One key = value per line.",
                         render_kw={"rows": 2, "spellcheck": "false"})

    def fill(self, data: coupon_flow.CouponInput) -> None:
        """Show ``data`` (a coupon read back) in the form."""
        for name in ("code", "name", "description", "type", "currency", "starts_at", "ends_at", "is_active"):
            getattr(self, name).process_data(getattr(data, name))
        for name in ("discount_value", "minimum_amount", "maximum_discount", "usage_limit", "usage_limit_per_user"):
            value = getattr(data, name)
            if isinstance(value, Decimal) and name == "discount_value" and data.type == coupon_flow.TYPES.PERCENTAGE:
                value = value.normalize() if value == value.to_integral() else value
            getattr(self, name).process_data(value)
        for name in ("applicable_products", "applicable_categories", "excluded_products"):
            getattr(self, name).process_data("\n".join(getattr(data, name)))
        self.metadata.process_data(_metadata_text(data.metadata))

    def input(self) -> coupon_flow.CouponInput:
        return coupon_flow.CouponInput(
            code=self.code.data or "", name=self.name.data or "", description=self.description.data or None,
            type=self.type.data or "", discount_value=self.discount_value.data,
            minimum_amount=self.minimum_amount.data, maximum_discount=self.maximum_discount.data,
            currency=self.currency.data or None, usage_limit=self.usage_limit.data,
            usage_limit_per_user=self.usage_limit_per_user.data, starts_at=self.starts_at.data,
            ends_at=self.ends_at.data, is_active=bool(self.is_active.data),
            applicable_products=split_list(self.applicable_products.data),
            applicable_categories=split_list(self.applicable_categories.data),
            excluded_products=split_list(self.excluded_products.data),
            metadata=_metadata_pairs(self.metadata.data))


class GenerateForm(ConsoleForm):
    count = WholeNumberField("How many codes", minimum=1, maximum=coupon_flow.MAX_GENERATED, what="a number of codes",
                             description=f"From 1 to {coupon_flow.MAX_GENERATED:,}.")
    prefix = TextField("Prefix", max_length=coupon_flow.PREFIX_MAX,
                       description="Letters, digits and dashes, like SPRING-. Saved in capitals.")
    length = WholeNumberField("Random characters", minimum=coupon_flow.LENGTHS.start,
                              maximum=coupon_flow.LENGTHS.stop - 1, what="a length", default=8,
                              description=f"From the {len(coupon_flow.ALPHABET)} characters "
                                          f"{coupon_flow.ALPHABET} (no 0/O, 1/I/L).")
    uses_per_code = WholeNumberField("Uses per code", required=False, minimum=1, maximum=MAX_INT, default=1,
                                     what="a number of uses", description="Empty: the same limit as this coupon.")


# --- promotions -----------------------------------------------------------------------------

class PromotionForm(ConsoleForm):
    name = TextField("Name", required=True)
    description = NoteField("Description", render_kw={"rows": 2})
    type = ChoiceField("Type", choices=[(t, promotion_flow.TYPE_LABELS[t]) for t in promotion_flow.TYPES])
    starts_at = LocalDateTimeField("Starts")
    ends_at = LocalDateTimeField("Ends")
    # buy_x_get_y
    buy_quantity = WholeNumberField("Buy", required=False, minimum=0, maximum=MAX_INT, what="a quantity")
    buy_products = _list_field("of these products (SKUs)", "")
    buy_categories = _list_field("or of these categories (slugs)", "")
    get_quantity = WholeNumberField("Get", required=False, minimum=0, maximum=MAX_INT, what="a quantity")
    get_products = _list_field("of these products (SKUs)", "Empty: of the same items as bought.")
    get_reward = ChoiceField("At", choices=[("free", "free"), ("percent", "a percentage off")], required=False)
    get_percent = DecimalNumberField("% off", required=False, places=2, maximum=Decimal("100"),
                                     what="a percentage", example="50")
    # bundle
    bundle_products = _list_field("Products in the bundle (SKUs)", "At least two.")
    bundle_pricing = ChoiceField("Priced by", choices=[("price", "a bundle price"), ("percent", "a percentage off")],
                                 required=False)
    bundle_price = MoneyField("Bundle price", required=False, currency=lambda form: form.bundle_currency.data)
    bundle_currency = TextField("Currency", max_length=3, render_kw={"maxlength": 3, "class": "text-uppercase"})
    bundle_percent = DecimalNumberField("Percentage off", required=False, places=2, maximum=Decimal("100"),
                                        what="a percentage", example="10")
    # volume_discount
    volume_products = _list_field("Only these products (SKUs)", "Empty: every product.")
    volume_categories = _list_field("Only these categories (slugs)", "Empty: every category.")

    def tiers(self) -> list[tuple]:
        return [(getattr(self, f"tier{i}_quantity").data, getattr(self, f"tier{i}_percent").data)
                for i in range(1, TIER_ROWS + 1)]

    def tier_rows(self) -> list[tuple]:
        return [(getattr(self, f"tier{i}_quantity"), getattr(self, f"tier{i}_percent")) for i in range(1, TIER_ROWS + 1)]

    def fill(self, data: promotion_flow.PromotionInput) -> None:
        for name in ("name", "description", "type", "starts_at", "ends_at", "buy_quantity", "get_quantity",
                     "bundle_pricing", "bundle_price", "bundle_currency", "bundle_percent", "get_percent"):
            getattr(self, name).process_data(getattr(data, name) if name != "get_percent" else data.get_percent)
        self.get_reward.process_data("free" if data.get_free else "percent")
        for name in ("buy_products", "buy_categories", "get_products", "bundle_products", "volume_products",
                     "volume_categories"):
            getattr(self, name).process_data("\n".join(getattr(data, name)))
        for i, (quantity, percent) in enumerate(data.tiers[:TIER_ROWS], start=1):
            getattr(self, f"tier{i}_quantity").process_data(quantity)
            getattr(self, f"tier{i}_percent").process_data(percent)

    def input(self, kind: str) -> promotion_flow.PromotionInput:
        return promotion_flow.PromotionInput(
            name=self.name.data or "", description=self.description.data or None, type=kind,
            starts_at=self.starts_at.data, ends_at=self.ends_at.data,
            buy_quantity=self.buy_quantity.data, buy_products=split_list(self.buy_products.data),
            buy_categories=split_list(self.buy_categories.data), get_quantity=self.get_quantity.data,
            get_products=split_list(self.get_products.data), get_free=(self.get_reward.data or "free") == "free",
            get_percent=self.get_percent.data, bundle_products=split_list(self.bundle_products.data),
            bundle_pricing=self.bundle_pricing.data or "price", bundle_price=self.bundle_price.data,
            bundle_currency=self.bundle_currency.data or None, bundle_percent=self.bundle_percent.data,
            volume_products=split_list(self.volume_products.data),
            volume_categories=split_list(self.volume_categories.data), tiers=self.tiers())


for _i in range(1, TIER_ROWS + 1):
    setattr(PromotionForm, f"tier{_i}_quantity", WholeNumberField(f"Tier {_i}: from", required=False, minimum=0,
                                                                  maximum=MAX_INT, what="a quantity"))
    setattr(PromotionForm, f"tier{_i}_percent", DecimalNumberField(f"Tier {_i}: percentage off", required=False,
                                                                   places=2, maximum=Decimal("100"),
                                                                   what="a percentage", example="5"))
