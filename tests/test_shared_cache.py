"""The cache the workers share: Redis when configured, else per process; a Redis that
does not answer is an empty cache, never an error."""
from __future__ import annotations

import time
import uuid

import pytest

from console.shared_cache import LocalCache, RedisCache, shared_cache


def test_local_cache_keeps_values_until_they_expire(monkeypatch):
    cache = LocalCache()
    cache.set_many({"a": {"rows": [["USD", 2]]}, "b": []}, seconds=60)
    assert cache.get_many(["a", "b", "c"]) == {"a": {"rows": [["USD", 2]]}, "b": []}
    later = time.monotonic() + 61
    monkeypatch.setattr("console.shared_cache.time.monotonic", lambda: later)
    assert cache.get_many(["a", "b"]) == {}


def _redis_or_skip() -> RedisCache:
    cache = RedisCache("redis://127.0.0.1:6379/0", prefix=f"console-test-{uuid.uuid4().hex}:")
    try:
        cache._client.ping()
    except Exception:  # noqa: BLE001
        pytest.skip("no Redis at 127.0.0.1:6379")
    return cache


def test_redis_cache_round_trip_and_clear():
    cache = _redis_or_skip()
    try:
        cache.set_many({"day": {"at": "2026-03-18T15:00:00+00:00", "rows": [["EUR", "paid", "3", "45.60"]]}}, 60)
        assert cache.get_many(["day", "other"]) == {
            "day": {"at": "2026-03-18T15:00:00+00:00", "rows": [["EUR", "paid", "3", "45.60"]]}}
    finally:
        cache.clear()
    assert cache.get_many(["day"]) == {}


def test_a_redis_that_does_not_answer_is_an_empty_cache():
    cache = RedisCache("redis://127.0.0.1:9/0")  # nothing listens on the discard port
    started = time.monotonic()
    cache.set_many({"a": 1}, 60)
    assert cache.get_many(["a"]) == {}
    assert cache.get_many(["a"]) == {}  # not tried again for a while
    assert time.monotonic() - started < 5


def test_the_app_uses_redis_only_when_configured(app, monkeypatch):
    with app.app_context():
        assert isinstance(shared_cache(), LocalCache)
        monkeypatch.setitem(app.config, "CACHE_REDIS_URL", "redis://127.0.0.1:6379/0")
        assert isinstance(shared_cache(), RedisCache)
