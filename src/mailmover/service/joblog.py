"""A job's event log: the lines of all its mailboxes, newest last; and when it last changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

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


def job_version(store: Store, job: str) -> tuple[Any, ...]:
    """A value that changes whenever the job's mailboxes or their logs do (one query), so a
    page that follows the job redraws only then."""
    ev, mb, job_t = schema.event, schema.mailbox, schema.job
    query = (
        select(
            func.count(mb.c.id),
            func.max(mb.c.updated_at),
            func.max(mb.c.progress_at),
            func.sum(mb.c.messages_copied),
            select(func.max(ev.c.id))
            .where(ev.c.mailbox_id.in_(select(mb.c.id).where(mb.c.job_id == job_t.c.id)))
            .scalar_subquery(),
        )
        .select_from(job_t.outerjoin(mb, mb.c.job_id == job_t.c.id))
        .where(job_t.c.name == job)
        .group_by(job_t.c.id)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    return tuple(row) if row is not None else ()
