"""Email templates are read and rendered in child processes the console can kill.

The sandbox of console/templating.py counts a template's steps and what its operators,
filters and calls make, but some work happens inside one Python operation it cannot
interrupt: comparing two deeply shared lists, or ``|string`` of a structure that
shares itself at every level (2**50 nodes). Run in the web worker, one such render
held a worker thread (and the GIL) for seconds and grew the process to gigabytes.

So every read and render of a staff-written template runs here, in a child process:

- **time**: the parent waits at most ``WALL_LIMIT`` seconds for the answer, then kills
  the child (SIGKILL: nothing a template does can delay it) and starts another later;
- **memory**: the child caps its own address space at what it has after start-up plus
  ``MEMORY_LIMIT`` bytes (``RLIMIT_AS``), so a template that builds something huge
  meets MemoryError (or dies), never the web worker;
- **stack**: a template nested thousands deep fails in the child's parser or compiler.

Children are started on first use (``python -m console.render_pool``), kept for the
next render and reused by one thread at a time; a web worker runs at most
``MAX_CHILDREN``. A template that ran out of time is remembered for ``COOL_OFF`` seconds
(by its text), so a bulk action that emails a thousand customers fails each of their
emails at once instead of waiting on each.

Requests are pickled from the parent (trusted) to the child; answers come back as JSON,
so nothing a template does in the child can make the parent run code.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time

from console.templating import TIME_LIMIT, RenderError

WALL_LIMIT = TIME_LIMIT + 0.5  # seconds the parent waits for one answer (the child's budget plus start-up slack)
# Bytes a child may grow by beyond its own start-up size (CONSOLE_RENDER_MEMORY_MB).
MEMORY_LIMIT = int(os.environ.get("CONSOLE_RENDER_MEMORY_MB") or 256) * 1024 * 1024
MAX_CHILDREN = 4
COOL_OFF = 60.0  # seconds a template that ran out of time fails at once
STARTUP_LIMIT = 30.0  # seconds a new child may take to import and answer its first request
BUSY_LIMIT = 30.0  # seconds a render waits for one of the MAX_CHILDREN to come free

OUT_OF_TIME = (f"the template took longer than {TIME_LIMIT:g} s to render (some expression does too much work: "
               "look for comparisons or |string of large nested values)")
OUT_OF_MEMORY = f"the template needs more than {MEMORY_LIMIT // (1024 * 1024)} MB of memory to render"


def restart() -> None:
    """Stops this process's idle children: the next render starts fresh ones (which read
    CONSOLE_RENDER_MEMORY_MB again)."""
    _current_pool().close()
TOO_DEEP = "the template is nested too deeply: keep brackets, {% if %} and {% for %} blocks under 20 levels"

_HEADER = struct.Struct("!I")


def _write_frame(stream, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(stream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


class _Child:
    def __init__(self):
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen([sys.executable, "-m", "console.render_pool"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=root, env=env,
                                        start_new_session=True)
        try:
            self._answer(STARTUP_LIMIT)  # "ready": imported, memory capped; the budget starts after
        except BaseException:
            self.kill()
            raise

    def ask(self, request: tuple):
        """The child's answer to ``request``; TimeoutError when it takes too long, EOFError
        when the child died (out of memory, say)."""
        _write_frame(self.process.stdin, pickle.dumps(request))
        return self._answer(WALL_LIMIT)

    def _answer(self, limit: float):
        deadline = time.monotonic() + limit
        out = self.process.stdout
        header = b""
        while len(header) < _HEADER.size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(out.fileno(), _HEADER.size - len(header))
            if not chunk:
                raise EOFError
            header += chunk
        (size,) = _HEADER.unpack(header)
        body = b""
        while len(body) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(out.fileno(), min(size - len(body), 1 << 20))
            if not chunk:
                raise EOFError
            body += chunk
        return json.loads(body)

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class _Busy(Exception):
    """Every child stayed busy for BUSY_LIMIT seconds."""


class _Pool:
    def __init__(self):
        self.pid = os.getpid()
        self.idle: list[_Child] = []
        self.running = 0
        self.available = threading.Condition()
        self.slow: dict[str, float] = {}  # template text's hash -> until when it fails at once

    def take(self) -> _Child:
        deadline = time.monotonic() + BUSY_LIMIT
        with self.available:
            while not self.idle and self.running >= MAX_CHILDREN:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Busy  # a web worker's thread is never held without end
                self.available.wait(left)
            if self.idle:
                return self.idle.pop()
            self.running += 1
        try:
            return _Child()
        except BaseException:
            self.release(None)
            raise

    def release(self, child: _Child | None) -> None:
        with self.available:
            if child is None:
                self.running -= 1
            else:
                self.idle.append(child)
            self.available.notify()

    def close(self) -> None:
        with self.available:
            children, self.idle = self.idle, []
            self.running -= len(children)  # idle children count as running until they are gone
            self.available.notify_all()
        for child in children:
            child.kill()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _current_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():  # a forked process starts its own children
            _pool = _Pool()
        return _pool


@atexit.register
def _close_pool() -> None:
    if _pool is not None and _pool.pid == os.getpid():
        _pool.close()


def _key(request: tuple) -> str:
    return hashlib.sha256(repr(request[1:2] + request[2:3] + request[3:4]).encode()).hexdigest()


def ask(request: tuple, *, part: str | None = None):
    """Runs ``request`` in a child and returns its answer's value, or raises the
    RenderError the child reported (or OUT_OF_TIME / OUT_OF_MEMORY when it had to be
    stopped)."""
    pool = _current_pool()
    key = _key(request)
    if pool.slow.get(key, 0) > time.monotonic():
        raise RenderError(OUT_OF_TIME + " (it did so a moment ago too)", part)
    try:
        child = pool.take()
    except _Busy:
        raise RenderError(f"templates can't be rendered right now (all {MAX_CHILDREN} renderers stayed busy "
                          f"for {BUSY_LIMIT:g} s): try again in a minute", part) from None
    except (TimeoutError, EOFError, OSError):
        raise RenderError("templates can't be rendered right now (the renderer did not start): try again",
                          part) from None
    try:
        answer = child.ask(request)
    except TimeoutError:
        child.kill()
        pool.release(None)
        if len(pool.slow) > 1000:  # forget the oldest: it is a cache, not a record
            pool.slow = dict(sorted(pool.slow.items(), key=lambda item: item[1])[-500:])
        pool.slow[key] = time.monotonic() + COOL_OFF
        raise RenderError(OUT_OF_TIME, part) from None
    except (EOFError, OSError):
        child.kill()
        pool.release(None)
        raise RenderError(OUT_OF_MEMORY, part) from None
    except BaseException:
        child.kill()
        pool.release(None)
        raise
    pool.release(child)
    if "error" in answer:
        raise RenderError(answer["error"], answer.get("part"), answer.get("line"))
    return answer["ok"]


# --- the child --------------------------------------------------------------------------------

def _limit_memory() -> None:
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + MEMORY_LIMIT, size + MEMORY_LIMIT))


def _handle(request: tuple):
    from console import templating

    kind, *args = request
    if kind == "render":
        subject, body_html, body_text, variables = args
        email = templating.render_email_here(subject, body_html, body_text, variables)
        return [email.subject, email.body_html, email.body_text]
    if kind == "check":
        parts, declared = args
        return templating.check_here(parts, declared)
    if kind == "variables":
        source, part = args
        return sorted(templating.variables_used_here(source, part))
    raise ValueError(f"unknown request {kind!r}")


def serve() -> None:
    """The child's loop: one request in, one answer out, until the parent goes away."""
    import console.templating  # noqa: F401 - imported before the memory cap is measured

    try:
        _limit_memory()
    except (OSError, StopIteration, ValueError):
        pass  # no /proc: the time limit still holds
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    _write_frame(stdout, b'{"ok": "ready"}')
    while True:
        try:
            (size,) = _HEADER.unpack(_read_exact(stdin, _HEADER.size))
            request = pickle.loads(_read_exact(stdin, size))
        except EOFError:
            return
        try:
            answer = {"ok": _handle(request)}
        except RenderError as exc:
            answer = {"error": exc.message}
        except MemoryError:
            answer = {"error": OUT_OF_MEMORY}
        except (RecursionError, SyntaxError):  # SyntaxError: IndentationError and "too many nested blocks"
            answer = {"error": TOO_DEEP}
        except Exception as exc:  # noqa: BLE001 - any other failure is the template's, said plainly
            answer = {"error": f"the template can't be rendered ({type(exc).__name__})"}
        try:
            payload = json.dumps(answer).encode()
        except MemoryError:
            payload = json.dumps({"error": OUT_OF_MEMORY}).encode()
        _write_frame(stdout, payload)


if __name__ == "__main__":
    serve()
