"""The platform's DDL (tests/fixtures/platform/ddl/), read into plain data.

A small reader for exactly what Prisma's schema engine writes: CREATE TYPE ... AS ENUM,
CREATE TABLE with one column a line and a primary key constraint, CREATE [UNIQUE] INDEX,
ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY. Anything else in a file is an error, so a
newer rendering that this reader does not understand fails loudly instead of being half read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DDL_DIR = Path(__file__).parent / "fixtures" / "platform" / "ddl"

# bind key -> DDL file (the return service's bind is "return", its module returns.py)
BIND_KEYS = ("auth", "user", "product", "cart", "order", "payment", "shipping", "return", "discount",
             "notification")


@dataclass
class Column:
    name: str
    type: str            # as the DDL writes it: TEXT, VARCHAR(50), DECIMAL(10,2), TIMESTAMP(3), ...
    nullable: bool
    default: str | None  # the DEFAULT expression as written, or None
    enum: bool = False   # type names one of the file's enum types


@dataclass
class Index:
    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool


@dataclass
class ForeignKey:
    name: str
    table: str
    column: str
    target_table: str
    target_column: str
    on_delete: str
    on_update: str


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    primary_key: tuple[str, ...] = ()
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass
class Database:
    tables: dict[str, Table]
    enums: dict[str, tuple[str, ...]]


def _names(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r'"([^"]+)"', text))


_ENUM = re.compile(r'CREATE TYPE "(\w+)" AS ENUM \((.*)\);')
_TABLE = re.compile(r'CREATE TABLE "(\w+)" \((.*)\);', re.S)
_COLUMN = re.compile(r'"(\w+)" ("\w+"|[A-Z]+(?:\(\d+(?:,\d+)?\))?(?:\[\])?)( NOT NULL)?(?: DEFAULT (.+))?')
_PRIMARY = re.compile(r'CONSTRAINT "\w+" PRIMARY KEY \((.*)\)')
_INDEX = re.compile(r'CREATE (UNIQUE )?INDEX "(\w+)" ON "(\w+)"\((.*)\);')
_FOREIGN = re.compile(r'ALTER TABLE "(\w+)" ADD CONSTRAINT "(\w+)" FOREIGN KEY \("(\w+)"\) '
                      r'REFERENCES "(\w+)"\("(\w+)"\) ON DELETE (SET NULL|CASCADE|RESTRICT|NO ACTION|SET DEFAULT) '
                      r'ON UPDATE (SET NULL|CASCADE|RESTRICT|NO ACTION|SET DEFAULT);')


def parse(sql: str) -> Database:
    tables: dict[str, Table] = {}
    enums: dict[str, tuple[str, ...]] = {}
    # Statements are separated by a blank line and a "-- Create..." comment.
    for statement in re.split(r"\n\s*\n(?=-- )", sql.strip()):
        body = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
        if match := _ENUM.fullmatch(body):
            enums[match[1]] = tuple(re.findall(r"'([^']*)'", match[2]))
        elif match := _TABLE.fullmatch(body):
            table = tables[match[1]] = Table(match[1])
            for line in match[2].splitlines():
                line = line.strip().rstrip(",")
                if not line:
                    continue
                if primary := _PRIMARY.fullmatch(line):
                    table.primary_key = _names(primary[1])
                elif column := _COLUMN.fullmatch(line):
                    type_ = column[2]
                    table.columns.append(Column(column[1], type_.strip('"'), nullable=not column[3],
                                                default=column[4], enum=type_.startswith('"')))
                else:
                    raise ValueError(f"unread line of CREATE TABLE {table.name}: {line!r}")
        elif match := _INDEX.fullmatch(body):
            tables[match[3]].indexes.append(Index(match[2], match[3], _names(match[4]), bool(match[1])))
        elif match := _FOREIGN.fullmatch(body):
            tables[match[1]].foreign_keys.append(ForeignKey(match[2], match[1], match[3], match[4], match[5],
                                                            match[6], match[7]))
        else:
            raise ValueError(f"unread statement: {body[:120]!r}")
    return Database(tables, enums)


def load(bind_key: str) -> Database:
    return parse((DDL_DIR / f"{bind_key}.sql").read_text())


def sql(bind_key: str) -> str:
    return (DDL_DIR / f"{bind_key}.sql").read_text()
