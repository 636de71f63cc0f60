"""WTForms used by the views (Flask-WTF adds the CSRF token), and the console's strict
fields that every form is built from.

Every POST form is a ``ConsoleForm`` declared next to its screen. Its fields parse what
people really type and refuse the rest with a message that says what to type:

- ``MoneyField``: ``12.50``, ``12.5``, ``12`` (surrounding spaces allowed); no commas,
  underscores, exponents, signs, non-ASCII digits, NaN or Infinity; no more decimals
  than the currency has (JPY none) and at most ``MONEY_INTEGER_DIGITS`` digits before
  the point (what a money column, ``DECIMAL(10,2)``, holds).
- ``WholeNumberField``: ASCII digits only, within a range.
- ``TextField`` / ``NoteField``: a server-side length cap; NUL and control characters
  refused (a note may hold line breaks and tabs).

``ConsoleForm`` also refuses NUL and control characters in *every* field, selects and
hidden fields included. ``parse_money`` and ``parse_whole_number`` are the same rules
for values that do not come through a form (query strings, workflows).

``templates/_forms.html`` renders a form's errors next to its fields, the same for
htmx partials and full pages.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import (
    EmailField, Field, PasswordField, SelectField, SelectMultipleField, StringField, TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, StopValidation, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget, TextInput

from console.models.types import MONEY_INTEGER_DIGITS
from console.permissions import STAFF_ROLES

# --- limits ------------------------------------------------------------------------------

#: Reasons, notes, descriptions: what staff write in a sentence or a paragraph.
NOTE_MAX = 2000
#: Names, carriers, locations, statuses: one line.
NAME_MAX = 200
#: Anything longer than this is not an amount or a number someone typed.
_RAW_MAX = 64

# ISO 4217 currencies without minor units. Every other currency gets two decimals:
# the money columns keep two, so three-decimal currencies (BHD, KWD, …) stop at two.
ZERO_DECIMAL_CURRENCIES = frozenset({
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
    "VND", "VUV", "XAF", "XOF", "XPF",
})


def currency_decimals(currency: str | None) -> int:
    return 0 if (currency or "").strip().upper() in ZERO_DECIMAL_CURRENCIES else 2


# --- control characters ------------------------------------------------------------------

# C0 controls, DEL and C1 controls. Line breaks and tabs are allowed where text may span
# lines (notes, reasons); nowhere else.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """The first control character in ``text`` that is not allowed, or None."""
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(text)
    return found.group() if found else None


def control_message(char: str) -> str:
    what = "a NUL byte" if char == "\x00" else f"a control character (U+{ord(char):04X})"
    return f"Contains {what}, which is not allowed: type plain text."


# --- money -------------------------------------------------------------------------------

_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def money_example(currency: str | None) -> str:
    return "1250" if currency_decimals(currency) == 0 else "12.50"


def money_problem(text: str, currency: str | None = None, *,
                  integer_digits: int = MONEY_INTEGER_DIGITS) -> str | None:
    """Why ``text`` (already stripped) is not an amount in ``currency``, or None."""
    example = money_example(currency)
    decimals = currency_decimals(currency)
    plain = f"Write the amount with the digits 0-9{'' if decimals == 0 else ' and a point for decimals'}, like {example}."
    if len(text) > _RAW_MAX:
        return f"That is not an amount. {plain}"
    match = _AMOUNT.fullmatch(text)
    if match is None:
        if "," in text:
            return (f"Use no commas: {'amounts in ' + currency + ' have no decimals' if decimals == 0 and currency else 'a point separates the decimals and there is no thousands separator'}. "
                    f"Write it like {example}.")
        if text[:1] in "+-":
            return f"Write the amount without a sign, like {example}."
        if any(ch.isdigit() and not ("0" <= ch <= "9") for ch in text):
            return f"Use the digits 0-9 only. {plain}"
        return f"“{text}” is not an amount. {plain}"
    whole, fraction = match.group(1), match.group(2) or ""
    if len(whole.lstrip("0")) > integer_digits:
        return f"That is more than {integer_digits} digits before the decimal point. {plain}"
    if len(fraction) > decimals:
        if decimals == 0:
            return f"Amounts in {currency} have no decimals: write it like {example}."
        return f"Amounts{' in ' + currency if currency else ''} have at most two decimals: write it like {example}."
    return None


def parse_money(raw, currency: str | None = None, *, integer_digits: int = MONEY_INTEGER_DIGITS) -> Decimal:
    """A non-negative amount from what was typed, or ValueError with a message saying
    what to type. A Decimal passes through the same checks."""
    text = format(raw, "f") if isinstance(raw, Decimal) else str(raw if raw is not None else "").strip()
    if not text:
        raise ValueError(f"Enter an amount, like {money_example(currency)}.")
    problem = money_problem(text, currency, integer_digits=integer_digits)
    if problem:
        raise ValueError(problem)
    return Decimal(text).quantize(Decimal(1).scaleb(-currency_decimals(currency)))


# --- whole numbers -----------------------------------------------------------------------

_WHOLE = re.compile(r"[0-9]+", re.ASCII)


def parse_whole_number(raw, minimum: int = 0, maximum: int = 1_000_000, what: str = "a whole number") -> int:
    """An int from ASCII digits within [minimum, maximum], or ValueError saying what to type."""
    text = str(raw if raw is not None else "").strip()
    hint = f"Type {what} from {minimum} to {maximum} with the digits 0-9, like {max(minimum, min(maximum, 1))}."
    if not text:
        raise ValueError(f"Enter {what}. {hint}")
    if len(text) > _RAW_MAX or not _WHOLE.fullmatch(text):
        raise ValueError(f"“{text[:20]}{'…' if len(text) > 20 else ''}” is not {what}. {hint}")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or not minimum <= int(digits) <= maximum:
        raise ValueError(f"{text[:20]} is out of range. {hint}")
    return int(digits)


# --- fields ------------------------------------------------------------------------------

class _RawTextField(Field):
    """A one-value field that keeps what was typed (shown again on a refusal) and parses
    it in pre_validate, where the form's runtime settings (a currency, a maximum) are known."""
    widget = TextInput()

    def __init__(self, label=None, validators=None, *, required: bool = True, **kwargs):
        super().__init__(label, validators, **kwargs)
        self._form = kwargs.get("_form")
        self.required = required
        self.raw = ""

    def process_formdata(self, valuelist):
        if valuelist:
            self.raw = str(valuelist[0])
        self.data = None

    def process_data(self, value):
        self.data = value
        self.raw = "" if value is None else str(value)

    def _value(self):
        return self.raw

    def _parse(self, text: str):  # pragma: no cover - each field defines it
        raise NotImplementedError

    def pre_validate(self, form):
        text = self.raw.strip()
        if not text:
            self.data = None
            if self.required:
                raise StopValidation(self._missing())
            raise StopValidation()
        try:
            self.data = self._parse(text)
        except ValueError as exc:
            self.data = None
            raise StopValidation(str(exc)) from None

    def _missing(self) -> str:
        return "Enter a value."


