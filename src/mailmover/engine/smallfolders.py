"""Small folders on their first copy: two commands a side, several folders in flight.

A folder qualifies when the planning STATUS says it holds 1 to ``PREFETCH``
messages and at most ``PREFETCH_BYTES`` (and no more than one batch), it was
never copied (the journal has no record of it), its destination folder was
created by this pass or is to be created by the worker itself, and holds
nothing (a STATUS sent with its opening says so: a late-named folder may
settle on a name already there), the destination gives APPENDUIDs (UIDPLUS), and no date
filter, Gmail labels or retry of failures is asked for. Its whole copy is
then the source's EXAMINE, UID SEARCH and one UID FETCH of metadata and
bodies, sent together, and one (MULTI)APPEND naming the destination folder.

No SELECT is needed on the destination (APPEND names its mailbox; the
destination's PERMANENTFLAGS are read once, from the first such folder a
worker opens), so a worker keeps up to ``IN_FLIGHT`` folders under way: the
next folder's EXAMINE goes without waiting for the previous folder's answers
(``examine(behind=True)``: the server answers those first), and the APPENDs
follow each other on the destination. A folder the worker creates gets its
CREATE (and SUBSCRIBE) sent with its EXAMINE, so creating thousands of
folders overlaps the copy and is spread over the connections; its APPEND goes
only once the CREATE is answered. A folder whose CREATE fails is left to the
pass (``Shared.unnamed``), which finds it a name by the ladder of
engine.naming once the workers are done. With thousands of small folders the
round trips, not the messages, are the time. What a worker holds is bounded
by ``IN_FLIGHT`` folders of at most ``PREFETCH_BYTES``; the APPENDs in flight
are counted against the mailbox's byte budget.

Anything out of the ordinary (a message without a date, a body that is not
its announced size, a message deleted meanwhile, one larger than the
destination takes, a refused APPEND, a cut link, a throttling reply) hands
the folder back to the ordinary copy (engine.transfer), with nothing recorded
but what the destination confirmed; after a cut or a throttling reply it
waits first, as after any failed attempt, and the worker starts no other
small folder before those handed back are copied. A destination over its
quota stops every worker, as in the ordinary copy (engine.pairs).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailmover.engine.batches import PER_MESSAGE
from mailmover.engine.creator import exists_already, subscribe_after
from mailmover.engine.events import BatchCopied, FolderFinished, FolderStarted
from mailmover.engine.flags import FlagPolicy, FlagRewrite
from mailmover.engine.folders import FolderPlan
from mailmover.engine.headers import message_id
from mailmover.engine.listing import META
from mailmover.engine.opening import PREFETCH, PREFETCH_BYTES
from mailmover.engine.profile import daily_cap
from mailmover.engine.report import FolderResult
from mailmover.errors import CommandFailed, MailmoverError, OverQuota
from mailmover.imap.client import IMAPClient, Message, Result, SelectedMailbox, append_results
from mailmover.imap.proto.commands import Atom, Mailbox
from mailmover.imap.proto.responses import Fetch
from mailmover.store.records import FolderRecord, MessageRecord

if TYPE_CHECKING:
    from mailmover.engine.pairs import Shared

log = logging.getLogger(__name__)

IN_FLIGHT = 8  # small folders a worker has under way at once
BODIES = f"{META[:-1]} BODY.PEEK[])"


@dataclass
class Destination:
    """What the destination's folders accept, read once from a SELECT (None: not yet)."""

    permanent: tuple[str, ...] | None = None
    known: bool = False


