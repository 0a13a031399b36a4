"""Who may see and touch which transfer: a user their own jobs, an administrator all.

The pages and the JSON API both ask here, so the rule lives in one place. A job
another user owns is reported exactly like a job that does not exist.
"""

from __future__ import annotations

from sqlalchemy import select

from mailmover.service.accounts import Account
from mailmover.service.jobs import JobSummary, MailboxStatus, NotFound, jobs_with_mailboxes
from mailmover.store import schema
from mailmover.store.database import Store

job_t = schema.job


def owner_of(store: Store, job: str) -> int | None:
    """The id of the account the job belongs to (None: made outside the web app)."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(job_t.c.owner_id).where(job_t.c.name == job, job_t.c.settings.is_not(None))
        ).one_or_none()
    if row is None:
        raise NotFound(f"no transfer named {job!r}")
    return None if row.owner_id is None else int(row.owner_id)


def can_see(store: Store, account: Account, job: str) -> bool:
    """True when ``account`` may see and act on ``job`` (which exists)."""
    try:
        owner = owner_of(store, job)
    except NotFound:
        return False
    return account.is_admin or owner == account.id


def check(store: Store, account: Account, job: str) -> None:
    """``NotFound`` unless ``account`` may see and act on ``job``."""
    if not can_see(store, account, job):
        raise NotFound(f"no transfer named {job!r}")


def visible_jobs(store: Store, account: Account) -> list[JobSummary]:
    """The jobs ``account`` sees, newest first: their own, or every job for an administrator."""
    return [job for job, _boxes in visible_jobs_with_mailboxes(store, account)]


def visible_jobs_with_mailboxes(
    store: Store, account: Account
) -> list[tuple[JobSummary, list[MailboxStatus]]]:
    """``visible_jobs``, each with its mailboxes (a few queries, however many jobs)."""
    jobs = jobs_with_mailboxes(store)
    if not account.is_admin:
        with store.engine.connect() as conn:
            mine = set(
                conn.execute(select(job_t.c.name).where(job_t.c.owner_id == account.id))
                .scalars()
                .all()
            )
        jobs = [(j, boxes) for j, boxes in jobs if j.name in mine]
    return sorted(jobs, key=lambda pair: pair[0].created_at, reverse=True)