class MoneyField(_RawTextField):
    """An amount of money, parsed strictly (see the module's docstring).

    ``currency`` (a code, or a callable taking the form) sets the decimals and the
    examples in messages; a view may also set ``form.amount.currency = order.currency``
    before validating. ``minimum``/``maximum`` bound the value (``maximum`` may be set
    at runtime as well: the refundable amount, what was paid for an item)."""

    def __init__(self, label=None, validators=None, *, currency: str | Callable | None = None,
                 minimum: Decimal | None = Decimal("0"), maximum: Decimal | None = None,
                 integer_digits: int = MONEY_INTEGER_DIGITS, **kwargs):
        kwargs.setdefault("render_kw", {}).setdefault("inputmode", "decimal")
        super().__init__(label, validators, **kwargs)
        self._currency = currency
        self.minimum = minimum
        self.maximum = maximum
        self.integer_digits = integer_digits

    @property
    def currency(self) -> str | None:
        value = self._currency(self._form) if callable(self._currency) else self._currency
        return (value or "").strip().upper() or None

    @currency.setter
    def currency(self, value: str | None) -> None:
        self._currency = value

    def _missing(self) -> str:
        return f"Enter an amount, like {money_example(self.currency)}."

    def _parse(self, text: str) -> Decimal:
        amount = parse_money(text, self.currency, integer_digits=self.integer_digits)
        suffix = f" {self.currency}" if self.currency else ""
        if self.minimum is not None and amount < self.minimum:
            if self.minimum > 0 and amount == 0:
                raise ValueError("The amount must be more than zero.")
            raise ValueError(f"The amount must be at least {self.minimum}{suffix}.")
        if self.maximum is not None and amount > self.maximum:
            raise ValueError(f"The amount can be at most {self.maximum}{suffix}.")
        return amount


