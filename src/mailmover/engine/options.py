"""How one folder is copied (engine.transfer): what the pass chose, and the sizes of
what is fetched and appended at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from mailmover.engine.relay import RELAY_ABOVE


@dataclass(frozen=True)
class TransferOptions:
    since: date | None = None
    before: date | None = None
    batch_bytes: int = 4 * 1024 * 1024
    batch_messages: int = 250
    memory_budget: int = 16 * 1024 * 1024  # message data held at once, for the whole mailbox
    segment: int = 5000  # UIDs whose metadata is read at once
    only_failed: bool = False  # a retry-errors pass: only messages recorded as failed
    range_above: int = 1024 * 1024  # larger messages are fetched in ranges of range_size
    range_size: int = 512 * 1024
    fetch_ahead: int = 8  # fetches in flight at most (the byte budget bounds them too)
    relay_above: int = RELAY_ABOVE  # larger messages are relayed (engine.relay); 0: never
