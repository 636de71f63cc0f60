"""Indexes the screens rely on, declared next to the models they serve.

The services' databases use a C.UTF-8 collation, under which an ordinary btree index
cannot answer ``LIKE 'abc%'``; and ``LIKE '%abc%'`` needs a trigram index. Both kinds
are PostgreSQL's own, so they are created there only (``ddl_if``): SQLite gets the
plain indexes and stays correct, just not fast at a million rows. Trigram indexes also
need the pg_trgm extension: ``init-db`` and ``create-indexes`` create it when they may,
and skip those indexes when it is not there (``check-schema`` says so).

Every index says in ``info["serves"]`` which screen or query it is for, so
``check-schema`` and the Databases page can say what a missing one slows down.
"""
from __future__ import annotations

from sqlalchemy import Index, text

TRIGRAM_EXTENSION = "pg_trgm"


def has_trigram(bind) -> bool:
    """Whether the pg_trgm extension is installed in the database behind ``bind``."""
    return bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = :name"),
                        {"name": TRIGRAM_EXTENSION}).first() is not None


def _trigram_ready(ddl, target, bind, **kw) -> bool:
    return has_trigram(bind)


def service_index(name: str, *columns, unique: bool = False) -> Index:
    """One of the service's own indexes, named and shaped as its schema's DDL has it, so
    ``init-db`` on an empty database creates what the service creates. The service builds
    and keeps these: ``create-indexes``, ``check-schema`` and the Databases page deal only
    with the console's own (the other helpers here), marked by ``info["serves"]``."""
    return Index(name, *columns, unique=unique, info={"service": True})


def prefix_index(name: str, column, serves: str) -> Index:
    """A btree with varchar_pattern_ops: ``column LIKE 'abc%'`` through an index under
    any collation (PostgreSQL only; elsewhere the plain or unique index serves)."""
    index = Index(name, column, postgresql_ops={column.key: "varchar_pattern_ops"},
                  info={"serves": serves, "only": "postgresql"})
    return index.ddl_if(dialect="postgresql")


def expression_prefix_index(name: str, table, expression, serves: str) -> Index:
    """prefix_index for an expression of ``table`` (text, so text_pattern_ops): ``expression =
    'abc'`` and ``expression LIKE 'abc%'`` through a btree, for values a trigram index would
    find only slowly (names made of a few common words). The queries must use the very same
    expression."""
    index = Index(name, expression.label("expression"), _table=table,
                  postgresql_ops={"expression": "text_pattern_ops"}, info={"serves": serves, "only": "postgresql"})
    return index.ddl_if(dialect="postgresql")


def contains_index(name: str, table, expression, serves: str) -> Index:
    """A GIN trigram index on ``expression`` of ``table``: ``expression LIKE '%abc%'``
    without a scan (PostgreSQL with pg_trgm only). The queries must use the very same
    expression. (The table is named: SQLAlchemy cannot tell it from every expression.)"""
    index = Index(name, expression.label("expression"), _table=table, postgresql_using="gin",
                  postgresql_ops={"expression": "gin_trgm_ops"},
                  info={"serves": serves, "only": "postgresql", "extension": TRIGRAM_EXTENSION})
    return index.ddl_if(dialect="postgresql", callable_=_trigram_ready)


def figure_index(name: str, *columns, include: tuple[str, ...], serves: str) -> Index:
    """A btree carrying extra columns (INCLUDE), so an aggregate reads the index only."""
    index = Index(name, *columns, postgresql_include=list(include), info={"serves": serves, "only": "postgresql"})
    return index.ddl_if(dialect="postgresql")


def plain_index(name: str, *expressions, serves: str) -> Index:
    """An ordinary index (any database), for an expression or several columns."""
    return Index(name, *expressions, info={"serves": serves})
