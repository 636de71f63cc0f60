"""Configuration: ten binds from the environment (SQLite files by default), no
default database, and the engine options reaching every one of the ten engines."""
from __future__ import annotations

import pytest
from sqlalchemy import event

import config
from config import BIND_KEYS, database_binds
from console import create_app
from console.extensions import db


def test_ten_sqlite_files_under_instance_when_nothing_is_set(monkeypatch, tmp_path):
    for key in BIND_KEYS:
        monkeypatch.delenv(config.env_var(key), raising=False)
    binds = database_binds(tmp_path)
    assert list(binds) == list(BIND_KEYS)
    assert binds["order"] == {"url": f"sqlite:///{tmp_path / 'order_db.sqlite'}"}
    assert binds["return"]["url"].endswith("/return_db.sqlite")


def test_each_bind_reads_its_own_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("PAYMENT_DATABASE_URL", "postgresql+psycopg://console@db.internal/payment_db")
    binds = database_binds(tmp_path)
    assert binds["payment"]["url"] == "postgresql+psycopg://console@db.internal/payment_db"
    assert binds["payment"]["pool_size"] == config.POSTGRES_OPTIONS["pool_size"]
    assert binds["payment"]["connect_args"]["connect_timeout"] == config.POSTGRES_OPTIONS["connect_args"]["connect_timeout"]
    assert binds["order"]["url"].startswith("sqlite:///")


@pytest.mark.parametrize("url", ["postgresql://u@h/payment_db", "postgres://u@h/payment_db"])
def test_a_url_without_its_driver_is_refused(url):
    with pytest.raises(ValueError, match="name the driver"):
        config.bind_config(url)


def test_no_default_database(app):
    assert app.config.get("SQLALCHEMY_DATABASE_URI") is None
    with app.app_context():
        assert set(db.engines) == set(BIND_KEYS)  # no None key: nothing falls back to a default engine


def test_engine_options_reach_all_ten_binds(app):
    with app.app_context():
        engines = {key: db.engines[key] for key in BIND_KEYS}
    for key, engine in engines.items():
        # PostgreSQL's pooled connections are checked at checkout without a round trip
        # (console/liveness.py, tests/test_connections.py); SQLite keeps pre_ping.
        assert engine.pool._pre_ping is (engine.dialect.name != "postgresql"), key
        if engine.dialect.name == "postgresql":
            assert engine.pool.size() == config.POSTGRES_OPTIONS["pool_size"], key
            assert engine.pool._max_overflow == config.POSTGRES_OPTIONS["max_overflow"], key
            assert engine.pool._timeout == config.POSTGRES_OPTIONS["pool_timeout"], key
            assert engine.pool._recycle == config.POSTGRES_OPTIONS["pool_recycle"], key


@pytest.mark.postgres_only
def test_every_postgres_connection_carries_the_connect_timeout(app):
    """The timeout must reach the driver of each bind, or a dead server hangs a page."""
    seen: dict[str, object] = {}
    with app.app_context():
        for key in BIND_KEYS:
            engine = db.engines[key]

            def capture(dialect, conn_rec, cargs, cparams, key=key):
                seen[key] = cparams.get("connect_timeout")

            event.listen(engine, "do_connect", capture)
            try:
                engine.pool.dispose()  # the next checkout opens a new connection
                with engine.connect():
                    pass
            finally:
                event.remove(engine, "do_connect", capture)
    assert seen == {key: config.POSTGRES_OPTIONS["connect_args"]["connect_timeout"] for key in BIND_KEYS}


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../etc/passwd", "Pacific/Auckland\x00", "", "x" * 500])
def test_an_unknown_time_zone_refuses_to_start(name):
    with pytest.raises(ValueError, match="is not a time zone: use an IANA name such as"):
        create_app("testing", {"TIMEZONE": name or " "})


def test_the_time_zone_shows_every_time_and_reads_every_day(app):
    from datetime import date, datetime, timezone

    from console import localtime
    from console.formatting import when

    moment = datetime(2026, 3, 18, 23, 30, tzinfo=timezone.utc)
    with app.app_context():
        assert when(moment) == "2026-03-18 23:30 UTC"
        app.config["TIMEZONE"] = "Pacific/Auckland"
        try:
            assert when(moment) == "2026-03-19 12:30 NZDT" and when(moment, "%Y-%m-%d") == "2026-03-19"
            assert localtime.today(moment) == date(2026, 3, 19)
            assert localtime.start_of_day(date(2026, 3, 19)) == datetime(2026, 3, 18, 11, 0, tzinfo=timezone.utc)
            # The day clocks go back (5 April 2026) lasts 25 hours.
            start, end = localtime.day_bounds(date(2026, 4, 5), date(2026, 4, 5))
            assert (end - start).total_seconds() == 25 * 3600
        finally:
            app.config["TIMEZONE"] = "UTC"


def test_gunicorn_workers_freeze_what_the_app_loaded(monkeypatch):
    """gunicorn.conf.py: each worker, once it has loaded the app, puts what it loaded out of
    the garbage collector's reach and collects its youngest objects less often; its pools
    hold a connection per thread unless the environment says otherwise."""
    import gc
    import os
    import runpy

    for name in ("CONSOLE_POOL_SIZE", "CONSOLE_POOL_OVERFLOW", "CONSOLE_EXPORTS_AT_ONCE", "CONSOLE_THREADS",
                 "CONSOLE_WORKERS"):
        monkeypatch.setenv(name, "")  # recorded, so the values the file sets go when the test ends
        monkeypatch.delenv(name)
    settings = runpy.run_path(str(config.BASE_DIR / "gunicorn.conf.py"))
    assert (settings["workers"], settings["threads"]) == (4, 2)
    assert os.environ["CONSOLE_POOL_SIZE"] == "2" and os.environ["CONSOLE_POOL_OVERFLOW"] == "0"
    assert os.environ["CONSOLE_EXPORTS_AT_ONCE"] == "1"
    threshold = gc.get_threshold()
    try:
        settings["post_worker_init"](None)
        assert gc.get_threshold()[0] == settings["GC_YOUNGEST_THRESHOLD"] > threshold[0]
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
