"""A worker process: runs the mailboxes its runner hands it, each pass through ``run_pass``.

``python -m mailmover.service.worker --data-dir DIR`` (``MAILMOVER_DATABASE_URL`` set)
reads JSON lines on stdin (``{"run": mailbox_id, "pass_id": N, "kind": "full",
"connections": 4}``), runs each mailbox as an asyncio task while renewing its lease,
and writes ``{"done": mailbox_id, "outcome": ..., "state": ...}`` on stdout. When stdin
ends (the runner stopped or died) or on SIGTERM, every pass is paused, recorded, and
its mailbox queued again; then the worker exits. Credentials are decrypted here only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import select, update

from mailmover.engine.control import PassControl
from mailmover.engine.ports import SideName
from mailmover.engine.settings import MailboxPair, PassKind, PassSettings
from mailmover.service.credentials import StoredCredentials
from mailmover.service.leases import (
    LEASE_SECONDS,
    LOST,
    Claim,
    LeaseLost,
    Progress,
    finish,
    heartbeat,
    heartbeat_many,
    log_lines,
)
from mailmover.service.secrets import SecretBox
from mailmover.store import schema
from mailmover.store.database import Store

#: Seconds between heartbeats: a pause or cancel reaches the pass within this, plus a batch.
HEARTBEAT: Final = 1.0
#: Seconds without a renewed lease after which the worker pauses its passes itself: cut
#: off from the database, it stops well before its leases expire and another worker,
#: one settle after this one's last heartbeat, may take the mailboxes.
FENCE_SECONDS: Final = LEASE_SECONDS / 2
#: Event log lines about single messages kept per pass (the report names them all).
MESSAGE_LINES: Final = 50

_T = TypeVar("_T")
mb = schema.mailbox


class EventTally:
    """Turns a pass's events into counters and event log lines."""

    def __init__(self) -> None:
        self.progress = Progress()
        self.lines: list[tuple[str, str, str]] = []
        self._message_lines = 0
        self._left: dict[str, list[int]] = {}  # folder -> [messages, bytes] still to copy

    def __call__(self, event: Any) -> None:
        from mailmover.engine import events

        data = events.event_json(event)
        self.add(data)

    def add(self, data: dict[str, Any]) -> None:
        p = self.progress
        name = data.get("event")
        if name == "folder_planned":
            p.logins_ok = True
            p.messages_total += int(data.get("messages") or 0)
            p.bytes_total += int(data.get("bytes") or 0)
        elif name == "folder_started":  # again after a retry: what is left of it now
            self._left[str(data.get("folder"))] = [
                int(data.get("to_copy") or 0),
                int(data.get("bytes") or 0),
            ]
        elif name == "progress":
            left = self._left.setdefault(str(data.get("folder")), [0, 0])
            left[0] -= int(data.get("messages") or 0)
            left[1] -= int(data.get("bytes") or 0)
            p.copied += int(data.get("copied") or 0)
            p.copied_bytes += int(data.get("copied_bytes") or 0)
        elif name == "retrying":
            self.lines.append(
                ("warning", "retrying", f"{data.get('folder')}: {data.get('reason')}")
            )
        elif name == "message_failed" and self._message_lines < MESSAGE_LINES:
            self._message_lines += 1
            text = f"{data.get('folder')} UID {data.get('uid')} not copied: {data.get('reason')}"
            self.lines.append(("warning", "message", text))
        elif name == "folder_finished":
            text = f"{data.get('folder')}: {data.get('copied', 0)} copied"
            if data.get("error"):
                text += f"; stopped early: {data.get('error')}"
            self.lines.append(("info", "folder", text))
        p.messages_left = sum(max(m, 0) for m, _ in self._left.values())
        p.bytes_left = sum(max(b, 0) for _, b in self._left.values())
        p.changed = True


Done = Callable[[dict[str, Any]], None]


