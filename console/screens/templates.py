"""The email templates: the list (with who changed each last and how much it was used
and failed in the last 30 days), the editor's page and preview, and version diffs.

Templates live in notification_db (a short table); their versions are rows of the
audit trail in auth_db (console/workflows/templates.py). Uses and failures come from
one statement on notifications per page that reads, per template, at most the newest
10,001 entries of the index on ``(template_id, created_at, status)``.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select, union_all

from console.email_templates import (CREDENTIAL_TEMPLATES, OLD_FIELD, declared_variables, missing, required_variables,
                                     workflows_using)
from console.exports import CopyExport, entity_cells
from console.extensions import db
from console.filters import QueryFilters, choice, text
from console.lookups import Lookups, chunks, database, fetch_in, target_or_missing
from console.models.auth import SecurityAuditLog
from console.models.notification import EmailTemplate, Notification
from console.models.types import utcnow
from console.screens.lists import ListScreen, Sort, unless_down
from console.templating import RenderError, check, render_email
from console.workflows.notifications import RESENDABLE
from console.workflows.templates import VERSION_ACTIONS, Draft, PreviewValues, order_values

USAGE_DAYS = 30
# Uses per template counted up to this many (then "10,000+", the rate of the newest).
USAGE_CAP = 10_000
# The newest versions read per page of templates for "last changed" (each template's
# newest is among them unless one template was saved more often than this).
LAST_CHANGE_SCAN = 2000


@dataclass
class TemplateFilters(QueryFilters):
    name: str = ""
    active: str = ""  # "yes" / "no"
    FIELDS = ("name", "active")

    @classmethod
    def parse(cls, args) -> tuple[TemplateFilters, list[str]]:
        errors: list[str] = []
        f = cls(name=text(args, "name", errors), active=choice(args, "active", ("yes", "no"), "Active", errors))
        if "\x00" in f.name:
            errors.append("The name filter contains a NUL character: type plain text.")
            f.name = ""
        return f, errors


def templates_query(f: TemplateFilters, lookups=None):
    stmt = select(EmailTemplate)
    if f.name:
        stmt = stmt.where(func.lower(EmailTemplate.name).contains(f.name.lower(), autoescape=True))
    if f.active == "yes":
        stmt = stmt.where(EmailTemplate.is_active.is_(True))
    elif f.active == "no":
        stmt = stmt.where(EmailTemplate.is_active.isnot(True))
    return stmt


@dataclass
class TemplateRow:
    template: EmailTemplate
    last_change: SecurityAuditLog | None
    last_by: object  # the staff User, Missing(id) or None
    uses: int | None  # in the last USAGE_DAYS days; None when notification_db didn't answer
    failures: int | None
    capped: bool = False  # more than USAGE_CAP uses: ``uses`` is the cap

    @property
    def staff_only(self) -> bool:
        """A staff sign-in email: only those who may manage staff edit it."""
        return self.template.name in CREDENTIAL_TEMPLATES

    @property
    def failure_rate(self) -> float | None:
        if not self.uses:
            return None
        return self.failures / self.uses

    @property
    def used_by(self) -> tuple[str, ...]:
        return workflows_using(self.template.name)


def usage(template_ids: list[str], days: int = USAGE_DAYS, cap: int = USAGE_CAP) -> dict[str, tuple[int, int, bool]]:
    """{template id: (notifications in the last ``days`` days, of which failed or bounced,
    whether there were more than ``cap``)}. One statement for the page: per template the
    newest ``cap`` + 1 rows, read from the index on (template_id, created_at, status), so
    a template sent a million times a month costs what one sent ten thousand times does;
    beyond the cap the failure rate is that of the newest ``cap``."""
    since = utcnow() - timedelta(days=days)
    found: dict[str, list[int]] = {}
    with database("notification"):
        for chunk in chunks(template_ids, 100):
            newest = [select(Notification.template_id, Notification.status)
                      .where(Notification.template_id == template_id, Notification.created_at >= since)
                      .order_by(Notification.created_at.desc()).limit(cap + 1).subquery()
                      for template_id in chunk]
            rows = union_all(*(select(part.c.template_id, part.c.status) for part in newest)).subquery()
            for template_id, status, count in db.session.execute(
                    select(rows.c.template_id, rows.c.status, func.count()).group_by(rows.c.template_id, rows.c.status)):
                totals = found.setdefault(template_id, [0, 0])
                totals[0] += count
                if status in RESENDABLE:
                    totals[1] += count
    result = {}
    for template_id, (total, failed) in found.items():
        if total > cap:  # the failures counted among cap + 1 rows: scale them to the cap
            failed = round(failed * cap / total)
        result[template_id] = (min(total, cap), failed, total > cap)
    return result


def last_changes(template_ids: list[str]) -> dict[str, SecurityAuditLog]:
    """The newest version row (audit trail) of each template."""
    wanted, newest = set(template_ids), {}
    with database("auth"):
        logs = db.session.scalars(
            select(SecurityAuditLog).where(SecurityAuditLog.action.in_(VERSION_ACTIONS))
            .order_by(SecurityAuditLog.created_at.desc(), SecurityAuditLog.id.desc()).limit(LAST_CHANGE_SCAN))
        for log in logs:
            entity_id = (log.metadata_ or {}).get("entity_id") if isinstance(log.metadata_, dict) else None
            if entity_id in wanted and entity_id not in newest:
                newest[entity_id] = log
    return newest


def decorate(templates: list[EmailTemplate], lookups: Lookups) -> list[TemplateRow]:
    ids = [t.id for t in templates]
    used = lookups.run("notification", lambda: usage(ids), None)
    changes = lookups.run("auth", lambda: last_changes(ids), {})
    staff = lookups.run("auth", lambda: {u.id: u for u in fetch_in("auth", "users", "id",
                                                                  (c.user_id for c in changes.values()))}, {})
    rows = []
    for t in templates:
        change = changes.get(t.id)
        uses, failures, capped = (None, None, False) if used is None else used.get(t.id, (0, 0, False))
        rows.append(TemplateRow(t, change, target_or_missing(staff, change.user_id) if change else None,
                                uses, failures, capped))
    return rows


def _export_row(row: TemplateRow, lookups: Lookups) -> list:
    t = row.template
    by = getattr(row.last_by, "email", None) or (str(row.last_by) if row.last_by is not None else "")
    return [t.name, t.subject, "yes" if t.is_active else "no", row.last_change.created_at if row.last_change else "",
            unless_down(lookups, "auth", by),
            unless_down(lookups, "notification", f"{row.uses}+" if row.capped else row.uses),
            unless_down(lookups, "notification", row.failures), "; ".join(row.used_by), t.updated_at, t.id]


# The export through COPY (console/exports.py, "the COPY path"): a template's own columns,
# decorated per batch as a page is.
_EXPORT_COLUMNS = tuple(EmailTemplate.__table__.c[name] for name in ("id", "name", "subject", "is_active",
                                                                      "updated_at"))

TEMPLATES = ListScreen(
    name="email_templates", noun="templates", home="notification", title="Email templates",
    filters=TemplateFilters, statement=templates_query, id_column=EmailTemplate.id,
    sorts=(Sort("name", EmailTemplate.name, "Name", descending=False),
           Sort("updated", EmailTemplate.updated_at, "Updated")),
    default_sort="name", decorate=decorate,
    export_header=("name", "subject", "active", "last_changed_at", "last_changed_by", "uses_30_days",
                   "failed_30_days", "sent_by", "updated_at", "template_id"),
    export_row=_export_row, export_binds=("auth",), endpoint="list_templates",
    export_fast=CopyExport(_EXPORT_COLUMNS, entity_cells(_EXPORT_COLUMNS, decorate, _export_row)),
)


@dataclass
class TemplateWarning:
    name: str
    message: str


def warnings() -> list[TemplateWarning]:
    """What the templates screen warns about: a workflow's template missing or turned
    off, and templates still written with the older {name} fields."""
    with database("notification"):
        absent = missing()
    found = [TemplateWarning(t.name, f"{t.name} is missing or turned off: {'; '.join(t.used_by)} "
                                     f"{'queues' if len(t.used_by) == 1 else 'queue'} no email until it is back. "
                                     "Run `flask --app wsgi console init-db` to install the shipped text.")
             for t in absent]
    with database("notification"):
        for template in db.session.scalars(select(EmailTemplate).order_by(EmailTemplate.name).limit(500)):
            old = sorted({m.group(1) for part in (template.subject, template.body_html, template.body_text)
                          for m in OLD_FIELD.finditer(part or "")})
            if old:
                found.append(TemplateWarning(template.name, f"{template.name} writes {', '.join('{' + n + '}' for n in old)}: "
                                                    "fields of the older format, sent as they stand. Write "
                                                    f"{{{{ {old[0]} }}}} instead."))
    return found


# --- the editor ------------------------------------------------------------------------------

@dataclass
class Preview:
    subject: str = ""
    body_html: str = ""
    body_text: str = ""
    problems: list[str] = field(default_factory=list)  # why it can't be saved as it is
    error: str | None = None  # why it can't be rendered
    error_stops_saving: bool = False  # the error is also why it can't be saved (a syntax error)
    notes: list[str] = field(default_factory=list)  # where the values came from
    order_number: str = ""


def preview(template: EmailTemplate, draft: Draft, order_number: str = "") -> Preview:
    """``draft`` rendered with its sample values, or with a real order's (a WorkflowError
    when that order can't be read)."""
    result = Preview(order_number=order_number)
    result.problems = check(draft.parts, draft.names)
    values = draft.samples
    if order_number:
        found: PreviewValues = order_values(template.name, order_number, draft.samples)
        values, result.notes = found.values, found.notes
    try:
        email = render_email(draft.subject, draft.body_html, draft.body_text, values)
    except RenderError as exc:
        result.error = exc.message
        # A syntax error stops both: said once.
        result.error_stops_saving = exc.message in result.problems
        result.problems = [problem for problem in result.problems if problem != exc.message]
    else:
        result.subject, result.body_html, result.body_text = email.subject, email.body_html, email.body_text
    return result


