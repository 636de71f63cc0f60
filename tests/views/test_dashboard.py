"""The dashboard: figures right for known data, links to the lists behind them, and one
database down emptying only its own figures."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from console.screens import dashboard
from console.demo.builders import (
    ensure_email_templates, make_customer, make_notification, make_order, make_product, make_refund, make_return,
)
from console.extensions import db
from console.models.types import utcnow
from tests.conftest import StaffSignIn
from tests.second_app import app_with_unreachable

WEDNESDAY = datetime(2026, 3, 18, 15, 0, tzinfo=timezone.utc)


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=timezone.utc)


@pytest.fixture
def shop(ctx):
    """Orders around Wednesday 18 March 2026, plus returns, refunds, stock and emails.

    Each line is one 10.00 item; an order of n items totals 10n + 8% tax + 5.00 shipping.
    """
    user, _ = make_customer("shopper@example.com")
    item = make_product("ITEM-1", "Item", "10.00", stock=500)
    orders = {
        "a": make_order(user, [(item, 2)], status="confirmed", created_at=at(18, 9)),    # 26.60
        "b": make_order(user, [(item, 1)], status="pending", created_at=at(18, 10)),     # 15.80
        "c": make_order(user, [(item, 1)], status="cancelled", created_at=at(18, 11)),   # not revenue
        "eur": make_order(user, [(item, 1)], currency="EUR", status="confirmed", created_at=at(18, 12)),
        "monday": make_order(user, [(item, 3)], status="delivered", created_at=at(16, 12)),  # 37.40
        "last_week": make_order(user, [(item, 1)], status="delivered", created_at=at(10, 8)),  # 15.80
        "old": make_order(user, [(item, 1)], status="delivered", created_at=at(5, 8, month=2)),
    }
    delivered = orders["monday"]
    for status in ("pending", "approved", "received", "rejected"):
        make_return(delivered.order, [(delivered.items[0], 1)], status=status, requested_at=at(17, 9))
    payment = orders["last_week"].payment
    make_refund(payment, "1.00", status="PENDING")
    make_refund(payment, "2.00", status="FAILED")
    make_refund(payment, "3.00", status="FAILED")
    make_refund(payment, "4.00", status="COMPLETED")
    make_product("LOW-3", "Nearly gone", "5.00", stock=3)
    make_product("LOW-RES", "Mostly reserved", "5.00", stock=5, reserved=4)
    make_product("OUT-0", "Sold out", "5.00", stock=0)
    make_product("OLD-1", "Archived", "5.00", stock=1, status="archived")
    templates = ensure_email_templates()
    for status in ("FAILED", "FAILED", "BOUNCED", "SENT", "DELIVERED"):
        make_notification(user.id, templates["order_shipped"], {"order_number": "X"}, status=status)
    db.session.commit()
    return orders


def test_figures_for_known_data(shop):
    board = dashboard.collect(WEDNESDAY)
    assert board.down == []
    counts = board["orders"].value
    assert (counts.today, counts.week) == (4, 5)
    assert counts.week_from.isoformat() == "2026-03-16"

    usd, eur = board["revenue"].value  # the bigger currency first
    assert (usd.currency, eur.currency) == ("USD", "EUR")
    assert len(usd.days) == 30 and usd.days[-1].day.isoformat() == "2026-03-18"
    by_day = {d.day.isoformat(): d for d in usd.days}
    assert by_day["2026-03-18"].amount == Decimal("42.40")  # 26.60 + 15.80; the cancelled one left out
    assert isinstance(by_day["2026-03-18"].amount, Decimal)
    assert by_day["2026-03-18"].orders == 2
    assert by_day["2026-03-16"].amount == Decimal("37.40")
    assert by_day["2026-03-17"].amount == Decimal("0.00")
    assert usd.total == Decimal("95.60")  # the February order is outside the 30 days
    assert {d.day.isoformat(): d.amount for d in eur.days if d.amount} == {"2026-03-18": Decimal("15.80")}

    assert board["statuses"].value == [("pending", 1), ("confirmed", 2), ("delivered", 3), ("cancelled", 1)]
    assert board["returns"].value == [("pending", 1), ("approved", 1), ("received", 1)]
    assert board["refunds"].value == [("PENDING", 1), ("PROCESSING", 0), ("FAILED", 2)]
    assert [(r.sku, r.available) for r in board["low_stock"].value] == [("OUT-0", 0), ("LOW-RES", 1), ("LOW-3", 3)]
    failed = board["notifications"].value
    assert failed.counts == [("FAILED", 2), ("BOUNCED", 1)] and failed.total == 3
    assert len(failed.recent) == 3


def test_revenue_chart_bars_link_to_each_days_orders(app, shop):
    usd = dashboard.collect(WEDNESDAY)["revenue"].value[0]
    with app.test_request_context():  # links are built with url_for, as when the page renders
        chart = dashboard.revenue_chart(usd)
    assert len(chart.bars) == 30
    today, yesterday = chart.bars[-1], chart.bars[-2]
    assert today.height > 0 and yesterday.height == 0
    assert "42.40 USD from 2 orders" in today.title
    assert today.href == "/orders?created_from=2026-03-18&created_to=2026-03-18&currency=USD"


def test_dashboard_page_shows_figures_and_links(app, auth, client):
    with app.app_context():
        user, _ = make_customer("today@example.com")
        item = make_product("ITEM-2", "Item", "10.00", stock=100)
        now = utcnow()
        make_order(user, [(item, 2)], status="processing", created_at=now)  # 26.60
        make_order(user, [(item, 1)], status="pending", created_at=now)  # 15.80
        make_product("LOW-9", "Last few", "9.00", stock=2)
        db.session.commit()
    auth.login("support")
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    kpi = html[html.index('id="kpi-orders-today"'):html.index('id="kpi-orders-week"')]
    assert ">2<" in kpi
    assert "42.40 USD from 2 orders" in html
    assert "<svg" in html and 'class="bar"' in html and "style=" not in html
    assert "LOW-9" in html
    today = now.date().isoformat()
    assert f'href="/orders?created_from={today}"' in html
    assert 'href="/orders?status=processing"' in html
    assert f"/orders?created_from={today}&amp;created_to={today}&amp;currency=USD" in html
    assert 'href="/returns?status=pending"' in html
    assert 'href="/refunds?status=failed"' in html
    # The global search box sits in the header.
    assert 'action="/search"' in html and 'name="q"' in html


def test_figures_link_only_to_lists_the_role_may_open(app, auth, client):
    """Marketing sees the figures but holds no orders, returns or refunds permission:
    no figure or bar links into a 403."""
    with app.app_context():
        user, _ = make_customer("today@example.com")
        make_order(user, [(make_product("ITEM-3", "Item", "10.00", stock=100), 1)], status="pending",
                   created_at=utcnow())
        db.session.commit()
    auth.login("marketing")
    html = client.get("/").get_data(as_text=True)
    assert "Orders by status" in html and 'class="bar status-pending"' in html
    for path in ("/orders", "/returns", "/refunds"):
        assert f'href="{path}' not in html


def test_dashboard_query_count_is_bounded(app, auth, client, count_queries):
    with app.app_context():
        user, _ = make_customer("many@example.com")
        item = make_product("ITEM-3", "Item", "10.00", stock=1000)
        for day in range(40):
            make_order(user, [(item, 1)], with_payment=False, created_at=utcnow() - timedelta(days=day))
        db.session.commit()
    auth.login("support")
    count_queries.statements.clear()
    assert client.get("/").status_code == 200
    assert count_queries.count <= 12


@pytest.fixture(scope="module")
def apps_without(database_urls):
    with app_with_unreachable(database_urls, "return") as no_return, \
            app_with_unreachable(database_urls, "order") as no_order:
        yield {"return": no_return, "order": no_order}


def test_return_database_down_empties_only_the_returns_figure(app, apps_without):
    with app.app_context():
        user, _ = make_customer("x@example.com")
        make_order(user, [(make_product("ITEM-4", "Item", "10.00"), 1)], status="pending")
        db.session.commit()
    down = apps_without["return"]
    client = down.test_client()
    StaffSignIn(down, client).login("support")
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    returns = html[html.index('id="kpi-returns"'):html.index('id="kpi-refunds"')]
    assert "return database unavailable" in returns
    assert html.count("database unavailable</p>") == 1
    kpi = html[html.index('id="kpi-orders-today"'):html.index('id="kpi-orders-week"')]
    assert ">1<" in kpi


def test_order_database_down_empties_the_order_figures_only(app, apps_without):
    with app.app_context():
        user, _ = make_customer("y@example.com")
        order = make_order(user, [(make_product("ITEM-5", "Item", "10.00"), 1)], status="delivered")
        make_return(order.order, [(order.items[0], 1)], status="pending")
        db.session.commit()
    down = apps_without["order"]
    client = down.test_client()
    StaffSignIn(down, client).login("support")
    html = client.get("/").get_data(as_text=True)
    assert html.count("order database unavailable</p>") == 4  # today, week, revenue, statuses
    returns = html[html.index('id="kpi-returns"'):html.index('id="kpi-refunds"')]
    assert "unavailable" not in returns and "pending 1" in returns


def test_failed_notifications_link_to_their_list(app, auth, client):
    with app.app_context():
        user, _ = make_customer("z@example.com")
        templates = ensure_email_templates()
        bounced = make_notification(user.id, templates["order_shipped"], {"order_number": "X"}, status="BOUNCED")
        db.session.commit()
        user_id, bounced_id = user.id, bounced.id
    # Those who may read the notification log: the figure, its statuses and the rows open it.
    for role in ("admin", "support"):
        auth.login(role)
        html = client.get("/").get_data(as_text=True)
        figure = html[html.index('id="kpi-notifications"'):html.index('id="revenue"')]
        assert 'href="/notifications?status=failed"' in figure
        assert 'href="/notifications?status=BOUNCED"' in figure
        assert f'href="/notifications/{bounced_id}"' in html
        auth.logout()
    # Those who may not: the figure points at the rows on the dashboard itself.
    auth.login("finance")
    html = client.get("/").get_data(as_text=True)
    figure = html[html.index('id="kpi-notifications"'):html.index('id="revenue"')]
    assert 'href="#failed-notifications"' in figure
    assert "/notifications" not in figure
    assert f'/customers/{user_id}' in html  # whom the bounced email was for


def test_order_figures_are_kept_for_a_while_and_say_when(app, auth, client, count_queries, monkeypatch):
    """With DASHBOARD_CACHE_SECONDS set, a second load within it does not read order_db
    again; the page says how old the figures are; the other figures stay live."""
    monkeypatch.setitem(app.config, "DASHBOARD_CACHE_SECONDS", 60)
    dashboard.forget_cached()
    with app.app_context():
        user, _ = make_customer("cached@example.com")
        item = make_product("ITEM-C", "Item", "10.00", stock=100)
        make_order(user, [(item, 1)], status="pending")
        db.session.commit()
        ids = (user.id, item.id)
    auth.login("support")
    try:
        first = client.get("/").get_data(as_text=True)
        assert "recomputed every" not in first
        with app.app_context():
            from console.models.auth import User
            from console.models.product import Product

            make_order(db.session.get(User, ids[0]), [(db.session.get(Product, ids[1]), 1)], status="pending")
            db.session.commit()
        count_queries.statements.clear()
        second = client.get("/").get_data(as_text=True)
        assert not [s for s in count_queries.statements if "FROM orders" in s]
        assert "recomputed every 60 s" in second
        kpi = second[second.index('id="kpi-orders-today"'):second.index('id="kpi-orders-week"')]
        assert ">1<" in kpi  # still the kept figure
        dashboard.forget_cached()
        fresh = client.get("/").get_data(as_text=True)
        kpi = fresh[fresh.index('id="kpi-orders-today"'):fresh.index('id="kpi-orders-week"')]
        assert ">2<" in kpi
    finally:
        dashboard.forget_cached()
