"""The dashboard: figures right for known data, links to the lists behind them, and one
database down emptying only its own figures."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
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
    make_refund(payment, "1.00", status="pending")
    make_refund(payment, "2.00", status="failed")
    make_refund(payment, "3.00", status="failed")
    make_refund(payment, "4.00", status="completed", created_at=at(17, 10))  # this week
    make_refund(payment, "1.50", status="completed", created_at=at(11, 10))  # the week before
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
    week = dashboard.named_period("7d", WEDNESDAY)
    assert (week.first.isoformat(), week.last.isoformat()) == ("2026-03-12", "2026-03-18")
    board = dashboard.collect(WEDNESDAY, week)
    assert board.down == []
    sales = board["sales"].value
    assert (sales.current.placed, sales.current.cancelled) == (5, 1)
    usd, eur = sales.current.of("USD"), sales.current.of("EUR")
    assert usd.revenue == Decimal("79.80") and usd.orders == 3  # 26.60 + 15.80 + 37.40; cancelled left out
    assert usd.average == Decimal("26.60") and isinstance(usd.average, Decimal)
    assert (eur.revenue, eur.orders) == (Decimal("15.80"), 1)
    # The week before, up to the same time of day: the order of the 10th only.
    assert sales.previous.placed == 1 and sales.previous.of("USD").revenue == Decimal("15.80")
    assert sales.currencies == ["USD", "EUR"]  # the bigger currency first

    series = sales.series[0]
    assert series.currency == "USD" and len(series.days) == 7 and series.days[-1].day.isoformat() == "2026-03-18"
    by_day = {d.day.isoformat(): d for d in series.days}
    assert by_day["2026-03-18"].amount == Decimal("42.40") and by_day["2026-03-18"].orders == 2
    assert by_day["2026-03-16"].amount == Decimal("37.40")
    assert by_day["2026-03-17"].amount == Decimal("0.00")
    assert sales.statuses == [("pending", 1), ("confirmed", 2), ("delivered", 1), ("cancelled", 1)]

    refunded = board["refunded"].value
    assert refunded.amount("USD") == Decimal("4.00") and refunded.amount("USD", previous=True) == Decimal("1.50")
    assert (board["returned"].value.current, board["returned"].value.previous) == (4, 0)

    # Right now, whatever the period.
    assert board["returns"].value == [("pending", 1), ("approved", 1), ("received", 1)]
    assert board["refunds"].value == [("pending", 1), ("processing", 0), ("failed", 2)]
    assert [(r.sku, r.available) for r in board["low_stock"].value] == [("OUT-0", 0), ("LOW-RES", 1), ("LOW-3", 3)]
    failed = board["notifications"].value
    assert failed.counts == [("FAILED", 2), ("BOUNCED", 1)] and failed.total == 3
    assert len(failed.recent) == 3


def test_headline_figures_against_the_previous_period(app, shop):
    board = dashboard.collect(WEDNESDAY, dashboard.named_period("7d", WEDNESDAY))
    with app.test_request_context():
        cards = {card.id: card for card in dashboard.period_kpis(board)}
    orders = cards["kpi-orders"]
    assert (orders.value, orders.was, orders.note) == ("5", "1", "1 cancelled")
    assert (orders.change.direction, orders.change.text, orders.change.good) == ("up", "400.0%", True)
    assert orders.href == "/orders?created_from=2026-03-12&created_to=2026-03-18"
    revenue = cards["kpi-revenue"]
    assert (revenue.value, revenue.unit, revenue.was) == ("79.80", "USD", "15.80 USD")
    assert revenue.change.text == "405.1%" and "cancelled ones not counted" in revenue.note
    average = cards["kpi-average"]
    assert (average.value, average.unit, average.was, average.change.text) == ("26.60", "USD", "15.80 USD", "68.4%")
    share = cards["kpi-refund-share"]
    assert (share.value, share.was) == ("5.0%", "9.5%")  # 4.00 / 79.80 against 1.50 / 15.80
    assert (share.change.direction, share.change.text, share.change.good) == ("down", "4.5 pts", True)
    rate = cards["kpi-returns-rate"]
    assert (rate.value, rate.was) == ("80.0%", "0.0%")  # 4 return requests / 5 orders
    assert (rate.change.direction, rate.change.good) == ("up", False)  # more returns: bad news


def test_change_reads_as_words_and_arrows():
    up = dashboard.change(Decimal("110"), Decimal("100"))
    assert (up.arrow, up.direction, up.text, up.good) == ("▲", "up", "10.0%", True)
    down = dashboard.change(90, 100, up_is_good=False)
    assert (down.arrow, down.text, down.good) == ("▼", "10.0%", True)
    assert dashboard.change(5, 0).text == "none before"
    assert dashboard.change(0, 0).text == "none either time"
    assert dashboard.change(100, 100).direction == "same"
    assert dashboard.change(None, 100) is None
    assert dashboard.change(Decimal("0.05"), Decimal("0.03"), rate=True).text == "2.0 pts"


def test_periods_and_their_previous_periods():
    now = datetime(2026, 3, 18, 15, 0, tzinfo=timezone.utc)
    today = dashboard.named_period("today", now)
    assert today.start == datetime(2026, 3, 18, tzinfo=timezone.utc) and today.end == now
    assert today.previous_start == datetime(2026, 3, 17, tzinfo=timezone.utc)
    assert today.previous_end == datetime(2026, 3, 17, 15, tzinfo=timezone.utc)  # yesterday up to the same time
    assert today.previous_label == "yesterday up to 15:00"
    month = dashboard.named_period("month", now)
    assert (month.first.isoformat(), month.days) == ("2026-03-01", 18)
    assert month.previous_start == datetime(2026, 2, 11, tzinfo=timezone.utc)
    custom, errors = dashboard.parse_period({"period": "custom", "from": "2026-03-01", "to": "2026-03-10"}, now)
    assert not errors and custom.days == 10 and not custom.partial
    assert custom.end == datetime(2026, 3, 11, tzinfo=timezone.utc)
    assert (custom.previous_start, custom.previous_end) == (datetime(2026, 2, 19, tzinfo=timezone.utc), custom.start)


@pytest.mark.parametrize("args, message", [
    ({"period": "fortnight"}, "Period “fortnight” is not one of"),
    ({"period": "custom", "from": "2026-02-30", "to": "2026-03-01"}, "is not a date"),
    ({"period": "custom", "from": "2026-03-10", "to": "2026-03-01"}, "swap the dates"),
    ({"period": "custom", "from": "2026-03-01", "to": "2026-03-19"}, "after today"),
    ({"period": "custom", "from": "2024-01-01", "to": "2026-03-01"}, "366 days at most"),
    ({"period": "custom"}, "Choose the first and last day"),
    ({"from": "x" * 100_000}, "is not a date"),
    ({"period": "x" * 100_000}, "Period is not one of: today, 7d, 30d, month, custom."),
    ({"from": "2026-03-01\x00"}, "is not a date"),
])
def test_a_period_that_cannot_be_used_is_named(args, message):
    now = datetime(2026, 3, 18, 15, 0, tzinfo=timezone.utc)
    period, errors = dashboard.parse_period(args, now)
    assert any(message in e for e in errors), errors
    assert period.key == "today"


def test_a_bad_period_answers_400_with_a_message(auth, client):
    auth.login("support")
    response = client.get("/?period=custom&from=2026-02-30&to=2026-03-01")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "is not a date (use YYYY-MM-DD)" in html and "Showing today instead" in html
    assert client.get("/?period=custom&from=" + "9" * 5000).status_code == 400
    assert client.get("/?period=7d").status_code == 200


def test_each_period_renders(app, auth, client, shop):
    auth.login("support")
    for query in ("", "?period=today", "?period=7d", "?period=30d", "?period=month",
                  "?period=custom&from=2026-01-01&to=2026-01-31"):
        response = client.get("/" + query)
        assert response.status_code == 200, query
        html = response.get_data(as_text=True)
        assert 'id="kpi-orders"' in html and 'id="right-now"' in html
        assert 'aria-current="page"' in html or "custom" in query


def test_an_order_just_before_midnight_utc_is_tomorrows_in_auckland(app, auth, client, monkeypatch):
    """23:30 UTC on 18 March is 12:30 on 19 March in Pacific/Auckland (UTC+13 then): the
    store's day decides the dashboard's today and the orders list's dates."""
    late, early = datetime(2026, 3, 18, 23, 30, tzinfo=timezone.utc), datetime(2026, 3, 18, 10, 0, tzinfo=timezone.utc)
    now = datetime(2026, 3, 18, 23, 50, tzinfo=timezone.utc)
    with app.app_context():
        user, _ = make_customer("late@example.com")
        item = make_product("ITEM-TZ", "Item", "10.00", stock=100)
        make_order(user, [(item, 1)], status="pending", created_at=late, order_number="ORD-LATE")
        make_order(user, [(item, 1)], status="pending", created_at=early, order_number="ORD-EARLY")
        db.session.commit()

        def placed(period_key="today", **range_):
            period = (dashboard.parse_period({"period": "custom", **range_}, now)[0] if range_
                      else dashboard.named_period(period_key, now))
            return period.first.isoformat(), dashboard.collect(now, period)["sales"].value.current.placed

        assert placed() == ("2026-03-18", 2)  # UTC: both are today's
        assert placed(**{"from": "2026-03-18", "to": "2026-03-18"}) == ("2026-03-18", 2)
        monkeypatch.setitem(app.config, "TIMEZONE", "Pacific/Auckland")
        assert placed() == ("2026-03-19", 1)  # Auckland: the late one is the 19th's, the early one the 18th's
        assert placed(**{"from": "2026-03-18", "to": "2026-03-18"}) == ("2026-03-18", 1)
        yesterday_and_today = dashboard.collect(now, dashboard.parse_period(
            {"from": "2026-03-18", "to": "2026-03-19"}, now)[0])["sales"].value
        assert [d.orders for d in yesterday_and_today.series[0].days] == [1, 1]

    auth.login("support")

    def listed(day: str) -> set[str]:
        html = client.get(f"/orders?created_from={day}&created_to={day}").get_data(as_text=True)
        return {n for n in ("ORD-LATE", "ORD-EARLY") if n in html}

    assert listed("2026-03-19") == {"ORD-LATE"} and listed("2026-03-18") == {"ORD-EARLY"}
    html = client.get("/orders?q=ORD-LATE").get_data(as_text=True)
    assert "2026-03-19" in html and "Times in Pacific/Auckland" in html
    monkeypatch.setitem(app.config, "TIMEZONE", "UTC")
    assert listed("2026-03-18") == {"ORD-LATE", "ORD-EARLY"} and listed("2026-03-19") == set()
    assert "Times in UTC" in client.get("/orders").get_data(as_text=True)


