"""The console's strict form fields (console/forms.py), table-driven over what people
really type, and the errors macro (templates/_forms.html)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from flask import render_template_string
from werkzeug.datastructures import MultiDict

from console.forms import (ConsoleForm, MoneyField, NoteField, TextField, WholeNumberField, parse_money,
                           parse_whole_number)


class MoneyForm(ConsoleForm):
    amount = MoneyField("Amount", currency=lambda form: form.currency_code)

    def __init__(self, *args, currency_code="USD", **kwargs):
        self.currency_code = currency_code
        super().__init__(*args, **kwargs)


def submit(app, form_class, **data):
    with app.test_request_context(method="POST", data=data):
        form = form_class(formdata=MultiDict(data))
        valid = form.validate()
        return valid, form


MONEY_ACCEPTED = [
    ("12.50", "USD", Decimal("12.50")),
    ("12.5", "USD", Decimal("12.50")),
    ("12", "USD", Decimal("12.00")),
    ("  12.50  ", "USD", Decimal("12.50")),
    ("0.01", "EUR", Decimal("0.01")),
    ("0", "USD", Decimal("0.00")),
    ("007.10", "USD", Decimal("7.10")),
    ("99999999.99", "USD", Decimal("99999999.99")),  # DECIMAL(10,2): 8 digits before the point
    ("1250", "JPY", Decimal("1250")),
    ("12.50", None, Decimal("12.50")),
    ("1.5", "usd", Decimal("1.50")),
]

# (typed, currency, words the message must contain)
MONEY_REFUSED = [
    ("1,0", "USD", "comma"),
    ("12,50", "EUR", "comma"),
    ("1,234.50", "USD", "comma"),
    ("1_0", "USD", "like 12.50"),
    ("1e2", "USD", "like 12.50"),
    ("1E-2", "USD", "like 12.50"),
    ("1e309", "USD", "like 12.50"),
    ("+1", "USD", "without a sign"),
    ("-5", "USD", "without a sign"),
    ("٣", "USD", "digits 0-9"),
    ("１２", "USD", "digits 0-9"),
    ("NaN", "USD", "not an amount"),
    ("nan", "USD", "not an amount"),
    ("Infinity", "USD", "not an amount"),
    ("-Infinity", "USD", "without a sign"),
    ("sNaN", "USD", "not an amount"),
    ("12.", "USD", "like 12.50"),
    (".5", "USD", "like 12.50"),
    ("1 000", "USD", "like 12.50"),
    ("12.505", "USD", "at most two decimals"),
    ("12.5", "JPY", "no decimals"),
    ("1250.00", "JPY", "no decimals"),
    ("12,50", "JPY", "like 1250"),
    ("99999999999999999999999999999", "USD", "more than 8 digits"),
    ("123456789", "USD", "more than 8 digits"),
    ("1" * 100_000, "USD", "not an amount"),
    ("12\x0050", "USD", "NUL"),
    ("0x10", "USD", "like 12.50"),
    ("$12", "USD", "like 12.50"),
    ("12 USD", "USD", "like 12.50"),
    ("", "USD", "Enter an amount"),
    ("   ", "JPY", "like 1250"),
]


@pytest.mark.parametrize(("typed", "currency", "expected"), MONEY_ACCEPTED)
def test_money_field_accepts(app, typed, currency, expected):
    valid, form = submit(app, lambda formdata: MoneyForm(formdata=formdata, currency_code=currency), amount=typed)
    assert valid, form.errors
    assert form.amount.data == expected and str(form.amount.data) == str(expected)
    assert parse_money(typed, currency) == expected


@pytest.mark.parametrize(("typed", "currency", "words"), MONEY_REFUSED)
def test_money_field_refuses_with_a_message_saying_what_to_type(app, typed, currency, words):
    valid, form = submit(app, lambda formdata: MoneyForm(formdata=formdata, currency_code=currency), amount=typed)
    assert not valid
    assert form.amount.data is None
    message = " ".join(form.amount.errors)
    assert words.lower() in message.lower(), message
    assert len(message) < 300  # never echoes a huge input back
    if "\x00" not in typed:
        with pytest.raises(ValueError):
            parse_money(typed, currency)


def test_money_field_bounds_set_at_runtime(app):
    class Refund(ConsoleForm):
        amount = MoneyField("Amount", currency="USD", minimum=Decimal("0.01"))

    with app.test_request_context(method="POST"):
        for typed, ok, words in [("0", False, "more than zero"), ("0.00", False, "more than zero"),
                                 ("49.40", True, ""), ("49.41", False, "at most 49.40 USD")]:
            form = Refund(formdata=MultiDict({"amount": typed}))
            form.amount.maximum = Decimal("49.40")
            assert form.validate() is ok, (typed, form.errors)
            assert words in " ".join(form.amount.errors)


def test_money_field_shows_what_was_typed_again(app):
    valid, form = submit(app, MoneyForm, amount="1,0")
    assert not valid and form.amount._value() == "1,0"


def test_optional_money_field_may_be_left_empty(app):
    class Optional(ConsoleForm):
        amount = MoneyField("Amount", required=False)

    assert submit(app, Optional, amount="  ")[0]
    assert submit(app, Optional)[0]
    assert not submit(app, Optional, amount="1e2")[0]


class QuantityForm(ConsoleForm):
    quantity = WholeNumberField("Quantity", minimum=1, maximum=99, what="a quantity")


@pytest.mark.parametrize(("typed", "expected"), [("1", 1), ("99", 99), (" 3 ", 3), ("07", 7)])
def test_whole_number_field_accepts(app, typed, expected):
    valid, form = submit(app, QuantityForm, quantity=typed)
    assert valid and form.quantity.data == expected


@pytest.mark.parametrize(("typed", "words"), [
    ("0_1", "not a quantity"), ("٣", "not a quantity"), ("３", "not a quantity"), ("1e2", "not a quantity"),
    ("+1", "not a quantity"), ("-1", "not a quantity"), ("1.0", "not a quantity"), ("1,0", "not a quantity"),
    ("0", "out of range"), ("100", "out of range"), ("99999999999999999999", "out of range"),
    ("9" * 100_000, "not a quantity"), ("", "Enter a quantity"), ("NaN", "not a quantity"),
])
def test_whole_number_field_refuses(app, typed, words):
    valid, form = submit(app, QuantityForm, quantity=typed)
    assert not valid and form.quantity.data is None
    message = " ".join(form.quantity.errors)
    assert words in message and "from 1 to 99" in message and len(message) < 300


def test_parse_whole_number_bounds_huge_values_without_overflow():
    with pytest.raises(ValueError, match="out of range"):
        parse_whole_number("99999999999999999999", 1, 10**6, "a page number")
    assert parse_whole_number("000000000000000000000000000000042", 1, 100) == 42


class NoteForm(ConsoleForm):
    name = TextField("Name", required=True)
    reason = NoteField("Reason")


@pytest.mark.parametrize(("name", "reason", "valid", "words"), [
    ("Ada", "Damaged in transit.\r\nBox crushed.\tSee photo.", True, ""),
    ("  Ada  ", "", True, ""),
    ("A" * 200, "R" * 2000, True, ""),
    ("A" * 201, "", False, "At most 200 characters"),
    ("Ada", "R" * 2001, False, "At most 2,000 characters"),
    ("Ada", "R" * 100_000, False, "this has 100,000"),
    ("a\x00b", "", False, "NUL byte"),
    ("Ada", "a\x00b", False, "NUL byte"),
    ("a\nb", "", False, "U+000A"),
    ("a\x1bb", "", False, "U+001B"),
    ("Ada", "bell\x07", False, "U+0007"),
    ("a\x7fb", "", False, "U+007F"),
    ("a\x85b", "", False, "U+0085"),
    ("", "", False, "cannot be empty"),
    ("   ", "", False, "cannot be empty"),
])
def test_text_fields_cap_length_and_refuse_control_characters(app, name, reason, valid, words):
    ok, form = submit(app, NoteForm, name=name, reason=reason)
    assert ok is valid, form.errors
    assert words in " ".join(form.errors.get("name", []) + form.errors.get("reason", []))
    if ok:
        assert form.name.data == name.strip()


def test_every_field_refuses_control_characters_selects_and_hidden_included(app):
    from wtforms import HiddenField

    from console.forms import ChoiceField

    class Choice(ConsoleForm):
        kind = ChoiceField("Kind", choices=["a", "a\x00"])
        key = HiddenField()

    ok, form = submit(app, Choice, kind="a\x00", key="k\x00")
    assert not ok
    assert "NUL byte" in " ".join(form.kind.errors) and "NUL byte" in " ".join(form.key.errors)
    assert "Kind: " in form.error_message()


def test_errors_macro_renders_messages_next_to_their_fields(app):
    valid, _ = submit(app, MoneyForm, amount="1e2")
    with app.test_request_context(method="POST", data={"amount": "1e2"}):
        form = MoneyForm(formdata=MultiDict({"amount": "1e2"}))
        assert not form.validate()
        html = render_template_string(
            '{% from "_forms.html" import input, field_errors, form_errors %}'
            '{{ form_errors(form) }}{{ input(form.amount, class_="form-control text-end", placeholder="0.00") }}'
            '{{ field_errors(form.amount) }}', form=form)
    assert 'value="1e2"' in html and "is-invalid" in html
    assert 'aria-describedby="amount-error"' in html and 'id="amount-error"' in html
    assert "like 12.50" in html
    assert 'placeholder="0.00"' in html and 'inputmode="decimal"' in html


def test_choice_field_names_what_may_be_chosen(app):
    from console.forms import ChoiceField

    class Status(ConsoleForm):
        status = ChoiceField("Status", choices=["pending", ("shipped", "Shipped")])
        optional = ChoiceField("Optional", choices=lambda: ["x"], required=False)

    assert submit(app, Status, status="shipped")[0]
    ok, form = submit(app, Status, status="lost")
    assert not ok and form.errors["status"] == ["“lost” is not one of: pending, shipped."]
    ok, form = submit(app, Status, status="")
    assert not ok and "Choose one of: pending, shipped." in form.errors["status"]
    ok, form = submit(app, Status, status="pending", optional="y" * 1000)
    assert not ok and len(form.errors["optional"][0]) < 100
