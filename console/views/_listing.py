"""How every list screen answers: the whole page, or its table alone for htmx.

A list area ``name`` has templates ``<name>/list.html`` (the page, with the filter bar)
and ``<name>/_table.html`` (the table, swapped into ``#<name>-table``). Filters live in
the query string; what can't be used is said in the table's place with a 4xx, so the
filter bar stays usable for a correction.
"""
from __future__ import annotations

from flask import abort, current_app, make_response, render_template, request

from console.filters import FilterError
from console.listing import PAGE_SIZES, BadCursor, page_size
from console.lookups import DatabaseUnavailable


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


def render_list(name: str, load, filters, errors: list[str], *, noun: str, home: str, **context):
    """The list screen ``name`` for ``filters``: ``load(filters, cursor, size)`` gives what
    the table shows. ``errors`` (from parsing the filters), a FilterError or a bad cursor
    answer 400; a database ``load`` can't reach answers 503 naming it (``home`` is the
    database the ``noun`` themselves live in)."""
    size = page_size(request.args.get("size"), current_app.config.get("PAGE_SIZE", 50))
    cursor = request.args.get("cursor") or None
    result, status, problem = None, 400, "These filters can't be used yet:"
    if not errors:
        try:
            result = load(filters, cursor, size)
        except (FilterError, BadCursor) as exc:
            errors.append(str(exc))
        except DatabaseUnavailable as exc:
            status, problem = 503, "The list can't be shown right now:"
            errors.append(f"{exc.bind_key}_db is unavailable"
                          + (f", and the {noun} themselves live there." if exc.bind_key == home
                             else ", and one of these filters needs it. Remove that filter or try again shortly."))
    template = f"{name}/_table.html" if wants_partial(f"{name}-table") else f"{name}/list.html"
    body = render_template(template, result=result, filters=filters, errors=errors, problem=problem, size=size,
                           cursor=cursor, start=_start(request.args.get("start")) if cursor else 1,
                           page_sizes=PAGE_SIZES, **context)
    return vary(make_response(body, status if errors else 200))


def export_query(parse, build):
    """What an export writes: the list's filters from the query string, parsed by
    ``parse(args)`` and turned into a statement by ``build(filters)``. Filters that
    can't be used answer 400, as the list does."""
    filters, errors = parse(request.args)
    if errors:
        abort(400, " ".join(errors))
    try:
        return build(filters)
    except FilterError as exc:
        abort(400, str(exc))
