"""Mailbox state for asyncio code: every call runs on the store's one writer thread.

The event loop never waits on the database; one thread owning all database work
means SQLite writes from many tasks queue up instead of contending for the lock.
A call whose task is cancelled may still complete on the writer thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import ParamSpec, TypeVar

from mailmover.store.database import Store
from mailmover.store.records import EventRecord, FolderRecord, MailboxInfo, MessageRecord
from mailmover.store.state import MailboxState

_P = ParamSpec("_P")
_T = TypeVar("_T")


class AsyncMailboxState:
    """The methods of ``MailboxState``, awaitable."""

    def __init__(self, state: MailboxState) -> None:
        self.sync = state
        self.id = state.id
        self._executor = state.store.writer

    @classmethod
    async def open(
        cls, store: Store, source: str, dest: str, job_name: str = "default"
    ) -> AsyncMailboxState:
        """``Store.mailbox``, run on the writer thread."""
        loop = asyncio.get_running_loop()
        state = await loop.run_in_executor(
            store.writer, functools.partial(store.mailbox, source, dest, job_name)
        )
        return cls(state)

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def info(self) -> MailboxInfo:
        """See ``MailboxState.info``."""
        return await self._run(self.sync.info)

    async def set_state(self, state: str, error: str | None = None) -> None:
        """See ``MailboxState.set_state``."""
        await self._run(self.sync.set_state, state, error)

    async def log(self, level: str, kind: str, text: str) -> None:
        """See ``MailboxState.log``."""
        await self._run(self.sync.log, level, kind, text)

    async def events(self, limit: int | None = None) -> list[EventRecord]:
        """See ``MailboxState.events``."""
        return await self._run(self.sync.events, limit)

    async def folders(self) -> list[FolderRecord]:
        """See ``MailboxState.folders``."""
        return await self._run(self.sync.folders)

    async def folder(self, source_name: str) -> FolderRecord | None:
        """See ``MailboxState.folder``."""
        return await self._run(self.sync.folder, source_name)

    async def save_folder(self, rec: FolderRecord) -> FolderRecord:
        """See ``MailboxState.save_folder``."""
        return await self._run(self.sync.save_folder, rec)

    async def record_messages(self, folder_id: int, records: Sequence[MessageRecord]) -> None:
        """See ``MailboxState.record_messages``."""
        await self._run(self.sync.record_messages, folder_id, records)

    async def update_flags(
        self, folder_id: int, changes: Sequence[tuple[int, int, tuple[str, ...]]]
    ) -> None:
        """See ``MailboxState.update_flags``."""
        await self._run(self.sync.update_flags, folder_id, changes)

    async def iter_messages(
        self,
        folder_id: int,
        *,
        states: Collection[str] | None = None,
        uidvalidity: int | None = None,
        chunk: int = 5000,
    ) -> AsyncIterator[list[MessageRecord]]:
        """The messages of ``MailboxState.iter_messages``, a list of up to ``chunk`` at a time."""
        after: tuple[int, int] | None = None
        while True:
            page = await self._run(
                self.sync.message_page,
                folder_id,
                after=after,
                states=states,
                uidvalidity=uidvalidity,
                limit=chunk,
            )
            if page:
                yield page
            if len(page) < chunk:
                return
            after = (page[-1].source_uidvalidity, page[-1].source_uid)

    async def counts(self, folder_id: int | None = None) -> dict[str, int]:
        """See ``MailboxState.counts``."""
        return await self._run(self.sync.counts, folder_id)

    async def sizes(self, folder_id: int | None = None) -> dict[str, int]:
        """See ``MailboxState.sizes``."""
        return await self._run(self.sync.sizes, folder_id)

    async def failures(self) -> list[tuple[str, MessageRecord]]:
        """See ``MailboxState.failures``."""
        return await self._run(self.sync.failures)
