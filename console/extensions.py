"""Extension singletons, created unbound and attached in create_app()."""
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx

from config import ENGINE_OPTIONS

# engine_options reaches every bind; SQLALCHEMY_ENGINE_OPTIONS would only reach
# the default engine, and the console has no default engine.
db = SQLAlchemy(engine_options=ENGINE_OPTIONS)
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
