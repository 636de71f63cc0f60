"""A small key-value cache that every worker process shares, for figures that are
expensive to compute and slow to change (the dashboard's per-day figures).

With ``CONSOLE_CACHE_REDIS_URL`` set (``redis://127.0.0.1:6379/0``) the values live in
Redis, so one worker's work serves them all and survives a restart; without it, each
process keeps its own (the figures are still right, each worker just computes them once
itself). Values are JSON. A Redis that does not answer is treated as an empty cache for
a while (the caller computes), never as an error: the cache only ever saves work.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable

from flask import current_app

# After Redis fails, this many seconds go by before it is tried again.
RETRY_AFTER = 30
# The per-process cache holds at most this many keys (a year of days per figure, and more).
LOCAL_KEYS = 20_000


class LocalCache:
    """The per-process cache: a dict with expiry times, behind a lock. Values are kept
    as given (callers treat what they read as read-only), not as JSON text."""

    def __init__(self):
        self._values: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        now = time.monotonic()
        with self._lock:
            found = {key: self._values.get(key) for key in keys}
        return {key: entry[1] for key, entry in found.items() if entry and entry[0] > now}

    def set_many(self, values: dict[str, object], seconds: int) -> None:
        expires = time.monotonic() + seconds
        with self._lock:
            if len(self._values) + len(values) > LOCAL_KEYS:
                now = time.monotonic()
                self._values = {k: v for k, v in self._values.items() if v[0] > now}
                if len(self._values) + len(values) > LOCAL_KEYS:
                    self._values.clear()
            for key, value in values.items():
                self._values[key] = (expires, value)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class RedisCache:
    """The shared cache: one MGET to read, one pipelined SET ... EX to write."""

    def __init__(self, url: str, prefix: str = "console:"):
        import redis

        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._failed_at = 0.0

    def _usable(self) -> bool:
        return time.monotonic() - self._failed_at > RETRY_AFTER

    def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        keys = list(keys)
        if not keys or not self._usable():
            return {}
        try:
            raw = self._client.mget([self.prefix + key for key in keys])
        except Exception:  # noqa: BLE001 - any Redis failure only means "not cached"
            self._failed_at = time.monotonic()
            return {}
        return {key: json.loads(value) for key, value in zip(keys, raw) if value is not None}

    def set_many(self, values: dict[str, object], seconds: int) -> None:
        if not values or not self._usable():
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, value in values.items():
                pipe.set(self.prefix + key, json.dumps(value), ex=max(1, int(seconds)))
            pipe.execute()
        except Exception:  # noqa: BLE001
            self._failed_at = time.monotonic()

    def clear(self) -> None:
        try:
            keys = list(self._client.scan_iter(match=self.prefix + "*", count=1000))
            if keys:
                self._client.delete(*keys)
        except Exception:  # noqa: BLE001
            self._failed_at = time.monotonic()


_caches: dict[str, object] = {}
_caches_lock = threading.Lock()


def shared_cache():
    """The app's cache: Redis when CACHE_REDIS_URL is set, else this process's own."""
    url = current_app.config.get("CACHE_REDIS_URL") or ""
    prefix = current_app.config.get("CACHE_PREFIX") or "console:"
    key = f"{url}|{prefix}"
    with _caches_lock:
        if key not in _caches:
            _caches[key] = RedisCache(url, prefix) if url else LocalCache()
        return _caches[key]