@dataclass
class EditorPage:
    template: EmailTemplate
    draft: Draft
    used_by: tuple[str, ...]
    required: tuple[str, ...]


def editor_page(template: EmailTemplate, draft: Draft | None = None) -> EditorPage:
    return EditorPage(template, draft or Draft.of(template), workflows_using(template.name),
                      required_variables(template.name))


# --- diffs -----------------------------------------------------------------------------------

@dataclass
class DiffLine:
    kind: str  # "same", "added", "removed", "gap"
    text: str


@dataclass
class PartDiff:
    label: str
    lines: list[DiffLine]

    @property
    def changed(self) -> bool:
        return any(line.kind in ("added", "removed") for line in self.lines)


def _variables_text(raw) -> str:
    return "\n".join(f"{v['name']}: {v['description']} (sample: {v['sample']})" for v in declared_variables(raw))


# The parts of a template's text, each as a diff shows it.
PARTS = (("Subject", lambda c: c.get("subject") or ""), ("HTML body", lambda c: c.get("body_html") or ""),
         ("Text body", lambda c: c.get("body_text") or ""),
         ("Variables", lambda c: _variables_text(c.get("variables"))),
         ("Active", lambda c: "yes" if c.get("is_active", True) else "no"))


def diff(version: dict, current: dict) -> list[PartDiff]:
    """Line by line, per part, from ``version`` (older) to ``current`` (newer), as diffs
    are read: removed lines are in the version only, added ones in the current text."""
    return [PartDiff(label, _lines(text(version), text(current))) for label, text in PARTS]


def changed_parts(before: dict, after: dict) -> list[str]:
    """The parts ``after`` changed, by name ("Subject", "Text body", …)."""
    return [label for label, text in PARTS if text(before) != text(after)]


def version_changes(versions: list) -> dict[str, list[str]]:
    """Each listed version's changed parts against the one before it (newest first;
    the oldest listed has nothing to compare with and is left out)."""
    return {newer.key: changed_parts(older.content, newer.content) for newer, older in zip(versions, versions[1:])}


def _lines(old: str, new: str) -> list[DiffLine]:
    lines = []
    for raw in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2):
        if raw.startswith(("---", "+++")):
            continue
        if raw.startswith("@@"):
            # "@@ -3,4 +3,5 @@": where the lines below start in the current text.
            start = raw.split()[2].lstrip("+").split(",")[0]
            lines.append(DiffLine("gap", f"from line {start} of the current text"))
        elif raw.startswith("+"):
            lines.append(DiffLine("added", raw[1:]))
        elif raw.startswith("-"):
            lines.append(DiffLine("removed", raw[1:]))
        else:
            lines.append(DiffLine("same", raw[1:]))
    return lines
