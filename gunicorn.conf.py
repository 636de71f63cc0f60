"""gunicorn settings, read from the working directory by `gunicorn wsgi:app` (or named
with `-c gunicorn.conf.py`).

The gthread worker serves requests on threads while its main thread keeps telling the
arbiter it is alive, so a CSV export that streams for minutes is never killed as a hung
worker (the default sync worker is killed after ``timeout`` seconds of one request,
streamed responses included). ``timeout`` then only catches a worker that is truly stuck.

Four processes of two threads each by default: a process runs Python on one core at a
time (the GIL), and a request spends about half its time waiting for PostgreSQL, so on
two cores four processes keep both busy where two processes of four threads left a
third of the time idle and switched threads more (README, "Performance").

Each worker keeps a pool per database, capped at CONSOLE_POOL_SIZE + CONSOLE_POOL_OVERFLOW
connections, which its threads share (one each per database they use). Unless they are
set, a worker's pools hold as many connections as it has threads and open no more: four
workers x ten databases x two = 80 connections. At start the most
connections the workers can open to each PostgreSQL server is logged, and gunicorn refuses
to start when it exceeds CONSOLE_PG_MAX_CONNECTIONS (README, "Connections to PostgreSQL").

gunicorn writes "Server: gunicorn" into every response itself, after the app has
answered, and has no setting to turn it off: the line is dropped here from the
headers gunicorn adds (the app's own headers are left as they are)."""
import os

from gunicorn.http import wsgi as _gunicorn_wsgi

bind = os.environ.get("CONSOLE_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CONSOLE_WORKERS", "4"))
worker_class = "gthread"
threads = int(os.environ.get("CONSOLE_THREADS", "2"))
# Read by config.py, imported below and by the workers' app: a thread holds at most one
# connection per database, so pools of one per thread never make a request wait, and an
# export (which holds one per database it reads while it streams) leaves the other
# threads theirs when at most half the threads write one.
os.environ.setdefault("CONSOLE_POOL_SIZE", str(threads))
os.environ.setdefault("CONSOLE_POOL_OVERFLOW", "0")
os.environ.setdefault("CONSOLE_EXPORTS_AT_ONCE", str(max(1, threads // 2)))

from config import PG_MAX_CONNECTIONS, connection_ceiling, database_binds  # noqa: E402
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = "-"
# One-time password links carry a token in their address: the access log leaves it out.
logger_class = "console.access_log.RedactingLogger"

_default_headers = _gunicorn_wsgi.Response.default_headers


def _default_headers_without_server(self):
    return [line for line in _default_headers(self) if not line.lower().startswith("server:")]


_gunicorn_wsgi.Response.default_headers = _default_headers_without_server


def on_starting(server):
    """Log the connection ceiling per PostgreSQL server; refuse one the server cannot take."""
    binds = database_binds()
    for where, (connections, arithmetic) in connection_ceiling(server.cfg.workers, binds).items():
        server.log.info("PostgreSQL at %s: at most %s connections", where, arithmetic)
        if connections > PG_MAX_CONNECTIONS:
            raise RuntimeError(
                f"PostgreSQL at {where} could get {connections} connections from the console "
                f"({arithmetic}), more than CONSOLE_PG_MAX_CONNECTIONS={PG_MAX_CONNECTIONS}: lower "
                "CONSOLE_WORKERS, CONSOLE_POOL_SIZE or CONSOLE_POOL_OVERFLOW, or raise "
                "CONSOLE_PG_MAX_CONNECTIONS to what the server allows the console")
    pools = [o for o in binds.values() if "pool_size" in o]
    smallest = min(pools, key=lambda o: o["pool_size"] + o["max_overflow"], default=None)
    if smallest and smallest["pool_size"] + smallest["max_overflow"] < server.cfg.threads:
        server.log.warning("%d threads per worker share pools of %d connections per database: a busy worker's "
                           "requests wait for a connection and give up after %s s", server.cfg.threads,
                           smallest["pool_size"] + smallest["max_overflow"], smallest["pool_timeout"])


# Python's cyclic garbage collector, once the worker has loaded the app: what the app
# loaded (models, templates, compiled statements: hundreds of thousands of objects that
# live as long as the worker) is frozen out of its reach, and its youngest generation is
# collected every 10,000 allocations instead of 700. A page allocates tens of thousands
# of objects: at 700 the collector ran dozens of times a request, and every so often
# walked everything the app had loaded, which showed as the slowest requests (under
# `wrk` on /orders, p99 234-278 ms before, 98-118 ms after; README, "Performance").
GC_YOUNGEST_THRESHOLD = 10_000


def post_worker_init(worker):
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNGEST_THRESHOLD, 20, 20)
