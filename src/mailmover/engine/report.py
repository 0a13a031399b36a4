"""What a pass returns: an outcome, per-folder results, and the manifest of what was not copied.

``FolderResult`` is a folder's working tally while it is copied; ``FolderReport`` is the
frozen row a finished folder leaves; ``PassReport`` is the whole pass. All of them turn
into JSON-ready dicts, so a report crosses processes and lands in a database as data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from mailmover.engine.folders import FolderPlan

Outcome = Literal["completed", "completed_with_errors", "failed", "paused", "cancelled"]
#: What kind of failure ended a pass: the CLI maps these to exit codes, the service to states.
FailureKind = Literal[
    "network", "tls", "authentication", "quota", "usage", "protocol", "server", "internal"
]


@dataclass(frozen=True, slots=True)
class Failure:
    """A message that was not copied, and why."""

    folder: str
    uid: int
    size: int
    internaldate: datetime | None
    subject: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "uid": self.uid,
            "size": self.size,
            "date": self.internaldate.isoformat() if self.internaldate else None,
            "subject": self.subject,
            "reason": self.reason,
        }


@dataclass(slots=True)
class FolderResult:
    """A folder's tally while it is being copied (carried across its retries)."""

    source_name: str
    dest_name: str
    note: str | None = None
    source_messages: int = 0
    copied: int = 0
    copied_bytes: int = 0
    already: int = 0  # copied by an earlier run, or found in the destination
    flags_updated: int = 0
    flags_dropped: int = 0
    vanished: int = 0  # deleted on the source while this pass copied them
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None  # the folder stopped early
    refused: bool = False  # ... because the server refused something of this folder alone
    interrupted: bool = False  # stopped on request; the next pass goes on
    attempted: set[int] = field(default_factory=set, repr=False)  # source UIDs sent this pass

    def freeze(self) -> FolderReport:
        return FolderReport(
            self.source_name, self.dest_name, self.note, self.source_messages, self.copied,
            self.copied_bytes, self.already, self.flags_updated, self.flags_dropped,
            self.vanished, tuple(self.failures), self.error, self.refused, self.interrupted,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class FolderReport:
    """What one folder's part of a pass did."""

    source_name: str
    dest_name: str
    note: str | None = None
    source_messages: int = 0
    copied: int = 0
    copied_bytes: int = 0
    already: int = 0
    flags_updated: int = 0
    flags_dropped: int = 0
    vanished: int = 0
    failures: tuple[Failure, ...] = ()
    error: str | None = None
    refused: bool = False
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.source_name,
            "dest": self.dest_name,
            "note": self.note,
            "source_messages": self.source_messages,
            "copied": self.copied,
            "copied_bytes": self.copied_bytes,
            "already": self.already,
            "flags_updated": self.flags_updated,
            "flags_dropped": self.flags_dropped,
            "vanished": self.vanished,
            "error": self.error,
            "refused": self.refused,
            "interrupted": self.interrupted,
            "failures": [f.to_dict() for f in self.failures],
        }


@dataclass(frozen=True)
class PassReport:
    """The whole pass. Always returned, whatever went wrong."""

    kind: str
    source: str
    dest: str
    outcome: Outcome
    reason: str | None = None  # why the pass failed, in words
    failure_kind: FailureKind | None = None
    retryable: bool = False  # for a failed pass: can running it again help?
    failed_side: str | None = None  # "source" or "dest": whose server failed it, when known
    folders: tuple[FolderReport, ...] = ()
    plans: tuple[FolderPlan, ...] = ()
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # messages, bytes
    seconds: float = 0.0
    source_preset: str = ""
    dest_preset: str = ""

    @property
    def copied(self) -> int:
        return sum(f.copied for f in self.folders)

    @property
    def copied_bytes(self) -> int:
        return sum(f.copied_bytes for f in self.folders)

    @property
    def failures(self) -> int:
        """Messages not copied, plus folders that stopped early."""
        return sum(len(f.failures) for f in self.folders) + sum(1 for f in self.folders if f.error)

    @property
    def interrupted(self) -> bool:
        return self.outcome in ("paused", "cancelled")

    @property
    def complete(self) -> bool:
        return self.outcome == "completed"

    def manifest(self) -> list[dict[str, Any]]:
        """Every message not copied, then every folder that stopped early, then every
        folder renamed because the destination refused its name, with reasons."""
        rows = [f.to_dict() for folder in self.folders for f in folder.failures]
        rows += [
            {"folder": folder.source_name, "uid": None, "size": None, "date": None,
             "subject": "", "reason": f"folder not finished: {folder.error}"}
            for folder in self.folders
            if folder.error
        ]  # fmt: skip
        rows += [
            {"folder": plan.source_name, "uid": None, "size": None, "date": None, "subject": "",
             "reason": f"copied to {plan.dest_name!r}, not {plan.renamed_from!r}: {plan.note}"}
            for plan in self.plans
            if plan.renamed_from is not None and plan.refused is None
        ]  # fmt: skip
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "dest": self.dest,
            "outcome": self.outcome,
            "reason": self.reason,
            "failure_kind": self.failure_kind,
            "retryable": self.retryable,
            "failed_side": self.failed_side,
            "seconds": round(self.seconds, 3),
            "copied": self.copied,
            "copied_bytes": self.copied_bytes,
            "failures": self.failures,
            "source_preset": self.source_preset,
            "dest_preset": self.dest_preset,
            "folders": [f.to_dict() for f in self.folders],
            "plan": [
                {"folder": p.source_name, "dest": p.dest_name, "exists": p.dest_exists,
                 "note": p.note, "messages": self.sizes.get(p.source_name, (0, 0))[0],
                 "bytes": self.sizes.get(p.source_name, (0, 0))[1]}
                for p in self.plans
            ],
        }  # fmt: skip
