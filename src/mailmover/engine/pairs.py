"""A pair of connections working through the folder queue, reconnecting when a link drops.

A transient failure (a cut connection, a timeout, BYE, a throttling reply)
costs the folder being copied one reconnect and a backoff (next to none after
a cut of a pair that was logged in: the servers answer, the link dropped;
engine.retry), then that folder
goes on from what the journal says is done and what the failed attempt handed
over (see engine.attempt): never the whole mailbox. The next attempt takes
smaller batches. The backoff is the folder's own and starts over whenever an
attempt made progress. Retrying stops once the folder went the retry budget
without progress: the folder then fails with the last reason, everything
copied so far recorded; when the whole mailbox went that long without
progress, the pass ends (every other folder would wait too). A pause or a
cancel during a backoff ends the folder as interrupted, not failed. A refusal
that concerns one folder (a name no substitute made acceptable, a folder the
destination will not open) fails that folder alone; a folder deleted on the
source during the copy ends with what was copied and a note saying so; an
unexpected error (a fault of ours) costs its folder, not the mailbox.

Errors that no folder can get past (credentials refused, certificate refused,
the destination over its quota) are raised: the pass ends for the mailbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mailmover.engine.attempt import new_carry
from mailmover.engine.budget import ByteBudget
from mailmover.engine.creator import Creator
from mailmover.engine.events import FolderFinished, Listener, Retrying
from mailmover.engine.flags import FlagRewrite
from mailmover.engine.folders import FolderPlan
from mailmover.engine.gmail import LabelPlan
from mailmover.engine.options import TransferOptions
from mailmover.engine.ports import Control, Journal, Stop
from mailmover.engine.profile import ServerProfile, daily_cap
from mailmover.engine.report import FolderResult
from mailmover.engine.retry import RetryClock
from mailmover.engine.session import Connector, Pair, close_pair
from mailmover.engine.smallfolders import Destination, SmallFolders
from mailmover.engine.transfer import FolderCopy
from mailmover.errors import (
    CommandFailed,
    ConnectionLost,
    MailmoverError,
    OverQuota,
    RetriesExhausted,
)

log = logging.getLogger(__name__)
DELETED = "deleted on the source during the copy"


class Halting:
    """The caller's control, which also stops every worker once the mailbox must stop
    (the destination over its quota): as with a pause, no APPEND starts, and those in
    flight are answered and recorded, so that what is left is named exactly."""

    def __init__(self, control: Control) -> None:
        self.control = control
        self.error: OverQuota | None = None

    @property
    def requested(self) -> Stop | None:
        return self.control.requested or ("pause" if self.error is not None else None)

    async def wait(self, seconds: float) -> bool:
        return await self.control.wait(seconds) or self.error is not None


@dataclass
class Shared:
    """What every worker of one mailbox shares."""

    connector: Connector
    journal: Journal
    transfer: TransferOptions
    clock: RetryClock
    control: Halting
    emit: Listener
    dest_profile: ServerProfile | None = None
    source_profile: ServerProfile | None = None
    flags: FlagRewrite | None = None
    labels: LabelPlan | None = None
    budget: ByteBudget | None = None
    sizes: dict[str, tuple[int, int]] | None = None  # source folder → (messages, bytes) planned
    fresh: frozenset[str] = frozenset()  # destination folders this pass created
    create: frozenset[str] = frozenset()  # destination folders the workers create
    unnamed: list[FolderPlan] = field(default_factory=list)  # their CREATE failed
    unnamed_error: MailmoverError | None = None  # why, when a retry can mend it
    recorded: frozenset[str] = frozenset()  # source folders the journal knows
    destination: Destination = field(default_factory=Destination)
    creator: Creator | None = None  # creates the workers' folders ahead (engine.creator)


class Worker:
    def __init__(self, shared: Shared, n: int, pair: Pair | None) -> None:
        self.shared, self.n, self.pair = shared, n, pair
        self.small = SmallFolders(shared)

    async def run(self, queue: list[FolderPlan], results: dict[str, FolderResult]) -> None:
        """Take folders from ``queue`` until it is empty or a stop is requested.

        Each folder's result goes into ``results`` as soon as it starts, so that a
        pass that ends early still reports what every folder did. Small folders on
        their first copy go several at once (engine.smallfolders); any other folder
        waits until they are done, as does one they hand back.
        """
        try:
            while queue and self.shared.control.requested is None:
                plan = queue.pop(0)
                result = FolderResult(plan.source_name, plan.dest_name, plan.note)
                results[plan.source_name] = result
                if await self._small(plan, result):
                    continue
                await self._drain()
                await self._one(plan, result)
            await self._drain()
        finally:
            await self.small.cancel()
            await close_pair(self.pair, logout=True)
            self.pair = None

    async def _small(self, plan: FolderPlan, result: FolderResult) -> bool:
        """Whether ``plan`` was put under way the short way."""
        if not self.small.takes(plan, self.pair[1] if self.pair else None):
            return False
        if self.small.troubled or (
            self.pair is not None and (self.pair[0].broken or self.pair[1].broken)
        ):
            await self._drain()  # throttled or cut: the ordinary copy waits, then retries
        if self.pair is None:
            try:
                self.pair = await self.shared.connector.open_pair(self.n)
            except MailmoverError:
                return False  # the ordinary way opens it, with retries
            if not self.small.takes(plan, self.pair[1]):
                return False
        await self.small.start(plan, result, self.pair)
        return True

    async def _drain(self) -> None:
        """Wait for the small folders in flight; copy those handed back the ordinary way."""
        returned = await self.small.drain()
        if self.pair is not None and (self.pair[0].broken or self.pair[1].broken):
            await close_pair(self.pair, logout=False)
            self.pair = None
        for back in returned:
            await self._one(back.plan, back.result, back.error)

    async def _one(
        self, plan: FolderPlan, result: FolderResult, failed: MailmoverError | None = None
    ) -> None:
        try:
            await self.folder(plan, result, failed)
        except BaseException:
            result.interrupted = not result.error  # cut short by the pass ending
            raise
        self.shared.emit(FolderFinished(result.freeze()))

    async def folder(
        self, plan: FolderPlan, result: FolderResult, failed: MailmoverError | None = None
    ) -> None:
        """Copy one folder, retrying what a retry can mend; ``failed``: what a first
        attempt (engine.smallfolders) met, waited for as after any failed attempt."""
        s = self.shared
        if plan.refused is not None:  # no name worked on the destination
            result.error, result.refused = plan.refused, True
            return
        opts = s.transfer
        carry = new_carry(plan, opts.batch_bytes, opts.batch_messages, s.clock.backoff(), result)
        delay = carry.backoff.next_delay(failed) if failed is not None else None
        if failed is not None and delay is not None:
            s.emit(Retrying(plan.source_name, failed.message, delay, "folder"))
            if await s.control.wait(delay):
                result.interrupted = True
                return
        while True:
            try:
                if self.pair is None:
                    self.pair = await s.connector.open_pair(self.n)
                src, dst = self.pair
                copy = FolderCopy(
                    src, dst, s.journal, plan, s.transfer, s.emit,
                    control=s.control, dest=s.dest_profile, rules=s.flags, labels=s.labels,
                    carry=carry, budget=s.budget,
                    expected=(s.sizes or {}).get(plan.source_name),
                )  # fmt: skip
                await copy.run()
                return
            except MailmoverError as exc:
                longest = daily_cap(exc.message, s.source_profile, s.dest_profile)
                if longest is None and isinstance(exc, OverQuota):
                    # Every other folder would hit it too: all stop, then the pass ends.
                    s.control.error = s.control.error or exc
                    result.interrupted = True
                    return
                if longest is not None:
                    await close_pair(self.pair, logout=False)
                    self.pair = None
                    pause = s.clock.next_pause(longest)
                    if pause is None:
                        result.error = f"daily cap still reached: {exc.message}"
                        return
                    reason = f"daily cap reached: {exc.message}"
                    s.emit(Retrying(plan.source_name, reason, pause, "mailbox"))
                    if await s.control.wait(pause):
                        result.interrupted = True
                        return
                    continue
                if not exc.retryable:
                    if isinstance(exc, CommandFailed):  # this folder only: e.g. cannot select
                        # A refusal from a source that no longer lists the folder (EXAMINE,
                        # or a FETCH on servers that do not end the session): deleted there.
                        if await self._gone(plan):
                            result.note = DELETED if not plan.note else f"{plan.note}; {DELETED}"
                            return
                        result.error, result.refused = exc.message, True
                        return
                    raise  # credentials or certificate refused: the mailbox cannot go on
                if self.pair is not None and _cut(exc):
                    # Cut after both sides logged in: the servers answer, the link dropped.
                    carry.backoff.working()
                await close_pair(self.pair, logout=False)
                self.pair = None
                carry.size.shrink()
                delay = carry.backoff.next_delay(exc)
                if delay is None:
                    stalled = carry.backoff.stalled
                    result.error = f"{exc.message} (gave up after {stalled:.0f} s without progress)"
                    if carry.backoff.whole_stalled:  # every other folder would wait too
                        raise RetriesExhausted(result.error, exc) from exc
                    return
                log.info("%s: %s; retrying in %.1f s", plan.source_name, exc.message, delay)
                s.emit(Retrying(plan.source_name, exc.message, delay, "folder"))
                if await s.control.wait(delay):
                    result.interrupted = True
                    return
            except Exception as exc:  # a fault of ours: it costs this folder, not the mailbox
                log.exception("%s: unexpected error", plan.source_name)
                await close_pair(self.pair, logout=False)
                self.pair = None
                result.error = f"internal error: {type(exc).__name__}: {exc}"
                return

    async def _gone(self, plan: FolderPlan) -> bool:
        """Whether the source no longer lists the folder (False when it cannot tell)."""
        if self.pair is None:
            return False
        try:
            listed = await self.pair[0].list_mailboxes("", plan.source_name)
        except MailmoverError:
            return False
        return all(m.name != plan.source_name for m in listed)


def _cut(error: MailmoverError | None) -> bool:
    """Whether ``error`` says the link dropped, with no word from the server (a BYE)."""
    return isinstance(error, ConnectionLost) and error.bye is None
