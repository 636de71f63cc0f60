"""The email templates screens: list, editor with its live preview (sandboxed iframe,
the console's CSP), save and its refusals, versions and revert, send test, permissions."""
from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from console import email_templates
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.notification import EmailTemplate, Notification
from console.models.types import utcnow
from console.workflows import templates as flow
from tests.returns_helpers import paid_order
from tests.second_app import app_with_unreachable


@pytest.fixture
def installed(app):
    with app.app_context():
        email_templates.install()
        db.session.commit()
        db.session.remove()


def template(app, name="order_cancelled") -> EmailTemplate:
    with app.app_context():
        row = db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == name))
        db.session.expunge(row)
        return row


def form_of(app, name="order_cancelled", **changes) -> dict:
    draft = flow.Draft.of(template(app, name))
    data = {"subject": draft.subject, "body_html": draft.body_html, "body_text": draft.body_text,
            "is_active": "y" if draft.is_active else "", "base": flow.stamp(template(app, name)),
            "var_name": [v["name"] for v in draft.variables],
            "var_description": [v["description"] for v in draft.variables],
            "var_sample": [v["sample"] for v in draft.variables]}
    data.update(changes)
    return data


def test_only_template_editors_may_open_the_screens(installed, auth, client):
    auth.login("support")
    for url in ("/templates", "/templates/order_cancelled", "/templates/export.csv"):
        assert client.get(url).status_code == 403
    assert client.post("/templates/order_cancelled", data={}).status_code == 403


def test_list_shows_templates_with_their_use_and_failures(app, installed, auth, client):
    from console.demo.builders import make_customer, make_notification

    with app.app_context():
        customer, _ = make_customer("u@example.com")
        shipped = db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == "order_shipped"))
        for status in ("DELIVERED", "DELIVERED", "FAILED", "BOUNCED"):
            make_notification(customer.id, shipped, {"order_number": "X"}, status=status)
        db.session.commit()
    auth.login("marketing")
    html = client.get("/templates").get_data(as_text=True)
    row = html[html.index('data-template="order_shipped"'):]
    row = row[:row.index("</tr>")]
    assert "Mark shipped (order page)" in row and ">4<" in row and "50.0%" in row
    assert "active" in row
    assert 'id="template-warnings"' not in html
    export = client.get("/templates/export.csv")
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["name", "subject", "active"]
    assert {r[0] for r in rows[1:]} == set(email_templates.BY_NAME)


def test_a_missing_workflow_template_is_warned_about(app, installed, auth, client):
    with app.app_context():
        db.session.delete(db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == "return_closed")))
        db.session.commit()
    auth.login("marketing")
    html = client.get("/templates").get_data(as_text=True)
    warning = html[html.index('id="template-warnings"'):]
    assert "return_closed is missing or turned off: Close return (return page) queues no email" in warning


def test_editor_previews_in_a_sandboxed_frame_under_the_consoles_policy(installed, auth, client):
    auth.login("marketing")
    response = client.get("/templates/order_cancelled")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    frame = re.search(r"<iframe[^>]*>", html).group(0)
    assert 'sandbox=""' in frame and "srcdoc=" in frame and "&lt;strong&gt;ORD-20261101-0042&lt;/strong&gt;" in frame
    policy = response.headers["Content-Security-Policy"]
    script = re.search(r"script-src ([^;]*)", policy).group(1)
    assert script.strip() == "'self'" and "unsafe-inline" not in script
    assert "frame-ancestors 'none'" in policy and "img-src 'self' data:" in policy
    assert "<script>" not in html.split("</head>")[1]  # no inline script on the page