def test_revenue_chart_bars_link_to_each_days_orders(app, shop):
    usd = dashboard.collect(WEDNESDAY, dashboard.named_period("30d", WEDNESDAY))["sales"].value.series[0]
    with app.test_request_context():  # links are built with url_for, as when the page renders
        chart = dashboard.revenue_chart(usd)
    assert len(chart.bars) == 30
    today, yesterday = chart.bars[-1], chart.bars[-2]
    assert today.height > 0 and yesterday.height == 0
    assert "42.40 USD from 2 orders" in today.title
    assert today.href == "/orders?created_from=2026-03-18&created_to=2026-03-18&currency=USD"
    # Drawn as SVG: each bar in its link (escaped), its title, and every few days a label.
    svg = str(chart.column_svg(True))
    assert svg.count('<rect class="bar"') == svg.count("<a href=") == 30
    assert ('<a href="/orders?created_from=2026-03-18&amp;created_to=2026-03-18&amp;currency=USD">'
            '<rect class="bar"') in svg
    assert "42.40 USD from 2 orders</title>" in svg and svg.count('<text class="tick"') == len(chart.labelled)
    assert "<a " not in str(chart.column_svg(False))  # for staff who may not open the orders list


def test_dashboard_page_shows_figures_and_links(app, auth, client):
    with app.app_context():
        user, _ = make_customer("today@example.com")
        item = make_product("ITEM-2", "Item", "10.00", stock=100)
        now = utcnow()
        make_order(user, [(item, 2)], status="processing", created_at=now)  # 26.60
        make_order(user, [(item, 1)], status="pending", created_at=now)  # 15.80
        make_order(user, [(item, 1)], status="pending", created_at=now - timedelta(days=1, minutes=1))  # yesterday
        make_product("LOW-9", "Last few", "9.00", stock=2)
        db.session.commit()
    auth.login("support")
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    today = now.date().isoformat()
    kpi = html[html.index('id="kpi-orders"'):html.index('id="kpi-revenue"')]
    assert f'href="/orders?created_from={today}&amp;created_to={today}">2<' in kpi
    assert '<span aria-hidden="true">▲ </span><span class="visually-hidden">up </span>100.0%' in kpi
    assert "delta-good" in kpi and "was 1" in kpi
    revenue = html[html.index('id="kpi-revenue"'):html.index('id="kpi-average"')]
    assert '42.40</a> <span class="unit">USD</span>' in revenue and "cancelled ones not counted" in revenue
    average = html[html.index('id="kpi-average"'):html.index('id="kpi-refund-share"')]
    assert '21.20 <span class="unit">USD</span>' in average and "was 15.80 USD" in average
    assert "style=" not in html and "LOW-9" in html
    assert f'href="/orders?created_from={today}&amp;created_to={today}&amp;status=processing"' in html
    assert 'href="/returns?status=pending"' in html
    assert 'href="/refunds?status=failed"' in html
    assert "Times in UTC" in html
    # The period's days, as a chart per currency (one day has none).
    week = client.get("/?period=7d").get_data(as_text=True)
    assert "<svg" in week and 'class="bar"' in week and "42.40 USD from 2 orders" in week
    assert f"/orders?created_from={today}&amp;created_to={today}&amp;currency=USD" in week
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
    assert "Orders placed, by status" in html and 'class="bar status-pending"' in html
    for path in ("/orders", "/returns", "/refunds"):
        assert f'href="{path}' not in html


