"""``run_pass``: one pass over one mailbox pair, the engine's single entry point.

The CLI, the local runner and a queue task all call it the same way. It never
raises for a message, a folder or the mailbox failing: it returns a
``PassReport`` whose outcome says what happened (completed, completed with
errors, failed with a reason and whether a retry can help, paused,
cancelled). Its folder workers run in a ``TaskGroup``, so none outlives it.
Only the caller cancelling the task (``CancelledError``) passes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from mailmover.engine.budget import ByteBudget
from mailmover.engine.control import PassControl
from mailmover.engine.creator import created_by_workers, dedicate
from mailmover.engine.events import (
    FolderFinished,
    FolderPlanned,
    Listener,
    PassFinished,
    Retrying,
    ignore,
)
from mailmover.engine.folders import FolderPlan
from mailmover.engine.gmail import LabelPlan
from mailmover.engine.leftover import left_behind
from mailmover.engine.options import TransferOptions
from mailmover.engine.pairs import Halting, Shared, Worker
from mailmover.engine.planning import (
    MailboxPlan,
    Profiles,
    plan_mailbox,
    prepare_destination,
    statuses,
    unchanged,
)
from mailmover.engine.ports import Control, Credentials, Journal
from mailmover.engine.profile import ServerProfile, daily_cap
from mailmover.engine.report import FailureKind, FolderResult, Outcome, PassReport
from mailmover.engine.retry import RetryClock, RetryPolicy
from mailmover.engine.session import Connector, Pair, SessionOptions, close_pair
from mailmover.engine.settings import MailboxPair, PassKind, PassSettings
from mailmover.errors import (
    AuthenticationFailed,
    MailmoverError,
    NetworkError,
    OverQuota,
    ProtocolError,
    RetriesExhausted,
    TLSFailed,
    UsageError,
)
from mailmover.imap.client import IMAPClient
from mailmover.imap.trace import TraceSink
from mailmover.store.records import FolderRecord

log = logging.getLogger(__name__)


async def run_pass(
    pair: MailboxPair,
    settings: PassSettings,
    kind: PassKind,
    *,
    journal: Journal,
    credentials: Credentials,
    control: Control | None = None,
    events: Listener | None = None,
    trace: TraceSink | None = None,
) -> PassReport:
    """Run one pass of ``kind`` over ``pair``; see the module docstring."""
    connector = Connector(pair, credentials, SessionOptions.of(settings, trace))
    run = _Pass(pair, settings, kind, journal, connector, control or PassControl(), events)
    try:
        report = await run.execute()
    except _Stopped:
        report = run.finished()
    except MailmoverError as exc:
        side = exc.cause.side if isinstance(exc, RetriesExhausted) else exc.side
        report = run.report("failed", exc.message, failure_kind(exc), exc.retryable, side)
    except Exception as exc:  # a bug: the report still comes back, the traceback is logged
        log.exception("pass failed with an internal error")
        reason = f"internal error: {type(exc).__name__}: {exc}"
        report = run.report("failed", reason, "internal", True)
    run.emit(PassFinished(report))
    return report


def failure_kind(exc: MailmoverError) -> FailureKind:
    """What kind of failure ``exc`` is, for exit codes and mailbox states."""
    kinds: list[tuple[type[MailmoverError], FailureKind]] = [
        (TLSFailed, "tls"), (NetworkError, "network"), (AuthenticationFailed, "authentication"),
        (OverQuota, "quota"), (UsageError, "usage"), (ProtocolError, "protocol"),
    ]  # fmt: skip
    if isinstance(exc, RetriesExhausted):
        return failure_kind(exc.cause)
    return next((k for cls, k in kinds if isinstance(exc, cls)), "server")


class _Stopped(Exception):
    """A pause or cancel was requested while the pass waited."""


class _Pass:
    def __init__(
        self,
        pair: MailboxPair,
        settings: PassSettings,
        kind: PassKind,
        journal: Journal,
        connector: Connector,
        control: Control,
        events: Listener | None,
    ) -> None:
        self.pair, self.settings, self.kind = pair, settings, kind
        self.journal, self.connector, self.control = journal, connector, control
        self.emit: Listener = events or ignore
        self.clock = RetryClock(
            RetryPolicy(budget=settings.retry_for, quota_probe=settings.cap_probe)
        )
        self.profiles = Profiles.by_host(pair, settings)
        self.planned: MailboxPlan | None = None
        self.results: dict[str, FolderResult] = {}
        self.skip: dict[str, FolderRecord] = {}  # unchanged since the last pass
        self.recorded: frozenset[str] = frozenset()  # source folders the journal knows
        self.create: frozenset[str] = frozenset()  # destination folders the workers create
        self.started = time.monotonic()

    # -- the report ---------------------------------------------------------------------

    def report(
        self,
        outcome: Outcome,
        reason: str | None = None,
        kind: FailureKind | None = None,
        retryable: bool = False,
        side: str | None = None,
    ) -> PassReport:
        plans = self.planned.plans if self.planned else []
        folders = []
        for plan in plans:
            result = self.results.get(plan.source_name)
            if result is None and self.kind != "preflight":
                result = FolderResult(plan.source_name, plan.dest_name, plan.note)
                result.interrupted = True  # never started
            if result is not None:
                folders.append(result.freeze())
        return PassReport(
            kind=self.kind,
            source=self.pair.source.url,
            dest=self.pair.dest.url,
            outcome=outcome,
            reason=reason,
            failure_kind=kind,
            retryable=retryable,
            failed_side=side,
            folders=tuple(folders),
            plans=tuple(plans),
            sizes=dict(self.planned.sizes) if self.planned else {},
            seconds=time.monotonic() - self.started,
            source_preset=self.profiles.source.name,
            dest_preset=self.profiles.dest.name,
        )

    def finished(self) -> PassReport:
        stop = self.control.requested
        if stop is not None:
            return self.report("cancelled" if stop == "cancel" else "paused")
        trouble = any(r.failures or r.error or r.interrupted for r in self.results.values())
        return self.report("completed_with_errors" if trouble else "completed")

    # -- the pass -----------------------------------------------------------------------

    async def execute(self) -> PassReport:
        if self.kind == "prestage" and self.settings.before is None:
            raise UsageError("a pre-stage pass needs a date: only mail before it is copied")
        opened = await self._first_pair()
        early = [] if self.kind == "preflight" else self._open_early(opened)
        first: Pair | None = opened
        try:
            first, self.planned = await self._plan(first)
            if self.kind == "preflight" or self.control.requested is not None:
                return self.finished()
            pairs = [first, *await _collect(early)]
            first = None  # the workers own them now
            try:
                await self._copy(self.planned, pairs)
            except OverQuota as exc:
                raise OverQuota(await self._over_quota(exc)) from exc
            return self.finished()
        finally:
            await close_pair(first, logout=True)
            for pair in await _collect(early):  # when planning failed or nothing was copied
                await close_pair(pair, logout=True)

    async def _first_pair(self) -> Pair:
        """The first connections. Any failure is reported at once (a wrong host, port,
        certificate or password), except a provider's daily cap: that one waits."""
        while True:
            try:
                return await self.connector.open_pair(0)
            except MailmoverError as exc:
                if not await self._wait_for_cap(exc, "(connecting)"):
                    raise

    async def _wait_for_cap(self, exc: MailmoverError, where: str) -> bool:
        """True after waiting for a provider's daily cap to reset; False when ``exc`` is
        no daily cap or the cap outlasts the retry budget."""
        longest = daily_cap(exc.message, self.profiles.source, self.profiles.dest)
        pause = self.clock.next_pause(longest) if longest is not None else None
        if pause is None:
            return False
        self.emit(Retrying(where, f"daily cap reached: {exc.message}", pause, "mailbox"))
        if await self.control.wait(pause):
            raise _Stopped
        return True

    def _open_early(self, first: Pair) -> list[asyncio.Task[Pair]]:
        """The workers' connections open while the folders are planned (3 round trips each)."""
        self.profiles = Profiles.of(self.pair, self.settings, *first)
        wanted = self.profiles.connections(self.settings.connections)
        return [asyncio.create_task(self.connector.open_pair(n)) for n in range(1, wanted)]

    async def _plan(self, first: Pair | None) -> tuple[Pair, MailboxPlan]:
        """Plan the folders and prepare the destination, retrying what a retry can mend."""
        attempt = 0
        while True:
            try:
                if first is None:
                    first = await self.connector.open_pair(0)
                src, dst = first
                self.profiles = Profiles.of(self.pair, self.settings, src, dst)
                recorded = asyncio.ensure_future(self.journal.folders())  # may still open
                planned = await plan_mailbox(
                    src, dst, self.settings, self.profiles, recorded,
                    exact_sizes=self.kind == "preflight",
                )  # fmt: skip
                records = recorded.result()
                self.recorded = frozenset(r.source_name for r in records)
                if self.kind != "preflight":
                    delimiter = self._delimiter(planned)
                    self.create = self._created_by_workers(src, dst, planned)
                    plans = await prepare_destination(
                        dst, planned.plans, planned.dest, delimiter, self.create
                    )
                    planned = replace(planned, plans=plans)
                    self.skip = await self._unchanged(dst, planned, records)
                for plan in planned.plans:
                    messages, size = planned.sizes[plan.source_name]
                    self.emit(
                        FolderPlanned(plan.source_name, plan.dest_name, messages, size, plan.note)
                    )
                return first, planned
            except MailmoverError as exc:
                await close_pair(first, logout=False)
                first = None
                if await self._wait_for_cap(exc, "(planning)"):
                    continue
                delay = self.clock.next_delay(attempt, exc)
                if delay is None or daily_cap(exc.message, *self._sides()) is not None:
                    raise
                self.emit(Retrying("(planning)", exc.message, delay, "mailbox"))
                if await self.control.wait(delay):
                    raise _Stopped from exc
                attempt += 1

    def _delimiter(self, planned: MailboxPlan) -> str:
        return planned.dest.delimiter or self.profiles.dest.preset.folders.separator or "/"

    def _created_by_workers(
        self, src: IMAPClient, dst: IMAPClient, planned: MailboxPlan
    ) -> frozenset[str]:
        """The small new folders each worker creates with its copy (engine.smallfolders)."""
        if src.has("X-GM-EXT-1") or self.profiles.dest.labels:
            return frozenset()
        return created_by_workers(
            planned.plans, _listed(planned), planned.sizes, self._transfer(), self.recorded,
            dst, self._delimiter(planned),
        )  # fmt: skip

    async def _name_late(self, shared: Shared, unnamed: list[FolderPlan]) -> None:
        """Folders whose CREATE a worker saw fail: named by the ladder, then copied."""
        assert self.planned is not None
        planned, names = self.planned, {p.source_name for p in unnamed}
        there = frozenset(p.dest_name for p in planned.plans if p.source_name not in names)
        failed, attempt = shared.unnamed_error, 0
        while True:
            if failed is not None:  # throttled, or the link dropped: wait as when planning
                delay = self.clock.next_delay(attempt, failed)
                if delay is None:
                    raise failed
                self.emit(Retrying("(creating folders)", failed.message, delay, "mailbox"))
                if await self.control.wait(delay):
                    raise _Stopped from failed
                attempt += 1
            pair: Pair | None = None
            try:
                pair = await self.connector.open_pair(0)
                plans = await prepare_destination(
                    pair[1], planned.plans, planned.dest, self._delimiter(planned), there
                )
                break
            except MailmoverError as exc:
                await close_pair(pair, logout=False)
                failed = exc
        todo = [p for p in plans if p.source_name in names]
        named = {p.source_name: p for p in todo}  # the others stay as they were planned
        self.planned = replace(planned, plans=[named.get(p.source_name, p) for p in planned.plans])
        for plan in todo:  # no FolderPlanned again: the totals were counted at planning
            log.info("%s goes to %s (%s)", plan.source_name, plan.dest_name, plan.note)
        shared.create, shared.unnamed = frozenset(), []
        shared.fresh |= {p.dest_name for p in todo}
        await Worker(shared, 0, pair).run(todo, self.results)

    def _sides(self) -> tuple[ServerProfile, ServerProfile]:
        return self.profiles.source, self.profiles.dest

    async def _unchanged(
        self, dst: IMAPClient, planned: MailboxPlan, recorded: Sequence[FolderRecord]
    ) -> dict[str, FolderRecord]:
        """The folders a rerun need not open, from one pipelined STATUS per side."""
        if self.kind == "retry_errors" or self.profiles.dest.labels:
            return {}  # Gmail to Gmail: labels are compared in each folder (sync_labels)
        records = {r.source_name: r for r in recorded}
        candidates = [
            p for p in planned.plans
            if p.refused is None and (rec := records.get(p.source_name)) is not None
            and rec.dest_name == p.dest_name and rec.state == "done"
        ]  # fmt: skip
        if not candidates:
            return {}
        dest = dict(planned.dest_status)  # LIST-STATUS, where offered; else asked now
        missing = [p.dest_name for p in candidates if p.dest_name not in dest]
        dest.update(await statuses(dst, missing, ["UIDVALIDITY"]) if missing else {})
        return {
            p.source_name: records[p.source_name]
            for p in candidates
            if unchanged(
                records[p.source_name], planned.status.get(p.source_name, {}), dest[p.dest_name]
            )
        }

    def _transfer(self) -> TransferOptions:
        s = self.settings
        return TransferOptions(
            since=s.since,
            before=s.before,
            batch_bytes=s.batch_bytes,
            batch_messages=s.batch_messages,
            memory_budget=s.memory_budget,
            only_failed=self.kind == "retry_errors",
        )

    async def _over_quota(self, exc: OverQuota) -> str:
        """Name every message left behind (a manifest row each); the pass's one line."""
        assert self.planned is not None
        reason = "not copied: the destination is over its quota"
        try:
            src = await self.connector.open("source", "left")
            try:
                left = await left_behind(
                    src, self.journal, self.planned.plans, self._transfer(), reason
                )
            finally:
                await src.logout()
        except MailmoverError as listing:
            log.warning("could not list what is left behind: %s", listing.message)
            left = {}
        for plan in self.planned.plans:
            rows = left.get(plan.source_name, [])
            result = self.results.setdefault(
                plan.source_name, FolderResult(plan.source_name, plan.dest_name, plan.note)
            )
            known = {f.uid: f for f in result.failures}
            result.failures = [known.get(row.uid, row) for row in rows]
            result.interrupted = bool(rows)
        rows_left = [f for r in self.results.values() for f in r.failures]
        copied = sum(r.copied for r in self.results.values())
        copied_mb = sum(r.copied_bytes for r in self.results.values()) / 1e6
        left_mb = sum(f.size for f in rows_left) / 1e6
        return (
            f"the destination is over its quota ({exc.message}); this run copied {copied:,} "
            f"messages ({copied_mb:,.1f} MB), {len(rows_left):,} messages ({left_mb:,.1f} MB) "
            "are left: raise the quota and run again"
        )

    async def _copy(self, planned: MailboxPlan, ready: list[Pair]) -> None:
        s, profiles = self.settings, self.profiles
        src = ready[0][0]
        labels = None
        if src.has("X-GM-EXT-1") and (profiles.dest.labels or s.gmail_labels == "primary"):
            labels = LabelPlan.for_plans(planned.plans, gmail_dest=profiles.dest.labels)
        halting = Halting(self.control)
        shared = Shared(
            self.connector, self.journal, self._transfer(), self.clock, halting, self.emit,
            profiles.dest, profiles.source, s.flag_rules, labels,
            ByteBudget(s.memory_budget), planned.sizes,
            fresh=frozenset(p.dest_name for p in planned.plans) - _listed(planned),
            create=self.create, recorded=self.recorded,
        )  # fmt: skip
        todo = [p for p in planned.plans if p.source_name not in self.skip]
        for plan in planned.plans:
            rec = self.skip.get(plan.source_name)
            if rec is not None:  # nothing new, no flag changed: not even opened
                result = FolderResult(plan.source_name, plan.dest_name, plan.note)
                result.source_messages = result.already = rec.messages_total
                self.results[plan.source_name] = result
                self.emit(FolderFinished(result.freeze()))
        count = max(1, min(profiles.connections(s.connections), len(todo)))
        # Largest folders first (by bytes when known, else by messages), so the last
        # one to finish is a small one.
        sizes = planned.sizes
        queue = sorted(todo, key=lambda p: (-sizes[p.source_name][1], -sizes[p.source_name][0]))
        try:
            shared.creator = await dedicate(ready, count, queue, self.create)
            count -= shared.creator is not None
            for unused in ready[count:]:
                await close_pair(unused, logout=True)
        except BaseException:  # cancelled before the workers took the pairs: none left open
            for pair in ready:
                await close_pair(pair, logout=False)
            if shared.creator is not None:
                await shared.creator.close(wait=False)
            raise
        workers = [Worker(shared, n, ready[n] if n < len(ready) else None) for n in range(count)]
        ended = False
        try:
            async with asyncio.TaskGroup() as group:
                for worker in workers:
                    group.create_task(worker.run(queue, self.results))
            ended = halting.requested is None
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        finally:
            for worker in workers:  # cancelled before it began: its pair is still open
                await close_pair(worker.pair, logout=False)
            if shared.creator is not None:  # its SUBSCRIBEs answered, unless stopping
                await shared.creator.close(wait=ended)
                shared.creator = None
        if shared.unnamed and halting.requested is None:
            await self._name_late(shared, shared.unnamed)
        if halting.error is not None:  # every worker stopped, what they sent recorded
            raise halting.error


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that ended the workers: a mailbox-level one first, else the first."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return next((e for e in leaves if isinstance(e, MailmoverError)), leaves[0])


def _listed(planned: MailboxPlan) -> frozenset[str]:
    """The destination's folders as listed before this pass created any."""
    return frozenset(m.name for m in planned.dest.mailboxes)


async def _collect(tasks: Sequence[asyncio.Task[Pair]]) -> list[Pair]:
    """The pairs that opened; one that failed is opened again by its worker, with retries."""
    pairs = []
    for task in tasks:
        with contextlib.suppress(MailmoverError, OSError):
            pairs.append(await task)
    if isinstance(tasks, list):
        tasks.clear()
    return pairs
