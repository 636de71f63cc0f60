"""Email templates as an attacker would use them: to read a one-time staff link out of
the notification log, to hold a worker with a render that never ends or fills memory,
and to crash the parser with deep nesting. Each test is the attack, and what stops it."""
from __future__ import annotations

import csv
import io
import re
import resource
import time

import pytest
from sqlalchemy import select, update

from console import email_templates, render_pool
from console.demo.builders import ensure_shipping_options
from console.extensions import db
from console.models.auth import User
from console.models.notification import EmailTemplate, Notification
from console.models.shipping import Shipment
from console.templating import RenderError, render_email
from console.workflows import orders
from tests.conftest import STAFF_PASSWORD
from tests.returns_helpers import paid_order, staff_actor

# Each level doubles what |string must write: 2**50 nodes (a worker grew to 3.2 GB on it).
DOUBLING = ("{% set ns = namespace(d={}) %}{% for i in range(50) %}{% set ns.d = dict(a=ns.d, b=ns.d) %}"
            "{% endfor %}{{ ns.d|string|length }}")
# Two structures that share themselves 27 levels deep: one == walks 2**27 pairs in C.
DEEP_COMPARISON = ("{% set ns = namespace(a=[], b=[]) %}{% for i in range(27) %}{% set ns.a = [ns.a, ns.a] %}"
                   "{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ ns.a == ns.b }}")
RUNAWAYS = pytest.mark.parametrize("runaway", [DOUBLING, DEEP_COMPARISON], ids=["doubling", "comparison"])
# Start-up of a render child (imports) plus its budget plus slack for a busy machine.
ANSWERED_WITHIN = 8.0


@pytest.fixture(autouse=True)
def installed(app):
    with app.app_context():
        email_templates.install()
        db.session.commit()
        db.session.remove()


def form_of(app, name: str, **changes) -> dict:
    from console.workflows import templates as flow

    with app.app_context():
        row = db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == name))
        draft, stamp = flow.Draft.of(row), flow.stamp(row)
    data = {"subject": draft.subject, "body_html": draft.body_html, "body_text": draft.body_text,
            "is_active": "y", "base": stamp, "var_name": [v["name"] for v in draft.variables],
            "var_description": [v["description"] for v in draft.variables],
            "var_sample": [v["sample"] for v in draft.variables]}
    data.update(changes)
    return data


def set_template(app, name: str, **columns) -> None:
    """Changes a template behind the console's back (an older console, the database itself)."""
    with app.app_context():
        db.session.execute(update(EmailTemplate).where(EmailTemplate.name == name).values(**columns))
        db.session.commit()


# --- 1. account takeover through the staff emails ---------------------------------------------

@pytest.mark.parametrize("name", sorted(email_templates.CREDENTIAL_TEMPLATES))
def test_marketing_can_neither_open_nor_change_the_staff_emails(app, auth, client, name):
    auth.login("marketing")
    assert client.get(f"/templates/{name}").status_code == 403
    attack = form_of(app, name, subject="Invitation {{ link }}")
    for action in ("", "/preview", "/test", "/revert"):
        response = client.post(f"/templates/{name}{action}", data=attack)
        assert response.status_code == 403, action
        assert "only admins" in response.get_data(as_text=True)
    with app.app_context():
        assert "link" not in db.session.scalar(select(EmailTemplate.subject).where(EmailTemplate.name == name))
    listing = client.get("/templates").get_data(as_text=True)
    assert "order_shipped" in listing  # the customer emails stay theirs to edit


def test_not_even_an_admin_may_put_the_link_in_a_subject(app, auth, client):
    auth.login("admin")
    assert client.get("/templates/staff_invitation").status_code == 200
    for subject in ("Invitation {{ link }}", "Invitation {{ link|upper }}", "{{ link[20:] }}"):
        response = client.post("/templates/staff_invitation", data=form_of(app, "staff_invitation", subject=subject))
        assert response.status_code == 422, subject
        assert "The subject may not use link" in response.get_data(as_text=True)


def _token_in(link_path_body: str) -> str:
    return re.search(r"/password/set/(\S+)", link_path_body).group(1)


