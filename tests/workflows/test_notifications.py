"""Resending failed and bounced notifications: once per notification (double clicks and
two staff at once included), customers' preferences, and Resend all, bounded."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from console.demo.builders import ensure_email_templates, make_customer, make_notification
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.notification import EmailTemplate, Notification, NotificationPreference
from console.models.user import UserNotificationPreference
from console.workflows import WorkflowError
from console.workflows import notifications as wf
from tests.returns_helpers import staff_actor


def failed(customer, name="order_shipped", status="FAILED"):
    templates = ensure_email_templates()
    note = make_notification(customer.id, templates[name],
                             {"first_name": "Bo", "order_number": "ORD-1", "carrier": "UPS", "tracking_number": "1Z"},
                             status=status, error="550 mailbox unavailable")
    db.session.commit()
    return note


def marketing_template():
    template = EmailTemplate(name="spring_sale", subject="Spring sale", body_text="Hi {{ first_name }}",
                             body_html="<p>Hi</p>", variables=[{"name": "first_name"}], is_active=True)
    db.session.add(template)
    db.session.commit()
    return template


def resends_of(original_id):
    db.session.expire_all()
    return [n for n in db.session.scalars(select(Notification))
            if (n.metadata_ or {}).get("resend_of") == original_id]


@pytest.mark.usefixtures("ctx")
class TestResend:
    def test_resend_queues_a_copy_linked_both_ways(self):
        customer, _ = make_customer("bo@example.com", "Bo")
        original = failed(customer)
        actor = staff_actor()
        outcome = wf.resend(actor, original.id)
        assert not outcome.already
        [copy] = resends_of(original.id)
        assert (copy.status, copy.user_id, copy.subject, copy.body, copy.template_id) == (
            "PENDING", customer.id, original.subject, original.body, original.template_id)
        assert copy.metadata_["body_html"] == original.metadata_["body_html"]
        assert copy.metadata_["resent_by"] == actor.id
        assert db.session.get(Notification, original.id).metadata_["resent_as"] == copy.id
        [log] = db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action == "notification.resent"))
        assert log.user_id == actor.id and log.metadata_["entity_id"] == original.id

    def test_resend_twice_queues_one(self):
        customer, _ = make_customer("twice@example.com")
        original = failed(customer, status="BOUNCED")
        first = wf.resend(staff_actor(), original.id)
        second = wf.resend(staff_actor(), original.id)
        assert second.already and second.resend.id == first.resend.id
        assert len(resends_of(original.id)) == 1

    def test_only_failed_or_bounced_are_resent(self):
        customer, _ = make_customer("sent@example.com")
        original = failed(customer, status="DELIVERED")
        with pytest.raises(WorkflowError) as info:
            wf.resend(staff_actor(), original.id)
        assert info.value.status == 409 and "DELIVERED" in info.value.message
        with pytest.raises(WorkflowError) as info:
            wf.resend(staff_actor(), "no-such-id")
        assert info.value.status == 404

    def test_a_resend_that_failed_can_be_resent_itself(self):
        customer, _ = make_customer("again@example.com")
        original = failed(customer)
        copy = wf.resend(staff_actor(), original.id).resend
        copy = db.session.get(Notification, copy.id)
        copy.status = "FAILED"
        db.session.commit()
        assert not wf.resend(staff_actor(), copy.id).already

    def test_preferences_refuse_a_marketing_email(self):
        customer, _ = make_customer("nomarketing@example.com")
        db.session.add(NotificationPreference(user_id=customer.id, notification_type="marketing",
                                              email_enabled=False, sms_enabled=False, push_enabled=True))
        db.session.commit()
        note = make_notification(customer.id, marketing_template(), {"first_name": "A"}, status="FAILED")
        db.session.commit()
        with pytest.raises(WorkflowError) as info:
            wf.resend(staff_actor(), note.id)
        assert info.value.status == 409
        assert "turned email off for marketing messages (notification preferences)" in info.value.message
        assert resends_of(note.id) == []

    def test_account_preferences_in_user_db_count_too(self):
        customer, _ = make_customer("userdb@example.com")
        db.session.add(UserNotificationPreference(user_id=customer.id, channel="email", category="marketing",
                                                  enabled=False, frequency="weekly"))
        db.session.commit()
        note = make_notification(customer.id, marketing_template(), {"first_name": "A"}, status="BOUNCED")
        db.session.commit()
        with pytest.raises(WorkflowError, match="account preferences"):
            wf.resend(staff_actor(), note.id)

    def test_order_and_return_emails_are_resent_whatever_the_preferences(self):
        customer, _ = make_customer("transactional@example.com")
        db.session.add(NotificationPreference(user_id=customer.id, notification_type="marketing",
                                              email_enabled=False, sms_enabled=False, push_enabled=False))
        db.session.add(NotificationPreference(user_id=customer.id, notification_type="order_shipped",
                                              email_enabled=False, sms_enabled=False, push_enabled=False))
        db.session.commit()
        original = failed(customer)
        assert not wf.resend(staff_actor(), original.id).already

    def test_a_channel_left_on_is_resent(self):
        customer, _ = make_customer("smsoff@example.com")
        db.session.add(NotificationPreference(user_id=customer.id, notification_type="marketing",
                                              email_enabled=True, sms_enabled=False, push_enabled=False))
        db.session.commit()
        note = make_notification(customer.id, marketing_template(), {"first_name": "A"}, status="FAILED")
        db.session.commit()
        assert not wf.resend(staff_actor(), note.id).already


@pytest.mark.usefixtures("ctx")
class TestResendAll:
    def test_resend_all_queues_each_once_and_reports(self):
        customers = [make_customer(f"all{i}@example.com")[0] for i in range(4)]
        notes = [failed(c) for c in customers]
        db.session.add(NotificationPreference(user_id=customers[3].id, notification_type="marketing",
                                              email_enabled=False))
        db.session.commit()
        marketing = make_notification(customers[3].id, marketing_template(), {"first_name": "A"}, status="FAILED")
        db.session.commit()
        wf.resend(staff_actor(), notes[0].id)
        ids = [n.id for n in notes] + [marketing.id]
        summary = wf.resend_all(staff_actor(), ids)
        assert (summary.queued, summary.already, summary.refused_total) == (3, 1, 1)
        again = wf.resend_all(staff_actor(), ids)
        assert (again.queued, again.already) == (0, 4)
        assert sum(len(resends_of(n.id)) for n in notes) == 4

    def test_resend_all_is_bounded(self):
        with pytest.raises(WorkflowError) as info:
            wf.resend_all(staff_actor(), [f"id-{i}" for i in range(wf.RESEND_ALL_LIMIT + 1)])
        assert info.value.status == 422 and "1,000" in info.value.message

    def test_resendable_leaves_out_what_was_resent(self):
        customer, _ = make_customer("narrow@example.com")
        notes = [failed(customer), failed(customer, status="BOUNCED"), failed(customer, status="SENT")]
        wf.resend(staff_actor(), notes[0].id)
        db.session.expire_all()
        found = set(db.session.scalars(wf.resendable(select(Notification.id))))
        assert found == {notes[1].id}


@pytest.mark.postgres_only
def test_two_staff_resending_at_once_queue_one(app):
    with app.app_context():
        customer, _ = make_customer("race@example.com")
        original = failed(customer)
        actors = [staff_actor() for _ in range(8)]
        original_id = original.id
        db.session.remove()
    barrier = threading.Barrier(len(actors))
    outcomes, errors = [], []

    def click(actor):
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                outcomes.append(wf.resend(actor, original_id))
            except Exception as exc:  # noqa: BLE001 - the assertion below reports it
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=click, args=(a,)) for a in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(o.already for o in outcomes) == [False] + [True] * (len(actors) - 1)
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Notification)
                                  .where(Notification.status == "PENDING"))
        assert count == 1
        db.session.remove()
