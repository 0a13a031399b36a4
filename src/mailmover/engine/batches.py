"""The units a folder copy moves: message metadata, fetched items, batches on their way."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from mailmover.errors import MessageRefused
from mailmover.imap.client import AppendResult, append_results
from mailmover.imap.connection import Result

if TYPE_CHECKING:
    from mailmover.engine.attempt import BatchSize
    from mailmover.engine.relay import Relay


@dataclass(slots=True)
class Meta:
    """What the source said of a message before its body is fetched."""

    uid: int
    flags: tuple[str, ...]
    internaldate: datetime | None  # None: unreadable; appended without a date
    size: int


@dataclass(slots=True)
class Item:
    """A message fetched (or not: ``body`` None and ``reason`` set) and ready to append."""

    meta: Meta
    body: bytes | None
    digest: bytes | None
    flags: tuple[str, ...]
    message_id: str | None
    subject: str | None = None
    reason: str | None = None  # why it is not sent (no body)
    held: bool = True  # its cost was taken from the byte budget when it was fetched
    vanished: bool = False  # deleted on the source while the pass copied it
    relay: Relay | None = None  # handed on before its body was whole (engine.relay)
    cut: bool = False  # relayed, and the source link dropped before its body was whole


@dataclass(slots=True)
class Piece:
    """Messages of one batch whose bodies arrived whole (or that will not be sent), handed
    on to be appended while the rest of the batch is still being fetched."""

    items: list[Item]
    closes: bool = False  # the last piece of its batch


@dataclass(slots=True)
class Sent:
    """A piece on its way: APPEND commands by item index, and items found in the destination."""

    batch: list[Item]
    commands: list[tuple[list[int], asyncio.Future[Result]]] = field(default_factory=list)
    claimed: dict[int, int] = field(default_factory=dict)  # item index → destination UID
    closes: bool = False  # the last piece of its batch


# What a message costs beyond its bytes while it is held (parsed response, records,
# allocator slack): without it 20,000 small messages fit in the budget at once.
PER_MESSAGE = 2048


def cost(size: int) -> int:
    return size + PER_MESSAGE


def about_size(exc: MessageRefused) -> bool:
    text = exc.message.lower()
    return exc.code == "TOOBIG" or any(w in text for w in ("too large", "too big", "size"))


#: The smallest batch the end of a folder is cut into.
TAIL_BATCH = 256 * 1024


def next_batch(metas: list[Meta], start: int, left: int, size: BatchSize) -> list[Meta]:
    """The batch that begins at ``metas[start]``, within ``size``; near the end (``left``
    bytes from ``start`` on), a quarter of what is left: the last batch's upload, which
    nothing overlaps, is short."""
    return take(metas, start, min(size.bytes, max(TAIL_BATCH, left // 4)), size.messages)


def take(metas: list[Meta], start: int, most_bytes: int, most_messages: int) -> list[Meta]:
    """The batch that begins at ``metas[start]``: at least one message, then as many as
    fit in ``most_bytes`` and ``most_messages``."""
    end, size = start, 0
    while end < len(metas) and (
        end == start or (size + metas[end].size <= most_bytes and end - start < most_messages)
    ):
        size += metas[end].size
        end += 1
    return metas[start:end]


def answers(appended: list[Sent]) -> list[asyncio.Future[Result]]:
    """The answers still to come (or come) of every APPEND command of ``appended``."""
    return [future for sent in appended for _, future in sent.commands]


def answered(sent: Sent) -> dict[int, AppendResult | str]:
    """The APPENDUIDs of a batch's commands that the destination answered OK, by item index."""
    outcomes: dict[int, AppendResult | str] = {}
    for indexes, future in sent.commands:
        if future.done() and not future.cancelled() and future.exception() is None:
            appended = append_results(future.result(), len(indexes))
            outcomes.update(zip(indexes, appended, strict=True))
    return outcomes
