"""Console configuration.

The ten service databases come from AUTH_DATABASE_URL ... NOTIFICATION_DATABASE_URL.
With none set, each bind defaults to a SQLite file under instance/, so the console
runs with nothing installed but Python.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# bind key -> environment variable, in the order the screens list them.
BIND_KEYS = (
    "auth", "user", "product", "cart", "order",
    "payment", "shipping", "return", "discount", "notification",
)

# Options for every bind (Flask-SQLAlchemy's engine_options). pool_pre_ping keeps a
# dead connection from reaching a request after a database restart; PostgreSQL binds
# do that at almost no cost instead (console/liveness.py).
ENGINE_OPTIONS = {"pool_pre_ping": True}

# PostgreSQL only: ten binds share one process, so each pool stays small, and a dead
# server must fail fast instead of hanging a page.
CONNECT_TIMEOUT = int(os.environ.get("CONSOLE_CONNECT_TIMEOUT", "3"))
STATEMENT_TIMEOUT = int(os.environ.get("CONSOLE_STATEMENT_TIMEOUT", "15"))
# A pool never holds more than pool_size + max_overflow connections, whoever asks: the
# request threads (one connection per database each), an export's lookup threads, the
# health checks. gunicorn.conf.py sizes them to its threads (4 workers x 10 databases x
# (2 + 0) = 80 of a default PostgreSQL server's 97); these defaults serve `flask run`, the
# commands and the tests (README, "Connections to PostgreSQL").
POSTGRES_OPTIONS = {
    "pool_pre_ping": False,  # console/liveness.py checks each checkout without a round trip
    "pool_size": int(os.environ.get("CONSOLE_POOL_SIZE", "2")),
    "max_overflow": int(os.environ.get("CONSOLE_POOL_OVERFLOW", "2")),
    "pool_timeout": 10,
    "pool_recycle": 1800,
    "connect_args": {"connect_timeout": CONNECT_TIMEOUT,
                     # A query whose index is missing gives up instead of holding a page (and
                     # a worker) for minutes; long jobs (exports, seeding, index builds) lift it
                     # for their own transaction.
                     "options": f"-c statement_timeout={STATEMENT_TIMEOUT * 1000}"},
}
# The connections the console may open to one PostgreSQL server (or PgBouncer): gunicorn
# refuses to start when its workers' pools could open more. A default server allows
# max_connections 100 less 3 kept for superusers.
PG_MAX_CONNECTIONS = int(os.environ.get("CONSOLE_PG_MAX_CONNECTIONS", "97"))
# Behind PgBouncer in transaction mode consecutive transactions may run on different
# server connections: nothing may rely on a session (console/pgbouncer.py).
PGBOUNCER = os.environ.get("CONSOLE_PGBOUNCER", "").lower() in ("1", "true", "yes", "on")


def env_var(bind_key: str) -> str:
    return f"{bind_key.upper()}_DATABASE_URL"


def bind_url(bind_key: str, instance_dir: Path) -> str:
    url = os.environ.get(env_var(bind_key))
    if url:
        return url
    return f"sqlite:///{instance_dir / (bind_key + '_db.sqlite')}"


def bind_config(url: str) -> dict:
    """One SQLALCHEMY_BINDS entry: the URL plus the options its dialect understands."""
    if url.startswith("postgres"):  # postgresql…, and the postgres:// some hosts hand out
        if url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"name the driver in database URLs: postgresql+psycopg://… (got {url.split('@')[-1]})")
        return {"url": url, **POSTGRES_OPTIONS}
    return {"url": url}


def instance_folder() -> Path:
    return Path(os.environ.get("CONSOLE_INSTANCE_DIR", BASE_DIR / "instance"))


def database_binds(instance_dir: Path | None = None) -> dict[str, dict]:
    instance_dir = Path(instance_dir or instance_folder())
    return {key: bind_config(bind_url(key, instance_dir)) for key in BIND_KEYS}


def service_cache_urls() -> dict[str, str]:
    """bind key -> the Redis URL of the service that owns that database (its REDIS_URL),
    from <BIND>_REDIS_URL or, for every service at once, CONSOLE_SERVICE_REDIS_URL. A
    service without one has no cache the console knows of: nothing to drop."""
    shared = os.environ.get("CONSOLE_SERVICE_REDIS_URL", "").strip()
    urls = {key: os.environ.get(f"{key.upper()}_REDIS_URL", "").strip() or shared for key in BIND_KEYS}
    return {key: url for key, url in urls.items() if url}
def connection_ceiling(workers: int, binds: dict[str, dict]) -> dict[str, tuple[int, str]]:
    """{PostgreSQL server "host:port": (the most connections the console can open to it,
    the arithmetic in words)}. Each worker process keeps one pool per database, capped at
    pool_size + max_overflow; a process's threads share its pools, so threads do not
    multiply it (they only need as many connections per database as there are threads)."""
    from sqlalchemy.engine import make_url

    on_server: dict[str, list[dict]] = {}
    for options in binds.values():
        if "pool_size" not in options:
            continue  # SQLite: a file, no server
        url = make_url(options["url"])
        on_server.setdefault(f"{url.host or 'localhost'}:{url.port or 5432}", []).append(options)
    ceilings = {}
    for server, pools in on_server.items():
        connections = workers * sum(o["pool_size"] + o["max_overflow"] for o in pools)
        caps = {(o["pool_size"], o["max_overflow"]) for o in pools}
        pool = "(pool {} + overflow {})".format(*caps.pop()) if len(caps) == 1 else "their pools"
        ceilings[server] = (connections, f"{workers} workers x {len(pools)} databases x {pool} = {connections}")
    return ceilings


def _roles(text: str) -> tuple[str, ...]:
    return tuple(role.strip() for role in text.split(",") if role.strip())


# Signs sessions and CSRF tokens; good enough on a laptop, refused in production.
DEV_SECRET_KEY = "dev-only-secret-change-me"


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    SQLALCHEMY_BINDS = database_binds()
    SQLALCHEMY_RECORD_QUERIES = False
    # A shift is long: a CSRF token outlives a page left open all day, and the
    # session itself still ends after the idle timeout below.
    WTF_CSRF_TIME_LIMIT = 12 * 3600
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    PERMANENT_SESSION_LIFETIME = timedelta(minutes=int(os.environ.get("CONSOLE_IDLE_MINUTES", "30")))
    SESSION_REFRESH_EACH_REQUEST = True
    # An unchanged session's cookie is rewritten (its expiry moved on) at most this often,
    # so that a request answered late never puts back an older cookie (console/security.py).
    SESSION_COOKIE_REFRESH_SECONDS = 60
    # However busy, a session ends this long after sign-in (enforced on the server).
    SESSION_MAX_HOURS = float(os.environ.get("CONSOLE_SESSION_MAX_HOURS", "12"))
    # Staff holding one of these roles must use two-step sign-in: until enrolled they
    # can only enrol. Comma-separated; empty for none. Development relaxes it below.
    MFA_REQUIRED_ROLES = _roles(os.environ.get("CONSOLE_MFA_REQUIRED_ROLES", "admin,finance"))
    # Invitation and password links: how long they work, and the address they start
    # with. Without CONSOLE_PUBLIC_URL the address the request came to is used, which
    # production refuses for "forgot password" (a forged Host header would otherwise
    # choose where the link points).
    INVITATION_HOURS = 72
    PASSWORD_RESET_HOURS = 1
    PUBLIC_URL = os.environ.get("CONSOLE_PUBLIC_URL", "").rstrip("/")
    PASSWORD_RESET_IP_LIMIT = 10  # "forgot password" requests per address per window
    PASSWORD_RESET_EMAIL_LIMIT = 3  # links sent to one email per window
    PASSWORD_RESET_WINDOW_SECONDS = 3600
    # "Forgot password" answers no sooner than this, whether or not the email has an
    # account (making a link takes longer than finding none: the time would tell).
    PASSWORD_RESET_ANSWER_SECONDS = 0.5
    # Strict-Transport-Security max-age; 0 sends none (production sets it).
    HSTS_SECONDS = 0
    PAGE_SIZE = 50
    # The store's time zone (an IANA name): every date and time on the screens is shown in
    # it and every date typed into a filter is a day in it; stored values stay UTC. An
    # unknown name stops the console from starting (console/localtime.py).
    TIMEZONE = os.environ.get("CONSOLE_TIMEZONE", "UTC").strip() or "UTC"
    # The seller printed on invoices (and packing slips' return address): the store's
    # name and its address, one line per "|".
    STORE_NAME = os.environ.get("CONSOLE_STORE_NAME", "Online Store")
    STORE_ADDRESS = os.environ.get("CONSOLE_STORE_ADDRESS", "1 Market Street|Springfield|United States")
    STORE_TAX_ID = os.environ.get("CONSOLE_STORE_TAX_ID", "")
    # The dashboard's order figures (a month of orders, every status) are computed at most
    # once per this many seconds per worker process; the page says when they were.
    DASHBOARD_CACHE_SECONDS = int(os.environ.get("CONSOLE_DASHBOARD_CACHE_SECONDS", "60"))
    # A store-local day that is over keeps its order, refund and return figures (per
    # currency and status) this long before they are read again: a past day changes
    # rarely (a late cancel, a refund of an old order), and the page says how old they are.
    DASHBOARD_DAY_SECONDS = int(os.environ.get("CONSOLE_DASHBOARD_DAY_SECONDS", "300"))
    # Past that age a kept day is no longer shown at all, only read again; between the
    # two, a load reads again at most a week of the due days and shows the others with
    # their time (console/screens/dashboard.py, day_rows).
    DASHBOARD_DAY_MAX_SECONDS = int(os.environ.get("CONSOLE_DASHBOARD_DAY_MAX_SECONDS", "3600"))
    # Redis that every worker shares the dashboard's per-day figures through
    # (redis://127.0.0.1:6379/0); without it each worker keeps its own.
    CACHE_REDIS_URL = os.environ.get("CONSOLE_CACHE_REDIS_URL", "")
    # Available at or below this is "low stock": the dashboard's figure and the products list's filter.
    LOW_STOCK_THRESHOLD = int(os.environ.get("CONSOLE_LOW_STOCK", "5"))
    # The products list sorted by units sold ranks every product sold in 30 days once a minute.
    SALES_RANKING_SECONDS = 60
    # /healthz and the Databases page answer within this many seconds even when a
    # database stops answering on an open connection (no connect timeout applies there).
    HEALTH_CHECK_SECONDS = CONNECT_TIMEOUT + 2
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCK_MINUTES = 15
    LOGIN_IP_LIMIT = int(os.environ.get("CONSOLE_LOGIN_IP_LIMIT", "30"))  # attempts per IP per window
    LOGIN_IP_WINDOW_SECONDS = 300
    # A CSV download is dropped, with the connections it holds, when one chunk (about a
    # thousand rows, a few hundred KB) has not gone out within this many seconds.
    EXPORT_SEND_TIMEOUT = int(os.environ.get("CONSOLE_EXPORT_SEND_TIMEOUT", "60"))
    # Exports written at once by one process (gunicorn worker); more answer 503 "try again
    # in a minute". Each holds a connection per database it reads while it streams: two
    # leave half of the default pools (2 + 2 per database) to the pages.
    EXPORTS_AT_ONCE = int(os.environ.get("CONSOLE_EXPORTS_AT_ONCE", "2"))
    PGBOUNCER = PGBOUNCER
    # Proxies in front of the console (a load balancer, nginx) whose X-Forwarded-For and
    # X-Forwarded-Proto are trusted. 0 trusts none, so a client cannot pick the address
    # the sign-in throttle and the audit trail see; behind one proxy, set 1.
    PROXY_HOPS = int(os.environ.get("CONSOLE_PROXY_HOPS", "0"))
    # The services' Redis caches (console/cache_drops.py): after each commit the console drops
    # the keys the owning service would drop, giving up on a cache after this many seconds
    # (connect and each reply); what it could not drop waits in the journal file for a retry.
    SERVICE_CACHE_URLS = service_cache_urls()
    SERVICE_CACHE_TIMEOUT = float(os.environ.get("CONSOLE_SERVICE_CACHE_TIMEOUT", "0.5"))
    SERVICE_CACHE_JOURNAL = os.environ.get("CONSOLE_SERVICE_CACHE_JOURNAL",
                                           str(instance_folder() / "service_cache_drops.sqlite"))
    # The demo data's payments go through a provider of the demo's own whose refunds
    # complete at once (console/demo/provider.py); a deployment has none.
    DEMO_REFUNDS_AT_ONCE = False


class DevelopmentConfig(Config):
    DEMO_REFUNDS_AT_ONCE = True
    # `make run` serves demo logins without two-step sign-in: nobody is forced to
    # enrol unless CONSOLE_MFA_REQUIRED_ROLES says so.
    MFA_REQUIRED_ROLES = _roles(os.environ.get("CONSOLE_MFA_REQUIRED_ROLES", ""))


class ProductionConfig(Config):
    REQUIRE_SECRET_KEY = True  # create_app() refuses to start with the development key
    REQUIRE_PUBLIC_URL = True  # for links in emails sent to whoever asks
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    HSTS_SECONDS = int(os.environ.get("CONSOLE_HSTS_SECONDS", str(365 * 24 * 3600)))


class TestConfig(Config):
    TESTING = True
    DEMO_REFUNDS_AT_ONCE = True  # the tests build their data with the demo's builders
    SECRET_KEY = "test-secret"
    SQLALCHEMY_RECORD_QUERIES = True
    WTF_CSRF_ENABLED = False  # the CSRF tests switch it back on
    BCRYPT_ROUNDS = 4  # fast hashes in tests; production uses 12
    SALES_RANKING_SECONDS = 0  # each test sells afresh: no remembered "units sold" ranking
    DASHBOARD_CACHE_SECONDS = 0  # tests see every change at once; the cache has its own test
    DASHBOARD_DAY_SECONDS = 0  # the same for the per-day figures
    MFA_REQUIRED_ROLES = ()  # the tests of required MFA switch it on
    PASSWORD_RESET_ANSWER_SECONDS = 0  # the test of the answer's timing sets it
    SERVICE_CACHE_URLS: dict = {}  # the service cache tests set their own (a Redis database of their own)


CONFIGS = {"development": DevelopmentConfig, "production": ProductionConfig, "testing": TestConfig}