def test_dashboard_query_count_is_bounded(app, auth, client, count_queries, monkeypatch):
    """One statement per figure whatever the period, its comparison included, with the
    past days kept or not: the session check, the period's orders, completed refunds and
    return requests (each with the period before), returns waiting, refunds open, low
    stock, and the failed notifications with their counts."""
    with app.app_context():
        user, _ = make_customer("many@example.com")
        item = make_product("ITEM-3", "Item", "10.00", stock=1000)
        for day in range(40):
            make_order(user, [(item, 1)], with_payment=False, created_at=utcnow() - timedelta(days=day))
        db.session.commit()
    auth.login("support")
    for kept in (0, 300):
        monkeypatch.setitem(app.config, "DASHBOARD_DAY_SECONDS", kept)
        for query in ("", "?period=30d", "?period=custom&from=2025-12-01&to=2026-03-01"):
            for load in range(2):  # with the past days kept, the second load reads none of them
                count_queries.statements.clear()
                assert client.get("/" + query).status_code == 200
                # A past range whose days are all kept reads nothing for its three figures.
                expected = 5 if kept and load and "custom" in query else 8
                assert count_queries.count == expected, (kept, query, count_queries.statements)


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
    rate = html[html.index('id="kpi-returns-rate"'):html.index('id="revenue"')]
    assert "return database unavailable" in rate  # the returns rate needs the return database too
    assert html.count("database unavailable</p>") == 2
    kpi = html[html.index('id="kpi-orders"'):html.index('id="kpi-revenue"')]
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
    # the five headline figures, revenue, statuses
    assert html.count("order database unavailable</p>") == 7
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
        figure = html[html.index('id="kpi-notifications"'):html.index('id="low-stock"')]
        assert 'href="/notifications?status=failed"' in figure
        assert 'href="/notifications?status=BOUNCED"' in figure
        assert f'href="/notifications/{bounced_id}"' in html
        auth.logout()
    # Those who may not: the figure points at the rows on the dashboard itself.
    auth.login("finance")
    html = client.get("/").get_data(as_text=True)
    figure = html[html.index('id="kpi-notifications"'):html.index('id="low-stock"')]
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
        kpi = second[second.index('id="kpi-orders"'):second.index('id="kpi-revenue"')]
        assert ">1<" in kpi  # still the kept figure
        # Kept per period: another period reads order_db afresh.
        count_queries.statements.clear()
        week = client.get("/?period=7d").get_data(as_text=True)
        assert [s for s in count_queries.statements if "FROM orders" in s]
        assert ">2<" in week[week.index('id="kpi-orders"'):week.index('id="kpi-revenue"')]
        dashboard.forget_cached()
        fresh = client.get("/").get_data(as_text=True)
        kpi = fresh[fresh.index('id="kpi-orders"'):fresh.index('id="kpi-revenue"')]
        assert ">2<" in kpi
    finally:
        dashboard.forget_cached()


