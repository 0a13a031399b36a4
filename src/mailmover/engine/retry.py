"""Retrying what a retry can mend: exponential backoff with jitter, bounded by time without
progress.

A folder's copy retries with a :class:`Backoff` of its own: the wait starts over
whenever an attempt made progress (a message recorded, a range of a large
message received) or at least moved data before its link dropped (the
servers answer: it is the link that drops), and grows only while none is made;
the retry after such a cut starts within ``RetryPolicy.quick``, a wait that grows
slowly only while cut after cut brings no progress;
retrying stops once ``RetryPolicy.budget`` seconds went by without progress in that folder, or in
the whole mailbox (so a folder that starts after a server went away does not
spend a budget of its own). A link that keeps dropping thus slows a copy down
but does not stop it; a server that is gone stops it after the budget.

A server's own word on how long to wait (Microsoft's "Suggested Backoff
Time", a Retry-After) is honoured. An error that says retrying cannot help
(credentials refused, certificate refused) is never retried: accounts get
locked by clients that log in with a wrong password in a loop.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailmover.errors import MailmoverError, ServerUnavailable

#: quick retries in a row without progress at one ceiling, before it doubles
QUICK_RUN = 8
#: quick retries in a row without progress at most; then the waits grow as without a link
QUICK_LIMIT = 64


@dataclass(frozen=True)
class RetryPolicy:
    budget: float = 900.0  # seconds a folder (or the planning) may go without progress
    base: float = 1.0
    cap: float = 120.0
    quota_probe: float = 900.0  # after a daily cap: how often to look whether it has reset
    #: the longest wait before retrying after a cut of a link that worked; it doubles
    #: after every ``QUICK_RUN`` such retries in a row without progress, up to base / 4
    quick: float = 0.02

    def delay(self, failures: int, error: MailmoverError, rng: random.Random) -> float:
        """The wait after ``failures`` attempts in a row without progress (0: the first)."""
        suggested = error.retry_after if isinstance(error, ServerUnavailable) else None
        if suggested is not None:
            return min(max(suggested, 0.0), self.cap)
        ceiling = min(self.cap, self.base * 2**failures)
        return rng.uniform(ceiling / 2, ceiling)  # jitter keeps workers apart

    def quick_delay(self, run: int, rng: random.Random) -> float:
        """The wait after a cut of a link that worked, the ``run``-th such in a row
        without progress (0: the first): a cut costs one connection, so workers are not
        in step; a loop that never gets anywhere slows to a few attempts a second."""
        ceiling = min(self.base / 4, self.quick * 2 ** (run // QUICK_RUN))
        return rng.uniform(0, ceiling)


class Progress:
    """When progress was last made by a whole (a mailbox's folders together)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.since = now()

    def made(self) -> None:
        self.since = self.now()


@dataclass
class Backoff:
    """The retries of one piece of work that makes progress, such as a folder's copy."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rng: random.Random = field(default_factory=random.Random)
    now: Callable[[], float] = time.monotonic
    whole: Progress | None = None  # what this work is part of (the mailbox)
    failures: int = 0  # attempts in a row that made no progress
    worked: bool = False  # the last attempt moved messages before it failed
    quick_run: int = 0  # quick retries since progress was last made
    whole_stalled: bool = False  # retrying stopped because the whole went the budget too
    waited: float = 0.0  # seconds waited in all, for the report
    since: float = field(init=False)  # when progress was last made (or the work began)

    def __post_init__(self) -> None:
        self.since = self.now()

    def working(self) -> None:
        """The attempt got as far as moving messages or data: the servers answer, the
        link works.

        If it fails, the next attempt starts at once (within ``policy.quick``, see
        ``RetryPolicy.quick_delay``), and the backoff starts over; the time without
        progress goes on, so a message that can never pass still ends after the
        budget. After ``QUICK_LIMIT`` quick retries in a row without progress,
        something in this work fails every time: the waits grow again."""
        self.worked = True
        if self.quick_run < QUICK_LIMIT:
            self.failures = 0

    def progress(self) -> None:
        """Something was done that no retry has to do again: the backoff starts over,
        and the next attempt after a failure starts at once (see ``working``)."""
        self.failures = 0
        self.worked = True
        self.quick_run = 0
        self.since = self.now()
        if self.whole is not None:
            self.whole.made()

    @property
    def stalled(self) -> float:
        """Seconds without progress here, or in the whole if that has been longer."""
        since = self.since if self.whole is None else min(self.since, self.whole.since)
        return self.now() - since

    def next_delay(self, error: MailmoverError) -> float | None:
        """Seconds to wait before the next attempt; None when retrying should stop."""
        if not error.retryable:
            return None
        throttled = isinstance(error, ServerUnavailable)  # asks us to slow down
        if self.worked and not throttled and self.quick_run < QUICK_LIMIT:
            delay = self.policy.quick_delay(self.quick_run, self.rng)
            self.quick_run += 1
        else:
            delay = self.policy.delay(self.failures, error, self.rng)
            self.failures += 1
        self.worked = False
        if self.stalled + delay > self.policy.budget:
            whole = self.whole
            self.whole_stalled = (
                whole is not None and self.now() - whole.since + delay > self.policy.budget
            )
            return None
        self.waited += delay
        return delay


@dataclass
class RetryClock:
    """What one mailbox's retries share: the jitter, and the pauses for daily caps."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    waited: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    paused: float = 0.0
    progress: Progress | None = None  # of the mailbox, from its first folder on

    def backoff(self) -> Backoff:
        """A backoff of its own for one folder."""
        if self.progress is None:
            self.progress = Progress()
        return Backoff(self.policy, self.rng, whole=self.progress)

    def next_pause(self, longest: float) -> float | None:
        """Seconds to pause after a daily cap was hit; None once ``longest`` has passed."""
        if self.paused >= longest:
            return None
        pause = min(self.policy.quota_probe, longest - self.paused)
        self.paused += pause
        return pause

    def next_delay(self, attempt: int, error: MailmoverError) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` of work that makes no progress
        until it succeeds (planning); None when retrying should stop."""
        if not error.retryable:
            return None
        delay = self.policy.delay(attempt, error, self.rng)
        if self.waited + delay > self.policy.budget:
            return None
        self.waited += delay
        return delay
