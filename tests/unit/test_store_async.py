"""StoreJournal: asyncio callers, one writer thread doing all the database work."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from mailmover.errors import StoreError
from mailmover.store import FolderRecord, MessageRecord, Store, StoreJournal

SRC = "imaps://alice@mail.example.com:993"
DST = "imaps://alice@new.example.net:993"
WHEN = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url)
    yield s
    s.close()


def msg(uid: int, state: str = "done") -> MessageRecord:
    return MessageRecord(1, uid, 10 * uid, WHEN, state)


async def test_every_call_runs_on_the_one_writer_thread(store: Store) -> None:
    threads: set[threading.Thread] = set()

    def seen(*_args: Any) -> None:
        threads.add(threading.current_thread())

    event.listen(store.engine, "before_cursor_execute", seen)
    mbox = await StoreJournal.open(store, SRC, DST)
    folder = await mbox.save_folder(FolderRecord(None, "INBOX", "INBOX"))
    assert folder.id is not None
    assert await mbox.folder("INBOX") == folder
    assert await mbox.folders() == [folder]
    await mbox.record_messages(folder.id, [msg(1, "pending"), msg(2, "failed")])
    await mbox.update_flags(folder.id, [(1, 1, ("\\Seen",))])
    assert [r.flags async for page in mbox.iter_messages(folder.id) for r in page] == [
        ("\\Seen",),
        (),
    ]

    assert len(threads) == 1
    (writer,) = threads
    assert writer is not threading.current_thread()
    assert writer.name.startswith("mailmover-store")


async def test_concurrent_tasks_all_land(store: Store) -> None:
    mbox = await StoreJournal.open(store, SRC, DST)
    names = [f"Folder {i}" for i in range(8)]
    folders = await asyncio.gather(*(mbox.save_folder(FolderRecord(None, n, n)) for n in names))

    async def worker(folder: FolderRecord) -> None:
        assert folder.id is not None
        for batch in range(10):
            uids = range(batch * 25 + 1, batch * 25 + 26)
            await mbox.record_messages(folder.id, [msg(uid, "failed") for uid in uids])
            await mbox.record_messages(folder.id, [msg(uid) for uid in uids])

    await asyncio.gather(*(worker(f) for f in folders))
    assert mbox.sync.counts() == {"done": 8 * 250}
    for f in folders:
        assert f.id is not None
        assert mbox.sync.counts(f.id) == {"done": 250}
    assert sorted(f.source_name for f in await mbox.folders()) == sorted(names)


async def test_async_iteration_yields_chunks_in_order(store: Store) -> None:
    mbox = await StoreJournal.open(store, SRC, DST)
    folder = await mbox.save_folder(FolderRecord(None, "INBOX", "INBOX"))
    assert folder.id is not None
    await mbox.record_messages(folder.id, [msg(uid) for uid in range(30, 0, -1)])
    pages = [[r.source_uid for r in page] async for page in mbox.iter_messages(folder.id, chunk=8)]
    assert pages == [
        list(range(1, 9)),
        list(range(9, 17)),
        list(range(17, 25)),
        [25, 26, 27, 28, 29, 30],
    ]
    exact = [len(p) async for p in mbox.iter_messages(folder.id, chunk=10)]
    assert exact == [10, 10, 10]
    assert [p async for p in mbox.iter_messages(folder.id, states={"failed"})] == []


async def test_sync_and_async_handles_share_the_store(store: Store) -> None:
    sync = store.mailbox(SRC, DST)
    wrapped = StoreJournal(store, sync.id)
    folder_id = sync.save_folder(FolderRecord(None, "INBOX", "INBOX")).id
    assert folder_id is not None
    await wrapped.record_messages(folder_id, [msg(1)])
    assert sync.counts() == {"done": 1}
    assert wrapped.id == sync.id


async def test_database_errors_are_translated_once(store: Store) -> None:
    mbox = await StoreJournal.open(store, SRC, DST)
    folder = await mbox.save_folder(FolderRecord(None, "INBOX", "INBOX"))
    assert folder.id is not None
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE message")
    with pytest.raises(StoreError, match="job database failed"):
        await mbox.record_messages(folder.id, [msg(1)])
