"""A fleet worker: ``mailmover worker`` on any number of machines, all on one PostgreSQL.

Each worker is a procrastinate worker on the job database that runs up to
``concurrency`` ``run_mailbox`` tasks at once (see ``service.queue``). A task
claims its mailbox's lease and runs the pass through the same ``Worker`` as the
local runner's worker processes: leases renewed every second with the progress,
pause and cancel answered within a heartbeat, the pass recorded by ``finish``.

Every worker also sweeps, one at a time (an advisory lock), every few seconds:
leases that expired (a worker killed or its machine gone) are settled as crashes
(``leases.recover_expired``), procrastinate tasks of workers that stopped beating
are retried, runnable mailboxes (queued, a scheduled delta due, a wait over) get
a task, and credentials no longer needed are erased (``service.retention``). So nothing needs the
local runner, and no single machine is special.

SIGTERM (or SIGINT) drains: no new task is taken, every pass is paused and
recorded, its mailbox queued again and handed on to the other workers; exit 0.

Webhooks and emails, when configured, are sent by one worker at a time
(``service.notifier``).
"""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, func, select, text

from mailmover.service import retention
from mailmover.service.leases import claim, recover_expired
from mailmover.service.notifier import FleetNotifier
from mailmover.service.queue import (
    MAX_WAITING,
    QUEUE,
    SWEEP_LOCK,
    defer_async,
    ensure_schema,
    make_app,
    runnable_ids,
    waiting_count,
)
from mailmover.service.runoptions import RunOptions
from mailmover.service.secrets import SecretBox
from mailmover.service.worker import Worker
from mailmover.store.database import Store

#: Seconds between sweeps.
SWEEP: Final = 2.0
#: procrastinate's worker heartbeat, and the silence after which a worker is stalled.
QUEUE_HEARTBEAT: Final = 2.0
STALLED: Final = 10.0
#: Seconds a draining worker gives its passes to pause before they are cancelled.
DRAIN: Final = 60.0
#: Seconds a sweep's transaction may sit idle before the server ends it (and its lock).
LOCK_IDLE: Final = 60
#: Seconds between erasures of credentials kept past the retention period.
RETENTION_EVERY: Final = 60.0

Emit = Callable[[dict[str, Any]], None]


@dataclass(kw_only=True)
class FleetOptions(RunOptions):
    """How a fleet worker runs (its budgets are counted fleet-wide)."""

    metrics_host: str = "127.0.0.1"  # where the metrics are served
    drain_seconds: float = DRAIN


