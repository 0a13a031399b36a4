"""A batch's messages handed on in pieces as their bodies arrive, so that appending starts
while the rest of the batch is still being fetched.

On a link whose bandwidth is the bound, a batch fetched whole before its first
APPEND leaves the upload idle while every folder waits for its next batch. Here
a message joins a piece the moment its whole body is read at the length the
server announced (``read_bodies``' ``on_body``), and a piece is handed on once
it holds ``piece_bytes`` or ``piece_messages``, or once the batch's FETCH has
sent all it will (not at its tagged answer, which Dovecot may send only after
the data of the FETCHes pipelined behind it); what did not arrive whole
(deleted on the source, unreadable) goes in the batch's last piece, with its
reason. A message is never in two pieces, and never appended unless whole.

A large message that ``may_relay`` allows is handed on alone, in a piece of
its own, once its first range has arrived (engine.relay); its item gets its
body when the body is whole, or its reason when the read ends without one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from mailmover.engine.attempt import Carry
from mailmover.engine.batches import Item, Meta, Piece, Sent, answers
from mailmover.engine.bodies import EMPTY, read_bodies
from mailmover.engine.listing import VANISHED, vanished
from mailmover.engine.relay import Relay, fill
from mailmover.imap.client import IMAPClient

#: a piece is handed on once its bodies reach this many bytes (256 KiB halved the small
#: messages' MULTIAPPENDs and cost the destination Dovecot half as much again per message:
#: bench/README.md 5b.2; on the bandwidth-bound link 1 MiB did as well)
PIECE_BYTES = 1024 * 1024

#: an item for a message: its meta, its whole body (or None), why it is not sent, whether
#: it was deleted on the source meanwhile
MakeItem = Callable[[Meta, bytes | None, str | None, bool], Item]


async def stream_batch(
    src: IMAPClient,
    batch: Sequence[Meta],
    carry: Carry,
    make: MakeItem,
    hand_on: Callable[[Piece], None],
    *,
    range_above: int,
    range_size: int,
    piece_bytes: int = PIECE_BYTES,
    piece_messages: int = 250,
    may_relay: Callable[[Meta], bool] | None = None,
) -> None:
    """Fetch ``batch`` and hand every message of it on, in pieces (see the module
    docstring). When the link drops, what arrived whole is still handed on."""
    pending: list[Item] = []
    size = 0
    whole: set[int] = set()
    closed = False
    relayed: dict[int, Item] = {}  # by UID: handed on before their bodies were whole

    def flush(closes: bool = False) -> None:
        nonlocal size, closed
        if closed or not (pending or closes):
            return
        hand_on(Piece(pending.copy(), closes))
        pending.clear()
        size = 0
        closed = closes

    def arrived(meta: Meta, body: bytes) -> None:
        nonlocal size
        whole.add(meta.uid)
        item = relayed.get(meta.uid)
        if item is not None:  # handed on already
            assert item.relay is not None
            fill(item, body)
            item.relay.end()
        else:
            pending.append(make(meta, body, None, False))
            size += meta.size
        if len(whole) == len(batch):
            flush(closes=True)
        elif size >= piece_bytes or len(pending) >= piece_messages:
            flush()

    def relay_of(meta: Meta) -> Relay | None:
        if may_relay is None or not may_relay(meta):
            return None

        def start(relay: Relay) -> None:
            item = relayed[meta.uid] = make(meta, None, None, False)
            item.relay = relay
            hand_on(Piece([item]))

        return Relay(meta.uid, meta.size, start)

    try:
        try:
            read = await read_bodies(
                src, batch, carry, range_above=range_above, range_size=range_size,
                on_body=arrived, on_fetched=flush, relay_of=relay_of,
            )  # fmt: skip
            rest = [m for m in batch if m.uid not in whole]
            unread = [m.uid for m in rest if read.get(m.uid) in (None, EMPTY)]
            gone = await vanished(src, unread)
        except BaseException:
            for uid, waiting in relayed.items():  # read on by the next attempt: no failure
                waiting.cut = uid not in whole
            flush()
            raise
        for meta in rest:  # every body read whole was handed on: these have none
            found, reason = read.get(meta.uid), None
            if meta.uid in gone:
                reason = VANISHED
            elif isinstance(found, str):
                reason = found
            item = relayed.get(meta.uid)
            if item is None:
                pending.append(make(meta, None, reason, meta.uid in gone))
                continue
            item.reason, item.vanished = reason, meta.uid in gone  # handed on already
            if meta.uid in unread and item.relay is not None and item.relay.taken:
                carry.gone.add(meta.uid)  # its APPEND's link is dropped: see Carry.gone
        flush(closes=True)
    finally:
        for item in relayed.values():
            assert item.relay is not None
            item.relay.end()


def all_answered(sent: Sent) -> bool:
    """Whether the destination answered every APPEND of ``sent``."""
    return all(future.done() for future in answers([sent]))


class Arrivals:
    """Tells a consumer waiting for an answer that a piece was handed on meanwhile."""

    def __init__(self) -> None:
        self._next: asyncio.Future[None] | None = None

    def tell(self) -> None:
        if self._next is not None and not self._next.done():
            self._next.set_result(None)

    def next(self) -> asyncio.Future[None]:
        """A future that the next ``tell`` resolves."""
        self._next = asyncio.get_running_loop().create_future()
        return self._next


async def answered_first(sent: Sent, arrival: asyncio.Future[None]) -> bool:
    """Wait until every APPEND of ``sent`` is answered (True) or ``arrival`` is done (False),
    whichever comes first: a piece that arrives meanwhile is appended without waiting."""
    while not arrival.done():
        pending: list[asyncio.Future[Any]] = [f for f in answers([sent]) if not f.done()]
        if not pending:
            return True
        pending.append(arrival)
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    return False
