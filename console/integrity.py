"""The integrity report: logical references whose target does not exist (orphans).

Nothing enforces a reference between two service databases, so a row can point at
an order, product or user that is gone. For each reference of the registry the
source table is streamed in batches (server-side cursor, never the whole table in
memory) and each batch's targets are looked up with one IN query.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from console.extensions import db
from console.lookups import DatabaseUnavailable, database, existing_values
from console.models import model_for_table
from console.references import REFERENCES, Reference

BATCH_SIZE = 1000
SAMPLE_SIZE = 5


@dataclass
class ReferenceReport:
    ref: Reference
    checked: int = 0  # source rows holding a value to check
    orphans: int = 0  # source rows whose target (any element, for lists) does not exist
    sample_ids: list[str] = field(default_factory=list)  # source row ids, in id order
    error: str = ""  # a database it needs was unavailable

    @property
    def ok(self) -> bool:
        return not self.error and self.orphans == 0


def _targets(ref: Reference, value) -> list:
    """The target values one source value points at; empty and non-reference values skipped."""
    values = value if ref.many else [value]
    return [v for v in values or () if v is not None and v != "" and v not in ref.not_references]


def check_reference(ref: Reference, *, batch_size: int = BATCH_SIZE, sample_size: int = SAMPLE_SIZE) -> ReferenceReport:
    report = ReferenceReport(ref)
    source = model_for_table(ref.source_bind, ref.source_table)
    column = getattr(source, ref.source_column)
    stmt = (select(source.id, column).where(column.is_not(None)).order_by(source.id)
            .execution_options(yield_per=batch_size))
    try:
        with database(ref.source_bind):
            for batch in db.session.execute(stmt).partitions(batch_size):
                wanted = {row[0]: _targets(ref, row[1]) for row in batch}
                wanted = {row_id: targets for row_id, targets in wanted.items() if targets}
                found = existing_values(ref.target_bind, ref.target_table, ref.target_column,
                                        (t for targets in wanted.values() for t in targets))
                report.checked += len(wanted)
                for row_id, targets in wanted.items():
                    if any(t not in found for t in targets):
                        report.orphans += 1
                        if len(report.sample_ids) < sample_size:
                            report.sample_ids.append(row_id)
    except DatabaseUnavailable as exc:
        report.error = str(exc)
    finally:
        db.session.rollback()  # end the read transactions the stream opened
    return report


def check_all(*, sample_size: int = SAMPLE_SIZE, references=REFERENCES) -> list[ReferenceReport]:
    return [check_reference(ref, sample_size=sample_size) for ref in references]


CSV_HEADER = ["reference", "target", "checked", "orphans", "sample_source_ids", "error"]


def csv_rows(reports: list[ReferenceReport]):
    for r in reports:
        yield [r.ref.name, r.ref.target, r.checked, r.orphans, " ".join(r.sample_ids), r.error]


def report_lines(reports: list[ReferenceReport]) -> list[str]:
    rows = [("reference", "target", "checked", "orphans", "sample source ids")]
    for r in reports:
        detail = f"UNAVAILABLE: {r.error}" if r.error else " ".join(r.sample_ids)
        rows.append((r.ref.name + ("[]" if r.ref.many else ""), r.ref.target, str(r.checked),
                     "?" if r.error else str(r.orphans), detail))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}  {e}".rstrip()
             for a, b, c, d, e in rows]
    orphans = sum(r.orphans for r in reports)
    broken = sum(1 for r in reports if r.orphans)
    unavailable = sum(1 for r in reports if r.error)
    summary = f"{orphans} orphan row(s) in {broken} of {len(reports)} references."
    if unavailable:
        summary += f" {unavailable} reference(s) could not be checked: a database is unavailable."
    lines.append(summary)
    return lines
