"""A copy's journal that opens while the first connections log in.

Opening the job database costs a few hundred milliseconds before anything
else can happen: SQLAlchemy is imported and the schema checked (Alembic). A
``copy`` starts that in a thread and hands the pass a journal that waits for it
at its first use, which comes after the first logins: the two overlap. A job
database that cannot be opened fails the pass at that first use, with the same
error as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mailmover.store.records import FolderRecord, MessageRecord

if TYPE_CHECKING:
    from mailmover.store.database import Store
    from mailmover.store.journal import StoreJournal


class LateJournal:
    """The journal of one pair in the job database at ``state`` (``--state``, else the
    default), usable at once; every call waits for the database to be open."""

    def __init__(self, opening: asyncio.Task[tuple[Store, StoreJournal]]) -> None:
        self._opening = opening

    @classmethod
    def open(cls, state: Path | None, source: str, dest: str) -> LateJournal:
        """Start opening the journal of ``source`` → ``dest``; call in a running loop."""
        return cls(asyncio.create_task(_open(state, source, dest)))

    async def _journal(self) -> StoreJournal:
        return (await asyncio.shield(self._opening))[1]

    async def close(self) -> None:
        """Close the database once it is open (an error opening it was reported at use)."""
        with contextlib.suppress(Exception):
            store, _ = await asyncio.shield(self._opening)
            await asyncio.to_thread(store.close)

    async def folders(self) -> list[FolderRecord]:
        return await (await self._journal()).folders()

    async def folder(self, source_name: str) -> FolderRecord | None:
        return await (await self._journal()).folder(source_name)

    async def save_folder(self, rec: FolderRecord) -> FolderRecord:
        return await (await self._journal()).save_folder(rec)

    async def record_messages(self, folder_id: int, records: Sequence[MessageRecord]) -> None:
        await (await self._journal()).record_messages(folder_id, records)

    async def update_flags(
        self, folder_id: int, changes: Sequence[tuple[int, int, tuple[str, ...]]]
    ) -> None:
        await (await self._journal()).update_flags(folder_id, changes)

    async def iter_messages(
        self,
        folder_id: int,
        *,
        states: Collection[str] | None = None,
        uidvalidity: int | None = None,
        chunk: int = 5000,
    ) -> AsyncIterator[list[MessageRecord]]:
        journal = await self._journal()
        async for page in journal.iter_messages(
            folder_id, states=states, uidvalidity=uidvalidity, chunk=chunk
        ):
            yield page


async def _open(state: Path | None, source: str, dest: str) -> tuple[Store, StoreJournal]:
    """The open journal. A database that cannot be opened is no passing trouble: the
    error is final, so that the pass ends at once instead of retrying its logins."""
    from mailmover.errors import StoreError

    try:
        return await _opened(state, source, dest)
    except StoreError as exc:
        raise StoreError(exc.message) from None
    except OSError as exc:
        raise StoreError(f"cannot use the job database: {exc}") from None


async def _opened(state: Path | None, source: str, dest: str) -> tuple[Store, StoreJournal]:
    def open_store() -> Store:
        from mailmover.store.connect import default_url
        from mailmover.store.database import Store

        url = f"sqlite:///{state.resolve()}" if state else default_url()
        return Store.open(url)

    store = await asyncio.to_thread(open_store)
    try:
        from mailmover.store.journal import StoreJournal

        return store, await StoreJournal.open(store, source, dest)
    except BaseException:
        await asyncio.to_thread(store.close)
        raise
