"""A second app whose one bind points elsewhere: at a database that cannot be
reached, or at a scratch database a test may break.

The other nine binds share the test databases, so the rest of the console works
as usual; the engines are disposed when the block ends.
"""
from __future__ import annotations

from contextlib import contextmanager

from console.extensions import db

# Nothing listens on port 1: the connection is refused at once (no timeout to wait for).
UNREACHABLE_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:1/none"
# A file in a directory that does not exist: SQLite cannot open it.
UNOPENABLE_SQLITE = "sqlite:////nonexistent-console-dir/unreachable.sqlite"


@contextmanager
def app_with_bind(database_urls: dict[str, str], bind_key: str, url: str):
    from tests.conftest import make_app

    application = make_app({**database_urls, bind_key: url})
    try:
        yield application
    finally:
        with application.app_context():
            for engine in db.engines.values():
                engine.dispose()


def app_with_unreachable(database_urls: dict[str, str], bind_key: str, url: str = UNREACHABLE_POSTGRES):
    return app_with_bind(database_urls, bind_key, url)
