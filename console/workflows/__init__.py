"""State machines and multi-database writes. Plain functions: they take the acting
staff user and arguments, never a request, and each is tested without HTTP."""
from __future__ import annotations

from console.extensions import db


def locked(stmt):
    """The one row ``stmt`` selects (or None), locked until commit (SELECT … FOR UPDATE
    on PostgreSQL; SQLite has a single writer anyway) and re-read, never taken stale
    from the session: every workflow that checks a row before changing it reads it so."""
    return db.session.scalar(stmt.with_for_update().execution_options(populate_existing=True))


class WorkflowError(Exception):
    """A refused action: the message is for the staff user, the status for HTTP
    (409 when the current state does not allow it, 422 for input that can't be used)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status
