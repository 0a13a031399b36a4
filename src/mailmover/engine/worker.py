"""A pair of connections working through the folder queue, reconnecting when a link drops.

A transient failure (a cut connection, a timeout, BYE, a throttling reply)
costs the folder being copied one reconnect and a backoff, then that folder
goes on from what the state says is done: never the whole mailbox. Retrying
stops when the mailbox's retry budget is spent; the folder then fails with
the last reason, and everything copied so far stays recorded. A refusal that
concerns one folder (a name no substitute made acceptable, a folder the
destination will not open) fails that folder alone; a folder deleted on the
source during the copy ends with what was copied and a note saying so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from mailmover.config import Endpoint
from mailmover.engine.budget import ByteBudget
from mailmover.engine.events import FolderFinished, FolderResult, Listener, Retrying
from mailmover.engine.flags import FlagRules
from mailmover.engine.folders import FolderPlan
from mailmover.engine.gmail import LabelPlan
from mailmover.engine.profile import ServerProfile, daily_cap
from mailmover.engine.retry import RetryClock
from mailmover.engine.session import SessionOptions, open_session
from mailmover.engine.transfer import FolderCopy, TransferOptions
from mailmover.errors import CommandFailed, MailboxMissing, MailmoverError
from mailmover.imap.client import IMAPClient
from mailmover.store.async_state import AsyncMailboxState

log = logging.getLogger(__name__)
DELETED = "deleted on the source during the copy"
Pair = tuple[IMAPClient, IMAPClient]


@dataclass
class Shared:
    """What every worker of one mailbox shares."""

    source: Endpoint
    dest: Endpoint
    state: AsyncMailboxState
    session: SessionOptions
    transfer: TransferOptions
    clock: RetryClock
    stop: asyncio.Event
    emit: Listener
    dest_profile: ServerProfile | None = None
    source_profile: ServerProfile | None = None
    flags: FlagRules | None = None
    labels: LabelPlan | None = None
    budget: ByteBudget | None = None


async def open_pair(source: Endpoint, dest: Endpoint, options: SessionOptions, n: int) -> Pair:
    src, dst = await asyncio.gather(
        open_session(source, options, f"src{n}"),
        open_session(dest, options, f"dst{n}"),
        return_exceptions=True,
    )
    if isinstance(src, BaseException) or isinstance(dst, BaseException):
        for client in (src, dst):
            if isinstance(client, IMAPClient):
                await client.close()
        raise src if isinstance(src, BaseException) else dst  # type: ignore[misc]
    return src, dst


async def close_pair(pair: Pair | None, *, logout: bool) -> None:
    if pair is None:
        return
    await asyncio.gather(*((c.logout() if logout else c.close()) for c in pair))


class Worker:
    def __init__(self, shared: Shared, n: int, pair: Pair | None) -> None:
        self.shared, self.n, self.pair = shared, n, pair

    async def run(self, queue: list[FolderPlan]) -> list[FolderResult]:
        results = []
        try:
            while queue and not self.shared.stop.is_set():
                plan = queue.pop(0)
                result = await self.folder(plan)
                results.append(result)
                self.shared.emit(FolderFinished(result))
        finally:
            await close_pair(self.pair, logout=True)
            self.pair = None
        return results

    async def folder(self, plan: FolderPlan) -> FolderResult:
        s = self.shared
        if plan.refused is not None:  # no name worked on the destination
            return _failed(plan, plan.refused, None, refused=True)
        attempt = 0
        result = None  # carried from one attempt to the next
        while True:
            try:
                if self.pair is None:
                    self.pair = await open_pair(s.source, s.dest, s.session, self.n)
                src, dst = self.pair
                copy = FolderCopy(
                    src, dst, s.state, plan, s.transfer, s.emit,
                    stop=s.stop, dest=s.dest_profile, rules=s.flags, labels=s.labels,
                    result=result, budget=s.budget,
                )  # fmt: skip
                result = copy.result
                return await copy.run()
            except MailmoverError as exc:
                longest = daily_cap(exc.message, s.source_profile, s.dest_profile)
                if longest is not None:
                    await close_pair(self.pair, logout=False)
                    self.pair = None
                    pause = s.clock.next_pause(longest)
                    if pause is None:
                        return _failed(plan, f"daily cap still reached: {exc.message}", result)
                    s.emit(Retrying(plan.source_name, f"daily cap reached: {exc.message}", pause))
                    if await stopped(s.stop, pause):
                        return _failed(plan, f"stopped while paused: {exc.message}", result)
                    continue
                if isinstance(exc, MailboxMissing) and exc.command == "EXAMINE":
                    # Only the source is examined: gone from its LIST, it was deleted there.
                    if await self._gone(plan):
                        result = result or FolderResult(plan.source_name, plan.dest_name)
                        result.note = DELETED if not plan.note else f"{plan.note}; {DELETED}"
                        return result
                    return _failed(plan, exc.message, result, refused=True)
                if not exc.retryable:
                    if isinstance(exc, CommandFailed):  # this folder only: e.g. cannot select
                        return _failed(plan, exc.message, result, refused=True)
                    raise  # credentials or certificate refused: the mailbox cannot go on
                await close_pair(self.pair, logout=False)
                self.pair = None
                delay = s.clock.next_delay(attempt, exc)
                if delay is None:
                    waited = s.clock.waited
                    return _failed(
                        plan, f"{exc.message} (gave up after {waited:.0f} s of retries)", result
                    )
                log.info("%s: %s; retrying in %.1f s", plan.source_name, exc.message, delay)
                s.emit(Retrying(plan.source_name, exc.message, delay))
                if await stopped(s.stop, delay):
                    return _failed(plan, f"stopped while waiting to retry: {exc.message}", result)
                attempt += 1
            except Exception as exc:  # a fault of ours: it costs this folder, not the mailbox
                log.exception("%s: unexpected error", plan.source_name)
                await close_pair(self.pair, logout=False)
                self.pair = None
                return _failed(plan, f"internal error: {type(exc).__name__}: {exc}", result)

    async def _gone(self, plan: FolderPlan) -> bool:
        """Whether the source no longer lists the folder (False when it cannot tell)."""
        if self.pair is None:
            return False
        try:
            listed = await self.pair[0].list_mailboxes("", plan.source_name)
        except MailmoverError:
            return False
        return all(m.name != plan.source_name for m in listed)


async def stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``; True when asked to stop meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except TimeoutError:
        return False


def _failed(
    plan: FolderPlan, reason: str, result: FolderResult | None, *, refused: bool = False
) -> FolderResult:
    """The folder's result so far (what earlier attempts copied), ended by ``reason``."""
    result = result or FolderResult(plan.source_name, plan.dest_name, plan.note)
    result.error, result.refused = reason, refused
    return result
