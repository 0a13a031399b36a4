"""A job's event log: the lines of all its mailboxes, newest last."""

from __future__ import annotations

from sqlalchemy import select

from mailmover.service.jobs import LogLine
from mailmover.store import schema
from mailmover.store.database import Store


def job_events(store: Store, job: str, limit: int = 100) -> list[tuple[str, LogLine]]:
    """The last ``limit`` lines of the job's mailboxes, oldest first, each with its source."""
    ev, mb, job_t = schema.event, schema.mailbox, schema.job
    query = (
        select(mb.c.source, ev.c.at, ev.c.level, ev.c.kind, ev.c.text)
        .join(mb, mb.c.id == ev.c.mailbox_id)
        .join(job_t, job_t.c.id == mb.c.job_id)
        .where(job_t.c.name == job)
        .order_by(ev.c.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(row.source, LogLine(row.at, row.level, row.kind, row.text)) for row in reversed(rows)]
