"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi run``."""
from console import create_app

app = create_app()