class FleetWorker:
    """One ``mailmover worker`` process."""

    def __init__(
        self, store: Store, url: str, box: SecretBox, name: str, options: FleetOptions, emit: Emit
    ) -> None:
        self.store = store
        self.name = name
        self.options = options
        self.emit = emit
        self.worker = Worker(store, box, name, done=self._done)
        self.app = make_app(url, self.take)
        self.queue_worker: Any = None
        self.notifier = FleetNotifier(
            store,
            options.webhook_urls,
            options.webhook_secret,
            options.smtp,
            notify_users=options.notify_users,
        )
        self.signalled = False  # SIGTERM or SIGINT came: a drain asked for
        self._last_retention = -math.inf  # the first round sweeps

    # -- the task -------------------------------------------------------------------

    async def take(self, mailbox_id: int) -> None:
        """Run one pass of the mailbox if it is still due and free; hand it on if due again."""
        if self.worker.stopping:
            return
        row = await self.worker.db(self.worker.row, mailbox_id)
        settings = dict(row.job_settings or {}) | dict(row.settings or {})
        wanted = int(settings.get("connections") or self.options.connections)
        claimed = await self.worker.db(
            claim,
            self.store,
            mailbox_id,
            self.name,
            budgets=self.options.budgets,
            wanted=wanted,
            logins=self.options.logins,
        )
        if claimed is None:  # paused, cancelled, held, on hold, or no connection free now
            self.emit({"event": "skipped", "mailbox": mailbox_id})
            return
        self.emit({"event": "started", "mailbox": mailbox_id, "kind": claimed.kind,
                   "worker": self.name, "connections": claimed.connections})  # fmt: skip
        await self.worker.run(claimed, claimed.connections)
        # A pre-stage done, a drain, a pause withdrawn: it is due again, so a task waits
        # for it now (the lock keeps it until this one ends), taken here or elsewhere.
        due = await self.worker.db(runnable_ids, self.store, mailbox_id=mailbox_id, own=True)
        await defer_async(self.app, due)

    def _done(self, message: dict[str, Any]) -> None:
        self.emit({"event": "mailbox", "mailbox": message["done"],
                   "outcome": message.get("outcome"), "state": message.get("state")})  # fmt: skip

    # -- the process ----------------------------------------------------------------

    async def serve(self) -> int:
        """Run until SIGTERM or SIGINT, then drain; the exit code (1: it stopped by itself).

        procrastinate stops its worker by itself when the database goes away for good;
        the passes are paused and recorded then too, and the exit code says so.
        """
        from procrastinate.worker import Worker as QueueWorker

        passes = self.worker

        class Queue(QueueWorker):
            def stop(self) -> None:
                passes.stop()
                super().stop()  # type: ignore[no-untyped-call]

        loop = asyncio.get_running_loop()
        metrics: Any = None
        async with self.app.open_async():
            await asyncio.to_thread(self._ensure_schema)
            self.queue_worker = Queue(
                self.app,
                queues=[QUEUE],
                name=self.name,
                concurrency=self.options.concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=QUEUE_HEARTBEAT,
                stalled_worker_timeout=STALLED,
                shutdown_graceful_timeout=self.options.drain_seconds,
                delete_jobs="successful",
            )
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.drain)
            if self.options.metrics_port is not None:
                from mailmover.service.metrics import serve_metrics

                metrics = serve_metrics(
                    self.store,
                    self.options.budgets,
                    self.options.metrics_port,
                    self.options.metrics_host,
                )
            beat = asyncio.create_task(self.worker.beat())
            sweeper = asyncio.create_task(self._sweeper())
            self.emit({"event": "ready", "worker": self.name})
            try:
                await self.queue_worker.run()
            finally:
                sweeper.cancel()
                beat.cancel()
                await asyncio.gather(sweeper, beat, return_exceptions=True)
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
                if metrics is not None:
                    metrics.shutdown()
                if self.notifier.leading:
                    sent, failed = await asyncio.to_thread(self.notifier.close)
                    self.emit({"event": "notified", "sent": sent, "failed": failed})
        self.emit({"event": "stopped", "worker": self.name, "asked": self.signalled})
        return 0 if self.signalled else 1

    def drain(self) -> None:
        """Take no new task; pause every pass (each is recorded and its mailbox queued)."""
        if self.signalled:
            return
        self.signalled = True
        self.emit({"event": "draining", "worker": self.name, "passes": len(self.worker.controls)})
        self.worker.stop()
        if self.queue_worker is not None:
            self.queue_worker.stop()

    def _ensure_schema(self) -> None:
        if ensure_schema(self.store, self.app):
            self.emit({"event": "queue_created"})

    # -- the sweep ------------------------------------------------------------------

    async def _sweeper(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # the database is busy or away: the next sweep tries
                self.emit({"event": "sweep_error", "error": type(exc).__name__})
            try:
                leading = self.notifier.leading
                if await asyncio.to_thread(self.notifier.poll) and not leading:
                    self.emit({"event": "notifier", "worker": self.name})
            except Exception as exc:
                self.emit({"event": "notify_error", "error": type(exc).__name__})
            await asyncio.sleep(SWEEP)

    async def sweep(self) -> None:
        """Settle dead workers' mailboxes and tasks, queue the due ones (if no one else is)."""
        conn = await asyncio.to_thread(self._try_lock)
        if conn is None:
            return
        try:
            await self._retry_stalled()
            recovered = await asyncio.to_thread(
                recover_expired, self.store, settle=self.options.settle_seconds
            )
            for mailbox_id in recovered:
                self.emit({"event": "recovered", "mailbox": mailbox_id})
            due = await asyncio.to_thread(runnable_ids, self.store)
            if due and not self.worker.stopping:
                room = MAX_WAITING - await asyncio.to_thread(waiting_count, self.store)
                deferred = await defer_async(self.app, due[: max(room, 0)])
                if deferred:
                    self.emit({"event": "deferred", "mailboxes": deferred})
            if time.monotonic() - self._last_retention >= RETENTION_EVERY:
                self._last_retention = time.monotonic()
                days = self.options.retention_days
                erased = await asyncio.to_thread(retention.sweep, self.store, days)
                for mailbox_id in erased.expired:
                    self.emit({"event": "user_never_came", "mailbox": mailbox_id})
                # Tasks that failed (a database error) or were dropped as stalled: a day.
                await self.app.job_manager.delete_old_jobs(
                    nb_hours=24, queue=QUEUE, include_failed=True, include_aborted=True
                )
        finally:
            await asyncio.to_thread(_unlock, conn)

    async def _retry_stalled(self) -> None:
        """Tasks of workers silent for ``STALLED`` seconds go back to the queue."""
        from procrastinate import exceptions
        from procrastinate.jobs import Status

        manager = self.app.job_manager
        for job in await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=STALLED):
            try:
                await manager.retry_job(job, retry_at=datetime.now(UTC))
                outcome = "retried"
            except exceptions.UniqueViolation:  # a task for that mailbox waits already
                await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
                outcome = "dropped"
            self.emit({"event": "stalled_task", "task": job.id, "outcome": outcome,
                       "mailbox": (job.task_kwargs or {}).get("mailbox_id")})  # fmt: skip
        await manager.prune_stalled_workers(STALLED)

    def _try_lock(self) -> Connection | None:
        """A transaction holding the sweep's lock, or None when another worker sweeps.

        A worker whose machine vanishes mid-sweep leaves its transaction idle: the
        server ends it (and the lock) after a while instead of keeping it for hours.
        """
        conn = self.store.engine.connect()
        try:
            conn.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = '{LOCK_IDLE}s'"))
            if conn.execute(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK))).scalar():
                return conn
        except BaseException:  # the database is away: the connection still goes back
            conn.close()
            raise
        conn.close()  # rolled back: nothing held
        return None


def _unlock(conn: Connection) -> None:
    try:
        conn.commit()
    finally:
        conn.close()
