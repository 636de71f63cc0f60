"""The Activity screen (admins): the audit trail of every staff change."""
from __future__ import annotations

from flask import Blueprint

from console.screens import activity
from console.views._listing import add_list_routes

bp = Blueprint("activity", __name__, url_prefix="/activity")
add_list_routes(bp, activity.ACTIVITY, "activity.view")
