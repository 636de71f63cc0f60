"""Where one page's time goes: pyinstrument over repeated requests, in process.

Signs in as the demo admin on the databases ``bench_scale.py`` left (``<prefix>_<bind>``),
requests the page ``--repeat`` times through Flask's test client (after one warm-up) and
prints pyinstrument's call tree, trimmed to the frames over ``--min-share`` of the time,
with the SQL statements one request runs.

    .venv/bin/pip install pyinstrument
    .venv/bin/python scripts/profile_page.py /orders --prefix console_bench_scale_100000
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402

from config import bind_config  # noqa: E402
from scripts.benchlib import Statements, postgres_urls  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="/orders")
    parser.add_argument("--prefix", default="console_bench_scale_100000")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--min-share", type=float, default=0.02, help="leave out frames under this share")
    opts = parser.parse_args()

    from pyinstrument import Profiler

    from console import create_app
    from console.extensions import db

    binds = {key: bind_config(url) for key, url in postgres_urls(opts.prefix).items()}
    app = create_app("testing", {"SQLALCHEMY_BINDS": binds, "WTF_CSRF_ENABLED": False,
                                 "SQLALCHEMY_RECORD_QUERIES": False})
    counter = Statements()
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", counter)
    client = app.test_client()
    assert client.post("/login", data={"email": "admin@example.com", "password": "console-demo-1"}).status_code == 302
    client.get(opts.path)
    counter.count = 0
    assert client.get(opts.path).status_code == 200
    print(f"{opts.path}: {counter.count} SQL statements a request")
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(opts.repeat):
        client.get(opts.path)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False,
                               processor_options={"filter_threshold": opts.min_share}))


if __name__ == "__main__":
    main()
