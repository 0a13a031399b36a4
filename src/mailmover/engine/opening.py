"""Opening a folder on both sides, searching and (when small) reading it, in one round trip.

The source's UID SEARCH, and for a folder the planning STATUS found small the
metadata of all its messages, are sent behind its EXAMINE without waiting for
the answer (``select(pipelined=True)``); on the first copy of a folder that
would be a single batch anyway and holds at most 256 KiB, the bodies come in
the same FETCH and are left in the folder's carry, where ``read_bodies`` takes
them instead of fetching them again. With thousands of small folders these
round trips, not the messages, are the time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mailmover.engine.attempt import Carry
from mailmover.engine.listing import META, date_criteria
from mailmover.imap.client import IMAPClient, SelectedMailbox
from mailmover.imap.proto.responses import Fetch

PREFETCH = 1000  # a folder of at most this many messages has its metadata read on opening
PREFETCH_BYTES = 256 * 1024  # and on its first copy its bodies, when it holds at most this


@dataclass
class Opened:
    source: SelectedMailbox
    dest: SelectedMailbox
    uids: list[int]  # what the UID SEARCH found
    known: dict[int, Fetch] = field(default_factory=dict)  # metadata read already, by UID


async def open_folder(
    src: IMAPClient,
    dst: IMAPClient,
    names: tuple[str, str],
    *,
    since: date | None,
    before: date | None,
    expected: tuple[int, int] | None,
    first: bool,
    carry: Carry,
) -> Opened:
    """EXAMINE ``names[0]`` on ``src`` and SELECT ``names[1]`` on ``dst``, and search
    the source; ``expected`` is (messages, bytes) by the planning STATUS, ``first``
    whether the folder was never copied before. A refusal to open is raised first."""
    messages, size = expected or (PREFETCH + 1, 0)
    small = messages <= PREFETCH
    items = META
    # Bodies only for what would be a single batch anyway (the batch shrinks after a cut).
    one_batch = messages <= carry.size.messages and size <= carry.size.bytes
    if first and small and one_batch and 0 < size <= PREFETCH_BYTES:
        items = f"{META[:-1]} BODY.PEEK[])"
    # Tasks start in the order they are made, so the commands are queued in this order.
    sel = asyncio.ensure_future(src.examine(names[0], pipelined=True))
    dsel = asyncio.ensure_future(dst.select(names[1]))
    uids = asyncio.ensure_future(src.uid_search(*date_criteria(since, before)))
    meta = asyncio.ensure_future(src.uid_fetch(range(1, 2**32), items)) if small else None
    tasks: list[asyncio.Future[Any]] = [sel, dsel, uids, *([meta] if meta else [])]
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:  # the EXAMINE's refusal first: the others follow from it
        if (exc := task.exception()) is not None:
            raise exc
    opened = Opened(sel.result(), dsel.result(), uids.result())
    for f in meta.result() if meta is not None else []:
        if f.uid is None:
            continue
        opened.known[f.uid] = f
        body = f.body.pop("", None)
        if body is not None and len(body) == f.size:  # read_bodies takes it from there
            carry.partial.setdefault(f.uid, body)
    return opened
