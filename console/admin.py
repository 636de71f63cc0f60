"""The data browser (/data): Flask-Admin over all 70 tables, admin only."""
from __future__ import annotations


def register_admin(app) -> None:
    """Attach the data browser. Filled in with the sign-in and permissions work."""
