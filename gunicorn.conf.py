"""gunicorn settings, read from the working directory by `gunicorn wsgi:app`.

gunicorn writes "Server: gunicorn" into every response itself, after the app has
answered, and has no setting to turn it off: the line is dropped here from the
headers gunicorn adds (the app's own headers are left as they are)."""
from gunicorn.http import wsgi as _gunicorn_wsgi

_default_headers = _gunicorn_wsgi.Response.default_headers


def _default_headers_without_server(self):
    return [line for line in _default_headers(self) if not line.lower().startswith("server:")]


_gunicorn_wsgi.Response.default_headers = _default_headers_without_server
