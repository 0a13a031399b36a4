"""A pass cancelled while small folders' APPENDs are in flight records what was stored.

The caller cancels the pass task (``CancelledError``, not a graceful stop) once
the first APPEND is on its way through a slow link; what the destination then
confirms is recorded in the job database before the cancel goes on, so every
message on the destination has its row (a rerun would otherwise have to look
for it by its hash). A pass cancelled while it sets a connection aside to create
the folders leaves no connection open.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from mailmover.config import Endpoint
from mailmover.store import Store, StoreJournal
from support import corpus, runcli
from support.corpus import CorpusFolder
from support.passes import copy_pass
from support.proxy import Direction, Proxy

FOLDERS = 24
DELAY_MS = 150  # one way: the cancel comes while the first APPENDs await their answers


async def test_a_cancelled_pass_records_the_appends_the_destination_confirmed(
    dovecot_factory, tmp_path: Path
) -> None:
    src = dovecot_factory(layout="fs")
    dst = dovecot_factory(layout="maildir++", separator="/")
    accounts = runcli.Accounts(src, dst, tmp_path, "cancel")
    messages = corpus.bulk(3 * FOLDERS, seed=43, size_dist="small")
    folders = [
        CorpusFolder((f"Client {i:02d}",), messages[3 * i : 3 * i + 3], True)
        for i in range(FOLDERS)
    ]
    accounts.load(folders)
    db = str(tmp_path / f"cancel-{secrets.token_hex(3)}.db")
    a = accounts
    src_end = Endpoint(a.user, src.host, src.port, "plain").with_secret(a.src_pw)

    async with Proxy(dst.host, dst.port, delay_ms=DELAY_MS) as proxy:
        dst_end = Endpoint(a.user, "127.0.0.1", proxy.port, "plain").with_secret(a.dst_pw)
        task = asyncio.create_task(copy_pass(src_end, dst_end, db, connections=1))
        loop = asyncio.get_running_loop()
        armed: list[asyncio.TimerHandle] = []

        def tap(connection: int, direction: Direction, data: bytes) -> bytes:
            if direction == "to_server" and b" APPEND " in data and not armed:
                armed.append(loop.call_later(DELAY_MS / 1000, task.cancel))
            return data

        proxy.tap = tap
        with pytest.raises(asyncio.CancelledError):
            await task
    assert armed, "no APPEND was sent"

    held = {
        "/".join(path): sum(found.values())
        for path, found in accounts.dst_snapshot().folders.items()
        if found
    }
    store = Store.open(f"sqlite:///{db}")
    try:
        journal = await StoreJournal.open(store, src_end.url, dst_end.url)
        recorded = {}
        for rec in await journal.folders():
            assert rec.id is not None
            rows = [r async for page in journal.iter_messages(rec.id) for r in page]
            assert all(r.state == "done" and r.dest_uid for r in rows), rows
            recorded[rec.dest_name] = len(rows)
    finally:
        store.close()
    assert held, "the cancel came before anything was stored: nothing tested"
    assert len(held) < FOLDERS, "the copy ended before the cancel: nothing tested"
    assert {k: n for k, n in recorded.items() if n} == held
    assert accounts.source_changes() == []


async def test_a_pass_cancelled_while_it_sets_a_connection_aside_leaves_none_open(
    dovecot_factory, tmp_path: Path
) -> None:
    """With many folders to create, one pair's destination side is set aside to create
    them (engine.creator) once its source side has logged out; a cancel while that
    LOGOUT awaits its answer leaves no connection open, on either side."""
    src = dovecot_factory(layout="fs")
    dst = dovecot_factory(layout="maildir++", separator="/")
    accounts = runcli.Accounts(src, dst, tmp_path, "aside")
    messages = corpus.bulk(FOLDERS, seed=44, size_dist="small")
    accounts.load([CorpusFolder((f"Client {i:02d}",), [m], True) for i, m in enumerate(messages)])
    db = str(tmp_path / f"aside-{secrets.token_hex(3)}.db")
    a = accounts
    async with (
        Proxy(src.host, src.port, delay_ms=DELAY_MS) as src_proxy,
        Proxy(dst.host, dst.port) as dst_proxy,
    ):
        src_end = Endpoint(a.user, "127.0.0.1", src_proxy.port, "plain").with_secret(a.src_pw)
        dst_end = Endpoint(a.user, "127.0.0.1", dst_proxy.port, "plain").with_secret(a.dst_pw)
        task = asyncio.create_task(copy_pass(src_end, dst_end, db, connections=2))
        cancelled: list[bool] = []

        def tap(connection: int, direction: Direction, data: bytes) -> bytes:
            if direction == "to_server" and b" LOGOUT\r\n" in data and not cancelled:
                cancelled.append(task.cancel())  # its answer is DELAY_MS × 2 away
            return data

        src_proxy.tap = tap
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cancelled, "no source connection logged out"
        assert dst_proxy.accepted >= 2 and src_proxy.accepted >= 2, "fewer than two pairs"
        for _ in range(50):  # the proxies see the ends of the connections closed
            if not src_proxy.open_connections and not dst_proxy.open_connections:
                break
            await asyncio.sleep(0.05)
        assert (src_proxy.open_connections, dst_proxy.open_connections) == (0, 0)
