"""Bring flags changed on the source since the last run to the destination copies."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from mailmover.engine.flags import FlagPolicy
from mailmover.imap.client import IMAPClient
from mailmover.imap.connection import Result
from mailmover.store.async_state import AsyncMailboxState
from mailmover.store.records import MessageRecord

CHUNK = 5000


async def sync_flags(
    src: IMAPClient,
    dst: IMAPClient,
    state: AsyncMailboxState,
    folder_id: int,
    done: dict[int, MessageRecord],
    policy: FlagPolicy,
    *,
    since_modseq: int | None,
) -> int:
    """Update the destination's flags where the source's differ; returns how many changed.

    With CONDSTORE (RFC 7162) only messages changed since ``since_modseq`` are read.
    """
    if since_modseq and src.has("CONDSTORE"):
        items = f"(UID FLAGS) (CHANGEDSINCE {since_modseq})"
        futures = [src.uid_fetch_nowait(range(1, 2**32), items)]
    else:
        uids = sorted(done)
        futures = [
            src.uid_fetch_nowait(uids[i : i + CHUNK], "(UID FLAGS)")
            for i in range(0, len(uids), CHUNK)
        ]
    by_flags: dict[tuple[str, ...], list[int]] = defaultdict(list)
    updates: list[tuple[int, int, tuple[str, ...]]] = []
    for future in futures:
        for fetch in (await future).fetches:
            row = done.get(fetch.uid) if fetch.uid is not None else None
            if row is None or row.dest_uid is None or fetch.flags is None:
                continue
            flags, _ = policy.keep(fetch.flags)
            if set(flags) != set(row.flags):
                by_flags[flags].append(row.dest_uid)
                updates.append((row.source_uidvalidity, row.source_uid, flags))
    stores: list[asyncio.Future[Result]] = [
        dst.uid_store_nowait(sorted(uids), "FLAGS.SILENT", flags)
        for flags, uids in by_flags.items()
    ]
    for store in stores:
        await store
    if updates:
        await state.update_flags(folder_id, updates)
    return len(updates)
