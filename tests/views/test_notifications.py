"""The notification log: list, filters, sort, export, the notification's page (bodies in
the sandboxed frame, log, customer, order), Resend, Resend all, and the dashboard's links."""
from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from console.demo.builders import ensure_email_templates, make_customer, make_notification
from console.extensions import db
from console.formatting import when
from console.models.notification import Notification, NotificationPreference
from tests.returns_helpers import paid_order


def notifications(app, statuses=("FAILED", "BOUNCED", "DELIVERED"), *, email="n@example.com", key=None):
    with app.app_context():
        customer, _ = make_customer(email, "Noor")
        templates = ensure_email_templates()
        ids = [make_notification(customer.id, templates["order_shipped"],
                                 {"first_name": "Noor", "order_number": "ORD-7", "carrier": "UPS",
                                  "tracking_number": "1Z"}, status=status, key=key).id for status in statuses]
        db.session.commit()
        return ids


def count(app, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Notification).where(*where))


def test_permissions(app, auth, client):
    [failed_id] = notifications(app, ("FAILED",))
    auth.login("warehouse")
    assert client.get("/notifications").status_code == 403
    auth.logout()
    auth.login("marketing")
    assert client.get("/notifications").status_code == 200
    html = client.get(f"/notifications/{failed_id}").get_data(as_text=True)
    assert 'id="resend"' not in html
    assert client.post(f"/notifications/{failed_id}/resend").status_code == 403
    assert client.get("/notifications/resend-all").status_code == 403


def test_list_filters_sort_and_export(app, auth, client):
    ids = notifications(app)
    auth.login("support")
    html = client.get("/notifications?status=failed").get_data(as_text=True)
    assert set(re.findall(r'data-notification="([^"]+)"', html)) == set(ids[:2])
    assert "550 mailbox unavailable" in html and "n@example.com" in html.replace("<wbr>", "")
    html = client.get("/notifications?customer=n@example&template=order_shipped&subject=your+order&provider=smtp"
                      "&error=mailbox").get_data(as_text=True)
    assert set(re.findall(r'data-notification="([^"]+)"', html)) == set(ids[:2])
    assert client.get("/notifications?sort=-status").status_code == 200
    for bad in ("status=LOST", "created_from=yesterday", "sort=nope", "customer=%00x", "subject=" + "x" * 300):
        response = client.get("/notifications?" + bad)
        assert response.status_code == 400, bad
    export = client.get("/notifications/export.csv?status=failed")
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:6] == ["created_at", "customer_email", "type", "template", "subject", "status"]
    assert sorted(r[5] for r in rows[1:]) == ["BOUNCED", "FAILED"]


def test_detail_shows_the_bodies_in_a_sandboxed_frame_and_the_order(app, auth, client):
    from console.workflows import orders as order_flow
    from console.email_templates import install

    with app.app_context():
        install()
        db.session.commit()
        data = paid_order(status="pending")
        order_flow.cancel(data.actor, data.order.id, "asked <b>twice</b>")
        mail = db.session.scalar(select(Notification))
        mail_id, number = mail.id, data.order.order_number
    auth.login("support")
    response = client.get(f"/notifications/{mail_id}")
    html = response.get_data(as_text=True)
    frame = re.search(r"<iframe[^>]*>", html).group(0)
    assert 'sandbox=""' in frame and "asked &amp;lt;b&amp;gt;twice" in frame
    assert f">{number}</a>" in html[html.index('id="about"'):]
    assert "No log entry" in html
    assert "unsafe-inline" not in re.search(r"script-src ([^;]*)", response.headers["Content-Security-Policy"]).group(1)
    assert client.get("/notifications/nope").status_code == 404


def test_resend_once_from_the_page(app, auth, client):
    [failed_id] = notifications(app, ("FAILED",))
    auth.login("support")
    first = client.post(f"/notifications/{failed_id}/resend")
    second = client.post(f"/notifications/{failed_id}/resend")
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert count(app, Notification.status == "PENDING") == 1
    html = client.get(first.headers["Location"]).get_data(as_text=True)
    assert "Already resent" in html and "This resends" in html
    # The refusal links the copy and gives its time, not an internal id.
    copy_url = first.headers["Location"]
    with app.app_context():
        copy = db.session.get(Notification, copy_url.rsplit("/", 1)[-1])
        queued = when(copy.created_at)
    assert re.search(rf'Already resent: <a href="{re.escape(copy_url)}" id="resent-copy">the copy queued '
                     rf'{re.escape(queued)}</a> is pending\. Nothing new was queued\.', html)
    assert copy.id[:8] not in re.sub(r"<[^>]+>", "", html[html.index("Already resent"):html.index("Nothing new")])
    original = client.get(f"/notifications/{failed_id}").get_data(as_text=True)
    assert 'id="resend"' not in original and "pending" in original[original.index('id="resends"'):]


