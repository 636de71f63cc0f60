"""Email templates: the list, the editor with its live preview, versions with Revert,
and Send test (marketing and admins)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import BooleanField, HiddenField

from console.email_templates import CREDENTIAL_TEMPLATES
from console.forms import ConsoleForm, NoteField, TextField, control_character, control_message
from console.lookups import DatabaseUnavailable, database
from console.permissions import permission_required
from console.screens import templates as screens
from console.security import allow_email_styles
from console.templating import MAX_SOURCE
from console.views._actions import attempt
from console.views._listing import add_list_routes, vary
from console.workflows import WorkflowError
from console.workflows import templates as flow

PERMISSION = "templates.manage"
EXTRA_VARIABLE_ROWS = 3
VERSIONS_PAGE = 10

bp = Blueprint("email_templates", __name__, url_prefix="/templates")


def _list_context() -> dict:
    try:
        return {"template_warnings": screens.warnings()}
    except DatabaseUnavailable:
        return {"template_warnings": []}


add_list_routes(bp, screens.TEMPLATES, PERMISSION, context=_list_context)


class TemplateForm(ConsoleForm):
    subject = TextField("Subject", max_length=flow.MAX_SUBJECT_SOURCE)
    body_html = NoteField("HTML body", max_length=MAX_SOURCE)
    body_text = NoteField("Text body", max_length=MAX_SOURCE)
    is_active = BooleanField("Active")
    base = HiddenField()
    order_number = TextField("Order number", max_length=64)


def _variables_from(form) -> tuple[list[dict], list[str]]:
    """The declared variables typed into the editor's rows (blank rows skipped)."""
    names, descriptions, samples = (form.getlist(k) for k in ("var_name", "var_description", "var_sample"))
    variables, problems = [], []
    for index, name in enumerate(names[:flow.MAX_VARIABLES + EXTRA_VARIABLE_ROWS]):
        description = descriptions[index] if index < len(descriptions) else ""
        sample = samples[index] if index < len(samples) else ""
        name, description, sample = name.strip(), description.strip(), sample.strip()
        if not (name or description or sample):
            continue
        for label, value in (("name", name), ("description", description), ("sample value", sample)):
            char = control_character(value)
            if char is not None:
                problems.append(f"Variable {name[:40] or index + 1}, {label}: {control_message(char)}")
        if not name:
            problems.append(f"Variable row {index + 1} has a description or sample but no name.")
            continue
        variables.append({"name": name, "description": description, "sample": sample})
    if len(names) > flow.MAX_VARIABLES + EXTRA_VARIABLE_ROWS:
        problems.append(f"Declare at most {flow.MAX_VARIABLES} variables.")
    return variables, problems


def _read_form(template) -> tuple[TemplateForm, flow.Draft, list[str]]:
    form = TemplateForm()
    valid = form.validate()
    variables, problems = _variables_from(request.form)
    if not valid:
        problems = [form.error_message(), *problems]
    draft = flow.Draft(subject=form.subject.data or "", body_html=form.body_html.data or "",
                       body_text=form.body_text.data or "", variables=variables, is_active=bool(form.is_active.data))
    return form, draft, problems


def _template_or_404(key: str):
    try:
        with database("notification"):
            template = flow.find_template(key)
    except DatabaseUnavailable:
        abort(503, "notification_db is unavailable, and the templates live there. Try again shortly.")
    if template is None:
        abort(404, f"There is no email template “{key[:80]}”. The Templates list shows them all.")
    if template.name in CREDENTIAL_TEMPLATES and not current_user.can("templates.staff"):
        abort(403, f"{template.name} is a staff sign-in email: it carries a one-time link to set a password, "
                   "so only admins edit, preview or test it.")
    return template


def _editor(template, *, draft=None, problems=(), status=200, form=None, preview=None):
    try:
        versions = flow.versions(template)
        versions_down = False
    except DatabaseUnavailable:
        versions, versions_down = [], True
    page = screens.editor_page(template, draft)
    if preview is None:
        try:
            preview = screens.preview(template, page.draft)
        except (WorkflowError, DatabaseUnavailable):  # pragma: no cover - no order asked for
            preview = screens.Preview()
    start = request.args.get("versions_from", "")
    start = int(start) if start.isascii() and start.isdigit() and len(start) < 6 else 0
    body = render_template("email_templates/editor.html", page=page, form=form or TemplateForm(formdata=None),
                           problems=list(problems), versions=versions, versions_down=versions_down,
                           changes=screens.version_changes(versions), versions_page=VERSIONS_PAGE,
                           versions_from=min(start, max(len(versions) - 1, 0)),
                           preview=preview, stamp=flow.stamp(template), extra_rows=EXTRA_VARIABLE_ROWS)
    return allow_email_styles(make_response(body, status))


