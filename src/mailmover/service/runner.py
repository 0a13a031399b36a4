"""The local runner: hands due mailboxes to a small pool of worker processes.

The runner claims a mailbox for a worker (its lease), within the connection budgets,
and tells the worker to run it; the worker renews the lease and records the pass. A
worker that dies costs a retry of its own mailboxes (``leases.crashed``) and is
started again; leases of workers no runner knows (the runner itself died) expire and
are settled the same way by the next runner.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from mailmover.service import retention
from mailmover.service.budgets import Budgets, held, usage_of
from mailmover.service.emails import Emails
from mailmover.service.jobs import active_count, mailbox_status
from mailmover.service.leases import claim, crashed, recover_expired, runnable_condition
from mailmover.service.runoptions import RunOptions
from mailmover.service.webhooks import Webhooks
from mailmover.store import schema
from mailmover.store.database import Store

#: Seconds between looks at the database and the workers.
TICK: Final = 0.25
#: Seconds a stopping worker has to record its passes before it is killed.
DRAIN: Final = 60.0
mb = schema.mailbox
Emit = Callable[[dict[str, Any]], None]


@dataclass(kw_only=True)
class RunnerOptions(RunOptions):
    """How the local runner runs: in how many processes (metrics on 127.0.0.1)."""

    workers: int = 0  # 0: one per CPU core (at most one per mailbox)
    until_done: bool = False
    memory_mb: int = 0  # address-space ceiling of each worker; 0: none


class WorkerProcess:
    """One worker process, the mailboxes it holds, and its stdout read by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env
        )
        self.name: str | None = None
        self.held: set[int] = set()  # the mailboxes it runs (their connections: in the database)
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.messages.put(json.loads(line))
            except ValueError:
                continue

    def send(self, order: dict[str, Any]) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(order) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()


@dataclass(frozen=True)
class WorkerHealth:
    """One worker process as a health page shows it."""

    name: str | None  # None: not ready yet
    pid: int
    alive: bool
    mailboxes: int  # held now


@dataclass(frozen=True)
class RunnerHealth:
    """A runner's worker processes and the connections held against its limits, now."""

    concurrency: int
    workers: tuple[WorkerHealth, ...]
    #: this runner's limits, with what every running mailbox on the database holds
    budgets: Budgets