@dataclass
class SmallFolders:
    """The small folders one worker has in flight; those handed back are in ``returned``."""

    shared: Shared
    tasks: list[asyncio.Task[bool]] = field(default_factory=list)
    returned: list[Returned] = field(default_factory=list)
    troubled: bool = False  # one was refused in a way a wait may mend: drain first

    def takes(self, plan: FolderPlan, dst: IMAPClient | None) -> bool:
        """Whether ``plan`` goes the short way (see the module docstring)."""
        s = self.shared
        opts = s.transfer
        messages, size = (s.sizes or {}).get(plan.source_name, (0, 0))
        return (
            plan.refused is None
            and not plan.unlabelled_only
            and (plan.dest_name in s.fresh or plan.dest_name in s.create)
            and plan.source_name not in s.recorded
            and s.labels is None
            and not opts.only_failed
            and opts.since is None
            and opts.before is None
            and 0 < messages <= min(PREFETCH, opts.batch_messages)
            and 0 < size <= min(PREFETCH_BYTES, opts.batch_bytes)
            and (dst is None or dst.has("UIDPLUS"))
        )

    async def start(
        self,
        plan: FolderPlan,
        result: FolderResult,
        pair: tuple[IMAPClient, IMAPClient],
    ) -> None:
        """Put ``plan`` under way on ``pair``; waits while ``IN_FLIGHT`` folders are."""
        while len(self.tasks) >= IN_FLIGHT:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
            self.tasks = [t for t in self.tasks if not t.done()]
        copy = _SmallCopy(self.shared, plan, result, *pair)
        first = copy.send()  # queued now, so that folders go in the order they started
        task = asyncio.create_task(self._finish(copy, first))
        self.tasks.append(task)

    async def _finish(self, copy: _SmallCopy, sent: Awaitable[_Opened]) -> bool:
        try:
            done = await copy.finish(sent)
        except Exception as exc:  # anything unusual: the ordinary copy deals with it
            if isinstance(exc, MailmoverError | _HandBack):
                log.debug("%s: handed back (%s)", copy.plan.source_name, exc)
            else:  # a fault of ours: the ordinary copy still copies the folder
                log.exception("%s: handed back after an unexpected error", copy.plan.source_name)
            if isinstance(exc, MailmoverError) and exc.retryable:
                copy.error = copy.error or exc
            done = False
        if done:
            self.shared.emit(FolderFinished(copy.result.freeze()))
        elif copy.created is not None and not copy.created_ok:
            copy.result.interrupted = True  # until the pass names and copies it
            self.shared.unnamed.append(copy.plan)
            self.shared.unnamed_error = self.shared.unnamed_error or copy.error
        else:
            self.returned.append(Returned(copy.plan, copy.result, copy.error))
            self.troubled = self.troubled or copy.error is not None
        return done

    async def drain(self) -> list[Returned]:
        """Wait for every folder in flight; the ones handed back, in the order they started."""
        if self.tasks:
            await asyncio.gather(*self.tasks)
        self.tasks = []
        returned, self.returned = self.returned, []
        self.troubled = False
        return returned

    async def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []


@dataclass
class Returned:
    """A folder handed back, and the error that a retry can mend (it waits first)."""

    plan: FolderPlan
    result: FolderResult
    error: MailmoverError | None = None


@dataclass
class _Opened:
    source: SelectedMailbox
    uids: list[int]
    fetches: list[Fetch]
    dest: SelectedMailbox | None
    held: int | None  # the destination folder's STATUS MESSAGES


class _HandBack(Exception):
    """This folder is not for the short way after all."""


