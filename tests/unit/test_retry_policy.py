"""The retry policy (``engine.retry``): backoff, jitter, budget, the server's word, daily caps."""

from __future__ import annotations

import random

import pytest

from mailmover.engine.retry import RetryClock, RetryPolicy
from mailmover.errors import (
    AuthenticationFailed,
    ConnectionLost,
    IMAPTimeout,
    MailmoverError,
    ServerUnavailable,
    StoreError,
    TLSFailed,
)


class Bounds(random.Random):
    """A random source that always draws the low (or high) end of the range asked for."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return b if self.high else a


def clock(rng: random.Random | None = None, **policy: float) -> RetryClock:
    return RetryClock(RetryPolicy(**policy), rng=rng or random.Random(7))


LOST = ConnectionLost("the link dropped")


def test_backoff_ceiling_doubles_from_base_up_to_cap() -> None:
    rng = Bounds(high=True)
    c = clock(rng, base=1.0, cap=20.0, budget=10_000)
    delays = [c.next_delay(attempt, LOST) for attempt in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    assert rng.asked[:3] == [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0)]


def test_jitter_stays_between_half_and_the_whole_ceiling() -> None:
    c = clock(random.Random(1234), base=2.0, cap=60.0, budget=1e9)
    for attempt in range(12):
        ceiling = min(60.0, 2.0 * 2**attempt)
        for _ in range(50):
            delay = c.next_delay(attempt, LOST)
            assert delay is not None
            assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_workers_apart() -> None:
    delays = {clock(random.Random(seed)).next_delay(5, LOST) for seed in range(20)}
    assert len(delays) == 20


def test_budget_stops_retrying_once_spent() -> None:
    c = clock(Bounds(high=True), base=4.0, cap=4.0, budget=10.0)
    assert c.next_delay(0, LOST) == 4.0
    assert c.next_delay(1, LOST) == 4.0
    assert c.waited == 8.0
    assert c.next_delay(2, LOST) is None  # 12 > 10
    assert c.waited == 8.0  # a refused wait is not counted


def test_budget_is_shared_by_every_error_of_the_mailbox() -> None:
    c = clock(Bounds(high=True), base=3.0, cap=3.0, budget=9.0)
    errors: list[MailmoverError] = [LOST, IMAPTimeout("silent"), ServerUnavailable("busy")]
    assert [c.next_delay(0, e) for e in errors] == [3.0, 3.0, 3.0]
    assert c.next_delay(0, LOST) is None


def test_a_delay_that_exactly_fills_the_budget_is_allowed() -> None:
    c = clock(Bounds(high=True), base=5.0, cap=5.0, budget=10.0)
    assert c.next_delay(0, LOST) == 5.0
    assert c.next_delay(0, LOST) == 5.0
    assert c.next_delay(0, LOST) is None


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationFailed("wrong password"),
        TLSFailed("certificate refused"),
        StoreError("constraint failed"),
        MailmoverError("anything else"),
    ],
)
def test_errors_a_retry_cannot_mend_are_never_retried(error: MailmoverError) -> None:
    c = clock()
    assert c.next_delay(0, error) is None
    assert c.waited == 0.0


def test_a_retryable_store_error_is_retried() -> None:
    assert clock().next_delay(0, StoreError("database is locked", retryable=True)) is not None


def test_server_suggested_delay_is_used_as_said() -> None:
    rng = Bounds(high=True)
    c = clock(rng, base=1.0, cap=120.0)
    assert (
        c.next_delay(0, ServerUnavailable("Suggested Backoff Time: 42", retry_after=42.0)) == 42.0
    )
    assert rng.asked == []  # no jitter on the server's own word
    assert c.waited == 42.0


def test_server_suggested_delay_is_capped_and_never_negative() -> None:
    c = clock(cap=30.0, budget=1000.0)
    assert c.next_delay(0, ServerUnavailable("wait", retry_after=3600.0)) == 30.0
    assert c.next_delay(0, ServerUnavailable("wait", retry_after=-5.0)) == 0.0


def test_server_suggested_delay_counts_against_the_budget() -> None:
    c = clock(cap=120.0, budget=100.0)
    assert c.next_delay(0, ServerUnavailable("wait", retry_after=60.0)) == 60.0
    assert c.next_delay(0, ServerUnavailable("wait", retry_after=60.0)) is None


def test_unavailable_without_a_suggestion_backs_off_as_usual() -> None:
    c = clock(Bounds(high=False), base=2.0)
    assert c.next_delay(3, ServerUnavailable("[UNAVAILABLE] try later")) == 8.0


def test_daily_cap_pauses_in_probes_until_the_longest_wait() -> None:
    c = clock(quota_probe=900.0)
    pauses = []
    while (pause := c.next_pause(2000.0)) is not None:
        pauses.append(pause)
    assert pauses == [900.0, 900.0, 200.0]
    assert c.paused == 2000.0


def test_daily_cap_pauses_do_not_spend_the_retry_budget() -> None:
    c = clock(Bounds(high=True), base=1.0, cap=1.0, budget=1.0, quota_probe=600.0)
    assert c.next_pause(86400.0) == 600.0
    assert c.waited == 0.0
    assert c.next_delay(0, LOST) == 1.0


def test_daily_cap_pauses_add_up_over_the_whole_mailbox() -> None:
    c = clock(quota_probe=100.0)
    assert c.next_pause(250.0) == 100.0
    assert c.next_pause(250.0) == 100.0
    # A later cap with a shorter longest wait: what was paused already counts.
    assert c.next_pause(150.0) is None
    assert c.next_pause(300.0) == 100.0
    assert c.next_pause(300.0) is None