def _everything_a_reader_sees(client) -> str:
    """The log's list, its export and each notification's page, as one text."""
    seen = [client.get("/notifications").get_data(as_text=True),
            client.get("/notifications/export.csv").get_data(as_text=True),
            client.get("/notifications?subject=Invitation").get_data(as_text=True)]
    rows = list(csv.reader(io.StringIO(seen[1].lstrip("\ufeff"))))
    ids = [row[rows[0].index("notification_id")] for row in rows[1:]]
    assert ids, "the export lists the queued emails"
    seen += [client.get(f"/notifications/{i}").get_data(as_text=True) for i in ids]
    return "\n".join(seen)


@pytest.mark.parametrize("route", ["invitation", "forgot password"])
def test_a_link_in_a_subject_never_reaches_a_reader(app, auth, client, route):
    """The attack: the staff email's subject carries the link (saved before this console
    refused it, or written into the database); an admin invites, or anyone asks for a
    reset of admin@. Marketing and support read the notification log."""
    set_template(app, "staff_invitation", subject="Invitation {{ link }}")
    set_template(app, "staff_password_reset", subject="Reset {{ link }} {{ link|reverse }}")
    auth.create("marketing")
    auth.create("support")
    if route == "invitation":
        auth.login("admin")
        assert client.post("/staff/invite", data={"email": "new.admin@staff.test", "roles": ["admin"]}).status_code == 303
        email = "new.admin@staff.test"
    else:
        auth.create("admin")
        assert app.test_client().post("/password/forgot", data={"email": "admin@staff.test"}).status_code == 303
        email = "admin@staff.test"
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        queued = db.session.scalar(select(Notification).where(Notification.user_id == user_id))
        token = _token_in(queued.body)  # the body carries the link: the recipient needs it
        assert token not in (queued.subject or "") and token[::-1] not in (queued.subject or "")
        assert "(link in the email)" in queued.subject
    for role in ("marketing", "support", "admin"):
        reader = app.test_client()
        assert reader.post("/login", data={"email": f"{role}@staff.test", "password": STAFF_PASSWORD}).status_code == 302
        seen = _everything_a_reader_sees(reader)
        assert token not in seen and "/password/set/" not in seen, role
        assert "Staff sign-in email (not shown)" in seen
        if role == "admin":
            details = reader.get(f"/data/notification/notifications/details/?id={queued.id}").get_data(as_text=True)
            listing = reader.get("/data/notification/notifications/").get_data(as_text=True)
            assert token not in details + listing and "/password/set/" not in details + listing
        reader.post(f"/notifications/{queued.id}/resend")
        with app.app_context():
            assert len(db.session.scalars(select(Notification).where(Notification.user_id == user_id)).all()) == 1


def test_a_staff_email_is_never_resent(app, ctx):
    from console.workflows import notifications as flow
    from console.workflows import WorkflowError

    failed = Notification(user_id="u1", type="EMAIL", subject="x", body="x", status="FAILED",
                          metadata_={"template": "staff_password_reset", "key": "k"})
    db.session.add(failed)
    db.session.commit()
    with pytest.raises(WorkflowError, match="not resent"):
        flow.resend(staff_actor("support"), failed.id)


# --- 2. runaway renders --------------------------------------------------------------------------

def _timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@RUNAWAYS
def test_a_runaway_render_is_stopped_within_its_budget(runaway):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(RenderError, match="longer than 1 s|MB of memory") as stopped:
        _timed(lambda: render_email("", "", runaway, {}))
    assert stopped.value.message
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 100_000  # the work happened in a child process, not in this one
    assert render_email("Hi {{ n }}", "", "ok", {"n": "Ada"}).subject == "Hi Ada"  # the next render works


