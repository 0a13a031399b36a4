"""One mailbox pair, end to end: plan the folders, then copy them in parallel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mailmover.config import Endpoint
from mailmover.engine.budget import ByteBudget
from mailmover.engine.events import FolderPlanned, FolderResult, Listener, Retrying, ignore
from mailmover.engine.flags import FlagRules
from mailmover.engine.folders import FolderPlan, Side, plan_folders
from mailmover.engine.gmail import LabelPlan, Policy
from mailmover.engine.naming import create_folders
from mailmover.engine.profile import ServerProfile, daily_cap
from mailmover.engine.retry import RetryClock, RetryPolicy
from mailmover.engine.session import SessionOptions
from mailmover.engine.transfer import TransferOptions
from mailmover.engine.worker import Pair, Shared, Worker, close_pair, open_pair, stopped
from mailmover.errors import CommandFailed, MailmoverError
from mailmover.imap.client import IMAPClient
from mailmover.imap.proto.commands import Mailbox
from mailmover.store.async_state import AsyncMailboxState
from mailmover.store.records import FolderRecord


@dataclass(frozen=True)
class MigrateOptions:
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    mapping: dict[str, str] = field(default_factory=dict)
    connections: int = 4
    dry_run: bool = False
    session: SessionOptions = field(default_factory=SessionOptions)
    transfer: TransferOptions = field(default_factory=TransferOptions)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    source_preset: str | None = None  # None: recognised from host and capabilities
    dest_preset: str | None = None
    flags: FlagRules = field(default_factory=FlagRules)
    gmail_labels: Policy = "folders"  # Gmail source, other destination: see engine.gmail


@dataclass
class Report:
    """What a run did, folder by folder."""

    source: str
    dest: str
    folders: list[FolderResult] = field(default_factory=list)
    plans: list[FolderPlan] = field(default_factory=list)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # dry run: messages, bytes
    seconds: float = 0.0
    interrupted: bool = False
    source_preset: str = ""
    dest_preset: str = ""

    @property
    def copied(self) -> int:
        return sum(f.copied for f in self.folders)

    @property
    def copied_bytes(self) -> int:
        return sum(f.copied_bytes for f in self.folders)

    @property
    def failures(self) -> int:
        return sum(len(f.failures) for f in self.folders) + sum(1 for f in self.folders if f.error)

    @property
    def complete(self) -> bool:
        return self.failures == 0 and not any(f.interrupted for f in self.folders)


async def read_side(client: IMAPClient) -> Side:
    """LIST, LSUB and NAMESPACE of one server."""
    namespace = await client.namespace() if client.has("NAMESPACE") else None
    mailboxes = await client.list_mailboxes()
    subscribed = frozenset(m.name for m in await client.list_mailboxes(lsub=True))
    return Side(mailboxes, subscribed, namespace)


async def folder_sizes(
    client: IMAPClient, plans: Sequence[FolderPlan]
) -> dict[str, tuple[int, int]]:
    """Messages and bytes per source folder (STATUS=SIZE when offered, else a FETCH).

    A folder the server will not open (deleted since LIST, or refused) counts as
    empty here; its copy says what became of it.
    """
    sizes: dict[str, tuple[int, int]] = {}
    if client.has("STATUS=SIZE"):  # one round trip for all: STATUS replies name their folder
        asked = [client.status(p.source_name, ["MESSAGES", "SIZE"]) for p in plans]
        answers = await asyncio.gather(*asked, return_exceptions=True)
        for plan, status in zip(plans, answers, strict=True):
            if isinstance(status, BaseException):
                _folder_only(status)
                status = {}
            sizes[plan.source_name] = (status.get("MESSAGES", 0), status.get("SIZE", 0))
        return sizes
    for plan in plans:
        try:
            selected = await client.examine(plan.source_name)
        except CommandFailed as exc:
            _folder_only(exc)
            sizes[plan.source_name] = (0, 0)
            continue
        total = 0
        if selected.exists:
            fetches = await client.uid_fetch(range(1, 2**32), "(UID RFC822.SIZE)")
            total = sum(f.size or 0 for f in fetches)
        sizes[plan.source_name] = (selected.exists, total)
    return sizes


def _folder_only(exc: BaseException) -> None:
    """Raise ``exc`` unless it is a refusal that concerns one folder alone."""
    if not isinstance(exc, CommandFailed) or exc.retryable:
        raise exc


async def prepare_destination(
    client: IMAPClient, plans: Sequence[FolderPlan], dest: Side, delimiter: str | None = None
) -> list[FolderPlan]:
    """Create the folders the destination lacks (empty ones too) and subscribe them.

    A name the destination refuses is replaced by the next that works (see
    engine.naming); the plans come back with the names used. The commands are
    pipelined: a hundred folders cost one round trip, not a hundred.
    """
    plans = await create_folders(client, plans, dest, delimiter or dest.delimiter or "/")
    wanted = [
        p.dest_name
        for p in plans
        if p.subscribed and p.refused is None and p.dest_name not in dest.subscribed
    ]
    sent = [client.submit("SUBSCRIBE", [Mailbox(n)]) for n in dict.fromkeys(wanted)]
    for outcome in await asyncio.gather(*sent, return_exceptions=True):
        if isinstance(outcome, BaseException):
            _folder_only(outcome)  # a refused SUBSCRIBE costs the subscription only
    return plans


async def _plan(
    source: Endpoint,
    dest: Endpoint,
    src: IMAPClient,
    dst: IMAPClient,
    options: MigrateOptions,
    state: AsyncMailboxState,
) -> tuple[list[FolderPlan], dict[str, tuple[int, int]], ServerProfile, ServerProfile]:
    """Recognise both servers, plan the folders, size them, and prepare the destination."""
    src_profile = ServerProfile.resolve(options.source_preset, source.host, src)
    dst_profile = ServerProfile.resolve(options.dest_preset, dest.host, dst)
    src_side, dst_side = await asyncio.gather(read_side(src), read_side(dst))
    plans = plan_folders(
        src_side,
        dst_side,
        include=options.include,
        exclude=options.exclude,
        mapping=options.mapping,
        source_preset=src_profile.preset,
        dest_profile=dst_profile,
    )
    plans = keep_earlier_names(plans, await state.folders(), dst_side, options.mapping)
    sizes = await folder_sizes(src, plans)
    if not options.dry_run:
        preset = dst_profile.preset
        delimiter = dst_side.delimiter or (preset.folders.separator if preset else None)
        plans = await prepare_destination(dst, plans, dst_side, delimiter)
    return plans, sizes, src_profile, dst_profile


async def _first_pair(
    source: Endpoint,
    dest: Endpoint,
    options: MigrateOptions,
    clock: RetryClock,
    emit: Listener,
    stop: asyncio.Event,
) -> Pair:
    """The first connections. Any failure is reported at once (a wrong host, port,
    certificate or password), except a provider's daily cap: that one waits."""
    by_host = (
        ServerProfile.resolve(options.source_preset, source.host, None),
        ServerProfile.resolve(options.dest_preset, dest.host, None),
    )
    while True:
        try:
            return await open_pair(source, dest, options.session, 0)
        except MailmoverError as exc:
            longest = daily_cap(exc.message, *by_host)
            pause = clock.next_pause(longest) if longest is not None else None
            if pause is None:
                raise
            emit(Retrying("(connecting)", f"daily cap reached: {exc.message}", pause))
            if await stopped(stop, pause):
                raise


