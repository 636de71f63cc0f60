"""How every list screen answers: the whole page, or its table alone for htmx, and its export.

A list declared as a ``ListScreen`` (console/screens/lists.py) gets its routes from
``add_list_routes``. A list area ``name`` has templates ``<name>/list.html`` (the page,
with the filter bar) and ``<name>/_table.html`` (the table, swapped into
``#<name>-table``). Filters and the sort live in the query string; what can't be used
is said in the table's place with a 4xx, so the filter bar stays usable for a correction.
"""
from __future__ import annotations

from flask import abort, current_app, make_response, render_template, request

from console.drift import NotInSchema
from console.extensions import db
from console.filters import FilterError
from console.lookups import DatabaseUnavailable
from console.permissions import permission_required
from console.screens.keyset import PAGE_SIZES, BadCursor, page_size
from console.screens.lists import ListScreen


def vary(response):
    # One URL answers with a partial (htmx) or a whole page: caches must keep both.
    response.vary.add("HX-Request")
    return response


def wants_partial(target: str) -> bool:
    """htmx swapping into #target (or naming no target) gets the partial. A plain link,
    or htmx restoring history (which needs a whole document), gets the page."""
    htmx = request.htmx
    return bool(htmx) and not htmx.history_restore_request and htmx.target in (None, target)


def _start(raw) -> int:
    # The position of the page's first row, carried by the Next link for the summary.
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        return 1


def _unavailable_message(exc: DatabaseUnavailable, noun: str, home: str) -> str:
    if isinstance(exc, NotInSchema):
        return (f"{exc.bind_key}_db {exc.what}, which this list needs: {exc.advice}."
                + ("" if exc.bind_key == home else " Remove the filter or sort that needs it."))
    return (f"{exc.bind_key}_db is unavailable"
            + (f", and the {noun} themselves live there." if exc.bind_key == home
               else ", and one of these filters needs it. Remove that filter or try again shortly."))


def render_screen(screen: ListScreen, **context):
    """The list ``screen`` for the filters, sort and page in the query string."""
    args = request.args
    filters, errors = screen.filters.parse(args)
    ordering = screen.ordering(args.get("sort"), errors)
    size = page_size(args.get("size"), current_app.config.get("PAGE_SIZE", 50))
    after, before = args.get("cursor") or None, args.get("before") or None
    result, status, problem = None, 400, "These filters can't be used yet:"
    if not errors:
        try:
            result = screen.load(filters, ordering, size=size, after=after, before=before)
        except (FilterError, BadCursor) as exc:
            errors.append(str(exc))
        except DatabaseUnavailable as exc:
            status, problem = 503, "The list can't be shown right now:"
            errors.append(_unavailable_message(exc, screen.noun, screen.home))
    start = _start(args.get("start")) if (after or before) else 1
    if result is not None and result.page.previous_cursor is None:
        start = 1
    template = f"{screen.name}/_table.html" if wants_partial(f"{screen.name}-table") else f"{screen.name}/list.html"
    body = render_template(template, screen=screen, result=result, filters=filters, ordering=ordering,
                           errors=errors, problem=problem, size=size, cursor=after or before, start=start,
                           page_sizes=PAGE_SIZES, list_endpoint=f"{request.blueprint}.{screen.list_endpoint}",
                           export_endpoint=f"{request.blueprint}.{screen.export_endpoint}", **context)
    return vary(make_response(body, status if errors else 200))


def export_screen(screen: ListScreen):
    """The streamed CSV of every row the list's filters and sort select."""
    filters, errors = screen.filters.parse(request.args)
    ordering = screen.ordering(request.args.get("sort"), errors)
    if errors:
        abort(400, " ".join(errors))
    # What the session holds since sign-in (auth_db) goes back first: the checks of the
    # plan and the download take their own connections, one per database at a time.
    db.session.close()
    try:
        plan = screen.export_plan(filters, ordering)
    except FilterError as exc:
        abort(400, str(exc))
    return screen.export_response(plan)


def add_list_routes(bp, screen: ListScreen, permission: str, context=None, url: str = ""):
    """Register ``screen``'s list (``url``, endpoint ``screen.list_endpoint``) and its
    export (``url/export.csv``, endpoint ``screen.export_endpoint``) on ``bp``, both
    behind ``permission``; ``context()`` adds template values (e.g. the filter choices)."""

    def list_view():
        return render_screen(screen, **(context() if context else {}))

    def export_view():
        return export_screen(screen)

    # Every list of the app, by its list endpoint: for the tests and the benchmark.
    bp.record_once(lambda state: state.app.extensions.setdefault("list_screens", {}).__setitem__(
        f"{bp.name}.{screen.list_endpoint}", screen))
    bp.add_url_rule(url, screen.list_endpoint, permission_required(permission)(list_view), methods=["GET"])
    if screen.export_row is not None:
        bp.add_url_rule(f"{url}/export.csv", screen.export_endpoint, permission_required(permission)(export_view),
                        methods=["GET"])
