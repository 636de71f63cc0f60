"""The operations console: one Flask app over the ten service databases."""
from __future__ import annotations

import os
import warnings

from flask import Flask
from sqlalchemy import exc as sa_exc

from config import BASE_DIR, CONFIGS, DEV_SECRET_KEY

# SQLite has no decimal type; DECIMAL(10,2) values still round-trip at two places.
warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively.*",
                        category=sa_exc.SAWarning)


def create_app(config_name: str | None = None, overrides: dict | None = None) -> Flask:
    """Build the app. ``config_name``: development (default), production or testing,
    or the CONSOLE_ENV variable; ``overrides`` win over both."""
    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
        instance_path=str(BASE_DIR / "instance"),
    )
    app.config.from_object(CONFIGS[config_name or os.environ.get("CONSOLE_ENV", "development")])
    app.config.update(overrides or {})
    if app.config.get("REQUIRE_SECRET_KEY") and app.config["SECRET_KEY"] in (None, "", DEV_SECRET_KEY):
        # Anyone who knows the development key could forge a signed-in session.
        raise RuntimeError("Set SECRET_KEY to a long random value: production refuses the development key.")
    from console.localtime import check_setting

    check_setting(app)  # an unknown CONSOLE_TIMEZONE refuses to start, naming it
    os.makedirs(app.instance_path, exist_ok=True)
    if app.config.get("PROXY_HOPS"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    register_extensions(app)
    register_security(app)
    register_templates(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_cli(app)
    if app.config.get("DEMO_REFUNDS_AT_ONCE"):
        from console.demo.provider import install

        install()
    return app


def register_extensions(app: Flask) -> None:
    from console import cache_drops, drift, liveness, pgbouncer, untransacted_reads
    from console.extensions import csrf, db, htmx, login_manager

    if app.config.get("PGBOUNCER"):
        app.config["SQLALCHEMY_BINDS"] = pgbouncer.bind_options(app.config["SQLALCHEMY_BINDS"])
    db.init_app(app)
    with app.app_context():
        liveness.install(db.engines.values())
        untransacted_reads.install(app, db.engines.values())
    if app.config.get("PGBOUNCER"):
        with app.app_context():
            pgbouncer.install(db.engines.values())
    drift.install()
    with app.app_context():
        drift.watch(db.engines)  # a table or column gone while the console runs: read again
    cache_drops.install()  # every commit drops what the services' caches hold of its rows
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    # Sessions are held on the server (console/sessions.py): what ends one is its
    # user_sessions row, checked on every request. Flask-Login's own protection would
    # add nothing: "strong" is downgraded to "basic" for permanent sessions, and
    # "basic" only marks a session not fresh, which nothing here asks for.
    login_manager.session_protection = None

    @login_manager.user_loader
    def load_user(token: str):
        from flask import request

        from console.drift import SchemaDrift
        from console.lookups import DatabaseUnavailable, database
        from console.sessions import current
        from console.staff import StaffUser, mfa_required_for
        try:
            with database("auth"):
                live = current(token)
        except (DatabaseUnavailable, SchemaDrift):
            # Signed out: auth_db is down, or lacks a column the session needs, which
            # signing in again names.
            db.session.rollback()
            return None
        if live is None:
            return None
        return StaffUser(id=live.user_id, email=live.email, roles=live.roles, ip=request.remote_addr,
                         session_token=token, session_id=live.id,
                         must_enrol_mfa=mfa_required_for(live.roles) and not live.mfa_enabled)


def register_security(app: Flask) -> None:
    from console.security import (
        SlidingCookieSessions, apply_security_headers, keep_session_fresh, refuse_control_characters,
        send_to_mfa_enrolment,
    )

    app.session_interface = SlidingCookieSessions()

    # First of all: refused input never reaches a database.
    app.before_request(refuse_control_characters)
    app.before_request(keep_session_fresh)
    app.before_request(send_to_mfa_enrolment)
    app.after_request(apply_security_headers)


def register_templates(app: Flask) -> None:
    from console import formatting
    from console.navigation import main_menu, menu_for, menu_sections_for

    formatting.register(app)
    app.context_processor(lambda: {
        "menu_for": menu_for,
        "menu_sections_for": menu_sections_for,
        "main_menu": main_menu,
        "has_endpoint": lambda endpoint: endpoint in app.view_functions,
    })


def register_blueprints(app: Flask) -> None:
    from console.views import all_blueprints

    for blueprint in all_blueprints():
        app.register_blueprint(blueprint)
    from console.admin import register_admin

    register_admin(app)


def register_error_handlers(app: Flask) -> None:
    from console.errors import register

    register(app)


def register_cli(app: Flask) -> None:
    from console.cli import console_cli

    app.cli.add_command(console_cli)