class OrderReads:
    """The time bounds each statement that reads the orders table is given (as values, or
    in the comma-separated lists of intervals PostgreSQL is given), sorted."""

    def __init__(self):
        self.ranges: list[list] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if "FROM orders" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            flat = [v for value in values for v in (value.split(",") if isinstance(value, str) else [value])]
            self.ranges.append(sorted((_as_moment(v) for v in flat
                                       if isinstance(v, (datetime, str)) and str(v)[:2] == "20")))


def _as_moment(value) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@pytest.fixture(params=["per process", "redis"])
def kept_days(request, app, monkeypatch):
    """Past days kept for 5 minutes, in this process's cache or in Redis (skipped
    without a Redis at 127.0.0.1:6379), under a prefix of the test's own."""
    import uuid

    monkeypatch.setitem(app.config, "DASHBOARD_DAY_SECONDS", 300)
    if request.param == "redis":
        import redis

        try:
            redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            pytest.skip("no Redis at 127.0.0.1:6379")
        monkeypatch.setitem(app.config, "CACHE_REDIS_URL", "redis://127.0.0.1:6379/0")
        monkeypatch.setitem(app.config, "CACHE_PREFIX", f"console-test-{uuid.uuid4().hex}:")
    return request.param


def test_a_year_of_kept_days_reads_only_the_day_still_running(app, shop, kept_days):
    """With the past days' figures kept, a 366-day range costs what today costs: the
    figures are the same as computed from scratch, and the only statements that read
    orders cover today so far and the same hours of the comparison's last day."""
    from sqlalchemy import event

    from console.shared_cache import shared_cache

    now = WEDNESDAY
    year = {"period": "custom", "from": (now.date() - timedelta(days=365)).isoformat(), "to": now.date().isoformat()}
    period, errors = dashboard.parse_period(year, now)
    assert not errors and period.days == 366
    seconds = app.config["DASHBOARD_DAY_SECONDS"]
    app.config["DASHBOARD_DAY_SECONDS"] = 0
    fresh = dashboard.collect(now, period)
    app.config["DASHBOARD_DAY_SECONDS"] = seconds
    shared_cache().clear()
    reads = OrderReads()
    engine = db.engines["order"]
    try:
        dashboard.collect(now, period)  # fills the past days, once
        event.listen(engine, "before_cursor_execute", reads)
        warm = dashboard.collect(now, period)
        today = dashboard.collect(now, dashboard.named_period("today", now))
    finally:
        event.remove(engine, "before_cursor_execute", reads)
        shared_cache().clear()
    assert warm["sales"].value.current == fresh["sales"].value.current
    assert warm["sales"].value.previous == fresh["sales"].value.previous
    assert [d.amount for d in warm["sales"].value.series[0].days] == \
        [d.amount for d in fresh["sales"].value.series[0].days]
    assert warm["returned"].value.current == fresh["returned"].value.current
    assert warm["refunded"].value.current == fresh["refunded"].value.current
    assert warm.days_as_of == now  # read once, when the days were filled
    # One statement for the year and one for today, each reading today so far and the
    # comparison's same hours of its last day: two bounds of one day each.
    assert len(reads.ranges) == 2, reads.ranges
    for bounds in reads.ranges:
        assert len(bounds) == 4
        comparison, today = bounds[:2], bounds[2:]
        assert today == [period.end.replace(hour=0), period.end]  # today, from midnight
        assert comparison[1] - comparison[0] == period.end - period.end.replace(hour=0)
        assert comparison[0].hour == 0 and comparison[0].date() < today[0].date()