@bp.get("/<key>")
@permission_required(PERMISSION)
def edit_template(key: str):
    return _editor(_template_or_404(key))


@bp.post("/<key>")
@permission_required(PERMISSION)
def save_template(key: str):
    """Save the editor's text: refused with every reason (422), or over someone else's
    save (409), the editor comes back with what was typed."""
    template = _template_or_404(key)
    form, draft, problems = _read_form(template)
    if problems:
        return _editor(template, draft=draft, problems=problems, status=422, form=form)
    try:
        saved = flow.save(current_user, template.id, draft, base=form.base.data or None)
    except flow.TemplateRefused as exc:
        return _editor(template, draft=draft, problems=exc.problems, status=exc.status, form=form)
    except WorkflowError as exc:
        return _editor(template, draft=draft, problems=[exc.message], status=exc.status, form=form)
    except DatabaseUnavailable as exc:
        return _editor(template, draft=draft, status=503, form=form, problems=[
            f"{exc.bind_key}_db is unavailable, so the template was not saved. Try again shortly."])
    flash(f"Saved {saved.name}. The text before is kept under Versions.", "success")
    return redirect(url_for("email_templates.edit_template", key=saved.name or saved.id), 303)


@bp.post("/<key>/preview")
@permission_required(PERMISSION)
def preview_template(key: str):
    """The live preview (htmx, while typing): always 200, so htmx swaps it; what can't
    be rendered or saved is said inside it."""
    template = _template_or_404(key)
    form, draft, problems = _read_form(template)
    order_number = (form.order_number.data or "").strip()
    if problems:
        result = screens.Preview(problems=problems, order_number=order_number)
    else:
        try:
            result = screens.preview(template, draft, order_number)
        except WorkflowError as exc:
            result = screens.preview(template, draft)
            result.notes.insert(0, exc.message + " The sample values are shown instead.")
            result.order_number = order_number
        except DatabaseUnavailable as exc:
            result = screens.preview(template, draft)
            result.notes.insert(0, f"{exc.bind_key}_db is unavailable, so the order's values can't be read: "
                                   "the sample values are shown instead.")
    return vary(make_response(render_template("email_templates/_preview.html", preview=result, page=None), 200))


@bp.post("/<key>/test")
@permission_required(PERMISSION)
def send_test(key: str):
    """Queue the saved template to the signed-in staff member's own address."""
    template = _template_or_404(key)
    back = url_for("email_templates.edit_template", key=template.name or template.id)
    order_number = (request.form.get("order_number") or "").strip()

    def perform():
        values = None
        if order_number:
            draft = flow.Draft.of(template)
            values = flow.order_values(template.name, order_number, draft.samples).values
        return flow.send_test(current_user, template.id, values)

    notification, refused = attempt(perform, "so no test was queued. Try again shortly.")
    if refused is not None:
        flash(refused.message, "danger")
    else:
        flash(f"Test of {template.name} queued to {current_user.email} "
              f"({'values of ' + order_number if order_number else 'sample values'}). It is marked as a test.",
              "success")
    return redirect(back, 303)


@bp.get("/<key>/versions/<version>")
@permission_required(PERMISSION)
def version_diff(key: str, version: str):
    """One kept version next to the current text, with Revert."""
    template = _template_or_404(key)
    content, refused = attempt(lambda: flow.version_content(template, version))
    if refused is not None:
        abort(refused.status, refused.message)
    current = flow.Draft.of(template).content()
    try:
        listed = next((v for v in flow.versions(template) if v.key == version), None)
    except DatabaseUnavailable:
        listed = None
    return render_template("email_templates/version.html", template=template, version=listed, key=version,
                           diffs=screens.diff(content, current), stamp=flow.stamp(template),
                           same=flow.Draft.from_content(content).content() == current)


@bp.post("/<key>/revert")
@permission_required(PERMISSION)
def revert_template(key: str):
    template = _template_or_404(key)
    version = request.form.get("version", "")
    if control_character(version) is not None or len(version) > 100:
        abort(400, "That version link is not valid. Open the version again from the editor.")
    back = url_for("email_templates.edit_template", key=template.name or template.id)
    try:
        saved = flow.revert(current_user, template.id, version, base=request.form.get("base") or None)
    except flow.TemplateRefused as exc:
        flash("Not reverted: " + " ".join(exc.problems), "danger")
        return redirect(back, 303)
    except WorkflowError as exc:
        flash("Not reverted: " + exc.message, "danger")
        return redirect(back, 303)
    except DatabaseUnavailable as exc:
        flash(f"{exc.bind_key}_db is unavailable, so the template was not reverted. Try again shortly.", "danger")
        return redirect(back, 303)
    flash(f"Reverted {saved.name}. The text before the revert is kept under Versions.", "success")
    return redirect(back, 303)
