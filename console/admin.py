"""The data browser (/data): Flask-Admin over all 70 tables, admins only, read-only.

One view per table, grouped in the menu by database. Class names repeat across
services (two ``PaymentMethod``-like tables, several ``...History``), so every view
gets an explicit endpoint ``data_<bind>_<table>``, name and category, and lives at
/data/<bind>/<table>. Secrets never reach a page: they are left out of the list,
the details and the (disabled) forms alike. Lists use the simple pager, so no page
runs COUNT(*) over a large table.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import abort, g, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.typefmt import DEFAULT_FORMATTERS
from flask_admin.model import filters as model_filters
from flask_admin.model.typefmt import DETAIL_FORMATTERS
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import JSON
from sqlalchemy.exc import InvalidRequestError

from config import BIND_KEYS
from console.email_templates import CREDENTIAL_HIDDEN, CREDENTIAL_TEMPLATES, shown_subject
from console.extensions import db
from console import localtime
from console.formatting import when
from console.forms import parse_whole_number
from console.labels import LabelBatch, referenced_tables
from console.lookups import Missing, database
from console.models import models_of
from console.models.types import UTCDateTime
from console.permissions import forbidden_message

PERMISSION = "data.browse"
PAGE_SIZE = 50
# The pager goes on by OFFSET (Flask-Admin's), which reads every row it skips, each
# from its own heap page when the order is not the table's: at a million orders the
# query for 10,000 rows down takes 25-60 ms, for 2,500 rows 2-6 ms. So the deepest page
# reads 2,500 rows; further in, filters and search narrow the rows, and the console's
# own lists page by keyset through every row.
MAX_PAGES = 50
# The console's list of a table, where it has one: where to go past the last page.
CONSOLE_LISTS = {"orders": "Orders", "order_items": "Orders", "payments": "Orders", "user_profiles": "Customers",
                 "users": "Customers", "return_requests": "Returns", "refunds": "Refunds",
                 "security_audit_logs": "Activity", "products": "Products"}

# The obvious text keys staff search by, where a table has them.
SEARCH_KEYS = ("email", "order_number", "rma_number", "tracking_number", "sku", "product_sku", "code", "name")

# Secret columns named by table; the name rule in is_secret() catches the rest.
SECRETS_BY_TABLE = {
    ("mfa_backup_codes", "code"),      # hashes of one-time codes, still not for display
    ("carriers", "configuration"),     # carriers keep account credentials beside api_key
    ("carts", "session_id"),           # a guest cart's session id opens that cart
    ("users", "mfa_backup_codes"),     # hashes of the staff member's one-time backup codes
}
SECRET_WORDS = ("password", "secret", "token", "api_key")
# Generated ids: the services' cuids (25 characters, "c" first) and UUIDs.
GENERATED_ID = re.compile(r"^(?:c[0-9a-z]{24}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")


def is_secret(table: str, column: str) -> bool:
    """Whether ``column`` (a column's key, ``password_hash``) of ``table`` is a secret:
    password hashes, MFA secrets and codes, every token, API keys. Columns that
    only point at a token row (``refresh_token_id``) are ids, not secrets."""
    if (table, column) in SECRETS_BY_TABLE:
        return True
    return any(word in column for word in SECRET_WORDS) and not column.endswith("_id")


# Words of the columns that hold prose (every text column is TEXT in these databases,
# so the type cannot tell a description from a status).
LONG_WORDS = {"description", "body", "note", "notes", "comment", "answer", "question", "instructions"}


def _is_long(column) -> bool:
    """Prose and JSON columns are shown on the details page only, to keep lists legible."""
    return isinstance(column.type, JSON) or not LONG_WORDS.isdisjoint(column.key.split("_"))


# --- filters on timestamp-with-time-zone columns ---------------------------------------
# Flask-Admin builds naive datetimes from the filter text; the console's UTCDateTime
# refuses naive values, so these read the text as a time in the store's zone (as every
# date filter of the console does) and hand the database its UTC moment.

def _store_time(value: datetime) -> datetime:
    return value.replace(tzinfo=localtime.zone()).astimezone(timezone.utc)


class _InUTC:
    def clean(self, value):
        cleaned = super().clean(value)
        if isinstance(cleaned, list):
            return [_store_time(v) for v in cleaned]
        return _store_time(cleaned)


class UTCGreaterFilter(_InUTC, sqla_filters.DateTimeGreaterFilter):
    pass


class UTCSmallerFilter(_InUTC, sqla_filters.DateTimeSmallerFilter):
    pass


class UTCBetweenFilter(_InUTC, sqla_filters.DateTimeBetweenFilter):
    pass


class ConsoleFilterConverter(sqla_filters.FilterConverter):
    @model_filters.convert("utcdatetime")
    def conv_utc_datetime(self, column, name, **kwargs):
        return [f(column, name, **kwargs) for f in (UTCGreaterFilter, UTCSmallerFilter, UTCBetweenFilter,
                                                      sqla_filters.FilterEmpty)]


def _utc_time(view, value: datetime, name: str) -> str:
    return when(value, "%Y-%m-%d %H:%M:%S")


def _unless_sign_in_link(view, context, model, name):
    """A notification's body or metadata, except for an email holding a one-time link to
    set a staff password (console/email_templates.py): whoever reads it could use it."""
    meta = model.metadata_ if isinstance(model.metadata_, dict) else {}
    if meta.get("template") in CREDENTIAL_TEMPLATES:
        return CREDENTIAL_HIDDEN
    value = getattr(model, name)
    formatter = view.column_type_formatters_detail.get(type(value))
    return formatter(view, value, name) if formatter else value


def _shown_subject(view, context, model, name):
    return shown_subject(model)


def _is_id(column) -> bool:
    return column.key == "id" or column.key.endswith("_id")


def _short_id(view, context, model, name):
    """In lists, a generated id (cuid or UUID) shows its first 8 characters (the whole id in its tooltip and on
    the details page): a table with four id columns then still shows its amounts and
    statuses at 1366 px. Readable ids (provider ids, keys) stay whole."""
    value = getattr(model, name)
    if value is None:
        return ""
    text = str(value)
    if not GENERATED_ID.match(text):
        return text
    return Markup('<span class="mono" title="{0}">{1}…</span>').format(text, text[:8])


def _leading_index_columns(table) -> set[str]:
    """Columns (by key) an index of ``table`` starts with (the primary key too): the ones
    a list can be sorted by without sorting the table, on every database."""
    leading = {c.key for c in table.primary_key.columns}
    leading |= {c.key for c in table.columns if c.unique or c.index}
    for index in table.indexes:
        expressions = list(index.expressions)
        if expressions and getattr(expressions[0], "table", None) is table and index.info.get("only") is None:
            leading.add(expressions[0].key)
    return leading


def _labelled_id(view, context, model, name):
    """An id that points at a row staff know by name (a product's SKU, an order's
    number, an email): the short id with the label beside it, read for the whole page
    at once (TableView.get_list); "missing" when the row is gone."""
    shown = _short_id(view, context, model, name)
    labels = getattr(g, "data_labels", {}).get(view.endpoint)
    value = getattr(model, name)
    if labels is None or value in (None, ""):
        return shown
    bind, table = view.label_targets[name]
    label = labels.label(bind, table, value)
    if isinstance(label, Missing):
        return Markup('{} <span class="badge badge-warning" title="no {} row has this id">missing</span>').format(
            shown, table)
    if label is None or not label.text:
        return shown
    return Markup('{} <span class="data-label">{}</span>').format(shown, label.text)


# --- access ---------------------------------------------------------------------------

class AdminOnly:
    """Same sign-in as the console: anonymous -> the sign-in page, others -> 403."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.can(PERMISSION)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403, forbidden_message(PERMISSION))


class DataIndexView(AdminOnly, AdminIndexView):
    @expose("/")
    def index(self):
        return self.render("data/index.html", databases=self.admin.databases)


class TableView(AdminOnly, ModelView):
    """One table, read-only, secrets left out everywhere."""

    can_create = False
    can_edit = False
    can_delete = False
    can_export = False
    can_view_details = True
    can_set_page_size = False
    column_display_pk = True
    simple_list_pager = True
    page_size = PAGE_SIZE
    max_pages = MAX_PAGES
    list_template = "data/list.html"
    filter_converter = ConsoleFilterConverter()
    column_type_formatters = {**DEFAULT_FORMATTERS, datetime: _utc_time}
    column_type_formatters_detail = {**DETAIL_FORMATTERS, datetime: _utc_time}

    def __init__(self, model, bind_key: str):
        table = model.__table__
        # Columns are keyed by their Python attribute (``order_number``, ``metadata_``):
        # Flask-Admin, the rules below and the reference registry all speak in keys; only
        # the labels show the database's own column names.
        secrets = [c.key for c in table.columns if is_secret(table.name, c.key)]
        shown = [c for c in table.columns if c.key not in secrets]

        self.secret_columns = secrets
        self.column_list = [c.key for c in shown if not _is_long(c)]
        self.column_formatters = {c.key: _short_id for c in shown if _is_id(c) and not _is_long(c)}
        # Columns pointing at rows staff know by name show that name beside the id.
        self.label_targets = {key: target for key, target in referenced_tables(bind_key, table).items()
                              if key in self.column_formatters}
        for key in self.label_targets:
            self.column_formatters[key] = _labelled_id
        self.column_formatters_detail = {}  # the details page shows every id in full
        if table.name == "notifications":
            self.column_formatters_detail = {"body": _unless_sign_in_link, "metadata_": _unless_sign_in_link,
                                             "subject": _shown_subject}
            self.column_formatters["subject"] = _shown_subject
        self.column_details_list = [c.key for c in shown]
        self.column_exclude_list = list(secrets)
        self.column_details_exclude_list = list(secrets)
        self.form_excluded_columns = list(secrets)
        keys = {c.key for c in table.columns}
        self.column_searchable_list = [k for k in SEARCH_KEYS if k in keys and k not in secrets]
        # Filtering or sorting by a column no index leads would read the whole table for
        # every page: the status and date filters and the newest-first order only where
        # an index (the service's or the console's) leads with the column.
        leading = _leading_index_columns(table)
        dates = [c.key for c in table.columns if isinstance(c.type, UTCDateTime) and c.key in leading]
        date_column = "created_at" if "created_at" in dates else (dates[0] if dates else None)
        self.column_filters = [k for k in ("status", date_column) if k in leading]
        self.column_default_sort = (date_column, True) if date_column else None
        self.column_sortable_list = [k for k in self.column_list if k in leading]
        self.console_list = CONSOLE_LISTS.get(table.name)
        # The database's column names as labels: the browser is for people who know the schema.
        self.column_labels = {c.key: c.name for c in table.columns}
        self.bind_key = bind_key
        super().__init__(model, db, name=table.name, category=f"{bind_key}_db",
                         endpoint=f"data_{bind_key}_{table.name}", url=f"{bind_key}/{table.name}")

    def _get_list_extra_args(self):
        """Flask-Admin reads page, sort and desc with int(), which takes "0_1", "٣" and
        numbers too large for the database (an OverflowError, a 500). Checked strictly
        first: a clear 400 saying what to type."""
        bounds = {"page": 10**9, "page_size": PAGE_SIZE, "sort": len(self.column_list or ()) + 1, "desc": 1}
        for name, maximum in bounds.items():
            if name in request.args:
                try:
                    number = parse_whole_number(request.args[name], 0, maximum,
                                                f"a {name.replace('_', ' ')} number" if name != "desc" else "0 or 1")
                except ValueError as exc:
                    message = f"{exc} (“{name}” in the address.)"
                    if name == "page":
                        message += " " + self.further_in()
                    abort(400, message)
                if name == "page" and number >= self.max_pages:
                    abort(400, f"Pages stop at {self.max_pages} here (the first {self.max_pages * PAGE_SIZE:,} "
                               f"rows in this order): a deeper page would read every row before it. "
                               + self.further_in())
        return super()._get_list_extra_args()

    def further_in(self) -> str:
        """What to do instead of paging deeper."""
        advice = "Use the filters or search to narrow the rows"
        if self.console_list:
            return f"{advice}, or the {self.console_list} list of the console, which pages through every row."
        return advice + ", or sort the other way to start from the far end."

    # A database that is down gives the console's 503 page naming it, not a 500.
    def get_list(self, page, *args, **kwargs):
        if page is not None and not 0 <= page < self.max_pages:
            abort(400, f"There is no page {page + 1} here: pages run from 1 to {self.max_pages}. "
                       + self.further_in())
        with database(self.bind_key):
            count, rows = super().get_list(page, *args, **kwargs)
            rows = list(rows)
        self._label_page(rows)
        return count, rows

    def _label_page(self, rows) -> None:
        """One query per referenced table for the whole page (never one per row); the
        column formatters read the labels from ``g``. A database that is down leaves
        its ids unlabelled."""
        if not self.label_targets or not rows:
            return
        batch = LabelBatch()
        for key, (bind, table) in self.label_targets.items():
            batch.want(bind, table, (getattr(row, key) for row in rows))
        # The page's rows are loaded in full: detached, a label lookup that fails (and
        # rolls the session back) cannot expire them into one reload per row.
        db.session.expunge_all()
        if not hasattr(g, "data_labels"):
            g.data_labels = {}
        g.data_labels[self.endpoint] = batch.load()

    def get_one(self, id):
        with database(self.bind_key):
            try:
                return super().get_one(id)
            except InvalidRequestError:  # Flask-Admin reads "a,b" as a two-column key
                return None


def _declare_language(response):
    """Flask-Admin's page frame (its admin/base.html) opens with a bare ``<html>`` and has
    no block around it: name the page's language there, as templates/base.html does."""
    if (request.path.startswith("/data/") and response.mimetype == "text/html"
            and not response.direct_passthrough):
        response.set_data(response.get_data().replace(b"<html>", b'<html lang="en">', 1))
    return response


def register_admin(app) -> None:
    """Attach the data browser: one Admin per app (create_app runs once per test app)."""
    admin = Admin(app, name="Data browser", url="/data", endpoint="data",
                  index_view=DataIndexView(name="Databases", url="/data", endpoint="data"),
                  theme=Bootstrap4Theme(base_template="data/base.html", fluid=True))
    admin.databases = []
    app.after_request(_declare_language)
    for bind_key in BIND_KEYS:
        views = [TableView(model, bind_key) for model in models_of(bind_key)]
        admin.add_views(*views)
        admin.databases.append((f"{bind_key}_db", views))