class _SmallCopy:
    def __init__(
        self,
        shared: Shared,
        plan: FolderPlan,
        result: FolderResult,
        src: IMAPClient,
        dst: IMAPClient,
    ) -> None:
        self.shared, self.plan, self.result, self.src, self.dst = shared, plan, result, src, dst
        self.created: asyncio.Future[Result] | None = None  # the CREATE, when ours to send
        self.ahead = False  # ``created`` is the creator's (engine.creator)
        self.created_ok = False
        self.error: MailmoverError | None = None  # a refusal a retry can mend (throttled)

    def send(self) -> Awaitable[_Opened]:
        """Queue the source's EXAMINE, UID SEARCH and FETCH, and on the destination the
        CREATE and SUBSCRIBE when the folder is ours to create, else a STATUS (a folder
        of that name may be there already, holding mail) and, the first time, a SELECT;
        the commands keep the order they were queued in."""
        src, dst, name, creator = self.src, self.dst, self.plan.dest_name, self.shared.creator
        held: asyncio.Future[dict[str, int]] | None = None
        ahead = None
        if name in self.shared.create:
            if creator is not None and not creator.client.broken:  # else ours to send
                ahead = creator.created(name)
            self.created = ahead or dst.submit("CREATE", [Mailbox(name)])
            self.ahead = ahead is not None
            if ahead is None:
                subscribe_after(dst, self.created, self.plan)
        else:  # a CREATE answered OK says the folder is new; STATUS asks only otherwise
            held = asyncio.ensure_future(dst.status(name, ["MESSAGES"]))
        sel = asyncio.ensure_future(src.examine(self.plan.source_name, behind=True))
        search = asyncio.ensure_future(src.uid_search(Atom("ALL")))
        fetch = asyncio.ensure_future(src.uid_fetch(range(1, 2**32), BODIES))
        dsel = None
        if not self.shared.destination.known:  # once created, when another connection does
            dsel = asyncio.ensure_future(_select_after(ahead, dst, name))
        opened = asyncio.ensure_future(_opened(sel, search, fetch, dsel, held))
        opened.add_done_callback(lambda t: t.cancelled() or t.exception())
        return opened

    async def _create(self) -> None:
        """Wait for the folder's CREATE; one the creator sent but its link lost (the
        creator's, not this worker's) is sent again here."""
        assert self.created is not None
        try:
            await self.created
        except CommandFailed:
            raise
        except MailmoverError:
            if not self.ahead or self.dst.broken:
                raise
            self.ahead = False
            self.created = self.dst.submit("CREATE", [Mailbox(self.plan.dest_name)])
            subscribe_after(self.dst, self.created, self.plan)
            await self.created

    async def finish(self, sent: Awaitable[_Opened]) -> bool:
        """Copy what was read; False when the folder is handed back."""
        s, plan = self.shared, self.plan
        if self.created is not None:
            try:
                await self._create()
            except CommandFailed as exc:
                if exc.retryable or not exists_already(exc):
                    with contextlib.suppress(Exception):
                        await sent
                    raise  # the pass finds it a name
                # There after all (Dovecot's list index says so of some folders created
                # by several sessions at once): still ours to fill if it holds nothing.
                self.created_ok = True
                status = await self.dst.status(plan.dest_name, ["MESSAGES"])
                if status.get("MESSAGES") != 0:  # with mail, or no answer: the hash index decides
                    with contextlib.suppress(Exception):
                        await sent
                    return False
            self.created_ok = True
        opened = await sent
        if opened.held != 0:  # there already with mail (or no answer): the hash index decides
            return False
        if opened.dest is not None:
            if opened.dest.exists:
                return False  # not empty after all
            s.destination.permanent = opened.dest.permanentflags
            s.destination.known = True
        found = {f.uid: f for f in opened.fetches if f.uid is not None}
        if not opened.uids or set(opened.uids) != set(found):
            return False
        limit = s.dest_profile.max_message_size if s.dest_profile else None
        policy = FlagPolicy(
            None if s.destination.permanent is None else frozenset(s.destination.permanent),
            keywords=s.dest_profile.keywords if s.dest_profile else None,
            refuses=s.dest_profile.refuses if s.dest_profile else FlagPolicy.refuses,
            rules=s.flags or FlagRewrite(),
        )
        bodies: list[bytes] = []
        messages: list[Message] = []
        kept: list[tuple[str, ...]] = []
        dropped = 0
        for uid in sorted(opened.uids):
            f = found[uid]
            body = f.body.get("")
            if not f.size or body is None or len(body) != f.size or f.internaldate is None:
                return False  # deleted meanwhile, short, or undated: the ordinary way names it
            if limit is not None and f.size > limit:
                return False
            flags, lost = policy.keep(f.flags or ())
            dropped += lost
            bodies.append(body)
            kept.append(flags)
            messages.append(Message(body, flags, f.internaldate))
        total = sum(len(b) for b in bodies)
        if s.control.requested is not None:  # no APPEND starts after a pause or cancel
            return self._stopped(len(opened.uids))
        held = total + PER_MESSAGE * len(messages)
        budget = s.budget
        if budget is not None:
            await budget.acquire(held)
            if s.control.requested is not None:  # asked while waiting for the budget
                await budget.release(held)
                return self._stopped(len(opened.uids))
        # The APPENDs go now: from here on, what the destination confirms is recorded,
        # even when the worker is cancelled meanwhile (the next pass would look for it).
        settled = asyncio.ensure_future(
            self._settle(self._append(messages), held, opened, found, bodies, kept, dropped)
        )
        try:
            return await asyncio.shield(settled)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await settled
            raise

    async def _settle(
        self,
        sent: Awaitable[list[tuple[int, int | None] | None]],
        held: int,
        opened: _Opened,
        found: Mapping[int, Fetch],
        bodies: Sequence[bytes],
        kept: Sequence[tuple[str, ...]],
        dropped: int,
    ) -> bool:
        """Record what the APPENDs ``sent`` stored; True when the folder is done."""
        s, plan, result = self.shared, self.plan, self.result
        try:
            answers = await sent
        finally:
            if s.budget is not None:
                await s.budget.release(held)
        uids = sorted(opened.uids)
        appended = [(uid, a) for uid, a in zip(uids, answers, strict=True) if a is not None]
        if not appended:
            return False
        validity = appended[0][1][0]
        rec = await s.journal.save_folder(
            FolderRecord(
                None, plan.source_name, plan.dest_name,
                source_uidvalidity=opened.source.uidvalidity, dest_uidvalidity=validity,
                subscribed=plan.subscribed, state="running",
            )
        )  # fmt: skip
        assert rec.id is not None
        records = []
        for uid, (dest_validity, dest_uid) in appended:
            n = uids.index(uid)
            body = bodies[n]
            f = found[uid]
            assert f.internaldate is not None
            records.append(
                MessageRecord(
                    opened.source.uidvalidity, uid, len(body), f.internaldate, "done",
                    dest_validity, dest_uid, message_id(body), hashlib.sha256(body).digest(),
                    kept[n],
                )
            )  # fmt: skip
            result.attempted.add(uid)
        await s.journal.record_messages(rec.id, records)
        copied_bytes = sum(r.size for r in records)
        result.copied += len(records)
        result.copied_bytes += copied_bytes
        # Started for what it copied only: a folder handed back is started again by the
        # ordinary copy for the rest, and progress totals add what each start names.
        s.emit(FolderStarted(plan.source_name, len(records), copied_bytes))
        s.emit(
            BatchCopied(plan.source_name, len(records), copied_bytes, len(records), copied_bytes)
        )
        if len(records) < len(uids):
            return False  # the ordinary copy sends the rest
        result.source_messages = len(uids)
        result.flags_dropped += dropped
        rec.source_uidnext = opened.source.uidnext
        rec.highestmodseq = opened.source.highestmodseq
        rec.messages_total = len(uids)
        rec.bytes_total = sum(len(b) for b in bodies)
        rec.state = "done"
        await s.journal.save_folder(rec)
        return True

    def _stopped(self, messages: int) -> bool:
        """End the folder as interrupted, nothing appended (a pause or cancel came)."""
        self.result.source_messages = messages
        self.result.interrupted = True
        return True

    def _append(self, messages: list[Message]) -> Awaitable[list[tuple[int, int | None] | None]]:
        """Queue the APPEND (or one MULTIAPPEND) now; awaited, it gives the (destination
        UIDVALIDITY, UID) of each message stored, None where refused."""
        dst, name = self.dst, self.plan.dest_name
        if len(messages) > 1 and dst.has("MULTIAPPEND"):
            return self._multi(dst.multiappend_nowait(name, messages), len(messages))
        return self._each([dst.append_nowait(name, m) for m in messages])

    async def _multi(
        self, sent: Awaitable[Result], count: int
    ) -> list[tuple[int, int | None] | None]:
        try:
            stored = append_results(await sent, count)
        except MailmoverError as exc:
            self._refused(exc)
            return [None] * count
        return [_uid(a.uidvalidity, a.uid) for a in stored]

    async def _each(
        self, futures: Sequence[Awaitable[Result]]
    ) -> list[tuple[int, int | None] | None]:
        out: list[tuple[int, int | None] | None] = []
        for answer in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, MailmoverError):
                    self._refused(answer)
                out.append(None)
                continue
            (a,) = append_results(answer, 1)
            out.append(_uid(a.uidvalidity, a.uid))
        return out

    def _refused(self, exc: MailmoverError) -> None:
        """Note an APPEND's refusal: over quota stops every worker (as the ordinary copy
        does); a daily cap or what a retry can mend makes the worker drain and wait."""
        s = self.shared
        cap = daily_cap(exc.message, s.source_profile, s.dest_profile) is not None
        if isinstance(exc, OverQuota) and not cap:
            s.control.error = s.control.error or exc
        elif exc.retryable or cap:
            self.error = self.error or exc


