"""gunicorn settings, read from the working directory by `gunicorn wsgi:app` (or named
with `-c gunicorn.conf.py`).

The gthread worker serves requests on threads while its main thread keeps telling the
arbiter it is alive, so a CSV export that streams for minutes is never killed as a hung
worker (the default sync worker is killed after ``timeout`` seconds of one request,
streamed responses included). ``timeout`` then only catches a worker that is truly stuck.
Each thread may hold one connection per database it uses: keep workers x threads within
CONSOLE_POOL_SIZE + CONSOLE_POOL_OVERFLOW (README, "Running under gunicorn").

gunicorn writes "Server: gunicorn" into every response itself, after the app has
answered, and has no setting to turn it off: the line is dropped here from the
headers gunicorn adds (the app's own headers are left as they are)."""
import multiprocessing
import os

from gunicorn.http import wsgi as _gunicorn_wsgi

bind = os.environ.get("CONSOLE_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CONSOLE_WORKERS", str(min(4, multiprocessing.cpu_count() * 2))))
worker_class = "gthread"
threads = int(os.environ.get("CONSOLE_THREADS", "4"))
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
