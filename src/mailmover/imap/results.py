"""What commands return: a selected mailbox, APPENDUIDs; and what APPEND takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mailmover.imap.connection import Result


@dataclass(frozen=True, slots=True)
class SelectedMailbox:
    """What SELECT/EXAMINE told us about a mailbox."""

    name: str
    readonly: bool
    uidvalidity: int
    uidnext: int | None
    exists: int
    flags: tuple[str, ...]
    permanentflags: tuple[str, ...] | None
    highestmodseq: int | None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The destination UID of an appended message, when the server has UIDPLUS."""

    uidvalidity: int | None
    uid: int | None


@dataclass(frozen=True, slots=True)
class Message:
    """A message to APPEND."""

    data: bytes
    flags: Sequence[str] = ()
    internaldate: datetime | None = None


def append_results(result: Result, count: int) -> list[AppendResult]:
    """The APPENDUIDs of a completed (MULTI)APPEND, one per message (RFC 4315)."""
    code = result.tagged.code
    if code is not None and code.name == "APPENDUID" and isinstance(code.value, tuple):
        validity, uids = code.value
        if len(uids) == count:
            return [AppendResult(validity, uid) for uid in uids]
    return [AppendResult(None, None) for _ in range(count)]


def append_result(result: Result) -> AppendResult:
    """The APPENDUID of a completed single APPEND, when the server sent one."""
    return append_results(result, 1)[0]
