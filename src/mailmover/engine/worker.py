"""A pair of connections working through the folder queue, reconnecting when a link drops.

A transient failure (a cut connection, a timeout, BYE, a throttling reply)
costs the folder being copied one reconnect and a backoff, then that folder
goes on from what the state says is done and what the failed attempt handed
over (see engine.attempt): never the whole mailbox. The next attempt takes
smaller batches. The backoff is the folder's own and starts over whenever an
attempt made progress; retrying stops once the folder went the retry budget
without progress, and it then fails with the last reason, everything copied
so far recorded.
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
from mailmover.engine.transfer import FolderCopy, TransferOptions, new_carry
from mailmover.errors import CommandFailed, MailmoverError
from mailmover.imap.client import IMAPClient
from mailmover.store.async_state import AsyncMailboxState

log = logging.getLogger(__name__)
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
        carry = new_carry(plan, s.transfer, s.clock.backoff())  # from one attempt to the next
        result = carry.result
        while True:
            try:
                if self.pair is None:
                    self.pair = await open_pair(s.source, s.dest, s.session, self.n)
                src, dst = self.pair
                copy = FolderCopy(
                    src, dst, s.state, plan, s.transfer, s.emit,
                    stop=s.stop, dest=s.dest_profile, rules=s.flags, labels=s.labels,
                    carry=carry, budget=s.budget,
                )  # fmt: skip
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
                if not exc.retryable:
                    if isinstance(exc, CommandFailed):  # this folder only: e.g. cannot select
                        return _failed(plan, exc.message, result)
                    raise  # credentials or certificate refused: the mailbox cannot go on
                await close_pair(self.pair, logout=False)
                self.pair = None
                carry.size.shrink()
                delay = carry.backoff.next_delay(exc)
                if delay is None:
                    stalled = carry.backoff.stalled
                    return _failed(
                        plan, f"{exc.message} (gave up after {stalled:.0f} s without progress)",
                        result,
                    )  # fmt: skip
                log.info("%s: %s; retrying in %.1f s", plan.source_name, exc.message, delay)
                s.emit(Retrying(plan.source_name, exc.message, delay))
                if await stopped(s.stop, delay):
                    return _failed(plan, f"stopped while waiting to retry: {exc.message}", result)


async def stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``; True when asked to stop meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except TimeoutError:
        return False


def _failed(plan: FolderPlan, reason: str, result: FolderResult | None) -> FolderResult:
    """The folder's result so far (what earlier attempts copied), ended by ``reason``."""
    result = result or FolderResult(plan.source_name, plan.dest_name, plan.note)
    result.error = reason
    return result
