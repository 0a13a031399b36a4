"""A job as a whole: its settings in brief and its delta schedule (read and changed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from mailmover.errors import UsageError
from mailmover.service.jobs import NotFound
from mailmover.store import schema
from mailmover.store.database import Store

job_t = schema.job
mb = schema.mailbox


@dataclass(frozen=True)
class JobDetail:
    """What a job's page says about the job itself."""

    name: str
    owner: str | None
    owner_id: int | None
    state: str
    created_at: datetime
    delta_every_hours: float | None
    settings: dict[str, Any]


def job_detail(store: Store, job: str) -> JobDetail:
    """The job ``job``; ``NotFound`` when there is none."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(job_t).where(job_t.c.name == job, job_t.c.settings.is_not(None))
        ).one_or_none()
    if row is None:
        raise NotFound(f"no transfer named {job!r}")
    return JobDetail(
        row.name, row.owner, row.owner_id, row.state, row.created_at,
        row.delta_every_hours, dict(row.settings or {}),
    )  # fmt: skip


def set_delta_schedule(store: Store, job: str, hours: float | None) -> int:
    """Delta passes every ``hours`` until the job is completed (None: no schedule).

    Synced mailboxes get their next delta at the new interval from now; with no
    schedule they wait for ``delta`` or ``complete``. How many mailboxes were moved.
    """
    if hours is not None and not 0 < hours <= 24 * 365:
        raise UsageError("a delta schedule is a number of hours above 0")
    now = datetime.now(UTC)
    with store.write_engine.begin() as conn:
        job_id = conn.execute(
            select(job_t.c.id).where(job_t.c.name == job, job_t.c.settings.is_not(None))
        ).scalar()
        if job_id is None:
            raise NotFound(f"no transfer named {job!r}")
        conn.execute(
            update(job_t)
            .where(job_t.c.id == job_id)
            .values(delta_every_hours=hours, updated_at=now)
        )
        when = None if hours is None else now + timedelta(hours=hours)
        return int(
            conn.execute(
                update(mb)
                .where(mb.c.job_id == job_id, mb.c.state == "synced")
                .values(next_pass_at=when, updated_at=now)
            ).rowcount
        )