def test_a_render_that_fills_memory_is_stopped_by_the_memory_cap(monkeypatch):
    monkeypatch.setenv("CONSOLE_RENDER_MEMORY_MB", "32")
    render_pool.restart()
    try:
        # 4,096 copies of a 100,000-character value in one |string: 400 MB, written at
        # memory speed, so the cap is met long before the time limit.
        growing = ('{% set ns = namespace(d="x" * 99999) %}{% for i in range(12) %}'
                   "{% set ns.d = dict(a=ns.d, b=ns.d) %}{% endfor %}{{ ns.d|string|length }}")
        with pytest.raises(RenderError, match="MB of memory"):
            render_email("", "", growing, {})
    finally:
        monkeypatch.delenv("CONSOLE_RENDER_MEMORY_MB")
        render_pool.restart()


@RUNAWAYS
def test_preview_save_and_send_test_answer_within_the_budget(app, auth, client, runaway):
    auth.login("marketing")
    data = form_of(app, "order_shipped", body_text=runaway)
    preview, took = _timed(lambda: client.post("/templates/order_shipped/preview", data=data,
                                               headers={"HX-Request": "true"}))
    assert preview.status_code == 200 and took < ANSWERED_WITHIN
    assert "longer than 1 s" in preview.get_data(as_text=True) or "MB of memory" in preview.get_data(as_text=True)
    saved, took = _timed(lambda: client.post("/templates/order_shipped", data=form_of(app, "order_shipped",
                                                                                    body_text=runaway)))
    assert saved.status_code == 422 and took < ANSWERED_WITHIN
    set_template(app, "order_shipped", body_text=runaway)  # saved somehow: Send test must still answer
    sent, took = _timed(lambda: client.post("/templates/order_shipped/test", data={}, follow_redirects=True))
    assert took < ANSWERED_WITHIN and "can&#39;t be rendered" in sent.get_data(as_text=True)


@RUNAWAYS
def test_a_workflow_completes_and_queues_the_email_as_failed(app, ctx, runaway):
    """A template cheap with the sample values and expensive with a real order: the
    warehouse's Mark shipped still ships, and the email is recorded as failed."""
    sneaky = "{% if order_number != 'ORD-20261101-0042' %}" + runaway + "{% endif %}"
    db.session.execute(update(EmailTemplate).where(EmailTemplate.name == "order_shipped").values(body_text=sneaky))
    ensure_shipping_options()
    data = paid_order(status="processing")
    db.session.commit()
    shipment, took = _timed(lambda: orders.mark_shipped(staff_actor("warehouse"), data.order.id, "ups", "standard",
                                                        "1Z999AA10123456784"))
    assert took < ANSWERED_WITHIN
    shipment_id, customer_id = shipment.id, data.customer.id
    db.session.remove()
    assert db.session.get(Shipment, shipment_id) is not None
    [email] = db.session.scalars(select(Notification).where(Notification.user_id == customer_id))
    assert email.status == "FAILED"
    assert re.search("longer than 1 s|MB of memory", email.metadata_["render_error"])


# --- 3. nesting that crashed the parser ----------------------------------------------------------

@pytest.mark.parametrize("body", [
    "{{ " + "[" * 3000 + "]" * 3000 + " }}",
    "{% if x %}" * 1500 + "{% endif %}" * 1500,
    "{% for i in x %}" * 200 + "{% endfor %}" * 200,
    "{{ " + "(" * 500 + "1" + ")" * 500 + " }}",
], ids=["brackets", "ifs", "fors", "parentheses"])
def test_deep_nesting_is_refused_at_the_field(app, auth, client, body):
    auth.login("marketing")
    data = form_of(app, "order_shipped", body_text=body,
                   var_name=["first_name", "order_number", "carrier", "tracking_number", "x"],
                   var_description=["", "", "", "", "x"], var_sample=["", "", "", "", ""])
    saved = client.post("/templates/order_shipped", data=data)
    assert saved.status_code == 422
    assert "nested too deeply" in saved.get_data(as_text=True)
    preview = client.post("/templates/order_shipped/preview", data=data, headers={"HX-Request": "true"})
    assert preview.status_code == 200 and "nested too deeply" in preview.get_data(as_text=True)


def test_functions_render_as_names_not_addresses():
    email = render_email("", "", "{{ range }} {{ dict|string }} {{ namespace }}", {})
    assert "0x" not in email.body_text and email.body_text.startswith("range dict")