def _past_year_loads(now: datetime, *loads: datetime):
    """The 366 days up to yesterday collected at ``now`` with nothing kept (which keeps
    them), then at each of ``loads``: (the first collect, the later ones, OrderReads of
    the later ones)."""
    from sqlalchemy import event

    from console.shared_cache import shared_cache

    yesterday = now.date() - timedelta(days=1)
    period, _ = dashboard.parse_period({"period": "custom", "from": (yesterday - timedelta(days=365)).isoformat(),
                                        "to": yesterday.isoformat()}, now)
    shared_cache().clear()
    reads = OrderReads()
    engine = db.engines["order"]
    try:
        cold = dashboard.collect(now, period)
        event.listen(engine, "before_cursor_execute", reads)
        later = [dashboard.collect(at, period) for at in loads]
    finally:
        event.remove(engine, "before_cursor_execute", reads)
        shared_cache().clear()
    return cold, later, reads


def test_a_past_year_of_kept_days_reads_no_orders(app, shop, kept_days):
    cold, (warm,), reads = _past_year_loads(WEDNESDAY, WEDNESDAY)
    assert reads.ranges == []
    assert warm["sales"].value.current == cold["sales"].value.current


def test_days_kept_too_long_are_read_again_a_week_a_load(app, shop, kept_days):
    """Past DASHBOARD_DAY_SECONDS a kept day is due: a load reads the latest week of the
    due days again and shows the rest as kept, the page saying since when; the next load
    reads the week before. No load reads the whole year again."""
    now = WEDNESDAY
    later = now + timedelta(seconds=app.config["DASHBOARD_DAY_SECONDS"] + 1)
    cold, (first, second), reads = _past_year_loads(now, later, later)
    assert len(reads.ranges) == 2, reads.ranges
    latest, before = reads.ranges
    week = timedelta(days=dashboard.REFRESH_DAYS_PER_LOAD + 1)
    assert latest[-1] - latest[0] <= week and before[-1] - before[0] <= week
    # Yesterday's week first, then the week before it.
    assert now - timedelta(days=2) < latest[-1] <= now and before[-1] <= latest[0]
    for load in (first, second):
        assert load["sales"].value.current == cold["sales"].value.current
        assert load["returned"].value.current == cold["returned"].value.current
        assert load.days_as_of == now  # the days not read again say when they were


