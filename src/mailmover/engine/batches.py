"""The units a folder copy moves: message metadata, fetched items, batches on their way."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from mailmover.errors import MessageRefused
from mailmover.imap.connection import Result


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
    held: int = 0  # bytes of the byte budget this item holds until it is recorded
    vanished: bool = False  # deleted on the source while the pass copied it


@dataclass(slots=True)
class Sent:
    """A batch on its way: APPEND commands by item index, and items found in the destination."""

    batch: list[Item]
    commands: list[tuple[list[int], asyncio.Future[Result]]] = field(default_factory=list)
    claimed: dict[int, int] = field(default_factory=dict)  # item index → destination UID


# What a message costs beyond its bytes while it is held (parsed response, records,
# allocator slack): without it 20,000 small messages fit in the budget at once.
PER_MESSAGE = 2048


def cost(size: int) -> int:
    return size + PER_MESSAGE


def about_size(exc: MessageRefused) -> bool:
    text = exc.message.lower()
    return exc.code == "TOOBIG" or any(w in text for w in ("too large", "too big", "size"))


def batches(metas: list[Meta], max_bytes: int, max_count: int) -> list[list[Meta]]:
    batches: list[list[Meta]] = []
    current: list[Meta] = []
    size = 0
    for meta in metas:
        if current and (size + meta.size > max_bytes or len(current) >= max_count):
            batches.append(current)
            current, size = [], 0
        current.append(meta)
        size += meta.size
    if current:
        batches.append(current)
    return batches
