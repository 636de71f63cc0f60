"""The workflows' email templates are installed, as `init-db` does on a deployment, so
the screens show the emails the workflows queue."""
from tests.workflows.conftest import installed_email_templates  # noqa: F401 (autouse fixture)
