"""AsyncMailboxState: asyncio callers, one writer thread doing all the database work."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from mailmover.store import AsyncMailboxState, FolderRecord, MessageRecord, Store

SRC = "imaps://alice@mail.example.com:993"
DST = "imaps://alice@new.example.net:993"
WHEN = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path}/state.db")
    yield s
    s.close()


def msg(uid: int, state: str = "done") -> MessageRecord:
    return MessageRecord(1, uid, 10 * uid, WHEN, state)


async def test_every_call_runs_on_the_one_writer_thread(store: Store) -> None:
    threads: set[threading.Thread] = set()

    def seen(*_args: Any) -> None:
        threads.add(threading.current_thread())

    event.listen(store.engine, "before_cursor_execute", seen)
    mbox = await AsyncMailboxState.open(store, SRC, DST)
    folder = await mbox.save_folder(FolderRecord(None, "INBOX", "INBOX"))
    assert folder.id is not None
    assert await mbox.folder("INBOX") == folder
    assert await mbox.folders() == [folder]
    await mbox.record_messages(folder.id, [msg(1, "pending"), msg(2, "failed")])
    await mbox.update_flags(folder.id, [(1, 1, ("\\Seen",))])
    await mbox.set_state("running")
    await mbox.log("info", "test", "hello")
    assert [r.flags async for page in mbox.iter_messages(folder.id) for r in page] == [
        ("\\Seen",),
        (),
    ]
    assert await mbox.counts() == {"pending": 1, "failed": 1}
    assert await mbox.sizes(folder.id) == {"pending": 10, "failed": 20}
    assert [r.source_uid for _, r in await mbox.failures()] == [2]
    assert (await mbox.info()).state == "running"
    assert [e.text for e in await mbox.events()] == ["hello"]

    assert len(threads) == 1
    (writer,) = threads
    assert writer is not threading.current_thread()
    assert writer.name.startswith("mailmover-store")


async def test_concurrent_tasks_all_land(store: Store) -> None:
    mbox = await AsyncMailboxState.open(store, SRC, DST)
    names = [f"Folder {i}" for i in range(8)]
    folders = await asyncio.gather(*(mbox.save_folder(FolderRecord(None, n, n)) for n in names))

    async def worker(folder: FolderRecord) -> None:
        assert folder.id is not None
        for batch in range(10):
            uids = range(batch * 25 + 1, batch * 25 + 26)
            await mbox.record_messages(folder.id, [msg(uid, "pending") for uid in uids])
            await mbox.log("info", "batch", f"{folder.source_name} {batch}")
            await mbox.record_messages(folder.id, [msg(uid) for uid in uids])

    await asyncio.gather(*(worker(f) for f in folders))
    assert await mbox.counts() == {"done": 8 * 250}
    for f in folders:
        assert f.id is not None
        assert await mbox.counts(f.id) == {"done": 250}
    assert len(await mbox.events()) == 80
    assert sorted(f.source_name for f in await mbox.folders()) == sorted(names)


async def test_async_iteration_yields_chunks_in_order(store: Store) -> None:
    mbox = await AsyncMailboxState.open(store, SRC, DST)
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
    wrapped = AsyncMailboxState(sync)
    folder_id = sync.save_folder(FolderRecord(None, "INBOX", "INBOX")).id
    assert folder_id is not None
    await wrapped.record_messages(folder_id, [msg(1)])
    assert sync.counts() == {"done": 1}
    assert wrapped.id == sync.id
