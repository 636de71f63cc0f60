"""Editing email templates: checks on save, versions and revert, send test, the values
of a real order for the preview, and the workflows sending the edited text."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from console.demo.builders import ensure_shipping_options, make_customer, make_order, make_product
from console.email_templates import BY_NAME, install, missing
from console.extensions import db
from console.models.auth import SecurityAuditLog
from console.models.notification import EmailTemplate, Notification
from console.workflows import WorkflowError, orders, refunds
from console.workflows import templates as tpl
from tests.returns_helpers import paid_order, staff_actor

pytestmark = pytest.mark.usefixtures("ctx")


def template(name="order_cancelled") -> EmailTemplate:
    db.session.expire_all()
    return db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == name))


def draft_of(name="order_cancelled", **changes) -> tpl.Draft:
    draft = tpl.Draft.of(template(name))
    for key, value in changes.items():
        setattr(draft, key, value)
    return draft


def test_every_shipped_template_declares_what_its_workflow_passes():
    # The helpers the workflows call give exactly the declared variables.
    from types import SimpleNamespace

    from console.workflows import notify

    order = SimpleNamespace(order_number="ORD-1")
    request = SimpleNamespace(rma_number="RMA-1", currency="USD", metadata_={"order_number": "ORD-1"})
    refund = SimpleNamespace(amount=1, currency="USD", metadata_={})
    passed = {
        "order_cancelled": notify.order_variables(order, "A", reason=""),
        "order_shipped": notify.order_variables(order, "A", carrier="", tracking_number=""),
        "order_status_changed": notify.order_variables(order, "A", status=""),
        "return_approved": notify.return_variables(request, "A", instructions=""),
        "return_rejected": notify.return_variables(request, "A", reason=""),
        "return_in_transit": notify.return_variables(request, "A"),
        "return_received": notify.return_variables(request, "A"),
        "return_processed": notify.return_variables(request, "A", amount=1),
        "return_closed": notify.return_variables(request, "A"),
        "refund_issued": notify.refund_variables(refund, "A"),
    }
    assert set(passed) == set(BY_NAME)
    for name, values in passed.items():
        assert set(values) == set(BY_NAME[name].variable_names), name
        shipped = BY_NAME[name]
        assert tpl.problems(template(name), tpl.Draft.of(template(name))) == [], name
        assert shipped.body_html.startswith("<p>Hello")


def test_install_adds_only_what_is_missing_and_missing_names_the_rest():
    shipped, closed, edited = template("order_shipped"), template("return_closed"), template("order_cancelled")
    db.session.delete(shipped)
    closed.is_active = False
    edited.subject = "Edited"
    db.session.commit()
    assert {t.name for t in missing()} == {"order_shipped", "return_closed"}
    assert [t.name for t in install()] == ["order_shipped"]
    db.session.commit()
    assert template("order_cancelled").subject == "Edited"
    assert [t.name for t in missing()] == ["return_closed"]


def test_save_keeps_the_previous_text_as_a_version_and_revert_brings_it_back():
    actor = staff_actor("marketing")
    original = template()
    before_subject = original.subject
    saved = tpl.save(actor, original.id, draft_of(subject="Order {{ order_number }}: cancelled"),
                     base=tpl.stamp(original))
    assert saved.subject == "Order {{ order_number }}: cancelled"
    [log] = db.session.scalars(select(SecurityAuditLog).where(SecurityAuditLog.action == "email_template.updated"))
    assert log.user_id == actor.id and log.metadata_["before"]["subject"] == before_subject
    versions = tpl.versions(template())
    assert [v.label for v in versions] == ["updated", "original"]
    assert versions[0].current and versions[0].by.email == actor.email
    assert versions[1].content["subject"] == before_subject

    tpl.revert(actor, template().id, versions[1].key, base=tpl.stamp(template()))
    assert template().subject == before_subject
    assert [v.label for v in tpl.versions(template())] == ["reverted", "updated", "original"]


def test_saving_the_same_text_records_no_version():
    actor = staff_actor("marketing")
    tpl.save(actor, template().id, draft_of())
    assert tpl.versions(template()) == []


def test_a_save_over_someone_elses_is_refused():
    actor = staff_actor("marketing")
    stale = tpl.stamp(template())
    tpl.save(actor, template().id, draft_of(subject="First {{ order_number }}"), base=stale)
    with pytest.raises(tpl.TemplateRefused) as info:
        tpl.save(actor, template().id, draft_of(subject="Second {{ order_number }}"), base=stale)
    assert info.value.status == 409 and "saved by someone else" in info.value.message
    assert template().subject == "First {{ order_number }}"


@pytest.mark.parametrize("changes,expected", [
    ({"body_text": "Hello {{ first_name }},\n{% if reason %}\n{{ reason }\n"}, "Text body, line 3"),
    ({"body_html": "<p>{{ coupon_code }}</p>"}, "HTML body uses coupon_code, which is not declared"),
    ({"subject": "{{ ''.__class__.__mro__ }}"}, "Subject: not allowed"),
    ({"body_text": "{% include 'x' %}"}, "{% include %} is not available"),
    ({"is_active": False}, "can't be turned off: it is sent by Cancel order (order page)"),
    ({"variables": []}, "Keep declaring first_name, order_number, reason: Cancel order (order page) passes them"),
    ({"subject": " "}, "Write a subject."),
    ({"variables": [{"name": "1x", "description": "", "sample": ""}]}, "“1x” can't be a variable name"),
    ({"body_text": "a\x00b"}, "NUL"),
    ({"body_text": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"},
     "With the sample values: Text body: the template runs too long"),
])
def test_save_is_refused_with_the_reason_and_nothing_changes(changes, expected):
    before = template().body_text, template().subject
    with pytest.raises(tpl.TemplateRefused) as info:
        tpl.save(staff_actor("marketing"), template().id, draft_of(**changes))
    assert info.value.status == 422
    assert any(expected in problem for problem in info.value.problems), info.value.problems
    assert (template().body_text, template().subject) == before
    assert db.session.scalar(select(SecurityAuditLog).where(SecurityAuditLog.action.like("email_template%"))) is None


def test_a_declared_variable_may_be_added_and_used():
    draft = draft_of(body_text="{{ greeting }} {{ first_name }}: {{ order_number }}",
                     variables=[*draft_of().variables, {"name": "greeting", "description": "Hi", "sample": "Hi"}])
    tpl.save(staff_actor("marketing"), template().id, draft)
    assert "greeting" in [v["name"] for v in template().variables]


def test_cancel_sends_with_the_edited_template():
    actor = staff_actor("marketing")
    tpl.save(actor, template().id, draft_of(
        subject="{{ order_number }}: we cancelled it", body_html="<h1>{{ reason|upper }}</h1>",
        body_text="Dear {{ first_name }}, {{ order_number }} is cancelled because {{ reason }}."))
    customer, _ = make_customer("edited@example.com", "Lin", "Ko")
    bundle = make_order(customer, [(make_product("SKU-ED-1", "Thing", "10.00", stock=5, reserved=1), 1)], status="pending")
    db.session.commit()
    orders.cancel(staff_actor(), bundle.order.id, "you asked <us>")
    [mail] = db.session.scalars(select(Notification).where(Notification.user_id == customer.id))
    assert mail.subject == f"{bundle.order.order_number}: we cancelled it"
    assert mail.body == f"Dear Lin, {bundle.order.order_number} is cancelled because you asked <us>."
    assert mail.metadata_["body_html"] == "<h1>YOU ASKED &lt;US&gt;</h1>"
    assert mail.template_id == template().id


def test_refund_sends_with_the_edited_template():
    tpl.save(staff_actor("marketing"), template("refund_issued").id, draft_of(
        "refund_issued", body_text="{{ amount }} {{ currency }} back for {{ order_number }}, {{ first_name }}."))
    data = paid_order()
    refunds.refund_order(data.actor, data.order.id, "10.00", key="k-edited", reason="Late")
    [mail] = db.session.scalars(select(Notification).where(Notification.user_id == data.customer.id))
    assert mail.body == f"10.00 USD back for {data.order.order_number}, Jamie."


def test_a_missing_template_queues_nothing_and_the_cancel_still_completes():
    db.session.delete(template())
    db.session.commit()
    customer, _ = make_customer("nomail@example.com")
    bundle = make_order(customer, [(make_product("SKU-NM-1", "Thing", "10.00", stock=5, reserved=1), 1)], status="pending")
    db.session.commit()
    outcome = orders.cancel(staff_actor(), bundle.order.id, "no template")
    assert outcome.complete
    assert db.session.scalar(select(Notification).where(Notification.user_id == customer.id)) is None


def test_send_test_queues_to_the_staff_member_marked_as_a_test():
    actor = staff_actor("marketing")
    mail = tpl.send_test(actor, template().id)
    db.session.expire_all()
    mail = db.session.get(Notification, mail.id)
    assert mail.user_id == actor.id and mail.status == "PENDING"
    assert mail.metadata_["test"] is True and mail.metadata_["to"] == actor.email
    assert mail.subject == "Your order ORD-20261101-0042 was cancelled"
    assert "Hello Ada" in mail.body and "<strong>ORD-20261101-0042</strong>" in mail.metadata_["body_html"]


def test_order_values_come_from_the_databases_as_the_workflow_passes_them():
    ensure_shipping_options()
    data = paid_order(status="confirmed")
    orders.mark_shipped(data.actor, data.order.id, "ups", "express", "1Z999AA10123456784")
    declared = tpl.Draft.of(template("order_shipped")).samples
    preview = tpl.order_values("order_shipped", data.order.order_number, declared)
    [mail] = db.session.scalars(select(Notification).where(Notification.user_id == data.customer.id))
    assert preview.notes == []
    # Rendering the preview's values gives the very email the workflow queued.
    rendered = tpl.notify.render_notification(template("order_shipped"), preview.values)
    assert (rendered["subject"], rendered["body"]) == (mail.subject, mail.body)

    refunds.refund_order(data.actor, data.order.id, "5.00", key="k-preview", reason="Late")
    values = tpl.order_values("refund_issued", data.order.order_number, {}).values
    assert (values["amount"], values["currency"], values["first_name"]) == (5, "USD", "Jamie")

    values = tpl.order_values("return_approved", data.order.order_number,
                              tpl.Draft.of(template("return_approved")).samples)
    assert values.notes and values.values["rma_number"] == "RMA-20261101-3F2A9C"


def test_order_values_refuse_an_unknown_order():
    with pytest.raises(WorkflowError) as info:
        tpl.order_values("order_shipped", "ORD-NOPE", {})
    assert info.value.status == 404 and "ORD-NOPE" in info.value.message
