"""The merged timeline of the order and return pages: one entry type for every source."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class TimelineEntry:
    at: datetime | None
    source: str  # the database the entry comes from
    title: str
    detail: str = ""
    who: str = ""
