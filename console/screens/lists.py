"""The list contract: every list screen is one declaration handed to one helper.

A list is a ``ListScreen``: what it is called, the database its rows live in, its
filters, its base statement, the columns it sorts by, how a page of rows is decorated
with data from the other databases, and what its CSV export writes. The view side
(``console.views._listing.add_list_routes``) turns the declaration into the list route,
its htmx partial and the streamed export; ``templates/_list.html`` renders any of them.
Keyset paging in both directions (Previous and Next, NULLs last) is
``console.screens.keyset``. The orders list (``console/screens/orders.py``) is the
worked example; a new list reads like this::

    @dataclass
    class CouponFilters(QueryFilters):              # typed values, parsed from the query string
        code: str = ""
        status: str = ""
        FIELDS = ("code", "status")

        @classmethod
        def parse(cls, args):                        # -> (filters, [messages saying what to type])
            errors = []
            f = cls(code=text(args, "code", errors),
                    status=choice(args, "status", ("active", "expired"), "Status", errors))
            return f, errors

    def coupons_statement(f, lookups):               # a select of one entity, not ordered
        stmt = select(Coupon)
        if f.code:
            stmt = stmt.where(Coupon.code.istartswith(f.code, autoescape=True))
        return where_equal(stmt, (Coupon.status, f.status))

    def decorate(coupons, lookups):                  # one lookups.run per database per page
        uses = lookups.run("discount", lambda: referrers("discount.coupon_usage.coupon_id",
                                                          [c.id for c in coupons]), {})
        return [CouponRow(c, len(uses.get(c.id, []))) for c in coupons]

    COUPONS = ListScreen(
        name="coupons", noun="coupons", home="discount",
        filters=CouponFilters, statement=coupons_statement, id_column=Coupon.id,
        sorts=(Sort("created", Coupon.created_at, "Created"),
               Sort("code", Coupon.code, "Code", descending=False)),
        default_sort="-created", decorate=decorate,
        export_header=("code", "status", "uses", "coupon_id"),
        export_row=lambda row, lookups: [row.coupon.code, row.coupon.status, row.uses, row.coupon.id])

and in the blueprint ``add_list_routes(bp, COUPONS, "coupons.view")``, which registers
``coupons.list_coupons`` (``""``) and ``coupons.export`` (``/export.csv``). Then:

- ``templates/coupons/list.html``: the page header and filter bar (``filter_form`` …),
  then ``{% include "coupons/_table.html" %}``;
- ``templates/coupons/_table.html``: ``<div id="coupons-table">`` with ``list_top``
  (errors, unavailable note, summary and Export CSV), the table whose sortable headers
  are ``sort_header(screen, result, "code")``, an ``empty_state``, and ``list_pager``
  (copy ``templates/orders/_table.html``);
- every sort column gets an index on ``(column, id)`` in its model's ``__table_args__``
  (``sort_indexes`` in console/models/types.py), so a page a million rows deep costs what the first page costs.

What the helper guarantees for every list: filters that can't be used answer 400 with a
message each; a bad page link answers 400; the home database down answers 503 naming
it, a side database down leaves its columns saying "unavailable" (``lookups.down``);
the filters and the sort survive in every link and in the export; the export checks
each database it needs once, then streams with one set of lookups per batch.

The export reads through PostgreSQL's COPY when the list declares ``export_fast``: a
``CopyExport`` (console/exports.py) of the columns its home database gives, its
lookups in the other databases (``Side``) and the cells of a batch, the same cells as
``export_row`` writes (tests/test_copy_exports.py compares the two files).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from console.drift import check_read
from console.exports import STREAM_BATCH, CopyExport, copy_blocks, csv_response, one_by_one, stream_batches
from console.extensions import db
from console.filters import QueryFilters
from console.health import check_bind
from console.lookups import DatabaseUnavailable, Lookups, database
from console.screens.keyset import Page, keyset_page, ordered

# What an export cell says when the database that feeds it is down.
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Sort:
    """A column the list can be sorted by: ``key`` is its name in the address
    (``?sort=total`` ascending, ``?sort=-total`` descending)."""

    key: str
    column: Any  # a mapped attribute of the listed model, e.g. Order.total_amount
    label: str
    descending: bool = True  # the direction a click on its header starts with
    numeric: bool = False  # right-aligned header, as the column's numbers are


@dataclass(frozen=True)
class Ordering:
    sort: Sort
    descending: bool

    @property
    def arg(self) -> str:
        return ("-" if self.descending else "") + self.sort.key


@dataclass
class ListResult:
    """What a list's table shows: the page, its decorated rows, the databases that were
    down, the ordering, and the filters and sort as query-string values for links."""

    page: Page
    rows: list
    unavailable: set[str]
    ordering: Ordering
    args: dict[str, str] = field(default_factory=dict)
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExportPlan:
    stmt: Any
    down: set[str]


def _plain(rows: list, lookups: Lookups) -> list:
    return rows


@dataclass(frozen=True)
class ListScreen:
    name: str  # templates NAME/list.html and NAME/_table.html, element #NAME-table
    noun: str  # "orders": what the summary and messages count
    home: str  # bind key of the database the rows live in
    filters: type[QueryFilters]  # a dataclass with parse(args) -> (filters, errors)
    # (filters, lookups) -> select of one entity, not ordered. A filter that needs
    # another database raises DatabaseUnavailable (503 naming it), or asks through
    # ``lookups.run`` when the list can do without it (the customers list does).
    statement: Callable[[Any, Lookups], Any]
    id_column: Any  # the entity's id attribute: the tie-breaker of every sort
    sorts: tuple[Sort, ...]
    default_sort: str  # "-created": a sort key, "-" for descending
    decorate: Callable[[list, Lookups], list] = _plain  # entities -> table rows
    # The attributes a page's rows need: then they are plain rows of those columns (read
    # by attribute name, no ORM object per row; the sort and id always come too), and
    # ``decorate`` gets those. Empty: whole entities.
    columns: tuple = ()
    export_header: tuple[str, ...] = ()
    export_row: Callable[[Any, Lookups], list] | None = None  # table row -> CSV cells
    export_binds: tuple[str, ...] = ()  # the other databases the export's cells read
    # The export's way to the same cells as export_row through PostgreSQL's COPY: the
    # home database's columns and the other databases' lookups, once per batch
    # (console/exports.py, "the COPY path"); export_row's row-by-row path otherwise.
    export_fast: CopyExport | None = None
    count: bool = True  # the summary's "of about N" (a capped count)
    endpoint: str = ""  # the list's endpoint in its blueprint (default list_NAME)
    export_endpoint: str = "export"
    title: str = ""  # the page title (default: the noun, capitalised)
    # filters -> {name: value} read from the home database with each page, for the
    # template as result.extras (the refunds list's "needing attention" count).
    extras: Callable[[Any], dict] | None = None
    # {bind key: what the list lacks without it}, said when that database is down
    # (default: "the columns fed from it say so").
    down_notes: dict = field(default_factory=dict)

    @property
    def list_endpoint(self) -> str:
        return self.endpoint or f"list_{self.name}"

    @property
    def heading(self) -> str:
        return self.title or self.noun.capitalize()

    def sort_named(self, key: str) -> Sort | None:
        return next((s for s in self.sorts if s.key == key), None)

    def ordering(self, raw: str | None, errors: list[str] | None = None) -> Ordering:
        """The ordering ``?sort=`` asks for; the default (and a message in ``errors``)
        when it names no sortable column."""
        raw = (raw or "").strip()
        descending, key = raw.startswith("-"), raw.lstrip("-")
        sort = self.sort_named(key) if raw else None
        if sort is None:
            if raw and errors is not None:
                errors.append(f"This list can't be sorted by “{raw[:40]}”. Sort by one of: "
                              + ", ".join(s.key for s in self.sorts) + " (add - in front for descending).")
            default = self.default_sort
            return Ordering(self.sort_named(default.lstrip("-")), default.startswith("-"))
        return Ordering(sort, descending)

    def args(self, filters, ordering: Ordering) -> dict[str, str]:
        """The filters and (when not the default) the sort, as query-string values."""
        values = filters.as_args()
        if ordering.arg != self.default_sort:
            values["sort"] = ordering.arg
        return values

    def header_arg(self, ordering: Ordering, key: str) -> str:
        """What ``?sort=`` a click on column ``key``'s header asks for: the other
        direction of the current sort, or the column's own first direction."""
        sort = self.sort_named(key)
        if ordering.sort.key == key:
            return ("" if ordering.descending else "-") + key
        return ("-" if sort.descending else "") + key

    def load(self, filters, ordering: Ordering, *, size: int, after: str | None = None,
             before: str | None = None) -> ListResult:
        """One page: raises BadCursor, FilterError, or DatabaseUnavailable when the home
        database (or one a filter needs) is down; side databases down are in
        ``unavailable``, their columns empty."""
        lookups = Lookups()
        stmt = self.statement(filters, lookups)
        with database(self.home):
            page = keyset_page(stmt, ordering.sort.column, self.id_column, sort_key=ordering.sort.key,
                               descending=ordering.descending, size=size, after=after, before=before,
                               count=self.count, columns=self.columns, bind=self.home,
                               reuse=(self.name,) if self.columns and not filters.filtered else None)
            extras = self.extras(filters) if self.extras else {}
        rows = self.decorate(page.rows, lookups)
        return ListResult(page, rows, lookups.unavailable, ordering, self.args(filters, ordering), extras)

    # --- export ---------------------------------------------------------------------------

    def export_plan(self, filters, ordering: Ordering) -> ExportPlan:
        """The export's select, in the list's order, built before the download starts so
        filter errors and a down home database answer as the list does; the other
        databases the export reads are checked once, and those down are skipped."""
        if not check_bind(self.home, db.engines[self.home], with_details=False).up:
            raise DatabaseUnavailable(self.home)
        binds = dict.fromkeys((*self.export_binds, *(self.export_fast.binds if self.export_fast else ())))
        down = {key for key in binds
                if key != self.home and not check_bind(key, db.engines[key], with_details=False).up}
        lookups = Lookups(down, detach=False)
        stmt = ordered(self.statement(filters, lookups), ordering.sort.column, self.id_column, ordering.descending)
        return ExportPlan(stmt, lookups.unavailable)

    def export_response(self, plan: ExportPlan, stem: str | None = None):
        """The streamed download of the plan's rows, named ``<stem or the list's name>-DATE.csv``
        (the fast path's plain cells neutralised as csv_lines does for them)."""
        # The statement is tried (its first row) before the download starts: a database
        # that can't answer it (down, or without a column it names) answers a page saying
        # so, not a file broken off after its header. Only tried, not kept: the rows of
        # the download are read once it streams, in the session it streams with (the
        # request's own session ends when the view returns).
        stmt = self.export_fast.statement(plan.stmt) if self.export_fast is not None else plan.stmt
        with database(self.home):
            check_read(stmt)
            db.session.execute(stmt.limit(1)).first()
        db.session.close()
        fast = self.export_fast
        return csv_response(stem or self.name, list(self.export_header), self.export_blocks(plan), blocks=True,
                            plain_cells=fast is not None, written_cells=bool(fast and fast.written), limited=True)

    def export_rows(self, plan: ExportPlan, batch_size: int | None = None) -> Iterator[list]:
        """The CSV rows of export_blocks(), one by one."""
        return one_by_one(self.export_blocks(plan, batch_size))

    def export_blocks(self, plan: ExportPlan, batch_size: int | None = None) -> Iterator[list[list]]:
        """CSV rows of every row of the plan, streamed a list per batch; one Lookups for
        the whole export, so a database that fails part-way is tried once, not per batch."""
        if self.export_fast is not None:
            yield from copy_blocks(self.export_fast, self.home, plan.stmt, plan.down, batch_size)
            return
        batch_size = batch_size or STREAM_BATCH
        # No detaching: the streaming result still owns the session's identity map.
        lookups = Lookups(plan.down, detach=False)
        for batch in stream_batches(plan.stmt, batch_size):
            yield [self.export_row(row, lookups) for row in self.decorate(batch, lookups)]


def unless_down(lookups: Lookups, bind_key: str, value):
    """An export cell: ``value``, or "unavailable" when ``bind_key`` was down."""
    return UNAVAILABLE if lookups.down(bind_key) else value
