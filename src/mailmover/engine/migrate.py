"""One mailbox pair, end to end: plan the folders, then copy them in parallel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailmover.config import Endpoint
from mailmover.engine.events import FolderFinished, FolderPlanned, FolderResult, Listener, ignore
from mailmover.engine.folders import FolderPlan, Side, plan_folders
from mailmover.engine.session import SessionOptions, open_session
from mailmover.engine.transfer import FolderCopy, TransferOptions
from mailmover.errors import CommandFailed, MailmoverError
from mailmover.imap.client import IMAPClient
from mailmover.store.async_state import AsyncMailboxState


@dataclass(frozen=True)
class MigrateOptions:
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    mapping: dict[str, str] = field(default_factory=dict)
    connections: int = 4
    dry_run: bool = False
    session: SessionOptions = field(default_factory=SessionOptions)
    transfer: TransferOptions = field(default_factory=TransferOptions)


@dataclass
class Report:
    """What a run did, folder by folder."""

    source: str
    dest: str
    folders: list[FolderResult] = field(default_factory=list)
    plans: list[FolderPlan] = field(default_factory=list)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # dry run: messages, bytes
    seconds: float = 0.0

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
        return self.failures == 0


async def read_side(client: IMAPClient) -> Side:
    """LIST, LSUB and NAMESPACE of one server."""
    namespace = await client.namespace() if client.has("NAMESPACE") else None
    mailboxes = await client.list_mailboxes()
    subscribed = frozenset(m.name for m in await client.list_mailboxes(lsub=True))
    return Side(mailboxes, subscribed, namespace)


async def folder_sizes(
    client: IMAPClient, plans: Sequence[FolderPlan]
) -> dict[str, tuple[int, int]]:
    """Messages and bytes per source folder (STATUS=SIZE when offered, else a FETCH)."""
    sizes: dict[str, tuple[int, int]] = {}
    for plan in plans:
        if client.has("STATUS=SIZE"):
            status = await client.status(plan.source_name, ["MESSAGES", "SIZE"])
            sizes[plan.source_name] = (status.get("MESSAGES", 0), status.get("SIZE", 0))
            continue
        selected = await client.examine(plan.source_name)
        total = 0
        if selected.exists:
            fetches = await client.uid_fetch(range(1, 2**32), "(UID RFC822.SIZE)")
            total = sum(f.size or 0 for f in fetches)
        sizes[plan.source_name] = (selected.exists, total)
    return sizes


async def prepare_destination(client: IMAPClient, plans: Sequence[FolderPlan]) -> None:
    """Create the folders the destination lacks (empty ones too) and subscribe them."""
    existing = {m.name for m in await client.list_mailboxes()}
    subscribed = {m.name for m in await client.list_mailboxes(lsub=True)}
    for plan in plans:
        if plan.dest_name not in existing and plan.dest_name.upper() != "INBOX":
            try:
                await client.create(plan.dest_name)
            except CommandFailed as exc:
                if exc.code != "ALREADYEXISTS":
                    raise
            existing.add(plan.dest_name)
        if plan.subscribed and plan.dest_name not in subscribed:
            await client.subscribe(plan.dest_name)


async def migrate(
    source: Endpoint,
    dest: Endpoint,
    state: AsyncMailboxState,
    options: MigrateOptions,
    emit: Listener = ignore,
) -> Report:
    """Copy what ``source`` holds and ``dest`` lacks; see the module docstring."""
    started = time.monotonic()
    report = Report(source.url, dest.url)
    sessions = options.session
    src, dst = await asyncio.gather(
        open_session(source, sessions, "src0"), open_session(dest, sessions, "dst0")
    )
    pairs = [(src, dst)]
    try:
        src_side, dst_side = await asyncio.gather(read_side(src), read_side(dst))
        plans = plan_folders(
            src_side,
            dst_side,
            include=options.include,
            exclude=options.exclude,
            mapping=options.mapping,
        )
        report.plans = plans
        report.sizes = await folder_sizes(src, plans)
        for plan in plans:
            messages, size = report.sizes[plan.source_name]
            emit(FolderPlanned(plan.source_name, plan.dest_name, messages, size))
        if options.dry_run:
            return report
        await prepare_destination(dst, plans)
        await state.set_state("running")
        extra = max(0, min(options.connections, len(plans)) - 1)
        if extra:
            opened = await asyncio.gather(
                *(_open_pair(source, dest, sessions, n) for n in range(1, extra + 1))
            )
            pairs.extend(opened)
        # Largest folders first, so the last one to finish is a small one.
        queue = sorted(plans, key=lambda p: -report.sizes[p.source_name][1])
        results = await asyncio.gather(
            *(_worker(s, d, state, queue, options.transfer, emit) for s, d in pairs)
        )
        by_name = {r.source_name: r for batch in results for r in batch}
        for plan in plans:
            if plan.source_name not in by_name:
                lost = FolderResult(plan.source_name, plan.dest_name, plan.note)
                lost.error = "not reached: every connection was lost"
                by_name[plan.source_name] = lost
            report.folders.append(by_name[plan.source_name])
        await state.set_state("done" if report.complete else "failed")
        return report
    finally:
        report.seconds = time.monotonic() - started
        await asyncio.gather(*(c.logout() for pair in pairs for c in pair))


async def _open_pair(
    source: Endpoint, dest: Endpoint, options: SessionOptions, n: int
) -> tuple[IMAPClient, IMAPClient]:
    return await asyncio.gather(
        open_session(source, options, f"src{n}"), open_session(dest, options, f"dst{n}")
    )


async def _worker(
    src: IMAPClient,
    dst: IMAPClient,
    state: AsyncMailboxState,
    queue: list[FolderPlan],
    options: TransferOptions,
    emit: Listener,
) -> list[FolderResult]:
    results = []
    while queue:
        plan = queue.pop(0)
        try:
            result = await FolderCopy(src, dst, state, plan, options, emit).run()
        except MailmoverError as exc:
            if exc.retryable or isinstance(exc, CommandFailed):
                result = FolderResult(plan.source_name, plan.dest_name, plan.note)
                result.error = exc.message
            else:
                raise
        results.append(result)
        emit(FolderFinished(result))
        if src.broken or dst.broken:
            break  # leave the other folders to the connections that still work
    return results
