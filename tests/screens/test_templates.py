"""The templates list's figures: uses and failures in the last 30 days, bounded per
template, and the diff of a version against the current text."""
from __future__ import annotations

from datetime import timedelta

import pytest
from console.demo.builders import ensure_email_templates, make_customer, make_notification
from console.extensions import db
from console.models.types import utcnow
from console.screens import templates as screens

pytestmark = pytest.mark.usefixtures("ctx")


def test_usage_counts_the_last_30_days_and_stops_at_the_cap():
    customer, _ = make_customer("usage@example.com")
    templates = ensure_email_templates()
    shipped, cancelled = templates["order_shipped"], templates["order_cancelled"]
    now = utcnow()
    for minutes, status in ((1, "FAILED"), (2, "DELIVERED"), (3, "BOUNCED"), (4, "SENT"), (5, "DELIVERED")):
        make_notification(customer.id, shipped, {}, status=status, created_at=now - timedelta(minutes=minutes))
    make_notification(customer.id, shipped, {}, status="FAILED", created_at=now - timedelta(days=31))
    make_notification(customer.id, cancelled, {}, status="DELIVERED", created_at=now - timedelta(days=2))
    db.session.commit()
    ids = [shipped.id, cancelled.id, templates["return_closed"].id]
    assert screens.usage(ids) == {shipped.id: (5, 2, False), cancelled.id: (1, 0, False)}
    # Past the cap: the newest cap + 1 rows only, the rate scaled to the cap.
    assert screens.usage(ids, cap=3) == {shipped.id: (3, 2, True), cancelled.id: (1, 0, False)}


def test_diff_lines_per_part():
    current = {"subject": "Hi {{ x }}", "body_text": "a\nb\nc", "body_html": "", "variables": [{"name": "x"}],
               "is_active": True}
    version = {**current, "body_text": "a\nB\nc", "variables": [{"name": "x"}, {"name": "y"}]}
    parts = {p.label: p for p in screens.diff(version, current)}
    assert not parts["Subject"].changed and not parts["Active"].changed
    text = [(line.kind, line.text) for line in parts["Text body"].lines]
    # Read old -> new: the version's lines are the removed ones, the current text's the added.
    assert ("removed", "B") in text and ("added", "b") in text and ("same", "a") in text
    assert text[0] == ("gap", "from line 1 of the current text")
    assert ("removed", "y:  (sample: )") in [(line.kind, line.text) for line in parts["Variables"].lines]


def test_each_version_says_which_parts_it_changed():
    from types import SimpleNamespace as Version
    original = {"subject": "Hi", "body_text": "a", "body_html": "<p>a</p>", "variables": [], "is_active": True}
    subject = {**original, "subject": "Hello"}
    both = {**subject, "body_text": "b", "is_active": False}
    listed = [Version(key="3", content=both), Version(key="2", content=subject), Version(key="1", content=original)]
    assert screens.version_changes(listed) == {"3": ["Text body", "Active"], "2": ["Subject"]}
    assert screens.changed_parts(original, original) == []
