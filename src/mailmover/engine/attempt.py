"""What one attempt at a folder hands the next, so that a link that keeps dropping costs
a retry of what was in flight and never the work already done.

Messages whose APPEND was answered are recorded done as they are answered,
so the next attempt neither sends nor looks them up again. Besides that the
next attempt gets: the bytes of large messages received so far (a source-side
cut resumes from the last range received), the messages whose APPEND a cut
left unanswered (engine.unanswered), the backoff (which starts over
whenever progress is made), and the batch size, which shrinks after a failed
attempt, down to one message, and grows back after each batch that went through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailmover.engine.dedup import Digests
from mailmover.engine.folders import FolderPlan
from mailmover.engine.report import FolderResult
from mailmover.engine.retry import Backoff

#: The smallest first batch of a folder.
FIRST_BYTES = 256 * 1024


@dataclass
class BatchSize:
    """How many messages and bytes one batch may hold at most, for now.

    A folder starts at a sixteenth of the most bytes (``FIRST_BYTES`` at least): its
    first APPEND leaves after a small fetch instead of a whole batch's, so the upload
    starts almost with the download.
    """

    most_bytes: int
    most_messages: int
    bytes: int = 0
    messages: int = 0

    def __post_init__(self) -> None:
        self.bytes = self.bytes or min(self.most_bytes, max(FIRST_BYTES, self.most_bytes // 16))
        self.messages = self.messages or self.most_messages

    def shrink(self) -> None:
        """After a failed attempt: a quarter of the size (a batch still takes one message)."""
        self.bytes = max(1, self.bytes // 4)
        self.messages = max(1, self.messages // 4)

    def grow(self) -> None:
        """After a batch that went through: twice the size, up to the most."""
        self.bytes = min(self.most_bytes, self.bytes * 2)
        self.messages = min(self.most_messages, self.messages * 2)


@dataclass
class Carry:
    """One folder's state from one attempt to the next within a run."""

    result: FolderResult
    backoff: Backoff
    size: BatchSize
    #: source UID → the first bytes of a large message received so far (all of it, once
    #: complete); dropped once the message is recorded
    partial: dict[int, bytes] = field(default_factory=dict)
    #: source UID → reads whose length differed from the size the server announced
    misread: dict[int, int] = field(default_factory=dict)
    #: source UID → when a cut left its APPEND unanswered (engine.unanswered)
    ambiguous: dict[int, float] = field(default_factory=dict)
    #: SHA-256 of destination messages read to find what is already there (engine.dedup)
    dest_digests: Digests = field(default_factory=dict)
    #: source UIDs not to relay again (their relay broke on a wrong length)
    no_relay: set[int] = field(default_factory=set)
    #: source UIDs whose relayed APPEND began but whose body the source then did not send
    #: (deleted meanwhile?), the attempt failing with the relay: those the next attempt
    #: no longer lists count as deleted on the source when the folder ends
    gone: set[int] = field(default_factory=set)

    def progress(self) -> None:
        """Something was done that no later attempt has to do again."""
        self.backoff.progress()


def new_carry(
    plan: FolderPlan,
    most_bytes: int,
    most_messages: int,
    backoff: Backoff | None = None,
    result: FolderResult | None = None,
) -> Carry:
    """What the first attempt at a folder starts from."""
    return Carry(
        result or FolderResult(plan.source_name, plan.dest_name, plan.note),
        backoff or Backoff(),
        BatchSize(most_bytes, most_messages),
    )
