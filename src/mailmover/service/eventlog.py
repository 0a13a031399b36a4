"""Reading the event log in order, once: where a poller (webhooks, emails) has got to.

On SQLite one writer at a time means event ids become visible in order. On
PostgreSQL ids come from a sequence when a row is inserted, and transactions commit
in any order: id 11 can be visible while id 10 is not yet. A reader that moved its
cursor past 11 would never see 10. So the cursor moves only up to the first id
missing after it; a gap still open after ``GAP_SECONDS`` (a rolled-back insert) is
passed over.
"""

from __future__ import annotations

import time
from typing import Final

from sqlalchemy import Connection, select

from mailmover.store import schema
from mailmover.store.database import Store

#: Seconds a missing event id is waited for before it is taken as rolled back.
GAP_SECONDS: Final = 10.0

ev = schema.event


class EventCursor:
    """The id up to which a reader has read the event log."""

    def __init__(self, store: Store) -> None:
        self.position = store.last_event_id()
        self._gaps: dict[int, float] = {}  # missing id -> when first seen missing

    def horizon(self, conn: Connection, now: float | None = None) -> int:
        """The highest id up to which every event is visible (or given up for lost)."""
        if conn.dialect.name == "sqlite":
            return int(conn.execute(select(ev.c.id).order_by(ev.c.id.desc())).scalar() or 0)
        now = time.monotonic() if now is None else now
        ids = conn.execute(select(ev.c.id).where(ev.c.id > self.position).order_by(ev.c.id))
        top = self.position
        for event_id in ids.scalars():
            while top + 1 < event_id:  # top + 1 is missing: not committed yet, or never
                first = self._gaps.setdefault(top + 1, now)
                if now - first < GAP_SECONDS:
                    return top
                top += 1
            top = event_id
        return top

    def advance(self, to: int) -> None:
        """Everything up to ``to`` has been read."""
        self.position = max(self.position, to)
        self._gaps = {i: t for i, t in self._gaps.items() if i > self.position}
