"""The workflows' email templates are installed, as `init-db` does on a deployment,
so the emails the workflows queue can be checked."""
from __future__ import annotations

import pytest

from console import email_templates
from console.extensions import db


@pytest.fixture(autouse=True)
def installed_email_templates(app):
    with app.app_context():
        email_templates.install()
        db.session.commit()
        db.session.remove()
