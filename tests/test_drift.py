"""Schema drift: a service database that lacks columns and a table the models declare.
Every screen still opens, the order page marks the missing value, a change that needs
a missing column is refused before anything is written, /healthz and the Databases
page report it, and "check again" clears it once the service has migrated."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text

from console.drift import NOT_IN_DATABASE, SchemaDrift, drift
from console.extensions import db
from console.models.order import Order
from console.models.shipping import Carrier, Shipment
from console.workflows import orders as order_workflows
from tests.conftest import StaffSignIn
from tests.databases import scratch_database
from tests.second_app import app_with_bind
from tests.test_hostile_input import path_values, real_rows
from tests.test_permissions import admin_endpoints, is_static

pytestmark = pytest.mark.postgres_only

DRIFT = (f'ALTER TABLE orders DROP COLUMN "{Order.__table__.c.estimated_delivery_date.name}"',  # no list shows it
         f'ALTER TABLE orders DROP COLUMN "{Order.__table__.c.shipped_at.name}"',  # the order page shows it
         "DROP TABLE order_notes")


def get_routes(app) -> list:
    data_views = admin_endpoints(app)
    return sorted((r for r in app.url_map.iter_rules() if "GET" in r.methods and not is_static(r)
                   and r.endpoint.split(".")[0] not in data_views | {"auth"}
                   or r.endpoint in ("data_order_orders.index_view", "data_order_orders.details_view")),
                  key=lambda r: r.rule)


def test_a_drifted_database_costs_only_what_needs_the_drifted_columns(app, database_urls, tmp_path):
    with scratch_database(tmp_path) as url, app_with_bind(database_urls, "order", url) as other:
        with other.app_context():
            db.create_all(bind_key="order")
        client = other.test_client()
        rows = real_rows(other, StaffSignIn(other, client))
        with other.app_context():
            order = db.session.get(Order, rows["orders"]["order_id"])
            order.status = "confirmed"
            db.session.add(Carrier(code="ups", name="UPS", is_active=True, api_endpoint="https://api.ups.example/v1",
                                   api_key="demo-key"))
            db.session.commit()
            with db.engines["order"].begin() as conn:
                for statement in DRIFT:
                    conn.execute(text(statement))

        # Nothing known yet about the change (the columns were read before): "check again".
        checked = client.post("/databases/check-schema", follow_redirects=True)
        assert checked.status_code == 200
        html = checked.get_data(as_text=True)
        assert "3 table(s) or column(s) still differ" in html
        for name in ("order.orders.estimatedDeliveryDate", "order.orders.shippedAt", "order.order_notes"):
            assert f'data-drift="{name}"' in html, name
        assert "must migrate" in html

        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json["schema"] == "drifted" and health.json["drifted"] == 3
        assert health.json["databases"]["order"] == {"up": True}
        anonymous = other.test_client().get("/healthz").json
        assert anonymous["schema"] == "drifted" and "orders" not in str(anonymous)

        # Every screen opens: no 500; a 503 only where the missing table is the subject.
        failures = []
        for rule in get_routes(other):
            path = rule.build(path_values(rule, rows))[1]
            response = client.get(path)
            response.get_data()
            if response.status_code >= 500 and not (
                    response.status_code == 503 and "order_notes" in response.get_data(as_text=True)):
                failures.append(f"{path}: {response.status_code}")
        assert failures == []
        for path in ("/orders", "/returns", "/refunds", "/orders?format=csv"):
            assert client.get(path).status_code == 200, path

        page = client.get(f"/orders/{rows['orders']['key']}")
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert re.search(r"shipped <span class=\"badge[^\"]*not-in-database", body)
        assert "Notes are not shown: order_db does not have the table order_notes" in body

        # Shipping needs orders.shipped_at: refused before the shipment is made.
        with other.app_context():
            shipments_before = db.session.scalar(select(func.count()).select_from(Shipment))
            with pytest.raises(SchemaDrift) as refused:
                order_workflows.mark_shipped(rows_actor(other), rows["orders"]["order_id"], "ups", "standard",
                                             "1Z999AA10123456784")
            assert "orders.shippedAt" in refused.value.message and "order_db" in refused.value.message
            assert refused.value.status == 503
            assert db.session.scalar(select(func.count()).select_from(Shipment)) == shipments_before
            db.session.rollback()
            assert db.session.get(Order, rows["orders"]["order_id"]).shipped_at is NOT_IN_DATABASE
            db.session.remove()

        # A note needs the missing table: refused with its name, nothing else changes.
        note = client.post(f"/orders/{rows['orders']['key']}/notes", data={"note": "called the customer", "visibility": "internal"})
        assert note.status_code == 503 and "order_notes" in note.get_data(as_text=True)

        # The service migrates: "check again" clears it without a restart.
        with other.app_context():
            with db.engines["order"].begin() as conn:
                conn.execute(text('ALTER TABLE orders ADD COLUMN "estimatedDeliveryDate" TIMESTAMP(3)'))
                conn.execute(text('ALTER TABLE orders ADD COLUMN "shippedAt" TIMESTAMP(3)'))
            db.metadatas["order"].tables["order_notes"].create(db.engines["order"])
        cleared = client.post("/databases/check-schema", follow_redirects=True).get_data(as_text=True)
        assert "every database has the tables and columns" in cleared and 'data-drift="' not in cleared
        assert client.get("/healthz").json["schema"] == "ok"
        with other.app_context():
            assert drift().count == 0
        page = client.get(f"/orders/{rows['orders']['key']}").get_data(as_text=True)
        assert "not-in-database" not in page


def rows_actor(app):
    from console.staff import StaffUser
    from console.models.auth import User

    admin = db.session.scalar(select(User).where(User.email == "admin@staff.test"))
    return StaffUser(id=admin.id, email=admin.email, roles=frozenset({"admin"}))


def test_a_column_of_another_type_is_reported_and_left_out(app, database_urls, tmp_path):
    from console.models.product import Product
    from console.schema_check import check_bind

    with scratch_database(tmp_path) as url, app_with_bind(database_urls, "product", url) as other:
        with other.app_context():
            db.create_all(bind_key="product")
            db.session.add(Product(name="Lamp", sku="LAMP-1", slug="lamp-1", price="12.50", status="active"))
            db.session.commit()
            with db.engines["product"].begin() as conn:
                conn.execute(text("ALTER TABLE products ALTER COLUMN price TYPE text"))
            report = check_bind("product")
            assert not report.fits and list(report.mistyped_columns) == ["products.price"]
            assert "the console expects number" in report.mistyped_columns["products.price"]
            registry = drift()
            registry.check(force=True)
            assert [c.name for b in registry.binds.values() for c in b.columns] == ["products.price"]
            db.session.remove()
            lamp = db.session.scalar(select(Product).where(Product.sku == "LAMP-1"))
            assert lamp.name == "Lamp" and lamp.price is NOT_IN_DATABASE
            lamp.price = "13.00"
            with pytest.raises(SchemaDrift, match="products.price"):
                db.session.flush()
            db.session.rollback()
        result = other.test_cli_runner().invoke(args=["console", "check-schema"])
        assert any(line.startswith("  mistyped column products.price: TEXT") and "the console expects number" in line
                   for line in result.output.splitlines()), result.output


def test_a_workflow_across_databases_is_refused_before_its_first_step(app, database_urls, tmp_path):
    """Cancelling writes order_db, product_db, payment_db and notification_db in turn: a
    notification_db without a column the email needs refuses the cancellation up front,
    so the order is not left cancelled with its later steps undone. A refund likewise
    is refused before the money moves when order_db can't take its later step."""
    from console.models.payment import PaymentRefund
    from console.workflows import refunds as refund_workflows
    from console.workflows.orders import OrderStatusHistory

    with scratch_database(tmp_path) as url, app_with_bind(database_urls, "notification", url) as other:
        with other.app_context():
            db.create_all(bind_key="notification")
        client = other.test_client()
        rows = real_rows(other, StaffSignIn(other, client))
        order_id = rows["orders"]["order_id"]
        with other.app_context():
            with db.engines["notification"].begin() as conn:
                conn.execute(text("ALTER TABLE notifications DROP COLUMN subject"))
            drift().check(force=True)
            db.session.get(Order, order_id).status = "confirmed"
            db.session.commit()
            history_before = db.session.scalar(select(func.count()).select_from(OrderStatusHistory))
            with pytest.raises(SchemaDrift) as refused:
                order_workflows.cancel(rows_actor(other), order_id, "customer asked")
            assert "notifications.subject" in refused.value.message
            assert "notification_db" in refused.value.message and "Nothing was changed" in refused.value.message
            db.session.rollback()
            assert db.session.get(Order, order_id, populate_existing=True).status == "confirmed"
            assert db.session.scalar(select(func.count()).select_from(OrderStatusHistory)) == history_before

            refunds_before = db.session.scalar(select(func.count()).select_from(PaymentRefund))
            with pytest.raises(SchemaDrift, match="notifications.subject"):
                refund_workflows.refund_order(rows_actor(other), order_id, "1.00", key="drift-test", reason="goodwill")
            db.session.rollback()
            assert db.session.scalar(select(func.count()).select_from(PaymentRefund)) == refunds_before
            db.session.remove()


def test_a_statement_on_a_database_checked_clean_is_not_walked(app, monkeypatch):
    """The registry is clean as a whole only once every database has been used; until
    then a statement on a database already checked and found clean costs no walk of
    its elements (the first statement on each database still checks it)."""
    from console import drift as drift_module

    walked = []
    real = drift_module._mappers_of
    monkeypatch.setattr(drift_module, "_mappers_of", lambda state: walked.append(state) or real(state))
    with app.app_context():
        registry = drift()
        registry.forget()
        try:
            db.session.execute(select(Order.id).limit(1)).all()
            assert len(walked) == 1 and "order" in registry.clean_binds and not registry.clean
            db.session.execute(select(Order.id, Order.order_number).limit(1)).all()
            db.session.execute(select(Shipment.id).limit(1)).all()  # shipping_db: checked now
            db.session.execute(select(Shipment.id, Shipment.status).limit(1)).all()
        finally:
            db.session.rollback()
            registry.forget()
    assert len(walked) == 2
