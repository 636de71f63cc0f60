"""gunicorn's access log without one-time tokens.

A staff invitation or password reset link carries its token in the address
(``/password/set/<token>``). Opening it exchanges the token for one kept in the session
(console/views/auth.py), so the address stops working at once; the access log still
leaves the token out, so that no log reader ever holds one, even for that moment."""
from __future__ import annotations

import re

from gunicorn.glogging import Logger

TOKEN_IN_PATH = re.compile(r"(/password/set/)[^\s?/\"]+")
REDACTED = r"\1[redacted]"


def redact(text):
    return TOKEN_IN_PATH.sub(REDACTED, text) if isinstance(text, str) else text


class RedactingLogger(Logger):
    """gunicorn's logger, with tokens cut out of the request line, path and referrer."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f", "{referer}i"):
            if key in atoms:
                atoms[key] = redact(atoms[key])
        return atoms