class Runner:
    """Runs due mailboxes until stopped (or, with ``until_done``, until none is left)."""

    def __init__(
        self, store: Store, url: str, data_dir: Path, options: RunnerOptions, emit: Emit
    ) -> None:
        self.store = store
        self.url = url
        self.data_dir = data_dir
        self.options = options
        self.emit = emit
        self.workers: list[WorkerProcess] = []
        self.stop_requested = False
        self.started = datetime.now(UTC)
        self._last_retention = -math.inf  # the first round sweeps
        self._last_recovery = time.monotonic()
        self.webhooks: Webhooks | None = None
        self.emails: Emails | None = None

    # -- the loop ---------------------------------------------------------------------

    def run(self, handle_signals: bool = True) -> int:
        """Run; the exit code: 0, or 1 when a mailbox run here failed or missed messages.

        ``handle_signals`` False (in a thread other than the main one, as the web app
        runs it): SIGINT and SIGTERM are left alone and ``stop()`` ends the run.
        """
        sigs = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        old = {s: signal.signal(s, self._on_signal) for s in sigs}
        metrics: Any = None
        try:
            count = self.options.workers or min(self.options.concurrency, os.cpu_count() or 1)
            if self.options.webhook_urls:
                self.webhooks = Webhooks(
                    self.store, self.options.webhook_urls, self.options.webhook_secret
                )
            if self.options.metrics_port is not None:
                from mailmover.service.metrics import serve_metrics

                metrics = serve_metrics(self.store, self.options.budgets, self.options.metrics_port)
            if self.options.smtp is not None:
                self.emails = Emails(
                    self.store, self.options.smtp, notify_users=self.options.notify_users
                )
            self.workers = [self._spawn() for _ in range(max(1, count))]
            for mailbox_id in recover_expired(self.store, settle=self.options.settle_seconds):
                self.emit({"event": "recovered", "mailbox": mailbox_id})
            while not self.stop_requested:
                try:
                    if self._tick():
                        break
                except SQLAlchemyError as exc:  # the database is busy or away: try again
                    self.emit({"event": "database_error", "error": type(exc).__name__})
                    time.sleep(1.0)
                time.sleep(TICK)
        finally:
            self._shutdown()
            if metrics is not None:
                metrics.shutdown()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return self._exit_code()

    def _tick(self) -> bool:
        """One look at the workers and the database; True when ``until_done`` is met."""
        self._collect()
        self._fill()
        self._retention()
        self._recover()
        if self.webhooks is not None:
            self.webhooks.poll()
        if self.emails is not None:
            self.emails.poll()
        return self.options.until_done and not self._held() and active_count(self.store) == 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested = True

    def stop(self) -> None:
        """Ask the loop to end: running mailboxes are paused and queued again."""
        self.stop_requested = True

    def health(self) -> RunnerHealth:
        """The worker processes and the connections held now (from any thread)."""
        workers = tuple(
            WorkerHealth(w.name, w.proc.pid, w.proc.poll() is None, len(w.held))
            for w in list(self.workers)
        )
        with self.store.engine.connect() as conn:
            counted = held(conn, self.options.budgets, datetime.now(UTC))
        return RunnerHealth(self.options.concurrency, workers, counted)

    def _spawn(self) -> WorkerProcess:
        argv = [
            sys.executable, "-m", "mailmover.service.worker",
            "--data-dir", str(self.data_dir), "--memory-mb", str(self.options.memory_mb),
        ]  # fmt: skip
        # The URL may hold the database's password: in the environment, not in ps.
        return WorkerProcess(argv, {**os.environ, "MAILMOVER_DATABASE_URL": self.url})

    def _held(self) -> int:
        return sum(len(w.held) for w in self.workers)

    def _collect(self) -> None:
        """Read what the workers said; settle the mailboxes of any that died, and replace it."""
        for n, worker in enumerate(self.workers):
            self._drain(worker)
            if worker.proc.poll() is None:
                continue
            self._drain(worker)
            for mailbox_id in list(worker.held):
                after = crashed(
                    self.store, mailbox_id, worker.name, settle=self.options.settle_seconds
                )
                self.emit(
                    {"event": "worker_died", "worker": worker.name, "mailbox": mailbox_id,
                     "state": after.state if after else None}
                )  # fmt: skip
            worker.held.clear()
            if not self.stop_requested:
                self.workers[n] = self._spawn()

    def _drain(self, worker: WorkerProcess) -> None:
        while True:
            try:
                message = worker.messages.get_nowait()
            except queue.Empty:
                return
            if "ready" in message:
                worker.name = str(message["ready"])
            elif "done" in message:
                worker.held.discard(int(message["done"]))
                box = mailbox_status(self.store, int(message["done"]))
                self.emit(
                    {"event": "mailbox", "mailbox": message["done"], "job": box.job,
                     "source": box.source, "dest": box.dest, "outcome": message.get("outcome"),
                     "state": message.get("state"), "words": box.words}
                )  # fmt: skip

    def _fill(self) -> None:
        free = self.options.concurrency - self._held()
        ready = [w for w in self.workers if w.name is not None and w.proc.poll() is None]
        if free <= 0 or not ready:
            return
        now = datetime.now(UTC)
        query = (
            select(
                mb.c.id,
                mb.c.source_endpoint,
                mb.c.dest_endpoint,
                mb.c.settings,
                schema.job.c.settings.label("job_settings"),
            )
            .join(schema.job, schema.job.c.id == mb.c.job_id)
            .where(runnable_condition(now), mb.c.source_endpoint.is_not(None))
            .order_by(mb.c.id)
            .limit(free * 4)
        )
        with self.store.engine.connect() as conn:
            candidates = conn.execute(query).all()
            # A first look, so that mailboxes that cannot fit are not claimed in vain.
            room = held(conn, self.options.budgets, now) if candidates else None
        for row in candidates:
            if free <= 0:
                return
            settings = (row.job_settings or {}) | (row.settings or {})
            wanted = int(settings.get("connections") or self.options.connections)
            want = usage_of(row.source_endpoint, row.dest_endpoint, wanted)
            if room is not None and room.grant(want.hosts, want.accounts, 1) is None:
                continue
            worker = min(ready, key=lambda w: len(w.held))
            assert worker.name is not None
            # The budgets are counted in the database: every runner on it shares them.
            claimed = claim(
                self.store, row.id, worker.name, now, budgets=self.options.budgets, wanted=wanted,
                logins=self.options.logins,
            )  # fmt: skip
            if claimed is None:  # taken, not due, its server on hold, or no connection free
                continue
            worker.held.add(row.id)
            order = {"run": row.id, "pass_id": claimed.pass_id, "kind": claimed.kind,
                     "connections": claimed.connections}  # fmt: skip
            worker.send(order)  # a dead worker is found by _collect
            self.emit({"event": "started", "mailbox": row.id, "kind": claimed.kind,
                       "worker": worker.name, "connections": claimed.connections})  # fmt: skip
            free -= 1

    def _recover(self) -> None:
        """Settle leases that expired unseen (a worker no runner here knew of), every 5 s."""
        if time.monotonic() - self._last_recovery < 5:
            return
        self._last_recovery = time.monotonic()
        for mailbox_id in recover_expired(self.store, settle=self.options.settle_seconds):
            self.emit({"event": "recovered", "mailbox": mailbox_id})

    def _retention(self) -> None:
        """Erase credentials no longer needed (``service.retention``), once a minute."""
        if time.monotonic() - self._last_retention < 60:
            return
        self._last_retention = time.monotonic()
        erased = retention.sweep(self.store, self.options.retention_days)
        for mailbox_id in erased.expired:
            self.emit({"event": "user_never_came", "mailbox": mailbox_id})

    def _shutdown(self) -> None:
        """Ask every worker to pause and record its passes; kill those that do not end."""
        self.stop_requested = True
        for worker in self.workers:
            worker.close()
        deadline = time.monotonic() + DRAIN
        for worker in self.workers:
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        self._collect()
        if self.webhooks is not None:
            self.webhooks.poll()
            self.webhooks.flush()
            self.webhooks.close()
            self.emit({"event": "webhooks", "sent": self.webhooks.sent,
                       "failed": self.webhooks.failed})  # fmt: skip
        if self.emails is not None:
            self.emails.poll()
            self.emails.flush()
            self.emit({"event": "emails", "sent": self.emails.sent,
                       "failed": self.emails.failed})  # fmt: skip

    def _exit_code(self) -> int:
        with self.store.engine.connect() as conn:
            states = (
                conn.execute(select(mb.c.state).where(mb.c.last_pass_at >= self.started))
                .scalars()
                .all()
            )
        return 1 if {"failed", "completed_with_errors"} & set(states) else 0
