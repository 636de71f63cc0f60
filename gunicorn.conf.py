"""gunicorn settings for the console: ``.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app``.

The gthread worker serves requests on threads while its main thread keeps telling the
arbiter it is alive, so a CSV export that streams for minutes is never killed as a hung
worker (the default sync worker is killed after ``timeout`` seconds of one request,
streamed responses included). ``timeout`` then only catches a worker that is truly stuck.
Each thread may hold one connection per database it uses: keep workers x threads within
CONSOLE_POOL_SIZE + CONSOLE_POOL_OVERFLOW (README, "Running under gunicorn").
"""
import multiprocessing
import os

bind = os.environ.get("CONSOLE_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CONSOLE_WORKERS", str(min(4, multiprocessing.cpu_count() * 2))))
worker_class = "gthread"
threads = int(os.environ.get("CONSOLE_THREADS", "4"))
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = "-"
