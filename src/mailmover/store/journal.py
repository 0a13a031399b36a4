"""The engine's ``Journal`` on the job database: every call runs on the store's one writer thread.

The event loop never waits on the database; one thread owning all database work
means SQLite writes from many tasks queue up instead of contending for the lock.
SQLAlchemy's errors are translated here, once, into ``StoreError``. A call whose
task is cancelled may still complete on the writer thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from mailmover.errors import StoreError
from mailmover.store.database import Store
from mailmover.store.records import FolderRecord, MessageRecord
from mailmover.store.state import MailboxState

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _call(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    try:
        return fn(*args, **kwargs)
    except OperationalError as exc:  # locked, disk full, connection lost: may pass
        raise StoreError(f"the job database failed: {exc.orig}", retryable=True) from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"the job database failed: {exc}") from exc


class StoreJournal:
    """What one mailbox pair's folders have copied, as ``engine.ports.Journal`` wants it."""

    def __init__(self, store: Store, mailbox_id: int) -> None:
        self.store = store
        self.id = mailbox_id
        self.sync = MailboxState(store, mailbox_id, "", "")  # no I/O: names are not needed

    @classmethod
    async def open(
        cls, store: Store, source: str, dest: str, job_name: str = "default"
    ) -> StoreJournal:
        """The journal of the pair ``source`` → ``dest`` in ``job_name``, created if new."""
        loop = asyncio.get_running_loop()
        state = await loop.run_in_executor(
            store.writer, functools.partial(_call, store.mailbox, source, dest, job_name)
        )
        return cls(store, state.id)

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        loop = asyncio.get_running_loop()
        call = functools.partial(_call, fn, *args, **kwargs)
        return await loop.run_in_executor(self.store.writer, call)

    async def folders(self) -> list[FolderRecord]:
        return await self._run(self.sync.folders)

    async def folder(self, source_name: str) -> FolderRecord | None:
        return await self._run(self.sync.folder, source_name)

    async def save_folder(self, rec: FolderRecord) -> FolderRecord:
        return await self._run(self.sync.save_folder, rec)

    async def record_messages(self, folder_id: int, records: Sequence[MessageRecord]) -> None:
        await self._run(self.sync.record_messages, folder_id, records)

    async def update_flags(
        self, folder_id: int, changes: Sequence[tuple[int, int, tuple[str, ...]]]
    ) -> None:
        await self._run(self.sync.update_flags, folder_id, changes)

    async def iter_messages(
        self,
        folder_id: int,
        *,
        states: Collection[str] | None = None,
        uidvalidity: int | None = None,
        chunk: int = 5000,
    ) -> AsyncIterator[list[MessageRecord]]:
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
