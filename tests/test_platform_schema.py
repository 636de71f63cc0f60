"""The console's models against the platform's DDL (tests/fixtures/platform/ddl/), column by
column: table names, column names, types (VARCHAR length, DECIMAL precision, TIMESTAMP(3)
without time zone, JSONB, TEXT[], enum type), nullability, primary keys, defaults, foreign
keys and the services' own indexes. Each difference is named.

The comparison compiles the models' types for PostgreSQL, so it runs the same on both passes.
"""
from __future__ import annotations

import pytest
from sqlalchemy import Enum
from sqlalchemy.dialects import postgresql

from console.models import models_of
from tests import platform_ddl

DIALECT = postgresql.dialect()


def ddl_type(column) -> str:
    """The model column's type as Prisma's DDL writes it."""
    if isinstance(column.type, Enum):
        return column.type.name
    compiled = DIALECT.type_compiler_instance.process(column.type)  # as CREATE TABLE writes it
    return {"TIMESTAMP(3) WITHOUT TIME ZONE": "TIMESTAMP(3)", "NUMERIC(10, 2)": "DECIMAL(10,2)",
            "TEXT[]": "TEXT[]"}.get(compiled, compiled)


def ddl_default(column) -> str | None:
    default = column.server_default
    if default is None:
        return None
    arg = default.arg
    return f"'{arg}'" if isinstance(arg, str) else str(arg.text)


def differences(bind_key: str) -> list[str]:
    ddl = platform_ddl.load(bind_key)
    models = {model.__tablename__: model for model in models_of(bind_key)}
    found = []
    for name in sorted(set(ddl.tables) - set(models)):
        found.append(f"{bind_key}.{name}: table of the DDL has no model")
    for name in sorted(set(models) - set(ddl.tables)):
        found.append(f"{bind_key}.{name}: model's table is not in the DDL")
    for name in sorted(set(ddl.tables) & set(models)):
        expected, table = ddl.tables[name], models[name].__table__
        where = f"{bind_key}.{name}"
        columns = {column.name: column for column in table.columns}
        for column in expected.columns:
            model_column = columns.get(column.name)
            if model_column is None:
                found.append(f"{where}.{column.name}: column of the DDL is not modelled")
                continue
            if (got := ddl_type(model_column)) != column.type:
                found.append(f"{where}.{column.name}: type {got}, the DDL says {column.type}")
            if model_column.nullable != column.nullable:
                found.append(f"{where}.{column.name}: {'NULL' if model_column.nullable else 'NOT NULL'}, "
                             f"the DDL says {'NULL' if column.nullable else 'NOT NULL'}")
            if (got := ddl_default(model_column)) != column.default:
                found.append(f"{where}.{column.name}: server default {got}, the DDL says {column.default}")
        for column_name in sorted(set(columns) - {c.name for c in expected.columns}):
            found.append(f"{where}.{column_name}: modelled column is not in the DDL")
        if (got := tuple(c.name for c in table.primary_key.columns)) != expected.primary_key:
            found.append(f"{where}: primary key {got}, the DDL says {expected.primary_key}")
        model_fks = {(fk.constraint.name, fk.parent.name, fk.column.table.name, fk.column.name,
                      fk.ondelete, fk.onupdate) for fk in table.foreign_keys}
        ddl_fks = {(fk.name, fk.column, fk.target_table, fk.target_column, fk.on_delete, fk.on_update)
                   for fk in expected.foreign_keys}
        for fk in sorted(ddl_fks - model_fks):
            found.append(f"{where}: foreign key {fk} of the DDL is not modelled")
        for fk in sorted(model_fks - ddl_fks):
            found.append(f"{where}: modelled foreign key {fk} is not in the DDL")
        model_indexes = {(index.name, tuple(c.name for c in index.columns), bool(index.unique))
                         for index in table.indexes if index.info.get("service")}
        ddl_indexes = {(index.name, index.columns, index.unique) for index in expected.indexes}
        for index in sorted(ddl_indexes - model_indexes):
            found.append(f"{where}: index {index} of the DDL is not modelled (as a service_index)")
        for index in sorted(model_indexes - ddl_indexes):
            found.append(f"{where}: modelled service index {index} is not in the DDL")
        own = {index.name for index in table.indexes if not index.info.get("service")}
        for index_name in sorted(own & {index.name for index in expected.indexes}):
            found.append(f"{where}: the console's own index {index_name} has a service index's name")
    return found


@pytest.mark.parametrize("bind_key", platform_ddl.BIND_KEYS)
def test_models_follow_the_platform_ddl(bind_key):
    found = differences(bind_key)
    assert not found, f"{len(found)} difference(s) from {bind_key}.sql:\n" + "\n".join(found)


def test_enum_types_follow_the_platform_ddl():
    expected = platform_ddl.load("notification").enums
    modelled = {column.type.name: tuple(column.type.enums) for model in models_of("notification")
                for column in model.__table__.columns if isinstance(column.type, Enum)}
    assert modelled == expected
