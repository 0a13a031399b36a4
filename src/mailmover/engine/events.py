"""What the engine tells its caller while a pass runs: frozen, JSON-serialisable events.

The CLI's progress, the service's counters and the web page's live updates all read
these. ``event_json`` gives each one as a dict with an ``event`` name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mailmover.engine.report import FolderReport, PassReport

#: What a retry starts again: one connection pair, one folder, or the whole mailbox.
Scope = Literal["connection", "folder", "mailbox"]


@dataclass(frozen=True, slots=True)
class FolderPlanned:
    folder: str
    dest: str
    messages: int
    size: int
    note: str | None = None


@dataclass(frozen=True, slots=True)
class FolderStarted:
    folder: str
    to_copy: int
    to_copy_bytes: int


@dataclass(frozen=True, slots=True)
class BatchCopied:
    """A batch of a folder was appended and recorded (``messages`` includes failures)."""

    folder: str
    messages: int
    size: int
    copied: int = 0
    copied_bytes: int = 0


@dataclass(frozen=True, slots=True)
class MessageFailed:
    folder: str
    uid: int
    size: int
    date: str | None
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class Retrying:
    folder: str
    reason: str
    delay: float
    scope: Scope = "folder"


@dataclass(frozen=True, slots=True)
class FolderFinished:
    result: FolderReport


@dataclass(frozen=True, slots=True)
class PassFinished:
    report: PassReport


Event = (
    FolderPlanned | FolderStarted | BatchCopied | MessageFailed | Retrying | FolderFinished
    | PassFinished
)  # fmt: skip
Listener = Callable[[Event], None]

_NAMES: dict[type, str] = {
    FolderPlanned: "folder_planned",
    FolderStarted: "folder_started",
    BatchCopied: "progress",
    MessageFailed: "message_failed",
    Retrying: "retrying",
    FolderFinished: "folder_finished",
    PassFinished: "pass_finished",
}


def event_json(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict: ``{"event": name, ...fields}``."""
    if isinstance(event, FolderFinished):
        return {"event": "folder_finished", **event.result.to_dict()}
    if isinstance(event, PassFinished):
        return {"event": "pass_finished", **event.report.to_dict()}
    data: dict[str, Any] = {"event": _NAMES[type(event)]}
    for f in fields(event):
        data[f.name] = getattr(event, f.name)
    if isinstance(event, Retrying):
        data["delay"] = round(event.delay, 3)
    if isinstance(event, FolderStarted):
        data["bytes"] = data.pop("to_copy_bytes")
    if isinstance(event, FolderPlanned | BatchCopied):
        data["bytes"] = data.pop("size")
    return data


def ignore(_event: Event) -> None:
    """A listener that listens to nothing."""
