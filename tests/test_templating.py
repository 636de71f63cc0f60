"""The email template language: Jinja in the sandbox, autoescaped in HTML only, and a
template that tries to escape the sandbox or to run without end is refused in time."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from console.templating import RenderError, check, render_email, render_text


def refused(source: str, variables=None, part="body_text") -> str:
    parts = {"subject": "", "body_html": "", "body_text": "", part: source}
    with pytest.raises(RenderError) as info:
        render_email(parts["subject"], parts["body_html"], parts["body_text"], variables or {})
    return info.value.message


def test_variables_conditions_and_filters():
    text = render_text("Hello{% if first_name %} {{ first_name|title }}{% endif %}, {{ amount }} {{ currency }}",
                       {"first_name": "ada", "amount": Decimal("12.50"), "currency": "EUR"})
    assert text == "Hello Ada, 12.50 EUR"


def test_html_body_is_autoescaped_and_the_text_body_and_subject_are_not():
    name = "<script>alert(1)</script> & Co"
    email = render_email("Hi {{ name }}", "<p>{{ name }}</p>", "Hi {{ name }}", {"name": name})
    assert email.body_html == "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</p>"
    assert email.body_text == f"Hi {name}" and email.subject == f"Hi {name}"


def test_subject_is_one_line():
    assert render_email("A\r\nBcc: x@evil.test {{ x }}", "", "", {"x": "y\nz"}).subject == "A Bcc: x@evil.test y z"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ [].append }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ 'x'.ljust(100000000) }}",
])
def test_unsafe_attributes_are_refused(source):
    message = refused(source)
    assert "not available" in message or "not allowed" in message or "stay under" in message


def test_config_is_not_reachable():
    # Not a variable the template gets: it renders as nothing, and a save refuses it.
    assert render_text("[{{ config }}]", {}) == "[]"
    with pytest.raises(RenderError):
        render_text("{{ config.items() }}", {})
    assert check({"body_text": "{{ config }}"}, []) == [
        "Text body uses config, which is not declared: declare it below (with a description and a sample "
        "value) or take it out."]


@pytest.mark.parametrize("tag", ["{% include 'base.html' %}", "{% extends 'base.html' %}",
                                 "{% import 'forms.html' as forms %}", "{% from 'x.html' import y %}"])
def test_include_import_and_extends_are_refused(tag):
    assert "is not available: an email template stands alone" in refused("Hi\n" + tag)
    assert "line 2" in check({"body_html": "Hi\n" + tag}, [])[0]


@pytest.mark.parametrize("source", [
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{{ b }}{% endfor %}{% endfor %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
])
def test_endless_loops_are_stopped(source):
    done = threading.Event()
    messages = []

    def run():
        messages.append(refused(source))
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    # Far above the render's own time limit: the test fails, rather than hangs, if it isn't kept.
    assert done.wait(30), "the render did not stop"
    assert "too long" in messages[0] or "took longer" in messages[0] or "calls itself" in messages[0]


@pytest.mark.parametrize("source", [
    "{{ 'a' * 1000000000 }}",
    "{{ 'a'|center(1000000000) }}",
    "{% set ns = namespace(s='aaaaaaaaaa') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='aaaaaaaaaa') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{{ range(100000)|join('x' * 99999) }}",
    "{{ 'a'|replace('a', 'b' * 99999)|replace('b', 'c' * 99999) }}",
    "{{ range(100000)|map('center', 99999)|list|length }}",
    "{{ '%0999999999d' % 1 }}",
    "{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}",
])
def test_huge_values_and_outputs_are_refused(source):
    assert refused(source)


def test_syntax_errors_name_the_part_and_line():
    assert check({"subject": "ok", "body_html": "<p>\n\n{{ order_number }</p>"}, ["order_number"]) == [
        "HTML body, line 3: unexpected '}'"]
    assert "No filter named 'nosuch'" in check({"body_text": "{{ x|nosuch }}"}, ["x"])[0]


def test_undeclared_variables_are_found_from_the_syntax_tree():
    problems = check({"subject": "{{ order_number }}", "body_html": "{% for item in items %}{{ item }}{% endfor %}",
                      "body_text": "{% set greeting = 'Hi' %}{{ greeting }} {{ loop_count }} {{ range(2)|list }}"},
                     ["order_number"])
    assert problems == [
        "HTML body uses items, which is not declared: declare it below (with a description and a sample value) "
        "or take it out.",
        "Text body uses loop_count, which is not declared: declare it below (with a description and a sample "
        "value) or take it out."]