def _open_early(
    source: Endpoint, dest: Endpoint, first: Pair, options: MigrateOptions
) -> list[asyncio.Task[Pair]]:
    src_profile = ServerProfile.resolve(options.source_preset, source.host, first[0])
    dst_profile = ServerProfile.resolve(options.dest_preset, dest.host, first[1])
    wanted = src_profile.connections(dst_profile.connections(options.connections))
    return [
        asyncio.create_task(open_pair(source, dest, options.session, n)) for n in range(1, wanted)
    ]


async def _collect(tasks: list[asyncio.Task[Pair]]) -> list[Pair]:
    """The pairs that opened; one that failed is opened again by its worker, with retries."""
    pairs = []
    for task in tasks:
        with contextlib.suppress(MailmoverError, OSError):
            pairs.append(await task)
    tasks.clear()
    return pairs


def keep_earlier_names(
    plans: list[FolderPlan],
    recorded: Sequence[FolderRecord],
    dest: Side,
    mapping: dict[str, str],
) -> list[FolderPlan]:
    """A folder goes where an earlier run put it, even if the plan would now differ.

    The destination changes under a migration (a Sent folder appears, a preset
    is added); a folder whose target moved would be copied a second time.
    Only ``--map`` moves a folder on purpose.
    """
    earlier = {r.source_name: r.dest_name for r in recorded}
    names = {m.name for m in dest.mailboxes}
    kept = []
    for plan in plans:
        before = earlier.get(plan.source_name)
        if before is None or before == plan.dest_name or "/".join(plan.path) in mapping:
            kept.append(plan)
            continue
        kept.append(
            replace(
                plan,
                dest_name=before,
                dest_exists=before in names,
                note=f"kept where an earlier run put it (now it would go to {plan.dest_name})",
            )
        )
    return kept


