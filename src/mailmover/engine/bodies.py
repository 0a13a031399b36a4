"""Reading message bodies from the source, and never handing on one that was not fully read.

Small messages of a batch come in one ``UID FETCH``. A large one comes in
ranges (``BODY.PEEK[]<offset.length>``). What arrives is kept in the folder's
:class:`~mailmover.engine.attempt.Carry` (each body as its FETCH line is
read, each range of a large one) until the message is recorded, so that
after a cut the next attempt asks only for the bytes it lacks. A body whose length differs
from the RFC822.SIZE the server announced is read again; after
``MISREADS`` reads it is named as not copied, never appended.

A caller that wants to append while the rest of a batch arrives passes
``on_body``: it gets each message once, the moment its whole body is read at
the announced length, and never one that is not. With ``relay_of`` a large
message may also be relayed as its ranges arrive (engine.relay): each full
range is fed to its relay, which is finished with the whole body or broken.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from mailmover.engine.attempt import Carry
from mailmover.engine.batches import Meta
from mailmover.engine.relay import Relay
from mailmover.errors import ProtocolError
from mailmover.imap.client import IMAPClient, Result
from mailmover.imap.proto.responses import Fetch

BODY = "(UID BODY.PEEK[])"
#: messages larger than this are read in ranges
RANGE_ABOVE = 1024 * 1024
#: bytes asked for by one ranged FETCH
RANGE = 512 * 1024
#: ranged FETCHes of one message in flight at once: with one, the line idles a round trip
#: between ranges (7 MB through 40 Mbit/s and 50 ms: 2.2 s in 512 KiB ranges, 1.5 s whole)
RANGES_AHEAD = 3
#: reads of a message that came back at another length than announced, before it is given up
MISREADS = 3
EMPTY = "the source returned an empty body (deleted during the copy?)"

#: what a read gives for one message: its body, None when the server returned none, or
#: the reason it is not copied
Body = bytes | str | None

#: told of each message whose whole body was read, at the length announced
OnBody = Callable[[Meta, bytes], None]


async def read_bodies(
    src: IMAPClient,
    batch: Sequence[Meta],
    carry: Carry,
    *,
    range_above: int = RANGE_ABOVE,
    range_size: int = RANGE,
    on_body: OnBody | None = None,
    on_fetched: Callable[[], None] | None = None,
    relay_of: Callable[[Meta], Relay | None] | None = None,
) -> dict[int, Body]:
    """Each message of ``batch`` by UID; the commands are queued before the first wait.
    ``on_body`` is told of each body as soon as it is whole (see the module docstring),
    ``on_fetched`` once the messages read in one FETCH have all come (Dovecot may send
    that FETCH's tagged answer only after the data of the FETCHes behind it)."""
    out: dict[int, Body] = {}
    told: set[int] = set()

    def tell(meta: Meta, body: Body) -> None:
        if on_body is None or not isinstance(body, bytes) or meta.uid in told:
            return
        if len(body) == meta.size:  # never a body shorter or longer than announced
            told.add(meta.uid)
            on_body(meta, body)

    for meta in batch:
        kept = carry.partial.get(meta.uid)
        if kept is not None and len(kept) == meta.size:  # read by an earlier attempt
            out[meta.uid] = kept
            tell(meta, kept)
    whole = [
        m for m in batch
        if m.uid not in out and m.size <= range_above and m.uid not in carry.partial
    ]  # fmt: skip
    wanted = {m.uid: m for m in whole}
    ranged = [m for m in batch if m.uid not in out and m.uid not in wanted]
    got: dict[int, bytes | None] = {}

    def keep(fetch: Fetch) -> None:
        if fetch.uid is None or fetch.uid not in wanted:
            return
        body = got[fetch.uid] = fetch.body.get("")
        if body is not None and len(body) == wanted[fetch.uid].size:
            carry.partial[fetch.uid] = body  # kept even if the rest of the batch is lost
            tell(wanted[fetch.uid], body)
        if on_fetched is not None and len(got) == len(wanted):
            on_fetched()

    future = src.uid_fetch_nowait(list(wanted), BODY, on_fetch=keep) if whole else None

    async def one_large(meta: Meta) -> Body:
        relay = relay_of(meta) if relay_of is not None else None
        try:
            read = await read_ranges(src, meta, carry, range_size, relay=relay)
            if relay is not None and (read is None or len(read) != meta.size):
                relay.fail("the source sent it at another length than announced, or none")
                carry.no_relay.add(meta.uid)
            body = await _checked(src, meta, read, carry, range_size)
        except BaseException:
            if relay is not None:
                relay.fail("the source link failed")
            raise
        if relay is not None and isinstance(body, bytes):
            relay.finish(body)
        tell(meta, body)
        return body

    tasks = [asyncio.ensure_future(one_large(m)) for m in ranged]
    try:
        if future is not None:
            await future
            for meta in whole:
                out[meta.uid] = await _checked(src, meta, got.get(meta.uid), carry, range_size)
                tell(meta, out[meta.uid])
        for meta, task in zip(ranged, tasks, strict=True):
            out[meta.uid] = await task
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
    return out


async def read_ranges(
    src: IMAPClient,
    meta: Meta,
    carry: Carry,
    size: int,
    ahead: int = RANGES_AHEAD,
    relay: Relay | None = None,
) -> bytes | None:
    """The whole body of one message, read from where earlier attempts stopped, ``ahead``
    ranges asked for at once and kept in order; what is read so far is fed to ``relay``
    after each full range (more is coming)."""
    have = carry.partial.get(meta.uid, b"")
    parts: dict[int | None, bytes] = {}  # by origin; None: the whole body
    news: list[asyncio.Future[None]] = []

    def keep(fetch: Fetch) -> None:  # every range's FETCH data, whichever command gets it
        if fetch.uid == meta.uid and "" in fetch.body:
            parts[fetch.origins.get("")] = fetch.body[""]
            if news and not news[0].done():
                news[0].set_result(None)

    asked: deque[tuple[int, asyncio.Future[Result]]] = deque()
    offset = len(have)
    try:
        while True:
            while len(asked) < ahead and (offset < meta.size or not asked):
                items = f"(UID BODY.PEEK[]<{offset}.{size}>)"
                asked.append((offset, src.uid_fetch_nowait([meta.uid], items, on_fetch=keep)))
                offset += size
            start, future = asked[0]
            # On with the range's data, not its tagged answer: Dovecot sends that only
            # after the data of the FETCHes pipelined behind it (the next range would
            # wait for the two after it).
            while start not in parts and None not in parts and not future.done():
                news[:] = [asyncio.get_running_loop().create_future()]
                either: list[asyncio.Future[Any]] = [future, news[0]]
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            asked.popleft()
            if start not in parts and None not in parts:
                await future  # its error; or answered without this range
            if None in parts:  # the server sent the whole body, not the range
                carry.partial.pop(meta.uid, None)
                return parts[None]
            data = parts.pop(start, None)
            if data is None:
                waiting = {s for s, _ in asked}
                strays = sorted(o for o in parts if o is not None and o not in waiting)
                if strays:
                    raise ProtocolError(
                        f"asked for UID {meta.uid} from byte {start}, got {strays[0]}"
                    )
                carry.partial.pop(meta.uid, None)
                return None
            if data:
                have += data
                carry.partial[meta.uid] = have
                carry.progress()
            if len(data) < size:
                return have
            if relay is not None:
                relay.feed(have)
    finally:
        for _, future in asked:  # asked beyond the end: their answers are not needed
            future.cancel()


async def _checked(
    src: IMAPClient, meta: Meta, body: bytes | None, carry: Carry, range_size: int
) -> Body:
    """``body`` if it is as long as announced; otherwise read again, or the reason not to."""
    while True:
        if body is None:
            return None
        if len(body) == meta.size:
            return body
        if not body:
            # Dovecot answers BODY[] NIL for a message expunged by another session.
            return EMPTY
        carry.partial.pop(meta.uid, None)
        misreads = carry.misread[meta.uid] = carry.misread.get(meta.uid, 0) + 1
        if misreads >= MISREADS:
            return (
                f"the source sent {len(body):,} bytes of a message it sized {meta.size:,}"
                f" ({misreads} reads); not copied"
            )
        body = await read_ranges(src, meta, carry, range_size)