def test_day_starts_follow_the_zone_across_a_daylight_saving_change(app, monkeypatch):
    """The per-day intervals a period is read in start at each store-local midnight, a
    23- or 25-hour day included (New Zealand leaves daylight saving on 5 April 2026)."""
    from console import localtime

    monkeypatch.setitem(app.config, "TIMEZONE", "Pacific/Auckland")
    with app.app_context():
        first, last = date(2026, 4, 3), date(2026, 4, 7)
        starts = localtime.day_starts(first, last)
        assert starts == [localtime.start_of_day(first + timedelta(days=n)) for n in range(6)]
        assert {b - a for a, b in zip(starts, starts[1:])} == {timedelta(hours=24), timedelta(hours=25)}
        read = dashboard.Read(starts[0] + timedelta(hours=5), starts[-1] - timedelta(hours=1), 0)
        cut = read.intervals()
        assert [day for _, _, day in cut] == [first + timedelta(days=n) for n in range(5)]
        assert cut[0][0] == read.start and cut[-1][1] == read.end
        assert all(a[1] == b[0] for a, b in zip(cut, cut[1:]))


def test_a_kept_day_is_made_into_rows_once_until_it_is_read_again():
    """A year's page reads 366 kept days a load: each is made into rows (amounts as
    Decimal) once per process, and again when the day was read again (a new time)."""
    figure = dashboard.ORDER_DAYS
    entry = {"at": "2026-12-01T10:00:00+00:00", "rows": [["USD", "delivered", 2, "12.50"]]}
    first = dashboard._loaded_day(figure, "dashboard:orders:UTC:2026-11-30", entry)
    assert first == (("USD", "delivered", 2, Decimal("12.50")),)
    assert dashboard._loaded_day(figure, "dashboard:orders:UTC:2026-11-30", entry) is first
    again = {"at": "2026-12-01T11:00:00+00:00", "rows": [["USD", "delivered", 3, "20.00"]]}
    assert dashboard._loaded_day(figure, "dashboard:orders:UTC:2026-11-30", again) == (
        ("USD", "delivered", 3, Decimal("20.00")),)