def test_resend_refused_by_preferences_says_why(app, auth, client):
    with app.app_context():
        from console.models.notification import EmailTemplate

        customer, _ = make_customer("optout@example.com")
        db.session.add(NotificationPreference(user_id=customer.id, notification_type="marketing", email_enabled=False))
        sale = EmailTemplate(name="spring_sale", subject="Sale", body_html="<p>Sale</p>", body_text="Sale", variables=[],
                             is_active=True)
        db.session.add(sale)
        db.session.commit()
        note_id = make_notification(customer.id, sale, {}, status="FAILED").id
        db.session.commit()
    auth.login("support")
    page = client.get(f"/notifications/{note_id}").get_data(as_text=True)
    assert "order and return emails are exempt" in page
    response = client.post(f"/notifications/{note_id}/resend", follow_redirects=True)
    assert "Not resent. The customer turned email off for marketing messages" in response.get_data(as_text=True)
    assert count(app, Notification.status == "PENDING") == 0


def test_resend_all_confirms_the_count_then_resends_once(app, auth, client):
    notifications(app, ("FAILED", "BOUNCED", "FAILED", "SENT"))
    auth.login("support")
    html = client.get("/notifications/resend-all?status=failed").get_data(as_text=True)
    assert "<strong>3</strong> failed or bounced notifications" in html
    assert '<input type="hidden" name="status" value="failed">' in html
    response = client.post("/notifications/resend-all", data={"status": "failed"}, follow_redirects=True)
    assert "Resent 3" in response.get_data(as_text=True)
    assert count(app, Notification.status == "PENDING") == 3
    client.post("/notifications/resend-all", data={"status": "failed"})
    assert count(app, Notification.status == "PENDING") == 3
    html = client.get("/notifications/resend-all?status=failed").get_data(as_text=True)
    assert "No failed or bounced notification" in html
    assert client.get("/notifications/resend-all?status=LOST").status_code == 400


def test_resend_all_is_bounded(app, auth, client, monkeypatch):
    from console.workflows import notifications as flow

    notifications(app, ("FAILED",) * 4)
    monkeypatch.setattr(flow, "RESEND_ALL_LIMIT", 3)
    auth.login("support")
    html = client.get("/notifications/resend-all").get_data(as_text=True)
    assert "More than 3 failed or bounced" in html
    response = client.post("/notifications/resend-all", data={}, follow_redirects=True)
    assert "the oldest 3 were taken" in response.get_data(as_text=True)
    assert count(app, Notification.status == "PENDING") == 3


def test_dashboard_failed_figure_and_rows_link_to_the_log(app, auth, client):
    [failed_id] = notifications(app, ("FAILED",))
    auth.login("support")
    html = client.get("/").get_data(as_text=True)
    figure = html[html.index('id="kpi-notifications"'):html.index('id="low-stock"')]
    assert 'href="/notifications?status=failed"' in figure and 'href="/notifications?status=FAILED"' in figure
    assert f'href="/notifications/{failed_id}"' in html


def test_hostile_ids_answer_404_not_500(auth, client):
    auth.login("support")
    assert client.get("/notifications/%00").status_code == 400  # the console's guard
    assert client.get("/notifications/" + "x" * 1500).status_code == 404
    assert client.post("/notifications/" + "x" * 1500 + "/resend").status_code == 404
    assert client.post("/notifications/%C3%A9%20x/resend").status_code == 404
    assert client.get("/notifications?error=" + "%00").status_code == 400


def test_activity_links_a_resend_to_its_notification(app, auth, client):
    [failed_id] = notifications(app, ("FAILED",))
    auth.login("admin")
    client.post(f"/notifications/{failed_id}/resend")
    html = client.get("/activity?action=notification.").get_data(as_text=True)
    assert f'href="/notifications/{failed_id}"' in html
