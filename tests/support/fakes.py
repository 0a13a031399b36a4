"""In-memory stand-ins for the engine's ports and for one selected IMAP folder.

``MemoryJournal`` satisfies ``engine.ports.Journal`` as ``store.StoreJournal`` does
(tests/unit/test_fakes.py runs both through the same calls and compares them).
``SelectedFolder`` answers the two UID FETCHes ``engine.dedup.DestinationIndex``
sends, as Dovecot does (tests/integration/test_dedup_dovecot.py compares them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from mailmover.imap.connection import Result
from mailmover.imap.proto.responses import Fetch, Tagged
from mailmover.imap.results import SelectedMailbox
from mailmover.store.records import MESSAGE_STATES, FolderRecord, MessageRecord, flags_text


class MemoryJournal:
    """What one mailbox pair's folders have copied, held in dicts."""

    def __init__(self) -> None:
        self._folders: dict[int, FolderRecord] = {}
        self._messages: dict[int, dict[tuple[int, int], MessageRecord]] = {}
        self._next_id = 1
        #: every call made, by method name, for tests that count writes
        self.calls: list[str] = []
        #: every message record ever written, in order (a record replaced stays here)
        self.written: list[MessageRecord] = []

    async def folders(self) -> list[FolderRecord]:
        self.calls.append("folders")
        return sorted((replace(f) for f in self._folders.values()), key=lambda f: f.source_name)

    async def folder(self, source_name: str) -> FolderRecord | None:
        self.calls.append("folder")
        for rec in self._folders.values():
            if rec.source_name == source_name:
                return replace(rec)
        return None

    async def save_folder(self, rec: FolderRecord) -> FolderRecord:
        self.calls.append("save_folder")
        if rec.id is not None:
            if rec.id not in self._folders:
                raise LookupError(f"no folder with id {rec.id}")
            self._folders[rec.id] = replace(rec)
            return replace(rec)
        same = next(
            (f.id for f in self._folders.values() if f.source_name == rec.source_name), None
        )
        folder_id = same if same is not None else self._next_id
        if same is None:
            self._next_id += 1
            self._messages[folder_id] = {}
        self._folders[folder_id] = replace(rec, id=folder_id)
        return replace(rec, id=folder_id)

    async def record_messages(self, folder_id: int, records: Sequence[MessageRecord]) -> None:
        self.calls.append("record_messages")
        if not records:
            return
        messages = self._messages_of(folder_id)
        for rec in records:
            if rec.state not in MESSAGE_STATES:
                raise ValueError(f"unknown message state {rec.state!r}")
            if rec.internaldate.utcoffset() is None:
                raise ValueError(f"message {rec.source_uid}: internaldate has no timezone")
            stored = replace(rec, flags=tuple(flags_text(rec.flags).split()))
            messages[(rec.source_uidvalidity, rec.source_uid)] = stored
            self.written.append(replace(stored))

    async def update_flags(
        self, folder_id: int, changes: Sequence[tuple[int, int, tuple[str, ...]]]
    ) -> None:
        self.calls.append("update_flags")
        if not changes:
            return
        messages = self._messages_of(folder_id)
        for uidvalidity, uid, flags in changes:
            rec = messages.get((uidvalidity, uid))
            if rec is not None:
                rec.flags = tuple(flags_text(flags).split())

    async def iter_messages(
        self,
        folder_id: int,
        *,
        states: Collection[str] | None = None,
        uidvalidity: int | None = None,
        chunk: int = 5000,
    ) -> AsyncIterator[list[MessageRecord]]:
        self.calls.append("iter_messages")
        if chunk < 1:
            raise ValueError("limit must be at least 1")
        chosen = [
            replace(rec)
            for key, rec in sorted(self._messages_of(folder_id).items())
            if (states is None or rec.state in states)
            and (uidvalidity is None or key[0] == uidvalidity)
        ]
        for start in range(0, len(chosen), chunk):
            yield chosen[start : start + chunk]

    def messages(self, folder_id: int) -> list[MessageRecord]:
        """Every message record of a folder, in key order (for assertions)."""
        return [replace(r) for _, r in sorted(self._messages_of(folder_id).items())]

    def _messages_of(self, folder_id: int) -> dict[tuple[int, int], MessageRecord]:
        if folder_id not in self._folders:
            raise LookupError(f"no folder with id {folder_id}")
        return self._messages[folder_id]


@dataclass
class Stored:
    """One message of a ``SelectedFolder``."""

    data: bytes
    flags: tuple[str, ...] = ()


@dataclass
class SelectedFolder:
    """A selected IMAP folder: ``selected`` and ``uid_fetch`` as ``IMAPClient`` has them.

    Answers only ``(UID RFC822.SIZE FLAGS)`` and ``(UID BODY.PEEK[])``, the two
    fetches ``DestinationIndex`` sends; ``fetched`` records each request's UIDs.
    """

    messages: dict[int, Stored] = field(default_factory=dict)
    fetched: list[tuple[str, list[int]]] = field(default_factory=list)
    uidvalidity: int = 1

    @classmethod
    def holding(cls, *bodies: bytes, first_uid: int = 1) -> SelectedFolder:
        return cls({first_uid + n: Stored(body) for n, body in enumerate(bodies)})

    @property
    def selected(self) -> SelectedMailbox:
        return SelectedMailbox(
            name="INBOX",
            readonly=False,
            uidvalidity=self.uidvalidity,
            uidnext=max(self.messages, default=0) + 1,
            exists=len(self.messages),
            flags=(),
            permanentflags=None,
            highestmodseq=None,
        )

    def uid_fetch_nowait(
        self,
        uids: Sequence[int] | range,
        items: str,
        *,
        on_fetch: Callable[[Fetch], None] | None = None,
    ) -> asyncio.Future[Result]:
        """``uid_fetch``, each FETCH handed to ``on_fetch`` as well."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        fetches = self._answer(uids, items)
        for fetch in fetches:
            if on_fetch is not None:
                on_fetch(fetch)
        future.set_result(Result(Tagged("F1", "OK", None, "done"), fetches=fetches))
        return future

    async def uid_fetch(self, uids: Sequence[int] | range, items: str) -> list[Fetch]:
        return self._answer(uids, items)

    def _answer(self, uids: Sequence[int] | range, items: str) -> list[Fetch]:
        wanted = sorted(uid for uid in self.messages if uid in uids)
        self.fetched.append((items, wanted))
        seqs = {uid: n for n, uid in enumerate(sorted(self.messages), start=1)}
        out = []
        for uid in wanted:
            stored = self.messages[uid]
            if items == "(UID RFC822.SIZE FLAGS)":
                fetch = Fetch(seqs[uid], uid=uid, flags=stored.flags, size=len(stored.data))
            elif items == "(UID BODY.PEEK[])":
                fetch = Fetch(seqs[uid], uid=uid, body={"": stored.data})
            else:
                raise NotImplementedError(f"SelectedFolder does not answer {items}")
            out.append(fetch)
        return out
