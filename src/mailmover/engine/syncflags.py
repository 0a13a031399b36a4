"""Bring flags changed on the source since the last run to the destination copies."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque

from mailmover.engine.flags import FlagPolicy
from mailmover.engine.ports import Journal
from mailmover.imap.client import IMAPClient
from mailmover.imap.connection import Result
from mailmover.imap.proto.responses import Fetch

CHUNK = 5000


# What the state says of a copied message: its destination UID and the flags it was given.
CopiedRow = tuple[int | None, tuple[str, ...]]


async def sync_flags(
    src: IMAPClient,
    dst: IMAPClient,
    state: Journal,
    folder_id: int,
    uidvalidity: int,
    done: dict[int, CopiedRow],
    policy: FlagPolicy,
    *,
    since_modseq: int | None,
) -> int:
    """Update the destination's flags where the source's differ; returns how many changed.

    With CONDSTORE (RFC 7162) only messages changed since ``since_modseq`` are read;
    otherwise the flags are read in chunks, two in flight, so memory stays flat.
    """
    by_flags: dict[tuple[str, ...], list[int]] = defaultdict(list)
    updates: list[tuple[int, int, tuple[str, ...]]] = []

    def compare(fetches: list[Fetch]) -> None:
        for fetch in fetches:
            copied = done.get(fetch.uid) if fetch.uid is not None else None
            if copied is None or copied[0] is None or fetch.flags is None:
                continue
            flags, _ = policy.keep(fetch.flags)
            if set(flags) != set(copied[1]):
                by_flags[flags].append(copied[0])
                updates.append((uidvalidity, fetch.uid or 0, flags))

    if since_modseq and src.has("CONDSTORE"):
        items = f"(UID FLAGS) (CHANGEDSINCE {since_modseq})"
        compare(await src.uid_fetch(range(1, 2**32), items))
    else:
        uids = sorted(done)
        chunks = [uids[i : i + CHUNK] for i in range(0, len(uids), CHUNK)]
        window: deque[asyncio.Future[Result]] = deque()
        for chunk in chunks:
            window.append(src.uid_fetch_nowait(chunk, "(UID FLAGS)"))
            if len(window) > 1:
                compare((await window.popleft()).fetches)
        while window:
            compare((await window.popleft()).fetches)
    stores: list[asyncio.Future[Result]] = [
        dst.uid_store_nowait(sorted(uids), "FLAGS.SILENT", flags)
        for flags, uids in by_flags.items()
    ]
    for store in stores:
        await store
    if updates:
        await state.update_flags(folder_id, updates)
    return len(updates)