async def migrate(
    source: Endpoint,
    dest: Endpoint,
    state: AsyncMailboxState,
    options: MigrateOptions,
    emit: Listener = ignore,
    *,
    stop: asyncio.Event | None = None,
) -> Report:
    """Copy what ``source`` holds and ``dest`` lacks; see the module docstring.

    Setting ``stop`` asks the run to finish what is in flight, record it, and return.
    """
    started = time.monotonic()
    report = Report(source.url, dest.url)
    stop = stop or asyncio.Event()
    # A first connection that fails is a wrong host, port, certificate or password:
    # say so at once. Later failures are a link or a server having a bad moment.
    clock = RetryClock(options.retry)
    opened = await _first_pair(source, dest, options, clock, emit, stop)
    first: Pair | None = opened
    # The workers' connections open while the folders are planned (3 round trips each).
    early = [] if options.dry_run else _open_early(source, dest, opened, options)
    profiles = (
        ServerProfile.resolve(options.source_preset, source.host, opened[0]),
        ServerProfile.resolve(options.dest_preset, dest.host, opened[1]),
    )
    try:
        attempt = 0
        while True:
            try:
                if first is None:
                    first = await open_pair(source, dest, options.session, 0)
                src, dst = first
                planned = await _plan(source, dest, src, dst, options, state)
                break
            except MailmoverError as exc:
                await close_pair(first, logout=False)
                first = None
                longest = daily_cap(exc.message, *profiles)
                if longest is not None:  # a daily cap: pause, it is not a failure
                    pause = clock.next_pause(longest)
                    if pause is None:
                        raise
                    emit(Retrying("(planning)", f"daily cap reached: {exc.message}", pause))
                    if await stopped(stop, pause):
                        raise
                    continue
                delay = clock.next_delay(attempt, exc)
                if delay is None:
                    raise
                emit(Retrying("(planning)", exc.message, delay))
                await asyncio.sleep(delay)
                attempt += 1
        plans, sizes, src_profile, dst_profile = planned
        report.plans, report.sizes = plans, sizes
        report.source_preset, report.dest_preset = src_profile.name, dst_profile.name
        for plan in plans:
            messages, size = report.sizes[plan.source_name]
            emit(FolderPlanned(plan.source_name, plan.dest_name, messages, size))
        if options.dry_run:
            return report
        await state.set_state("running")
        src, dst = first
        labels = None
        if src.has("X-GM-EXT-1") and (dst_profile.labels or options.gmail_labels == "primary"):
            labels = LabelPlan.for_plans(plans, gmail_dest=dst_profile.labels)
        shared = Shared(
            source, dest, state, options.session, options.transfer,
            clock, stop, emit, dst_profile, src_profile, options.flags,
            labels, ByteBudget(options.transfer.memory_budget),
        )  # fmt: skip
        wanted = src_profile.connections(dst_profile.connections(options.connections))
        count = max(1, min(wanted, len(plans)))
        ready = [first, *await _collect(early)]
        first = None  # the workers own them now
        workers = [Worker(shared, n, ready[n] if n < len(ready) else None) for n in range(count)]
        for unused in ready[count:]:
            await close_pair(unused, logout=True)
        # Largest folders first, so the last one to finish is a small one.
        queue = sorted(plans, key=lambda p: -report.sizes[p.source_name][1])
        results = await asyncio.gather(*(w.run(queue) for w in workers))
        by_name = {r.source_name: r for batch in results for r in batch}
        for plan in plans:
            if plan.source_name not in by_name:
                left = FolderResult(plan.source_name, plan.dest_name, plan.note)
                left.interrupted = True
                by_name[plan.source_name] = left
            report.folders.append(by_name[plan.source_name])
        report.interrupted = stop.is_set()
        if report.interrupted:
            await state.set_state("paused")
        else:
            await state.set_state("done" if report.complete else "failed")
        return report
    finally:
        report.seconds = time.monotonic() - started
        await close_pair(first, logout=True)
        for pair in await _collect(early):  # when planning failed or was a dry run
            await close_pair(pair, logout=True)
