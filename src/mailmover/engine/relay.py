"""A large message relayed: its APPEND starts while its ranges are still arriving.

On a link whose bandwidth is the bound, a message of several MB that is
appended only once it has fully arrived leaves the upload that far behind the
download for the rest of the copy. Relayed, the destination's APPEND is sent
as soon as the first range of the message arrives, its literal announced at
the size the source announced (RFC822.SIZE), and each range is written to the
destination as it arrives, in order.

The promise that nothing is appended that was not fully read still holds: the
last byte of the literal is written only once the whole body was read at
exactly the announced size, so the destination can complete no APPEND of a
message that came short, long or not at all. When the source cannot deliver
(the message was deleted meanwhile, came at another length, the source link
dropped), the relay breaks: if its APPEND had begun, the destination
connection is dropped before the literal ends (an unfinished APPEND stores
nothing), and the folder's attempt fails and is retried like any cut link;
if it had not, the message goes the ordinary way (appended once whole, or
named). A message whose relay broke on a wrong length is not relayed again.

What a folder fetches behind a relayed message cannot be appended before it
(the destination connection writes the literal meanwhile), so the folder asks
for its next batch only once the batch holding a message to relay was read.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable

from mailmover.engine.attempt import Carry
from mailmover.engine.batches import Item, Meta
from mailmover.engine.dedup import DestinationIndex
from mailmover.engine.headers import message_id
from mailmover.errors import ConnectionLost
from mailmover.imap.client import IMAPClient, Result
from mailmover.imap.relayed import append_relayed_nowait

#: messages at least this large are relayed (when they are read in ranges, i.e. above
#: ``TransferOptions.range_above`` too)
RELAY_ABOVE = 1024 * 1024


class Relay:
    """The bytes of one message read so far, handed to the destination's literal as they
    come (``chunks``, a ``LiteralStream``)."""

    def __init__(self, uid: int, size: int, on_start: Callable[[Relay], None]) -> None:
        self.uid, self.size = uid, size
        self._on_start: Callable[[Relay], None] | None = on_start
        self._have = b""  # the first bytes of the message, read in order
        self._whole = False  # ``_have`` is the whole body, at the announced size
        self.error: str | None = None  # why the source could not deliver it
        self.taken = False  # an APPEND was queued with this relay: breaking drops its link
        self._changed = asyncio.Event()
        self.ended = asyncio.Event()  # the message's read ended (whole, or not)

    @property
    def broken(self) -> bool:
        return self.error is not None

    def feed(self, have: bytes) -> None:
        """The first ``len(have)`` bytes are read; more are coming. The first call starts
        the relay (``on_start``: its APPEND may be queued)."""
        if self._whole or self.error is not None or len(have) >= self.size:
            return  # all of it, or more: only ``finish`` (the length checked) lets it end
        self._have = have
        self._changed.set()
        if self._on_start is not None:
            start, self._on_start = self._on_start, None
            start(self)

    def finish(self, body: bytes) -> None:
        """The whole body, read at the size announced: the literal may end."""
        if self._whole or self.error is not None:
            return
        if len(body) != self.size or body[: len(self._have)] != self._have:
            self.fail("the body read again differs from the bytes relayed")
            return
        self._have, self._whole = body, True
        self._on_start = None
        self._changed.set()

    def fail(self, reason: str) -> None:
        """The source cannot deliver the message (in this read): the literal must not end."""
        if self._whole or self.error is not None:
            return
        self.error = reason
        self._on_start = None
        self._changed.set()

    def end(self) -> None:
        """The read of the message is over, whatever came of it."""
        if not self._whole:
            self.fail("the read of the message ended")
        self.ended.set()

    async def chunks(self) -> AsyncIterator[bytes | memoryview]:
        """The literal's bytes as they come; raises (the connection is then dropped) when
        the relay breaks before the last byte."""
        sent = 0
        while True:
            if self.error is not None:
                raise ConnectionLost(
                    f"UID {self.uid} could not be read whole while it was relayed"
                    f" ({self.error}); the destination connection was dropped, so nothing"
                    " of it is stored"
                )
            limit = self.size if self._whole else min(len(self._have), self.size - 1)
            if sent < limit:
                chunk = memoryview(self._have)[sent:limit]
                sent = limit
                yield chunk
            elif sent >= self.size:
                return
            else:
                self._changed.clear()
                await self._changed.wait()


def may_relay(meta: Meta, *, above: int, carry: Carry, index: DestinationIndex | None) -> bool:
    """Whether ``meta`` may be appended while it arrives: large enough (``above``; 0:
    never), not relayed in vain before, and no destination message of its size that it
    must be compared with first (a copy made before: engine.dedup), nor one whose
    earlier APPEND a cut left unanswered (engine.unanswered: the server may store it
    late, so it must be looked for after the settle, which a relay would skip)."""
    if not above or meta.size < above or meta.uid in carry.no_relay:
        return False
    if meta.uid in carry.ambiguous:
        return False
    return index is None or not index.has_size(meta.size)


def fill(item: Item, body: bytes) -> None:
    """``item`` (relayed, sent before its body was whole) gets its body, digest and
    Message-ID, as an item made from a whole body has them."""
    item.body = body
    item.digest = hashlib.sha256(body).digest()
    item.message_id = message_id(body)


async def append_relayed(
    dst: IMAPClient, mailbox: str, item: Item
) -> asyncio.Future[Result] | None:
    """Queue the APPEND of ``item``, relayed; None when its relay broke before: then, once
    its read has ended, the item has its body (appended the ordinary way) or a reason."""
    relay = item.relay
    assert relay is not None
    if not relay.broken:
        relay.taken = True
        return append_relayed_nowait(dst, mailbox, item.flags, item.meta.internaldate, relay)
    await relay.ended.wait()
    return None


async def settled(items: list[Item]) -> None:
    """Wait until the read of every relayed item of ``items`` has ended (an APPEND refused
    before its literal was sent is retried with the body)."""
    for item in items:
        if item.relay is not None:
            await item.relay.ended.wait()