def _uid(validity: int | None, uid: int | None) -> tuple[int, int | None] | None:
    return None if validity is None else (validity, uid)


async def _opened(
    sel: asyncio.Future[SelectedMailbox],
    search: asyncio.Future[list[int]],
    fetch: asyncio.Future[list[Fetch]],
    dsel: asyncio.Future[SelectedMailbox] | None,
    held: asyncio.Future[dict[str, int]] | None,
) -> _Opened:
    """What was read; ``held`` None: the folder was just created (it holds nothing)."""
    more = [f for f in (dsel, held) if f is not None]
    tasks: list[asyncio.Future[object]] = [sel, search, fetch, *more]  # type: ignore[list-item]
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:  # the EXAMINE's refusal first: the others follow from it
        if (exc := task.exception()) is not None:
            raise exc
    return _Opened(
        sel.result(),
        search.result(),
        fetch.result(),
        dsel.result() if dsel else None,
        0 if held is None else held.result().get("MESSAGES"),
    )


async def _select_after(
    created: asyncio.Future[Result] | None, dst: IMAPClient, name: str
) -> SelectedMailbox:
    """SELECT ``name`` on ``dst``, once ``created`` (a CREATE on another connection) is
    answered; its refusal is the CREATE's to report."""
    if created is not None:
        with contextlib.suppress(Exception):
            await created
    return await dst.select(name)
