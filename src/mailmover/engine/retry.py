"""Retrying what a retry can mend: exponential backoff with jitter, within a time budget.

A server's own word on how long to wait (Microsoft's "Suggested Backoff
Time", a Retry-After) is honoured. An error that says retrying cannot help
(credentials refused, certificate refused) is never retried: accounts get
locked by clients that log in with a wrong password in a loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mailmover.errors import MailmoverError, ServerUnavailable


@dataclass(frozen=True)
class RetryPolicy:
    budget: float = 900.0  # seconds of waiting a mailbox may spend on retries, in all
    base: float = 1.0
    cap: float = 120.0
    quota_probe: float = 900.0  # after a daily cap: how often to look whether it has reset


@dataclass
class RetryClock:
    """Counts the waiting one mailbox has done; says how long to wait next, or to stop."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    waited: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    paused: float = 0.0

    def next_pause(self, longest: float) -> float | None:
        """Seconds to pause after a daily cap was hit; None once ``longest`` has passed."""
        if self.paused >= longest:
            return None
        pause = min(self.policy.quota_probe, longest - self.paused)
        self.paused += pause
        return pause

    def next_delay(self, attempt: int, error: MailmoverError) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; None when retrying should stop."""
        if not error.retryable:
            return None
        suggested = error.retry_after if isinstance(error, ServerUnavailable) else None
        if suggested is not None:
            delay = min(max(suggested, 0.0), self.policy.cap)
        else:
            ceiling = min(self.policy.cap, self.policy.base * 2**attempt)
            delay = self.rng.uniform(ceiling / 2, ceiling)  # jitter keeps workers apart
        if self.waited + delay > self.policy.budget:
            return None
        self.waited += delay
        return delay
