"""The return_requests status machine of return_db, on its own so that both the
returns and the refunds workflows can move a return (console/workflows/returns.py
drives returns through it; a refund's last step marks its return processed)."""
from __future__ import annotations

from console import audit
from console.extensions import db
from console.lookups import database
from console.models.returns import ReturnRequest, ReturnStatusHistory
from console.models.types import utcnow
from console.workflows import WorkflowError
from console.workflows.notify import QUEUED_EMAIL, queue

STATUSES = ("pending", "approved", "rejected", "in_transit", "received", "processed", "closed")
TRANSITIONS = {
    "pending": ("approved", "rejected"),
    "approved": ("in_transit", "received"),
    "in_transit": ("received",),
    "received": ("processed",),
    "processed": ("closed",),
    "rejected": (),
    "closed": (),
}
TIMESTAMPS = {"approved": "approved_at", "rejected": "rejected_at", "received": "received_at",
              "processed": "processed_at", "closed": "closed_at"}
TEMPLATES = {"approved": "return_approved", "rejected": "return_rejected", "in_transit": "return_in_transit",
             "received": "return_received", "processed": "return_processed", "closed": "return_closed"}
VERBS = {"approved": "approved", "rejected": "rejected", "in_transit": "marked in transit",
         "received": "received", "processed": "processed", "closed": "closed"}

def label(value: str | None) -> str:
    return (value or "").replace("_", " ")


def allowed(current: str | None, new: str) -> bool:
    return new in TRANSITIONS.get(current or "", ())


def move_writes(new_status: str) -> tuple:
    """What move() to ``new_status`` writes, for a workflow's up-front drift check
    (console/drift.py)."""
    stamp = (TIMESTAMPS[new_status],) if new_status in TIMESTAMPS else ()
    return ((ReturnRequest, "status", "updated_at", *stamp), (ReturnStatusHistory,), audit.AUDIT_ROW, QUEUED_EMAIL)


def move(actor, request: ReturnRequest, new_status: str, notes: str = "", *, notify: bool = True,
         variables: dict | None = None) -> None:
    """Change a (locked) return's status with its timestamp, history, audit and email.
    The caller commits."""
    old = request.status
    if not allowed(old, new_status):
        raise WorkflowError(f"Return {request.rma_number} is {label(old)}: it cannot be {VERBS[new_status]} now.", 409)
    now = utcnow()
    request.status = new_status
    if new_status in TIMESTAMPS:
        setattr(request, TIMESTAMPS[new_status], now)
    request.updated_at = now
    db.session.add(ReturnStatusHistory(return_request_id=request.id, status=new_status, previous_status=old,
                                       changed_by=actor.id, notes=notes or None, created_at=now))
    audit.record(actor, f"return.{new_status}", "return_request", request.id,
                 before={"status": old}, after={"status": new_status}, rma_number=request.rma_number, notes=notes)
    if notify:
        with database("notification"):
            queue(request.user_id, TEMPLATES[new_status], variables or {"rma_number": request.rma_number},
                  key=f"return:{request.id}:{new_status}")
