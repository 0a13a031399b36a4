"""The fleet's queue: procrastinate tasks on the job database, one per mailbox run.

When a mailbox becomes runnable (a job is created or resumed, a delta is due, a
crashed worker's lease expired), a ``run_mailbox(mailbox_id)`` task is deferred
with the mailbox's queueing lock (at most one task waiting for it) and lock (at
most one running): a mailbox never runs twice at once, whichever worker takes
it, and its lease (``leases.claim``) guards it besides. The mailbox table stays
the truth; a task whose mailbox is no longer runnable when it starts does nothing.

Only PostgreSQL carries the queue: on SQLite the local runner (``mailmover run``)
reads the mailbox table itself, and ``wake`` does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Text, cast, column, exists, func, select, table, text
from sqlalchemy.engine import make_url

from mailmover.service.leases import runnable_condition
from mailmover.store import schema
from mailmover.store.database import Store

#: The task every fleet worker runs, and the queue it is deferred on.
TASK: Final = "mailmover.run_mailbox"
QUEUE: Final = "mailboxes"
#: Tasks waiting in the queue at most: a sweep or a wake adds up to this many. A task
#: whose mailbox finds no connection free (the budgets) ends at once and waits for a
#: later sweep, so this also bounds how fast refused claims come round.
MAX_WAITING: Final = 200
#: Advisory lock keys: applying procrastinate's schema, and the scheduler's sweep.
SCHEMA_LOCK: Final = 0x6D6D_0001
SWEEP_LOCK: Final = 0x6D6D_0002

log = logging.getLogger(__name__)
mb = schema.mailbox
#: The columns of procrastinate's job table that the sweep reads.
_jobs = table("procrastinate_jobs", column("status"), column("lock"), column("queue_name"))
RunMailbox = Callable[[int], Awaitable[None]]


def on_postgresql(store: Store) -> bool:
    """Whether the job database can carry the fleet's queue."""
    return store.engine.dialect.name == "postgresql"


def conninfo(url: str) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (its ``+driver`` taken off)."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def mailbox_lock(mailbox_id: int) -> str:
    """The procrastinate lock and queueing lock of one mailbox."""
    return f"mailbox:{mailbox_id}"


def make_app(url: str, run: RunMailbox | None = None) -> Any:
    """A procrastinate app on the job database; ``run``: this process runs the task."""
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)),
    )
    if run is not None:

        async def run_mailbox(mailbox_id: int) -> None:
            await run(mailbox_id)

        app.task(name=TASK, queue=QUEUE)(run_mailbox)
    return app


def has_schema(store: Store) -> bool:
    """Whether procrastinate's tables are in the job database (a worker made them)."""
    if not on_postgresql(store):
        return False
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None


def ensure_schema(store: Store, app: Any) -> bool:
    """Apply procrastinate's schema unless it is there (one worker at a time); True if applied."""
    with store.engine.connect() as conn:
        conn.execute(select(func.pg_advisory_lock(SCHEMA_LOCK)))
        try:
            if has_schema(store):
                return False
            app.schema_manager.apply_schema()
            return True
        finally:
            conn.execute(select(func.pg_advisory_unlock(SCHEMA_LOCK)))
            conn.commit()


def runnable_ids(
    store: Store, now: datetime | None = None, *, mailbox_id: int | None = None, own: bool = False
) -> list[int]:
    """Mailboxes due to run and held by no live worker, with no task waiting or running.

    ``own``: asked from the task running for ``mailbox_id``, whose own task does not count.
    """
    now = now or datetime.now(UTC)
    # A task running for a mailbox (its pass just ended, or its worker died and the task
    # is retried once stalled) hands it on itself: another would find nothing to do.
    statuses = ("todo",) if own else ("todo", "doing")
    busy = exists().where(
        cast(_jobs.c.status, Text).in_(statuses),
        _jobs.c.lock == func.concat("mailbox:", mb.c.id),
    )
    query = (
        select(mb.c.id)
        .where(runnable_condition(now), mb.c.source_endpoint.is_not(None), ~busy)
        .order_by(mb.c.id)
    )
    if mailbox_id is not None:
        query = query.where(mb.c.id == mailbox_id)
    with store.engine.connect() as conn:
        return list(conn.execute(query).scalars().all())


def waiting_count(store: Store) -> int:
    """Mailbox tasks waiting in the queue now (deferred, not yet taken by a worker)."""
    query = select(func.count()).where(
        cast(_jobs.c.status, Text) == "todo", _jobs.c.queue_name == QUEUE
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query.select_from(_jobs)).scalar_one())


def _deferrer(app: Any, mailbox_id: int) -> Any:
    lock = mailbox_lock(mailbox_id)
    return app.configure_task(TASK, queue=QUEUE, lock=lock, queueing_lock=lock)


async def defer_async(app: Any, ids: Iterable[int]) -> list[int]:
    """Defer a run of each mailbox not already waiting; the ids deferred.

    All in one statement; one by one when one of them turns out to be waiting already.
    """
    from procrastinate.exceptions import AlreadyEnqueued

    ids = list(ids)
    if not ids:
        return []
    jobs = [_deferrer(app, i).make_new_job(mailbox_id=i) for i in ids]
    try:
        await app.job_manager.batch_defer_jobs_async(jobs)
        return ids
    except AlreadyEnqueued:
        pass
    done = []
    for mailbox_id in ids:
        try:
            await _deferrer(app, mailbox_id).defer_async(mailbox_id=mailbox_id)
        except AlreadyEnqueued:
            continue
        done.append(mailbox_id)
    return done


def wake(store: Store, url: str) -> int:
    """Defer a run of every runnable mailbox, when a fleet serves this database; how many.

    Called after a command made mailboxes runnable (batch, resume, delta, complete,
    retry), so that a worker starts them at once; the workers' own sweep finds them
    within seconds anyway. Nothing on SQLite, or before any worker made the queue. As
    the sweep, no more than ``MAX_WAITING`` tasks wait; not from a running event loop.
    """
    if not has_schema(store):
        return 0
    ids = runnable_ids(store)[: max(MAX_WAITING - waiting_count(store), 0)]
    if not ids:
        return 0
    return len(asyncio.run(_defer_at(url, ids)))


async def _defer_at(url: str, ids: list[int]) -> list[int]:
    app = make_app(url)
    async with app.open_async():
        return await defer_async(app, ids)