class DecimalNumberField(_RawTextField):
    """A measure such as a weight: digits 0-9, at most ``places`` decimals, up to
    ``maximum``; the same refusals as money (no commas, exponents, signs…)."""

    def __init__(self, label=None, validators=None, *, places: int = 2, maximum: Decimal = Decimal("99999"),
                 what: str = "a number", example: str = "1.25", **kwargs):
        kwargs.setdefault("render_kw", {}).setdefault("inputmode", "decimal")
        super().__init__(label, validators, **kwargs)
        self.places, self.maximum, self.what, self.example = places, maximum, what, example

    def _missing(self) -> str:
        return f"Enter {self.what}, like {self.example}."

    def _parse(self, text: str) -> Decimal:
        hint = f"Type {self.what} with the digits 0-9 and a point, like {self.example}."
        match = _AMOUNT.fullmatch(text) if len(text) <= _RAW_MAX else None
        if match is None:
            shown = text[:20] + ("…" if len(text) > 20 else "")
            raise ValueError(f"“{shown}” is not {self.what}. {hint}")
        if len(match.group(2) or "") > self.places:
            raise ValueError(f"At most {self.places} decimals. {hint}")
        value = Decimal(text)
        if value > self.maximum:
            raise ValueError(f"At most {self.maximum}. {hint}")
        return value


class WholeNumberField(_RawTextField):
    """A whole number typed with the digits 0-9, within ``minimum``..``maximum``."""

    def __init__(self, label=None, validators=None, *, minimum: int = 0, maximum: int = 1_000_000,
                 what: str = "a whole number", **kwargs):
        kwargs.setdefault("render_kw", {}).setdefault("inputmode", "numeric")
        super().__init__(label, validators, **kwargs)
        self.minimum, self.maximum, self.what = minimum, maximum, what

    def _missing(self) -> str:
        return f"Enter {self.what} from {self.minimum} to {self.maximum}."

    def _parse(self, text: str) -> int:
        return parse_whole_number(text, self.minimum, self.maximum, self.what)


class _CappedText:
    """Shared by the text fields: strip, cap the length on the server, refuse control
    characters (line breaks and tabs only where the text may span lines)."""
    multiline = False

    def __init__(self, label=None, validators=None, *, max_length: int = NAME_MAX, required: bool = False,
                 **kwargs):
        kwargs.setdefault("filters", ())
        kwargs.setdefault("render_kw", {}).setdefault("maxlength", max_length)
        super().__init__(label, validators, **kwargs)
        self.max_length = max_length
        self.required = required

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if isinstance(self.data, str):
            self.data = self.data.strip()

    def pre_validate(self, form):
        text = self.data or ""
        char = control_character(text, multiline=self.multiline)
        if char is not None:
            raise StopValidation(control_message(char))
        if len(text) > self.max_length:
            raise StopValidation(f"At most {self.max_length:,} characters, please (this has {len(text):,}).")
        if self.required and not text:
            raise StopValidation("This cannot be empty.")


class TextField(_CappedText, StringField):
    """One line of text, at most ``max_length`` characters (200 by default)."""


class NoteField(_CappedText, TextAreaField):
    """A reason or a note: line breaks allowed, at most 2,000 characters by default."""
    multiline = True

    def __init__(self, label=None, validators=None, *, max_length: int = NOTE_MAX, **kwargs):
        super().__init__(label, validators, max_length=max_length, **kwargs)


class ChoiceField(SelectField):
    """One of a fixed set of values (statuses, reasons, roles). ``choices`` is a list of
    values or of (value, label) pairs, or a callable giving one (read when validating);
    anything else is refused naming what may be chosen."""

    def __init__(self, label=None, validators=None, *, choices=(), required: bool = True, **kwargs):
        self._declared = choices
        super().__init__(label, validators, choices=self._options, validate_choice=False, **kwargs)
        self.required = required

    def _options(self):
        declared = self._declared() if callable(self._declared) else self._declared
        return [SelectChoice(*c) if isinstance(c, (tuple, list)) else SelectChoice(str(c), str(c)) for c in declared]

    def pre_validate(self, form):
        values = [c.value for c in self._options()]
        value = self.data if isinstance(self.data, str) else ""
        if not value:
            if self.required:
                raise StopValidation(f"Choose one of: {', '.join(values)}.")
            self.data = None
            raise StopValidation()
        if value not in values:
            shown = value[:40] + ("…" if len(value) > 40 else "")
            raise StopValidation(f"“{shown}” is not one of: {', '.join(values)}.")


