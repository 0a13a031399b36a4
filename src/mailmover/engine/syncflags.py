"""Bring flags changed on the source since the last run to the destination copies."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque

from mailmover.engine.flags import FlagPolicy, without_keywords
from mailmover.engine.ports import Journal
from mailmover.errors import CommandFailed
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
) -> tuple[int, int]:
    """Update the destination's flags where the source's differ: (messages updated,
    flags dropped because the destination refused them).

    With CONDSTORE (RFC 7162) only messages changed since ``since_modseq`` are read;
    otherwise the flags are read in chunks, two in flight, so memory stays flat.
    """
    by_flags: dict[tuple[str, ...], list[tuple[int, int]]] = defaultdict(list)

    def compare(fetches: list[Fetch]) -> None:
        for fetch in fetches:
            copied = done.get(fetch.uid) if fetch.uid is not None else None
            if copied is None or copied[0] is None or fetch.flags is None:
                continue
            flags, _ = policy.keep(fetch.flags)
            if set(flags) != set(copied[1]):
                by_flags[flags].append((fetch.uid or 0, copied[0]))

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
    groups = list(by_flags.items())
    stores = [
        dst.uid_store_nowait(sorted(d for _, d in pairs), "FLAGS.SILENT", flags)
        for flags, pairs in groups
    ]
    updates: list[tuple[int, int, tuple[str, ...]]] = []
    dropped = 0
    for (flags, pairs), outcome in zip(
        groups, await asyncio.gather(*stores, return_exceptions=True), strict=True
    ):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, CommandFailed) or outcome.retryable:
                raise outcome
            # One refused flag costs that flag, not the folder (Scalix, Exchange).
            kept = await store_each(dst, [d for _, d in pairs], flags)
            dropped += (len(flags) - len(kept)) * len(pairs)
            flags = kept
        updates += [(uidvalidity, src_uid, flags) for src_uid, _ in pairs]
    if updates:
        await state.update_flags(folder_id, updates)
    return len(updates), dropped


async def store_each(dst: IMAPClient, uids: list[int], flags: tuple[str, ...]) -> tuple[str, ...]:
    """Set ``flags`` on ``uids`` one flag at a time after the set as a whole was refused;
    the flags the server took."""
    base = without_keywords(flags)
    try:
        await dst.uid_store_nowait(sorted(uids), "FLAGS.SILENT", base)
    except CommandFailed:
        base = ()
        await dst.uid_store_nowait(sorted(uids), "FLAGS.SILENT", ())
    rest = [f for f in flags if f not in base]
    sent = [dst.uid_store_nowait(sorted(uids), "+FLAGS.SILENT", [f]) for f in rest]
    outcomes = await asyncio.gather(*sent, return_exceptions=True)
    kept = [f for f, o in zip(rest, outcomes, strict=True) if not isinstance(o, BaseException)]
    return tuple(sorted((*base, *kept)))
