"""Copy one folder: what is new, exactly once, pipelined; then bring changed flags across.

Bodies are fetched from the source in batches bounded by bytes while the
previous batch is being appended to the destination, so neither side waits
for the other's round trips. Each batch is recorded ``done`` (with the
APPENDUIDs) in the journal once its APPENDs are confirmed, in one transaction:
a message is written once. A crash leaves the batches in flight unrecorded;
the destination then holds more messages than the journal accounts for, and
those are looked up in it (size, then SHA-256) before anything is sent again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from mailmover.engine.batches import Item, Meta, Sent, about_size, batches, cost
from mailmover.engine.budget import ByteBudget
from mailmover.engine.dedup import DestinationIndex
from mailmover.engine.events import BatchCopied, FolderStarted, Listener, MessageFailed
from mailmover.engine.flags import FlagPolicy, FlagRewrite, without_keywords
from mailmover.engine.folders import FolderPlan
from mailmover.engine.gmail import LabelPlan, apply_labels, unlabelled
from mailmover.engine.headers import message_id as read_message_id
from mailmover.engine.headers import summary
from mailmover.engine.ports import Control, Journal
from mailmover.engine.profile import ServerProfile
from mailmover.engine.report import Failure, FolderResult
from mailmover.engine.syncflags import CopiedRow, sync_flags
from mailmover.errors import CommandFailed, MessageRefused
from mailmover.imap.client import (
    AppendResult,
    IMAPClient,
    Message,
    SelectedMailbox,
    append_result,
    append_results,
)
from mailmover.imap.connection import Result
from mailmover.imap.proto.commands import Atom
from mailmover.imap.proto.dates import imap_date
from mailmover.imap.proto.responses import Fetch
from mailmover.imap.proto.sequences import sequence_set
from mailmover.store.records import FolderRecord, MessageRecord

META = "(UID FLAGS INTERNALDATE RFC822.SIZE)"
BODY = "(UID BODY.PEEK[])"
HEADER = "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])"


@dataclass(frozen=True)
class TransferOptions:
    since: date | None = None
    before: date | None = None
    batch_bytes: int = 4 * 1024 * 1024
    batch_messages: int = 250
    memory_budget: int = 16 * 1024 * 1024  # message data held at once, for the whole mailbox
    segment: int = 5000  # UIDs whose metadata is read at once
    only_failed: bool = False  # a retry-errors pass: only messages recorded as failed


VANISHED = "deleted on the source during the copy"
UNDESCRIBED = "the source server did not give its size"


def _body(fetch: Fetch | None) -> bytes | None:
    """The message's bytes, or None when the source did not give them.

    Dovecot answers ``BODY[] NIL`` (read as empty) for a message another session
    expunged; no message is zero bytes long, so an empty body is never appended.
    """
    body = fetch.body.get("") if fetch is not None else None
    return body or None


def search_criteria(options: TransferOptions) -> list[Atom]:
    """The UID SEARCH criteria for the messages a pass copies (its date range)."""
    criteria = [Atom("ALL")]
    if options.since:
        criteria.append(Atom(f"SINCE {imap_date(options.since)}"))
    if options.before:
        criteria.append(Atom(f"BEFORE {imap_date(options.before)}"))
    return criteria


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
        budget: ByteBudget | None = None,
    ) -> None:
        self.src, self.dst, self.journal, self.plan = src, dst, journal, plan
        self.options, self.emit = options, emit
        self.control = control
        self.dest = dest
        self.rules = rules or FlagRewrite()
        self.labels = labels
        self.extra_labels: dict[int, tuple[str, ...]] = {}  # source UID → its other labels
        self.result = result or FolderResult(plan.source_name, plan.dest_name, plan.note)
        # Shared by every folder of the mailbox, so more connections do not mean more memory.
        self.budget = budget or ByteBudget(options.memory_budget)
        self.held = 0  # of the budget, by this folder: given back even when it fails
        self.policy = FlagPolicy(None)
        self.index: DestinationIndex | None = None
        self.folder_id = 0
        self.uidvalidity = 0
        self.dest_uidvalidity: int | None = None
        self.undated = 0  # messages whose internal date the source did not give
        self.done_bytes = self.listed_bytes = 0  # the folder's size: copied before, to copy

    async def run(self) -> FolderResult:
        # Two connections: one round trip for both.
        sel, dsel = await asyncio.gather(
            self.src.examine(self.plan.source_name), self.dst.select(self.plan.dest_name)
        )
        self.policy = FlagPolicy(
            None if dsel.permanentflags is None else frozenset(dsel.permanentflags),
            keywords=self.dest.keywords if self.dest else None,
            refuses=self.dest.refuses if self.dest else FlagPolicy.refuses,
            rules=self.rules,
        )
        self.uidvalidity, self.dest_uidvalidity = sel.uidvalidity, dsel.uidvalidity
        rec = await self.journal.folder(self.plan.source_name)
        if rec is not None and self._unchanged(rec, sel, dsel):
            self.result.source_messages = self.result.already = rec.messages_total
            return self.result
        rec = rec or FolderRecord(None, self.plan.source_name, self.plan.dest_name)
        rec.dest_name, rec.subscribed = self.plan.dest_name, self.plan.subscribed
        rec.source_uidvalidity, rec.dest_uidvalidity = sel.uidvalidity, dsel.uidvalidity
        rec.state = "running"
        rec = await self.journal.save_folder(rec)
        assert rec.id is not None
        self.folder_id = rec.id

        uids = await self.src.uid_search(*search_criteria(self.options))
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
        to_copy = [uid for uid in uids if uid not in done]
        if self.options.only_failed:
            to_copy = await self._failed_before(to_copy)
        self.result.source_messages = len(uids)
        # An attempt after a lost link counts what earlier attempts of this run copied
        # as copied, not as found; their failures are tried again.
        self.result.already = sum(1 for uid in done if uid not in self.result.attempted)
        self.result.failures = []
        unaccounted = dsel.exists - len(done)
        if to_copy and unaccounted > 0:
            claimed = {dest_uid for dest_uid, _ in done.values() if dest_uid is not None}
            self.index = await DestinationIndex.build(self.dst, claimed)
        await self._copy(to_copy)  # new mail first: a flag refused later costs no message
        if done and not self._stopping():
            updated, dropped = await sync_flags(
                self.src, self.dst, self.journal, self.folder_id, sel.uidvalidity, done,
                self.policy,
                since_modseq=rec.highestmodseq if rec.source_uidnext else None,
            )  # fmt: skip
            self.result.flags_updated = updated
            self.result.flags_dropped += dropped

        # A folder read through --since/--before was only partly looked at: no UIDNEXT,
        # so a later run without those limits lists it again instead of skipping it.
        filtered = self.options.since is not None or self.options.before is not None
        rec.source_uidnext = None if filtered else sel.uidnext
        rec.highestmodseq = sel.highestmodseq
        rec.messages_total = len(uids)
        rec.bytes_total = self.done_bytes + self.listed_bytes
        if self.undated:
            undated = (
                f"{self.undated} messages had no readable date on the source: "
                "the destination dated them on arrival"
            )
            self.result.note = f"{self.result.note}; {undated}" if self.result.note else undated
        complete = not self.result.failures and not self.result.interrupted
        rec.state = "done" if complete else "incomplete"
        await self.journal.save_folder(rec)
        return self.result

    async def _failed_before(self, uids: list[int]) -> list[int]:
        """Those of ``uids`` that an earlier pass recorded as failed."""
        failed: set[int] = set()
        async for page in self.journal.iter_messages(
            self.folder_id, uidvalidity=self.uidvalidity, states=("failed",)
        ):
            failed.update(row.source_uid for row in page)
        return [uid for uid in uids if uid in failed]

    def _unchanged(self, rec: FolderRecord, sel: SelectedMailbox, dsel: SelectedMailbox) -> bool:
        """Nothing new, no flag changed, nothing left over: the folder needs no work."""
        return (
            rec.state == "done"
            and rec.source_uidvalidity == sel.uidvalidity
            and rec.dest_uidvalidity == dsel.uidvalidity
            and rec.source_uidnext is not None
            and rec.source_uidnext == sel.uidnext
            and sel.highestmodseq is not None
            and rec.highestmodseq == sel.highestmodseq
        )

    # -- copying -----------------------------------------------------------------------

    async def _copy(self, uids: list[int]) -> None:
        if not uids:
            return
        # Unbounded: the byte budget bounds what is held; the end marker must always fit.
        queue: asyncio.Queue[list[Item] | None] = asyncio.Queue()
        producer = asyncio.create_task(self._produce(uids, queue))
        try:
            appended: list[Sent] = []
            while True:
                if appended and queue.empty():
                    # Nothing to overlap with: record now, so its bytes of the budget
                    # come back to a producer that may be waiting for them.
                    await self._record(appended.pop(0))
                    continue
                batch = await queue.get()
                if batch is None:
                    break
                if self._stopping():  # no APPEND starts after a pause or cancel
                    self.result.interrupted = True
                    await self._give_back(batch)
                    continue
                appended.append(await self._append(batch))
                if len(appended) > 1:
                    await self._record(appended.pop(0))
            for sent in appended:
                await self._record(sent)
            await producer
        finally:
            producer.cancel()
            if self.held:  # batches that never got recorded: the next attempt refetches them
                await self.budget.release(self.held)
                self.held = 0

    async def _produce(self, uids: list[int], queue: asyncio.Queue[list[Item] | None]) -> None:
        try:
            await self._fetch_batches(uids, queue)
        finally:
            queue.put_nowait(None)  # also when fetching failed: the consumer must not wait

    async def _fetch_batches(
        self, uids: list[int], queue: asyncio.Queue[list[Item] | None]
    ) -> None:
        opts = self.options
        for start in range(0, len(uids), opts.segment):
            metas = await self._metas(uids[start : start + opts.segment])
            total = sum(m.size for m in metas)
            self.listed_bytes += total
            self.emit(FolderStarted(self.plan.source_name, len(metas), total))
            limit = self.dest.max_message_size if self.dest else None
            if limit is not None and any(m.size > limit for m in metas):
                await queue.put(await self._too_big([m for m in metas if m.size > limit], limit))
                metas = [m for m in metas if m.size <= limit]
            fetches: list[tuple[list[Meta], int, asyncio.Future[Result]]] = []
            for batch in batches(metas, opts.batch_bytes, opts.batch_messages):
                if self._stopping():
                    break  # what was fetched is still appended and recorded
                size = sum(cost(m.size) for m in batch)
                if not self.budget.try_acquire(size):
                    # Hand over what is fetched before waiting: the bytes we hold are
                    # given back only once the consumer has appended them.
                    while fetches:
                        await queue.put(await self._bodies(*fetches.pop(0)))
                    await self.budget.acquire(size)
                self.held += size
                future = self.src.uid_fetch_nowait([m.uid for m in batch], BODY)
                fetches.append((batch, size, future))
                if len(fetches) > 1:
                    await queue.put(await self._bodies(*fetches.pop(0)))
            for batch, size, future in fetches:
                await queue.put(await self._bodies(batch, size, future))
            if self._stopping():
                self.result.interrupted = True
                break

    async def _metas(self, uids: list[int]) -> list[Meta]:
        """What the source says of ``uids``, by UID. Every UID is accounted for: one
        deleted meanwhile is counted as such, one the server will not describe is
        named as not copied, and a missing or unreadable date is no reason to skip."""
        fetched = {f.uid: f for f in await self.src.uid_fetch(uids, META) if f.uid is not None}
        metas, undescribed = [], []
        for uid in uids:
            f = fetched.get(uid)
            if f is None or not f.size:  # Dovecot gives size 0 for an expunged message
                undescribed.append(uid)
                continue
            if f.internaldate is None:
                self.undated += 1
            metas.append(Meta(uid, f.flags or (), f.internaldate, f.size))
        if undescribed:
            gone = await self._vanished(undescribed)
            self.result.vanished += len(gone)
            unknown = [uid for uid in undescribed if uid not in gone]
            await self.journal.record_messages(self.folder_id, [
                MessageRecord(self.uidvalidity, uid, 0, datetime.now(UTC), "failed",
                              reason=UNDESCRIBED) for uid in unknown
            ])  # fmt: skip
            for uid in unknown:
                failure = Failure(self.plan.source_name, uid, 0, None, "", UNDESCRIBED)
                self.result.failures.append(failure)
                self.emit(MessageFailed(failure.folder, uid, 0, None, "", UNDESCRIBED))
        return sorted(metas, key=lambda m: m.uid)

    async def _too_big(self, metas: list[Meta], limit: int) -> list[Item]:
        """Items for messages the destination cannot take: named, with subject, never sent."""
        fetches = await self.src.uid_fetch([m.uid for m in metas], HEADER)
        heads = {f.uid: next(iter(f.body.values()), b"") for f in fetches if f.uid is not None}
        items = []
        for meta in metas:
            message_id, subject = summary(heads.get(meta.uid, b""))
            reason = f"larger than the destination accepts ({meta.size:,} > {limit:,} bytes)"
            items.append(Item(meta, None, None, (), message_id, subject, reason))
        return items

    async def _bodies(
        self, batch: list[Meta], size: int, future: asyncio.Future[Result]
    ) -> list[Item]:
        by_uid: dict[int, Fetch] = {f.uid: f for f in (await future).fetches if f.uid is not None}
        bodies = {m.uid: _body(by_uid.get(m.uid)) for m in batch}
        unread = [uid for uid, body in bodies.items() if body is None]
        gone = await self._vanished(unread) if unread else set()
        items = []
        for meta in batch:
            body = bodies[meta.uid]
            reason = None
            if meta.uid in gone:
                reason = VANISHED
            elif body is None:
                reason = "the source server did not return its body"
            digest = hashlib.sha256(body).digest() if body is not None else None
            wanted = meta.flags
            if self.labels is not None:
                wanted = self.labels.flags_for(wanted, self.extra_labels.get(meta.uid, ()))
            flags, dropped = self.policy.keep(wanted)
            self.result.flags_dropped += dropped
            message_id = read_message_id(body) if body is not None else None
            item = Item(meta, body, digest, flags, message_id, reason=reason)
            item.held, item.vanished = cost(meta.size), meta.uid in gone
            items.append(item)
        return items

    async def _vanished(self, uids: list[int]) -> set[int]:
        """Those of ``uids`` the source no longer has: deleted by another session."""
        still = await self.src.uid_search(Atom(f"UID {sequence_set(uids)}"))
        return set(uids) - set(still)

    def _stopping(self) -> bool:
        return self.control is not None and self.control.requested is not None

    async def _give_back(self, batch: list[Item]) -> None:
        """Return what ``_fetch_batches`` took from the budget for ``batch``."""
        fetched = sum(i.held for i in batch)
        self.held -= fetched
        await self.budget.release(fetched)

    async def _append(self, batch: list[Item]) -> Sent:
        """Claim what the destination already has, queue the APPENDs for the rest.

        With MULTIAPPEND the batch goes as one command: Dovecot stores a
        MULTIAPPEND of 1,000 small messages about seven times faster than
        1,000 pipelined APPENDs, each of which is its own transaction there.
        """
        sent = Sent(batch)
        to_send: list[int] = []
        for i, item in enumerate(batch):
            if item.body is None or item.digest is None:
                continue  # unreadable: recorded as failed
            if self.index is not None:
                found = await self.index.claim(item.meta.size, item.digest)
                if found is not None:
                    sent.claimed[i] = found
                    continue
            to_send.append(i)
            self.result.attempted.add(item.meta.uid)
        if len(to_send) > 1 and self.dst.has("MULTIAPPEND"):
            messages = [self._message(batch[i]) for i in to_send]
            sent.commands.append(
                (to_send, self.dst.multiappend_nowait(self.plan.dest_name, messages))
            )
        else:
            for i in to_send:
                future = self.dst.append_nowait(self.plan.dest_name, self._message(batch[i]))
                sent.commands.append(([i], future))
        return sent

    def _message(self, item: Item, flags: Sequence[str] | None = None) -> Message:
        assert item.body is not None
        flags = item.flags if flags is None else flags
        return Message(item.body, flags, item.meta.internaldate)

    async def _outcomes(self, sent: Sent) -> dict[int, AppendResult | str]:
        """Each sent item's APPENDUID, or the reason it was refused."""
        outcomes: dict[int, AppendResult | str] = {}
        for indexes, future in sent.commands:
            try:
                appended = append_results(await future, len(indexes))
                outcomes.update(zip(indexes, appended, strict=True))
                continue
            except MessageRefused as exc:
                if len(indexes) == 1:
                    outcomes[indexes[0]] = await self._retry_refused(sent.batch[indexes[0]], exc)
                    continue
            # One message refused the whole MULTIAPPEND: send them one by one to find it.
            singles = [
                (i, self.dst.append_nowait(self.plan.dest_name, self._message(sent.batch[i])))
                for i in indexes
            ]
            for i, single in singles:
                try:
                    outcomes[i] = append_result(await single)
                except MessageRefused as exc:
                    outcomes[i] = await self._retry_refused(sent.batch[i], exc)
        return outcomes

    async def _record(self, sent: Sent) -> None:
        outcomes = await self._outcomes(sent)
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
            elif item.vanished:  # not a failure; the next pass will not list it
                self.result.vanished += 1
                continue
            else:
                reason = outcome or item.reason or "the source server did not return its body"
                records.append(self._fail(item, reason))
                continue
            records.append(record)
        await self.journal.record_messages(self.folder_id, records)
        if self.labels is not None and self.labels.gmail_dest and self.extra_labels:
            await apply_labels(self.dst, {
                r.dest_uid: self.extra_labels[r.source_uid] for r in records
                if r.state == "done" and r.dest_uid and r.source_uid in self.extra_labels
            })  # fmt: skip
        self.result.copied += copied
        self.result.copied_bytes += copied_bytes
        await self._give_back(sent.batch)  # messages too big were never fetched
        size = sum(i.meta.size for i in sent.batch)
        self.emit(BatchCopied(self.plan.source_name, len(sent.batch), size, copied, copied_bytes))

    async def _retry_refused(self, item: Item, exc: MessageRefused) -> AppendResult | str:
        """Try what can succeed: without keywords, then without flags, then STORE them.

        Groupware (Scalix, Exchange) refuses flags it lists in PERMANENTFLAGS or
        answers BAD for them. Flags that then fail a STORE on their own are
        remembered for the whole destination and dropped from later messages.
        """
        if item.body is None or about_size(exc):
            return exc.message
        attempts = [without_keywords(item.flags), ()]
        for flags in dict.fromkeys(a for a in attempts if a != item.flags):
            try:
                result = await self.dst.append_nowait(
                    self.plan.dest_name, self._message(item, flags)
                )
            except MessageRefused:
                continue
            appended = append_result(result)
            missing = [f for f in item.flags if f not in flags]
            kept = await self._store_each(appended.uid, missing)
            for flag in missing:
                if flag not in kept:
                    self.result.flags_dropped += 1
                    if self.dest is not None:
                        self.dest.learned_refused.add(flag.lower())
            item.flags = tuple(sorted((*flags, *kept)))
            return appended
        return exc.message

    async def _store_each(self, uid: int | None, flags: list[str]) -> list[str]:
        """Set each flag with its own STORE; the ones the server accepted."""
        if uid is None or not flags:
            return []
        stores = [(f, self.dst.uid_store_nowait([uid], "+FLAGS.SILENT", [f])) for f in flags]
        kept = []
        for flag, future in stores:
            try:
                await future
                kept.append(flag)
            except CommandFailed:
                pass
        return kept

    def _fail(self, item: Item, reason: str) -> MessageRecord:
        record = self._record_of(item, "failed")
        record.reason = reason
        subject = item.subject or (summary(item.body)[1] if item.body else "")
        meta = item.meta
        failure = Failure(
            self.plan.source_name, meta.uid, meta.size, meta.internaldate, subject, reason
        )
        self.result.failures.append(failure)
        date = meta.internaldate.isoformat() if meta.internaldate else None
        self.emit(MessageFailed(failure.folder, meta.uid, meta.size, date, subject, reason))
        return record

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