def test_preview_follows_the_draft_and_escapes_html(installed, app, auth, client):
    auth.login("marketing")
    data = form_of(app, subject="Bye {{ order_number }}", body_html="<p>{{ reason }}</p>",
                   var_sample=["Ada", "ORD-1", "<script>alert(1)</script>"])
    html = client.post("/templates/order_cancelled/preview", data=data, headers={"HX-Request": "true"}).get_data(
        as_text=True)
    assert '<dd id="preview-subject">Bye ORD-1</dd>' in html
    frame = re.search(r"<iframe[^>]*>", html).group(0)
    # Escaped once by the template language (a value can't add HTML), then as the attribute.
    assert "&amp;lt;script&amp;gt;" in frame and "<script>" not in frame
    refused = client.post("/templates/order_cancelled/preview", data=form_of(app, body_text="{{ coupon }}"),
                          headers={"HX-Request": "true"})
    assert refused.status_code == 200
    assert "Text body uses coupon, which is not declared" in refused.get_data(as_text=True)
    endless = form_of(app, body_text="{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
    html = client.post("/templates/order_cancelled/preview", data=endless).get_data(as_text=True)
    assert "Can't be rendered:" in html and "runs too long" in html


def test_preview_with_a_real_order(installed, app, auth, client):
    with app.app_context():
        data = paid_order(status="cancelled")
        number = data.order.order_number
    auth.login("marketing")
    html = client.post("/templates/order_cancelled/preview", data=form_of(app, order_number=number)).get_data(
        as_text=True)
    assert f'<dd id="preview-subject">Your order {number} was cancelled</dd>' in html
    assert "Hello Jamie," in html
    html = client.post("/templates/order_cancelled/preview", data=form_of(app, order_number="ORD-NOPE")).get_data(
        as_text=True)
    assert "There is no order ORD-NOPE" in html and "sample values are shown instead" in html


def test_save_then_see_the_version_then_revert(installed, app, auth, client):
    auth.login("marketing")
    original_subject = template(app).subject
    response = client.post("/templates/order_cancelled",
                           data=form_of(app, subject="Cancelled: {{ order_number }}"))
    assert response.status_code == 303
    assert template(app).subject == "Cancelled: {{ order_number }}"
    html = client.get("/templates/order_cancelled").get_data(as_text=True)
    versions = html[html.index('id="version-list"'):]
    assert "marketing@staff.test" in versions and "current" in versions and "original" in versions
    original_key = re.findall(r'data-version="([^"]+)"', versions)[-1]
    diff = client.get(f"/templates/order_cancelled/versions/{original_key}").get_data(as_text=True)
    assert "Cancelled: {{ order_number }}" in diff and original_subject in diff
    response = client.post("/templates/order_cancelled/revert",
                           data={"version": original_key, "base": flow.stamp(template(app))})
    assert response.status_code == 303
    assert template(app).subject == original_subject
    with app.app_context():
        actions = [r.action for r in db.session.scalars(select(SecurityAuditLog).where(
            SecurityAuditLog.action.like("email_template.%")))]
    assert sorted(actions) == ["email_template.reverted", "email_template.updated"]


@pytest.mark.parametrize("changes,status,message", [
    ({"body_text": "Hello\n{{ first_name }\n"}, 422, "Text body, line 2"),
    ({"body_html": "<p>{{ coupon_code }}</p>"}, 422, "HTML body uses coupon_code, which is not declared"),
    ({"body_text": "x" * 100_001}, 422, "At most 100,000 characters"),
    ({"is_active": ""}, 422, "can&#39;t be turned off"),
    ({"base": "2020-01-01T00:00:00+00:00"}, 409, "saved by someone else"),
    ({"var_name": ["first_name", "order_number", "reason", "x y"], "var_description": ["", "", "", ""],
      "var_sample": ["", "", "", ""]}, 422, "can&#39;t be a variable name"),
])
def test_save_refusals_keep_what_was_typed(installed, app, auth, client, changes, status, message):
    auth.login("marketing")
    before = template(app).subject, template(app).body_text, template(app).is_active
    data = form_of(app, **changes)
    response = client.post("/templates/order_cancelled", data=data)
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert message in html and 'id="save-problems"' in html
    assert (template(app).subject, template(app).body_text, template(app).is_active) == before


def test_send_test_queues_to_me(installed, app, auth, client):
    auth.login("marketing")
    response = client.post("/templates/order_cancelled/test", data={})
    assert response.status_code == 303
    with app.app_context():
        [mail] = db.session.scalars(select(Notification))
        assert mail.metadata_["test"] is True and mail.metadata_["to"] == "marketing@staff.test"
        assert mail.status == "PENDING"
    assert "queued to marketing@staff.test" in client.get("/templates/order_cancelled").get_data(as_text=True)


def test_unknown_template_and_version_answer_404(installed, auth, client):
    auth.login("marketing")
    assert client.get("/templates/no_such_template").status_code == 404
    assert client.get("/templates/order_cancelled/versions/after:nope").status_code == 404
    assert client.get("/templates/order_cancelled/versions/before:" + "x" * 500).status_code == 404
    assert client.get("/templates/" + "x" * 1500).status_code == 404


def test_notification_db_down_answers_503(database_urls, installed):
    from tests.conftest import StaffSignIn

    with app_with_unreachable(database_urls, "notification") as down:
        client = down.test_client()
        StaffSignIn(down, client).login("marketing")
        assert client.get("/templates").status_code == 503
        assert client.get("/templates/order_cancelled").status_code == 503




def test_hostile_keys_answer_404_not_500(installed, app, auth, client):
    auth.login("marketing")
    # Control characters in the address: the console's guard answers 400 before the screen.
    for url in ("/templates/%00", "/templates/a%00b", "/templates/order_cancelled/versions/after:%00"):
        assert client.get(url).status_code == 400, url
    assert client.post("/templates/%00/preview", data={}).status_code == 400
    assert client.get("/templates/a%20b%C3%A9").status_code == 404
    # A NUL anywhere in a form is refused by the console's guard before the editor sees it.
    for field in ("subject", "body_html", "order_number", "var_sample"):
        response = client.post("/templates/order_cancelled/preview", data={"subject": "x", field: "O\x00"})
        assert response.status_code == 400 and "control character" in response.get_data(as_text=True)
    # Other control characters than line breaks and tabs: refused in the subject by its field.
    response = client.post("/templates/order_cancelled", data=form_of(app, subject="Hi\x1bthere"))
    assert response.status_code == 400


def test_a_long_html_body_is_saved_and_a_far_too_long_one_refused(installed, app, auth, client):
    auth.login("marketing")
    body = "<p>{{ first_name }}</p>\n" + "<p>" + "x" * 70 + "</p>\n" * 300  # ~23,000 characters
    assert client.post("/templates/order_cancelled", data=form_of(app, body_html=body)).status_code == 303
    assert template(app).body_html == body.strip()
    response = client.post("/templates/order_cancelled", data=form_of(app, body_html="x" * 250_000))
    assert response.status_code == 400 and "far too long" in response.get_data(as_text=True)
    # Other forms keep the console's usual limit.
    assert client.post("/notifications/resend-all", data={"subject": "x" * 20_000}).status_code == 400


def test_versions_say_what_changed_and_page_by_ten(installed, app, auth, client):
    auth.login("marketing")
    for n in range(11):
        changes = {"subject": f"Cancelled ({n}): {{{{ order_number }}}}"}
        if n == 10:
            changes["body_text"] = "Cancelled: {{ order_number }}."
        assert client.post("/templates/order_cancelled", data=form_of(app, **changes)).status_code == 303
    html = client.get("/templates/order_cancelled").get_data(as_text=True)
    listed = html[html.index('id="version-list"'):]
    rows = re.findall(r'data-version="([^"]+)"', listed)
    assert len(rows) == 10  # of 12: eleven saves and the original
    changed = re.findall(r'class="small version-changes">([^<]*)<', listed)
    assert changed[:2] == ["Subject, Text body", "Subject"]
    assert "1–10 of 12 versions" in listed and 'id="older-versions"' in listed and 'id="newer-versions"' not in listed
    older = client.get("/templates/order_cancelled?versions_from=10").get_data(as_text=True)
    older_rows = re.findall(r'data-version="([^"]+)"', older[older.index('id="version-list"'):])
    assert len(older_rows) == 2 and not set(older_rows) & set(rows) and 'id="newer-versions"' in older
    for bad in ("x", "-1", "99999999", "١"):
        assert client.get(f"/templates/order_cancelled?versions_from={bad}").status_code == 200