class Worker:
    """Runs claimed mailboxes concurrently in this process, renewing their leases.

    ``done`` is told of each finished pass (``{"done": mailbox_id, "outcome": ...,
    "state": ...}``): the local runner's worker process writes it on stdout, a fleet
    worker logs it and queues the mailbox again when it is due.
    """

    def __init__(self, store: Store, box: SecretBox, name: str, done: Done | None = None) -> None:
        self.store = store
        self.box = box
        self.name = name
        self.done = done or say
        self.controls: dict[int, PassControl] = {}
        self.tallies: dict[int, EventTally] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.renewed = 0.0  # when the last renewal of every lease was asked (monotonic)

    async def db(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.store.writer, functools.partial(fn, *args, **kwargs))

    def start(self, order: dict[str, Any]) -> None:
        claim = Claim(int(order["run"]), int(order["pass_id"]), str(order["kind"]))
        task = asyncio.create_task(self.run(claim, int(order.get("connections") or 0)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def stop(self) -> None:
        """Pause every pass: they record what they did and their mailboxes are queued again."""
        self.stopping = True
        for control in self.controls.values():
            control.pause()

    async def run(self, claim: Claim, connections: int) -> None:
        control = PassControl()
        self.controls[claim.mailbox_id] = control
        if self.stopping:
            control.pause()
        tally = EventTally()
        self.tallies[claim.mailbox_id] = tally
        try:
            report = await self.pass_(claim, connections, control, tally)
        except Exception as exc:  # a bug: the mailbox fails with its name, the worker lives on
            report = {
                "kind": claim.kind,
                "outcome": "failed",
                "reason": f"internal error ({type(exc).__name__})",
                "retryable": False,
            }
        finally:
            del self.controls[claim.mailbox_id]
            del self.tallies[claim.mailbox_id]
        state = None
        try:
            await self.db(log_lines, self.store, claim.mailbox_id, tally.lines)
            if tally.progress.changed:
                with contextlib.suppress(LeaseLost):
                    await self.db(
                        heartbeat, self.store, claim.mailbox_id, self.name, tally.progress
                    )
            after = await self.db(
                finish, self.store, claim, self.name, report, stopping=self.stopping
            )
            state = after.state if after else None
        except Exception as exc:  # the database failed: the lease expires, the mailbox reruns
            print(f"mailmover worker: cannot record mailbox {claim.mailbox_id}: "
                  f"{type(exc).__name__}", file=sys.stderr)  # fmt: skip
        self.done({"done": claim.mailbox_id, "outcome": report.get("outcome"), "state": state})

    async def pass_(
        self, claim: Claim, connections: int, control: PassControl, tally: EventTally
    ) -> dict[str, Any]:
        from mailmover.engine.passes import run_pass
        from mailmover.store.journal import StoreJournal

        row = await self.db(self.row, claim.mailbox_id)
        pair = MailboxPair.from_dict({"source": row.source_endpoint, "dest": row.dest_endpoint})
        settings = dict(row.job_settings or {}) | dict(row.settings or {})
        if claim.kind == "prestage":
            settings["before"] = settings.get("prestage_before")
        if connections:
            settings["connections"] = min(int(settings.get("connections", 4)), connections)
        users: dict[SideName, str] = {"source": pair.source.user, "dest": pair.dest.user}

        async def read(side: SideName) -> bytes | None:
            return await self.db(self._secret, claim.mailbox_id, side)

        async def save(side: SideName, blob: bytes) -> None:
            await self.db(self._save_secret, claim.mailbox_id, side, blob)

        kind: PassKind = claim.kind  # type: ignore[assignment]
        report = await run_pass(
            pair,
            PassSettings.from_dict(settings),
            kind,
            journal=StoreJournal(self.store, claim.mailbox_id),
            credentials=StoredCredentials(self.box, read, users, save=save),
            control=control,
            events=tally,
        )
        return report.to_dict()

    async def beat(self) -> None:
        """Every second, renew all leases at once and act on pause and cancel requests.

        Leases not renewed for ``FENCE_SECONDS`` (the database is away or stuck): every
        pass is paused, so that none writes to a mailbox another worker may take.
        """
        self.renewed = time.monotonic()
        fence = asyncio.create_task(self._fence())
        try:
            await self._renew()
        finally:
            fence.cancel()

    async def _fence(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            if time.monotonic() - self.renewed >= FENCE_SECONDS:
                for control in self.controls.values():
                    control.pause()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            beats = {}
            for mailbox_id, tally in self.tallies.items():
                lines, tally.lines = tally.lines, []
                beats[mailbox_id] = (tally.progress, lines)
            asked_at = time.monotonic()
            try:
                answers = await self.db(heartbeat_many, self.store, self.name, beats)
            except Exception as exc:  # the database is busy or gone: try again next beat
                print(f"mailmover worker: heartbeat failed: {type(exc).__name__}", file=sys.stderr)
                continue
            self.renewed = asked_at
            for mailbox_id, asked in answers.items():
                control = self.controls.get(mailbox_id)
                if control is None:
                    continue
                if asked == "cancel":
                    control.cancel()
                elif asked in ("pause", LOST):  # LOST: someone else holds it: stop writing
                    control.pause()

    def row(self, mailbox_id: int) -> Any:
        """The mailbox's endpoints and settings, and its job's settings."""
        query = (
            select(
                mb.c.source_endpoint,
                mb.c.dest_endpoint,
                mb.c.settings,
                schema.job.c.settings.label("job_settings"),
            )
            .join(schema.job, schema.job.c.id == mb.c.job_id)
            .where(mb.c.id == mailbox_id)
        )
        with self.store.engine.connect() as conn:
            return conn.execute(query).one()

    def _secret(self, mailbox_id: int, side: SideName) -> bytes | None:
        column = mb.c.source_secret if side == "source" else mb.c.dest_secret
        with self.store.engine.connect() as conn:
            value = conn.execute(select(column).where(mb.c.id == mailbox_id)).scalar()
        return bytes(value) if value is not None else None

    def _save_secret(self, mailbox_id: int, side: SideName, blob: bytes) -> None:
        """Keep a rotated credential, unless the credential was erased meanwhile."""
        column = mb.c.source_secret if side == "source" else mb.c.dest_secret
        with self.store.write_engine.begin() as conn:
            conn.execute(
                update(mb).where(mb.c.id == mailbox_id, column.is_not(None)).values({column: blob})
            )


def say(message: dict[str, Any]) -> None:
    """One JSON line to the runner."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve(worker: Worker) -> None:
    """Take orders from stdin until it ends, then stop every pass and wait for them."""
    loop = asyncio.get_running_loop()
    orders: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(orders.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(orders.put_nowait, None)

    threading.Thread(target=read_stdin, daemon=True).start()
    loop.add_signal_handler(signal.SIGTERM, lambda: orders.put_nowait(None))
    beat = asyncio.create_task(worker.beat())
    say({"ready": worker.name})
    while (order := await orders.get()) is not None:
        worker.start(order)
    worker.stop()
    while worker.tasks:
        await asyncio.gather(*list(worker.tasks), return_exceptions=True)
    beat.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mailmover-worker", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("MAILMOVER_DATABASE_URL"))
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--name", help="default: HOST/PID")
    parser.add_argument("--memory-mb", type=int, default=0, help="address space ceiling")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set MAILMOVER_DATABASE_URL")
    if args.memory_mb > 0:
        limit = args.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner, which stops us
    store = Store.open(args.database_url)
    try:
        name = args.name or f"{socket.gethostname()}/{os.getpid()}"
        worker = Worker(store, SecretBox.open(args.data_dir), name)
        asyncio.run(serve(worker))
    finally:
        store.close()


if __name__ == "__main__":
    main()
