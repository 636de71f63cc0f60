"""Reviews and questions: the moderation queue (reviews waiting for approval, questions
waiting for an answer), approving or rejecting a selected page of reviews, answering
questions in place."""
from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from console.forms import ChoiceField, ConsoleForm, NoteField, TextField
from console.lookups import DatabaseUnavailable
from console.permissions import permission_required
from console.screens import products as screens
from console.views._actions import attempt_form
from console.workflows import catalog

bp = Blueprint("reviews", __name__, url_prefix="/reviews")


class ModerateForm(ConsoleForm):
    decision = ChoiceField("Decision", choices=["approve", "reject"])


class AnswerForm(ConsoleForm):
    answer = NoteField("Answer", max_length=catalog.MAX_ANSWER, required=True)


class RejectQuestionForm(ConsoleForm):
    reason = TextField("Reason", max_length=catalog.MAX_REASON)


def _run(form_class, perform):
    """(result, None) or (None, Refusal) for an action with its form."""
    form = form_class()
    return attempt_form(form, lambda: perform(form))


@bp.get("")
@permission_required("catalog.reviews")
def queue():
    try:
        queue = screens.moderation_queue(request.args.get("reviews_after"), request.args.get("questions_after"))
    except screens.BadCursor as exc:
        abort(400, str(exc))
    except DatabaseUnavailable:
        abort(503, "product_db is unavailable, and the reviews and questions live there. Try again shortly.")
    return render_template("reviews/queue.html", queue=queue,
                           customers=screens.customers_of([r.user_id for r in queue.reviews]
                                                          + [q.user_id for q in queue.questions]))


@bp.post("/moderate")
@permission_required("catalog.reviews")
def moderate_reviews():
    done, refused = _run(ModerateForm, lambda form: catalog.moderate_reviews(
        current_user, request.form.getlist("review_id"), form.decision.data))
    if refused:
        flash(refused.message, "danger")
    else:
        verb = "Approved" if done.decision == "approve" else "Rejected"
        flash(f"{verb} {len(done.done)} review{'s' if len(done.done) != 1 else ''}"
              + (f"; {done.skipped} had been moderated meanwhile and were left as they were" if done.skipped else "")
              + ".", "success" if done.done else "warning")
    return redirect(url_for("reviews.queue"), 303)


@bp.post("/questions/<question_id>/answer")
@permission_required("catalog.reviews")
def answer_question(question_id: str):
    done, refused = _run(AnswerForm, lambda form: catalog.answer_question(current_user, question_id, form.answer.data))
    flash(refused.message if refused else "Answer published.", "danger" if refused else "success")
    return redirect(url_for("reviews.queue") + f"#q-{quote(question_id, safe='')}", 303)


@bp.post("/questions/<question_id>/reject")
@permission_required("catalog.reviews")
def reject_question(question_id: str):
    done, refused = _run(RejectQuestionForm, lambda form: catalog.reject_question(current_user, question_id,
                                                                               form.reason.data))
    flash(refused.message if refused else "Question removed (its text is kept in the activity log).",
          "danger" if refused else "success")
    return redirect(url_for("reviews.queue"), 303)
