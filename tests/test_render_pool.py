"""The pool of render children: stopped children give their places back, and a render
that finds every child busy is refused after a bounded wait, never held without end."""
from __future__ import annotations

import threading
import time

import pytest

from console import render_pool
from console.templating import RenderError, render_email


def _render() -> str:
    return render_email("Hi {{ n }}", "", "ok", {"n": "Ada"}).subject


def test_restarting_the_pool_gives_back_the_places_of_its_idle_children():
    # More restarts than the pool has places: each one used to keep its idle children's
    # places taken, so after a few the next render waited for a child that never came.
    for _ in range(render_pool.MAX_CHILDREN + 2):
        assert _render() == "Hi Ada"
        render_pool.restart()
        assert render_pool._current_pool().running == 0
    finished = []
    worker = threading.Thread(target=lambda: finished.append(_render()), daemon=True)
    worker.start()
    worker.join(timeout=render_pool.STARTUP_LIMIT)
    assert finished == ["Hi Ada"]


def test_a_render_that_finds_every_child_busy_is_refused_after_a_bounded_wait(monkeypatch):
    render_pool.restart()
    monkeypatch.setattr(render_pool, "MAX_CHILDREN", 1)
    monkeypatch.setattr(render_pool, "BUSY_LIMIT", 0.3)
    pool = render_pool._current_pool()
    held = pool.take()  # another thread's render, still running
    try:
        started = time.monotonic()
        with pytest.raises(RenderError, match="renderers stayed busy") as refused:
            _render()
        assert 0.3 <= time.monotonic() - started < 5
        assert "try again in a minute" in refused.value.message
    finally:
        pool.release(held)
    assert _render() == "Hi Ada"  # the child given back serves the next render
    render_pool.restart()
    assert pool.running == 0
