"""Job state throughput: record 200,000 messages in batches of 500, then stream them back.

Prints rows per second for record_messages (insert, then an upsert of every row
to ``done``), update_flags, iter_messages (all rows, and filtered by state and
UIDVALIDITY, in a fresh process so that its peak RSS shows what streaming costs),
the same through StoreJournal, and peak RSS after each step.

    .venv/bin/python bench/store_bench.py [--rows N] [--batch N] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailmover.store import FolderRecord, MailboxState, MessageRecord, Store, StoreJournal

EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
UIDVALIDITY = 1_700_000_000
SOURCE = "imaps://bench@src.example.com"
DEST = "imaps://bench@dst.example.com"


def make_records(first: int, stop: int, state: str) -> list[MessageRecord]:
    done = state == "done"
    return [
        MessageRecord(
            source_uidvalidity=UIDVALIDITY,
            source_uid=uid,
            size=2_000 + uid % 50_000,
            internaldate=EPOCH + timedelta(seconds=uid * 997),
            state=state,
            dest_uidvalidity=1 if done else None,
            dest_uid=uid if done else None,
            message_id=f"<{uid}.bench@example.com>",
            digest=hashlib.sha256(uid.to_bytes(8, "big")).digest(),
            flags=("\\Seen",) if uid % 3 else ("\\Answered", "\\Seen"),
        )
        for uid in range(first, stop)
    ]


def peak_rss_mib() -> float:
    # getrusage's ru_maxrss survives exec, so a child would report its parent's
    # peak; Linux's VmHWM belongs to this process image alone.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def report(label: str, rows: int, elapsed: float) -> None:
    print(
        f"{label:<46} {rows:>7} rows {elapsed:6.2f} s {rows / elapsed:>9,.0f} rows/s"
        f"   peak RSS {peak_rss_mib():6.1f} MiB"
    )


def timed(label: str, rows: int, fn: Callable[[], object]) -> None:
    start = time.perf_counter()
    fn()
    report(label, rows, time.perf_counter() - start)


def record(state: MailboxState, folder_id: int, rows: int, batch: int, kind: str) -> None:
    # Batches are made as they are needed, as the engine makes them; only the
    # record_messages calls are timed.
    elapsed = 0.0
    for first in range(1, rows + 1, batch):
        records = make_records(first, min(first + batch, rows + 1), kind)
        start = time.perf_counter()
        state.record_messages(folder_id, records)
        elapsed += time.perf_counter() - start
    report(f"record_messages, {kind}", rows, elapsed)


def update_flags(state: MailboxState, folder_id: int, rows: int, batch: int) -> None:
    changes = [(UIDVALIDITY, uid, ("\\Flagged", "\\Seen")) for uid in range(1, rows + 1, 2)]
    start = time.perf_counter()
    for i in range(0, len(changes), batch):
        state.update_flags(folder_id, changes[i : i + batch])
    report("update_flags, every second message", len(changes), time.perf_counter() - start)


def stream(
    state: MailboxState,
    folder_id: int,
    rows: int,
    states: Collection[str] | None = None,
    uidvalidity: int | None = None,
) -> None:
    n = sum(1 for _ in state.iter_messages(folder_id, states=states, uidvalidity=uidvalidity))
    assert n == rows, n


async def stream_async(state: MailboxState, folder_id: int, rows: int) -> None:
    n = 0
    async for page in StoreJournal(state.store, state.id).iter_messages(folder_id):
        n += len(page)
    assert n == rows, n


async def record_async(state: MailboxState, folder_id: int, rows: int, batch: int) -> None:
    records = make_records(1, rows + 1, "failed")
    wrapped = StoreJournal(state.store, state.id)
    start = time.perf_counter()
    await asyncio.gather(
        *(wrapped.record_messages(folder_id, records[i : i + batch]) for i in range(0, rows, batch))
    )
    report("StoreJournal.record_messages, gathered", rows, time.perf_counter() - start)


def stream_only(url: str, rows: int) -> None:
    """Stream the rows a previous run wrote, in this fresh process, so peak RSS is its own."""
    with Store.open(url) as store:
        state = store.mailbox(SOURCE, DEST)
        folder = state.folder("INBOX")
        assert folder is not None and folder.id is not None
        folder_id = folder.id
        print(f"  fresh process, peak RSS after open: {peak_rss_mib():.1f} MiB")
        timed("  iter_messages, all", rows, lambda: stream(state, folder_id, rows))
        timed(
            "  iter_messages, states={done}, uidvalidity",
            rows,
            lambda: stream(state, folder_id, rows, {"done"}, UIDVALIDITY),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--url", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--stream-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows, batch = args.rows, args.batch
    if args.stream_only:
        stream_only(args.url, rows)
        return

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'state.db'}"
        backend = url.split(":")[0]
        print(f"python {sys.version.split()[0]}, {rows} rows in batches of {batch}, {backend}")
        print(f"peak RSS after start: {peak_rss_mib():.1f} MiB")
        with Store.open(url) as store:
            state = store.mailbox(SOURCE, DEST)
            folder_id = state.save_folder(FolderRecord(None, "INBOX", "INBOX")).id
            assert folder_id is not None
            record(state, folder_id, rows, batch, "pending")
            record(state, folder_id, rows, batch, "done")
            update_flags(state, folder_id, rows, batch)
            subprocess.run(
                [sys.executable, __file__, "--stream-only", "--url", url, "--rows", str(rows)],
                check=True,
            )
            timed("iter_messages, all", rows, lambda: stream(state, folder_id, rows))
            timed(
                "StoreJournal.iter_messages",
                rows,
                lambda: asyncio.run(stream_async(state, folder_id, rows)),
            )
            asyncio.run(record_async(state, folder_id, rows, batch))
            assert state.counts() == {"failed": rows}
        if backend == "sqlite" and not args.url:
            size = (Path(tmp) / "state.db").stat().st_size
            print(f"database file: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
