"""What the engine reads from and writes to the job state: plain records and their states."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Final

#: States of a mailbox pair as the service shows them (see ``mailmover.service.states``).
SERVICE_STATES: Final = (
    "queued",
    "running",
    "paused",
    "waiting",
    "synced",
    "completing",
    "completed",
    "completed_with_errors",
    "failed",
    "cancelled",
)

#: Every state of a mailbox pair: ``copy``'s own (new, done) and the service's.
MAILBOX_STATES: Final = frozenset({"new", "done", *SERVICE_STATES})

#: States of one message. ``pending``: the APPEND was sent but its result not recorded.
MESSAGE_STATES: Final = frozenset({"pending", "done", "failed", "skipped"})

#: Message states that the report names, each with its reason.
FAILURE_STATES: Final = ("failed", "skipped")


@dataclass(slots=True)
class FolderRecord:
    """One source folder, its destination name and how far its migration got."""

    id: int | None
    source_name: str
    dest_name: str
    source_uidvalidity: int | None = None
    dest_uidvalidity: int | None = None
    source_uidnext: int | None = None
    highestmodseq: int | None = None
    subscribed: bool = True
    state: str = "new"
    messages_total: int = 0
    bytes_total: int = 0


@dataclass(slots=True)
class MessageRecord:
    """One source message, keyed by (source_uidvalidity, source_uid) within its folder."""

    source_uidvalidity: int
    source_uid: int
    size: int
    internaldate: datetime
    state: str
    dest_uidvalidity: int | None = None
    dest_uid: int | None = None
    message_id: str | None = None
    digest: bytes | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class MailboxInfo:
    """The row of one mailbox pair, as reports show it."""

    id: int
    job_name: str
    source: str
    dest: str
    state: str
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(slots=True, frozen=True)
class EventRecord:
    """One line of the activity log."""

    id: int
    mailbox_id: int | None
    at: datetime
    level: str
    kind: str
    text: str


def flags_text(flags: tuple[str, ...] | list[str] | frozenset[str]) -> str:
    """The stored form of a flag set: sorted, without duplicates, space separated."""
    unique = set(flags)
    for flag in unique:
        if not flag or len(flag.split()) != 1 or flag.strip() != flag:
            raise ValueError(f"not an IMAP flag: {flag!r}")
    return " ".join(sorted(unique))


@functools.lru_cache(maxsize=4096)
def _flags_text_of(flags: tuple[str, ...]) -> str:
    return flags_text(flags)


def stored_flags(flags: tuple[str, ...] | list[str] | frozenset[str]) -> str:
    """``flags_text``, remembered for the few flag tuples that most messages share."""
    return _flags_text_of(flags) if isinstance(flags, tuple) else flags_text(flags)


def flags_tuple(text: str) -> tuple[str, ...]:
    """The flag tuple that ``flags_text`` stored."""
    return tuple(text.split())
