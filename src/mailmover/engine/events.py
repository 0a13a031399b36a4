"""What the engine tells its caller while it runs, and what it returns at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Failure:
    """A message that was not copied, and why."""

    folder: str
    uid: int
    size: int
    internaldate: datetime | None
    subject: str
    reason: str


@dataclass(slots=True)
class FolderResult:
    """The outcome of one folder."""

    source_name: str
    dest_name: str
    note: str | None = None
    source_messages: int = 0
    copied: int = 0
    copied_bytes: int = 0
    already: int = 0  # copied by an earlier run, or found in the destination
    flags_updated: int = 0
    flags_dropped: int = 0
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None  # the folder stopped early
    refused: bool = False  # ... because the server refused something of this folder alone
    interrupted: bool = False  # stopped on request; the next run goes on
    attempted: set[int] = field(default_factory=set, repr=False)  # source UIDs sent this run


@dataclass(frozen=True, slots=True)
class FolderPlanned:
    folder: str
    dest: str
    messages: int
    size: int


@dataclass(frozen=True, slots=True)
class FolderStarted:
    folder: str
    to_copy: int
    to_copy_bytes: int


@dataclass(frozen=True, slots=True)
class Copied:
    folder: str
    messages: int
    size: int


@dataclass(frozen=True, slots=True)
class FolderFinished:
    result: FolderResult


@dataclass(frozen=True, slots=True)
class Retrying:
    folder: str
    reason: str
    delay: float


Event = FolderPlanned | FolderStarted | Copied | FolderFinished | Retrying
Listener = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """A listener that listens to nothing."""