class IdListField(Field):
    """Ids posted under one name (the ticked checkboxes of a list): each a printable id
    of at most 64 characters, at most ``maximum`` of them, each kept once in order."""

    def __init__(self, label=None, validators=None, *, maximum: int = 1_000, what: str = "rows", **kwargs):
        super().__init__(label, validators, **kwargs)
        self.maximum = maximum
        self.what = what

    def process_formdata(self, valuelist):
        self.data = list(dict.fromkeys(str(value).strip() for value in valuelist))

    def process_data(self, value):
        self.data = list(value or [])

    def pre_validate(self, form):
        for value in self.data or []:
            if not value or len(value) > 64 or not value.isprintable():
                shown = value[:40] + ("…" if len(value) > 40 else "")
                raise StopValidation(f"“{shown}” is not an id. Tick the {self.what} in the list instead.")
        if len(self.data or []) > self.maximum:
            raise StopValidation(f"Tick at most {self.maximum:,} {self.what} ({len(self.data):,} ticked).")


# --- forms -------------------------------------------------------------------------------

class ConsoleForm(FlaskForm):
    """Every POST form of the console. Besides each field's own rules, refuses NUL and
    control characters in any field (selects, hidden fields and checkboxes included)."""

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        for field in self:
            if isinstance(field, _CappedText) and getattr(field, "multiline", False):
                continue
            for raw in getattr(field, "raw_data", None) or ():
                char = control_character(str(raw))
                if char is not None and control_message(char) not in field.errors:
                    field.errors = [*field.errors, control_message(char)]
                    valid = False
                    break
        return valid

    def error_message(self) -> str:
        """All the form's errors as one sentence per field, for a flash or an error page."""
        parts = []
        for field in self:
            for error in field.errors:
                parts.append(f"{field.label.text}: {error}" if field.label and field.label.text else str(error))
        return " ".join(parts)

    def posted_values(self) -> dict[str, str]:
        """What was posted, to show the form again: each value cut to its field's cap
        (a refused 100,000-character value is not sent back)."""
        values = {}
        from flask import request

        for name, value in request.form.items():
            field = self._fields.get(name)
            cap = getattr(field, "max_length", None) or NOTE_MAX
            values[name] = str(value)[:cap]
        return values


class LoginForm(ConsoleForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])


class MfaCodeForm(ConsoleForm):
    # Six digits from the authenticator app, or a backup code such as "3F2A9C41".
    code = StringField("Code", validators=[DataRequired(), Length(max=32)])


# --- invitations and passwords -------------------------------------------------------------

def _at_least_one(form, field):
    # Not DataRequired: its "required" flag would make every checkbox required in the browser.
    if not field.data:
        raise ValidationError("Choose at least one role.")


class InviteStaffForm(ConsoleForm):
    email = EmailField("Email", validators=[DataRequired(message="Type the email the invitation goes to."),
                                            Length(max=254)])
    roles = SelectMultipleField("Roles", choices=list(STAFF_ROLES), validators=[_at_least_one],
                                widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())


class ForgotPasswordForm(ConsoleForm):
    email = EmailField("Email", validators=[DataRequired(message="Type the email of your console account."),
                                            Length(max=254)])


class SetPasswordForm(ConsoleForm):
    # The strength rules are the same as `console create-staff` (workflows/staff.py).
    password = PasswordField("New password", validators=[DataRequired(message="Choose a password."),
                                                         Length(max=128)])
    confirm = PasswordField("The same password again", validators=[
        DataRequired(message="Type the password a second time."),
        EqualTo("password", message="The two passwords differ: type the same one twice.")])


__all__ = [
    "ChoiceField", "ConsoleForm", "DecimalNumberField", "ForgotPasswordForm", "InviteStaffForm", "LoginForm",
    "SetPasswordForm", "MfaCodeForm", "MoneyField", "NoteField", "TextField", "WholeNumberField",
    "ValidationError", "currency_decimals", "parse_money", "parse_whole_number", "control_character",
    "NOTE_MAX", "NAME_MAX", "MONEY_INTEGER_DIGITS",
]
