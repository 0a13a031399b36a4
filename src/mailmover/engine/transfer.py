"""Copy one folder: what is new, exactly once, pipelined; then bring changed flags across.

Bodies are fetched in batches bounded by bytes, and each batch's messages are
appended in pieces as they arrive whole (engine.stream), so neither side waits
for the other's round trips. Each piece is recorded ``done`` (with its
APPENDUIDs) once answered, in one transaction: a message is written once. A
crash leaves the pieces in flight unrecorded; the destination then holds more
than the journal accounts for, and those are looked up in it (size, then
SHA-256) before anything is sent again. When a link drops, every APPEND
already answered is recorded first, and what the next attempt needs is handed
over in a ``Carry`` (engine.attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from mailmover.engine import unanswered
from mailmover.engine.attempt import Carry, new_carry
from mailmover.engine.batches import Item, Meta, Piece, Sent, answered, answers, cost, next_batch
from mailmover.engine.budget import ByteBudget
from mailmover.engine.dedup import DestinationIndex
from mailmover.engine.events import BatchCopied, FolderStarted, Listener, MessageFailed
from mailmover.engine.flags import FlagPolicy, FlagRewrite
from mailmover.engine.folders import FolderPlan
from mailmover.engine.gmail import LabelPlan, apply_labels, label_of, sync_labels, unlabelled
from mailmover.engine.headers import message_id as read_message_id
from mailmover.engine.headers import summary
from mailmover.engine.listing import UNDESCRIBED, failed_before, list_messages, too_big
from mailmover.engine.opening import open_folder
from mailmover.engine.options import TransferOptions
from mailmover.engine.planning import opened_unchanged
from mailmover.engine.ports import Control, Journal
from mailmover.engine.profile import ServerProfile
from mailmover.engine.refusals import append_outcomes, queue_appends
from mailmover.engine.relay import append_relayed, may_relay, settled
from mailmover.engine.report import Failure, FolderResult
from mailmover.engine.stream import Arrivals, all_answered, answered_first, stream_batch
from mailmover.engine.syncflags import CopiedRow, sync_flags
from mailmover.errors import CommandFailed, MailmoverError
from mailmover.imap.client import AppendResult, IMAPClient
from mailmover.imap.proto.responses import Fetch
from mailmover.store.records import FolderRecord, MessageRecord

APPENDS_AHEAD = 8


class FolderCopy:
    """One folder of one mailbox pair; ``run`` returns its result."""

    def __init__(
        self,
        src: IMAPClient,
        dst: IMAPClient,
        journal: Journal,
        plan: FolderPlan,
        options: TransferOptions,
        emit: Listener,
        *,
        control: Control | None = None,
        dest: ServerProfile | None = None,
        rules: FlagRewrite | None = None,
        labels: LabelPlan | None = None,
        result: FolderResult | None = None,
        carry: Carry | None = None,
        budget: ByteBudget | None = None,
        expected: tuple[int, int] | None = None,  # messages and bytes, by the planning STATUS
    ) -> None:
        self.src, self.dst, self.journal, self.plan = src, dst, journal, plan
        self.options, self.emit = options, emit
        self.control = control
        self.dest = dest
        self.rules = rules or FlagRewrite()
        self.labels = labels
        self.extra_labels: dict[int, tuple[str, ...]] = {}  # source UID → its other labels
        self.carry = carry or new_carry(
            plan, options.batch_bytes, options.batch_messages, result=result
        )
        self.result = self.carry.result
        # Shared by every folder of the mailbox, so more connections do not mean more memory.
        self.budget = budget or ByteBudget(options.memory_budget)
        self.held = 0  # of the budget, by this folder: given back even when it fails
        self.undated = 0  # messages whose internal date the source did not give
        self.done_bytes = self.listed_bytes = 0  # the folder's size: copied before, to copy
        self.policy = FlagPolicy(None)
        self.index: DestinationIndex | None = None
        self.folder_id = 0
        self.uidvalidity = 0
        self.dest_uidvalidity: int | None = None
        self.expected = expected
        self.known: dict[int, Fetch] = {}  # metadata read with the EXAMINE, by UID
        self.done: dict[int, CopiedRow] = {}  # copied by earlier passes or attempts
        self.ours: set[int] = set()  # destination UIDs recorded or claimed by this attempt
        self.settled = False  # the destination was read again for ambiguous messages
        self.arrivals = Arrivals()  # told whenever a piece is handed on to be appended

    async def run(self) -> FolderResult:
        rec = await self.journal.folder(self.plan.source_name)
        opened = await open_folder(
            self.src, self.dst, (self.plan.source_name, self.plan.dest_name),
            since=self.options.since, before=self.options.before, expected=self.expected,
            first=rec is None, carry=self.carry,
        )  # fmt: skip
        sel, dsel, uids, self.known = opened.source, opened.dest, opened.uids, opened.known
        self.carry.gone.difference_update(uids)  # still listed: not deleted, fetched again
        self.policy = FlagPolicy(
            None if dsel.permanentflags is None else frozenset(dsel.permanentflags),
            keywords=self.dest.keywords if self.dest else None,
            refuses=self.dest.refuses if self.dest else FlagPolicy.refuses,
            rules=self.rules,
        )
        self.uidvalidity, self.dest_uidvalidity = sel.uidvalidity, dsel.uidvalidity
        gmail = self.labels is not None and self.labels.gmail_dest  # always looks (labels)
        if rec is not None and not gmail and opened_unchanged(rec, sel, dsel):
            self.result.source_messages = self.result.already = rec.messages_total
            return self.result
        rec = rec or FolderRecord(None, self.plan.source_name, self.plan.dest_name)
        rec.dest_name, rec.subscribed = self.plan.dest_name, self.plan.subscribed
        rec.source_uidvalidity, rec.dest_uidvalidity = sel.uidvalidity, dsel.uidvalidity
        rec.state = "running"
        rec = await self.journal.save_folder(rec)
        assert rec.id is not None
        self.folder_id = rec.id

        if self.labels is not None and self.src.has("X-GM-EXT-1"):
            uids, self.extra_labels = await self.labels.select(self.src, self.plan, uids)
        elif self.plan.unlabelled_only and self.src.has("X-GM-EXT-1"):
            uids = await unlabelled(self.src, uids)
        present = set(uids)
        # Compact: a tuple per message, flag tuples shared (200,000 rows in ~30 MB).
        done: dict[int, CopiedRow] = {}
        shared_flags: dict[tuple[str, ...], tuple[str, ...]] = {}
        async for page in self.journal.iter_messages(
            self.folder_id, uidvalidity=sel.uidvalidity, states=("done",)
        ):
            for row in page:
                if row.source_uid in present and row.dest_uidvalidity == dsel.uidvalidity:
                    flags = shared_flags.setdefault(row.flags, row.flags)
                    done[row.source_uid] = (row.dest_uid, flags)
                    self.done_bytes += row.size
        del present
        self.done = done
        to_copy = [uid for uid in uids if uid not in done]
        if self.options.only_failed:
            to_copy = await failed_before(self.journal, self.folder_id, self.uidvalidity, to_copy)
        self.result.source_messages = len(uids)
        # An attempt after a lost link counts what earlier attempts of this run copied
        # as copied, not as found; their failures are tried again.
        self.result.already = sum(1 for uid in done if uid not in self.result.attempted)
        self.result.failures = []
        unaccounted = dsel.exists - len(done)
        if to_copy and unaccounted > 0:
            claimed = {dest_uid for dest_uid, _ in done.values() if dest_uid is not None}
            self.index = await DestinationIndex.build(
                self.dst, claimed, digests=self.carry.dest_digests
            )
        await self._copy(to_copy)  # new mail first: a flag refused later costs no message
        if done and not self._stopping():
            updated, dropped = await sync_flags(
                self.src, self.dst, self.journal, self.folder_id, sel.uidvalidity, done,
                self.policy,
                since_modseq=rec.highestmodseq if rec.source_uidnext else None,
            )  # fmt: skip
            self.result.flags_updated = updated
            self.result.flags_dropped += dropped
        if self.labels is not None and self.labels.gmail_dest and done and not self._stopping():
            copied = {uid: dest for uid, (dest, _) in done.items() if dest is not None}
            mine = label_of(self.plan)
            self.result.flags_updated += await sync_labels(
                self.dst, copied, self.extra_labels, mine
            )

        # A folder read through --since/--before was only partly looked at: no UIDNEXT,
        # so a later run without those limits lists it again instead of skipping it.
        filtered = self.options.since is not None or self.options.before is not None
        rec.source_uidnext = None if filtered else sel.uidnext
        rec.highestmodseq = sel.highestmodseq
        rec.messages_total = len(uids)
        rec.bytes_total = self.done_bytes + self.listed_bytes
        self.result.vanished += len(self.carry.gone)
        if self.undated:
            undated = f"{self.undated} messages without a date on the source, dated on arrival"
            self.result.note = f"{self.result.note}; {undated}" if self.result.note else undated
        complete = not self.result.failures and not self.result.interrupted
        rec.state = "done" if complete else "incomplete"
        await self.journal.save_folder(rec)
        return self.result

    # -- copying -----------------------------------------------------------------------

    async def _copy(self, uids: list[int]) -> None:
        if not uids:
            return
        # Unbounded: the byte budget bounds what is held; the end marker must always fit.
        queue: asyncio.Queue[Piece | None] = asyncio.Queue()
        producer = asyncio.create_task(self._produce(uids, queue))
        appended: list[Sent] = []  # a piece leaves once it is recorded
        try:
            while True:
                while appended and all_answered(appended[0]):  # its bytes back to the budget
                    await self._record(appended[0])
                    appended.pop(0)
                if appended and queue.empty():
                    # Record the oldest piece once answered, unless another arrives first.
                    arrival = self.arrivals.next()
                    if queue.empty():
                        await answered_first(appended[0], arrival)
                    continue
                piece = await queue.get()
                if piece is None:
                    break
                if self._stopping():  # no APPEND starts after a pause or cancel
                    self.result.interrupted = True
                    await self._give_back(piece.items)
                    continue
                await self._settle(piece, appended)
                appended.append(await self._append(piece))
                # Pieces in flight to the destination: enough to keep a bandwidth-bound
                # upload busy while the oldest one's answer comes back.
                if len(appended) > APPENDS_AHEAD:
                    await self._record(appended[0])
                    appended.pop(0)
            await self._record_all(appended)
            await producer
        except MailmoverError as exc:
            if isinstance(exc, CommandFailed):  # the link is up: every APPEND sent is answered
                await asyncio.gather(*answers(appended), return_exceptions=True)
            for sent in appended:  # what the destination confirmed: recorded, never sent again
                await self._record(sent, answered(sent))
            unanswered.note(self.carry, appended)  # the rest may yet be stored: copied last
            raise
        finally:
            producer.cancel()
            await asyncio.wait([producer])  # none of its tasks outlives the folder
            if self.held:  # batches that never got recorded: the next attempt refetches them
                await self.budget.release(self.held)
                self.held = 0

    async def _produce(self, uids: list[int], queue: asyncio.Queue[Piece | None]) -> None:
        try:
            await self._fetch_batches(uids, queue)
        finally:
            queue.put_nowait(None)  # also when fetching failed: the consumer must not wait
            self.arrivals.tell()

    async def _fetch_batches(self, uids: list[int], queue: asyncio.Queue[Piece | None]) -> None:
        opts = self.options
        for start in range(0, len(uids), opts.segment):
            metas = await self._metas(uids[start : start + opts.segment])
            metas.sort(key=lambda m: m.uid in self.carry.ambiguous)  # stable: those last
            total = sum(m.size for m in metas)
            self.listed_bytes += total
            self.emit(FolderStarted(self.plan.source_name, len(metas), total))
            limit = self.dest.max_message_size if self.dest else None
            if limit is not None and any(m.size > limit for m in metas):
                big = await too_big(self.src, [m for m in metas if m.size > limit], limit)
                await queue.put(Piece(big))
                metas = [m for m in metas if m.size <= limit]
            fetches: list[asyncio.Future[None]] = []
            try:
                last = start + opts.segment >= len(uids)
                await self._fetch_segment(metas, fetches, queue, last)
            finally:
                for future in fetches:  # the link dropped: the next attempt refetches
                    future.cancel()
                for future in fetches:
                    with contextlib.suppress(BaseException):
                        await future
            if self._stopping():
                self.result.interrupted = True
                break

    async def _fetch_segment(
        self,
        metas: list[Meta],
        fetches: list[asyncio.Future[None]],
        queue: asyncio.Queue[Piece | None],
        last: bool,
    ) -> None:
        """Fetch ``metas`` batch by batch, as far ahead as the byte budget allows; each
        batch hands its messages on in pieces as they arrive (engine.stream). Only the
        ``last`` segment of a folder ends in the short tail batches."""
        opts = self.options
        start, left = 0, sum(m.size for m in metas) if last else 1 << 62
        relays = partial(may_relay, above=opts.relay_above, carry=self.carry, index=self.index)
        while start < len(metas):
            if self._stopping():
                break  # what was fetched is still appended and recorded
            batch = next_batch(metas, start, left, self.carry.size)
            start += len(batch)
            left -= sum(m.size for m in batch)
            size = sum(cost(m.size) for m in batch)
            while fetches and (
                fetches[0].done() or len(fetches) >= opts.fetch_ahead or not self.budget.fits(size)
            ):
                await fetches.pop(0)
            await self.budget.acquire(size)
            self.held += size
            future = asyncio.ensure_future(
                stream_batch(
                    self.src, batch, self.carry, self._item, self._hand_on(queue),
                    range_above=opts.range_above, range_size=opts.range_size,
                    piece_messages=self.carry.size.messages, may_relay=relays,
                )
            )  # fmt: skip
            fetches.append(future)
            if any(relays(m) for m in batch if m.size > opts.range_above):  # see relay.py
                await asyncio.wait([future])
        while fetches:
            await fetches.pop(0)

    async def _metas(self, uids: list[int]) -> list[Meta]:
        """The messages to fetch; the rest named (deleted meanwhile, or not described)."""
        listing = await list_messages(self.src, uids, self.known)
        self.result.vanished += len(listing.vanished)
        self.undated += listing.undated
        if listing.undescribed:
            await self.journal.record_messages(self.folder_id, [
                MessageRecord(self.uidvalidity, uid, 0, datetime.now(UTC), "failed",
                              reason=UNDESCRIBED) for uid in listing.undescribed
            ])  # fmt: skip
            for uid in listing.undescribed:
                self._named(Failure(self.plan.source_name, uid, 0, None, "", UNDESCRIBED))
        return listing.metas

    def _hand_on(self, queue: asyncio.Queue[Piece | None]) -> Callable[[Piece], None]:
        def hand_on(piece: Piece) -> None:
            self.carry.backoff.working()
            queue.put_nowait(piece)  # unbounded: the byte budget bounds what is held
            self.arrivals.tell()

        return hand_on

    def _item(self, meta: Meta, body: bytes | None, reason: str | None, gone: bool) -> Item:
        """The item for a message whose body arrived whole, or did not (``reason``)."""
        digest = hashlib.sha256(body).digest() if body is not None else None
        wanted = meta.flags
        if self.labels is not None:
            wanted = self.labels.flags_for(wanted, self.extra_labels.get(meta.uid, ()))
        flags, dropped = self.policy.keep(wanted)
        self.result.flags_dropped += dropped
        message_id = read_message_id(body) if body is not None else None
        item = Item(meta, body, digest, flags, message_id, reason=reason)
        item.vanished = gone
        return item

    def _stopping(self) -> bool:
        return self.control is not None and self.control.requested is not None

    async def _give_back(self, batch: list[Item]) -> None:
        """Return what ``_fetch_batches`` took from the budget for ``batch``."""
        fetched = sum(cost(i.meta.size) for i in batch if i.held)
        self.held -= fetched
        await self.budget.release(fetched)

    async def _append(self, piece: Piece) -> Sent:
        """Claim what the destination already has, queue the APPENDs for the rest."""
        batch = piece.items
        sent = Sent(batch, closes=piece.closes)
        to_send: list[int] = []
        for i, item in enumerate(batch):
            if item.relay is not None and item.body is None:
                relayed = await append_relayed(self.dst, self.plan.dest_name, item)
                if relayed is not None:
                    sent.commands.append(([i], relayed))
                    self.result.attempted.add(item.meta.uid)
                    continue
            if item.body is None or item.digest is None:
                continue  # unreadable: recorded as failed
            if self.index is not None:
                found = await self.index.claim(item.meta.size, item.digest)
                if found is not None:
                    sent.claimed[i] = found
                    self.ours.add(found)
                    continue
            to_send.append(i)
            self.result.attempted.add(item.meta.uid)
        queue_appends(self.dst, self.plan.dest_name, sent, to_send)
        return sent

    async def _settle(self, piece: Piece, appended: list[Sent]) -> None:
        """Before the first ambiguous message is sent: record every piece sent before (the
        settle must know this attempt's copies, or a twin's would be taken for its own),
        then read the destination again (engine.unanswered)."""
        if self.settled or not any(i.meta.uid in self.carry.ambiguous for i in piece.items):
            return
        await self._record_all(appended)
        ours = {d for d, _ in self.done.values() if d is not None} | self.ours
        self.index, self.settled = await unanswered.settle(self.carry, self.dst, ours), True

    async def _record_all(self, appended: list[Sent]) -> None:
        """Record every piece of ``appended``, in order, each once answered."""
        while appended:
            await self._record(appended[0])
            appended.pop(0)  # not before: if recording fails, the piece is still there

    async def _record(
        self, sent: Sent, outcomes: dict[int, AppendResult | str] | None = None
    ) -> None:
        """Record a batch once every APPEND of it is answered; with ``outcomes`` (a link
        dropped), only the messages they confirm."""
        final = outcomes is None
        if outcomes is None:
            await settled(sent.batch)
            outcomes = await append_outcomes(
                self.dst, self.plan.dest_name, sent, self.dest, self.result
            )
        elif self.labels is not None and self.labels.gmail_dest:
            return  # left unrecorded: the next attempt finds them and labels them then
        records: list[MessageRecord] = []
        copied = copied_bytes = 0
        for i, item in enumerate(sent.batch):
            record = self._record_of(item, "done")
            record.dest_uidvalidity = self.dest_uidvalidity
            outcome = outcomes.get(i)
            if i in sent.claimed and item.meta.uid not in self.result.attempted:
                self.result.already += 1
                record.dest_uid = sent.claimed[i]
            elif i in sent.claimed:  # appended by an earlier attempt of this run
                record.dest_uid = sent.claimed[i]
                copied += 1
                copied_bytes += item.meta.size
            elif isinstance(outcome, AppendResult):
                record.dest_uidvalidity = outcome.uidvalidity or self.dest_uidvalidity
                record.dest_uid = outcome.uid
                record.flags = item.flags
                copied += 1
                copied_bytes += item.meta.size
            elif not final or item.cut:
                continue  # its answer never came, or its read was cut: the next attempt
            elif item.vanished:  # not a failure; the next pass will not list it
                self.result.vanished += item.meta.uid not in self.carry.gone  # counted at the end
                continue
            else:
                reason = outcome or item.reason or "the source server did not return its body"
                records.append(self._fail(item, reason))
                continue
            records.append(record)
        if records:
            await self.journal.record_messages(self.folder_id, records)
        for record in records:
            self.carry.partial.pop(record.source_uid, None)
            self.carry.misread.pop(record.source_uid, None)
            self.carry.ambiguous.pop(record.source_uid, None)
            self.ours.add(record.dest_uid or 0)
        if any(r.state == "done" for r in records):
            self.carry.progress()
        if self.labels is not None and self.labels.gmail_dest and self.extra_labels:
            await apply_labels(self.dst, {
                r.dest_uid: self.extra_labels[r.source_uid] for r in records
                if r.state == "done" and r.dest_uid and r.source_uid in self.extra_labels
            })  # fmt: skip
        self.result.copied += copied
        self.result.copied_bytes += copied_bytes
        if not final:
            if records:
                size = sum(r.size for r in records)
                self.emit(
                    BatchCopied(self.plan.source_name, len(records), size, copied, copied_bytes)
                )
            return  # the budget comes back when the attempt ends
        if sent.closes:
            self.carry.size.grow()
        await self._give_back(sent.batch)  # messages too big were never fetched
        size = sum(i.meta.size for i in sent.batch)
        self.emit(BatchCopied(self.plan.source_name, len(sent.batch), size, copied, copied_bytes))

    def _fail(self, item: Item, reason: str) -> MessageRecord:
        record = self._record_of(item, "failed")
        record.reason = reason
        subject = item.subject or (summary(item.body)[1] if item.body else "")
        self._named(Failure(self.plan.source_name, item.meta.uid, item.meta.size,
                            item.meta.internaldate, subject, reason))  # fmt: skip
        return record

    def _named(self, failure: Failure) -> None:
        """A message not copied: in the result, and told as it happens."""
        self.result.failures.append(failure)
        f, date = failure, failure.internaldate.isoformat() if failure.internaldate else None
        self.emit(MessageFailed(f.folder, f.uid, f.size, date, f.subject, f.reason))

    def _record_of(self, item: Item, state: str) -> MessageRecord:
        return MessageRecord(
            source_uidvalidity=self.uidvalidity,
            source_uid=item.meta.uid,
            size=item.meta.size,
            internaldate=item.meta.internaldate or datetime.now(UTC),  # the APPEND's date
            state=state,
            message_id=item.message_id,
            digest=item.digest,
            flags=item.flags,
        )
