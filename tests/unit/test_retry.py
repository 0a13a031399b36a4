"""The backoff of a folder's copy: it starts over after progress, grows only without it,
and gives up after the budget of time without progress."""

from __future__ import annotations

import random

from mailmover.engine.retry import QUICK_LIMIT, QUICK_RUN, Backoff, Progress, RetryPolicy
from mailmover.errors import AuthenticationFailed, ConnectionLost, ServerUnavailable


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


LOST = ConnectionLost("the connection was closed")


def backoff(budget: float = 60.0) -> tuple[Backoff, Clock]:
    clock = Clock()
    policy = RetryPolicy(budget=budget, base=1.0, cap=16.0)
    return Backoff(policy, random.Random(1), now=clock), clock


def test_delays_grow_while_no_progress_is_made() -> None:
    b, clock = backoff()
    ceilings = []
    for _ in range(6):
        delay = b.next_delay(LOST)
        assert delay is not None
        ceilings.append(delay)
        clock.t += delay + 0.1  # the wait, then an attempt that fails at once
    for delay, ceiling in zip(ceilings, [1, 2, 4, 8, 16, 16], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert b.failures == 6


def test_progress_starts_the_backoff_over() -> None:
    b, clock = backoff()
    for _ in range(4):
        delay = b.next_delay(LOST)
        assert delay is not None
        clock.t += delay
    assert b.failures == 4
    b.progress()
    delay = b.next_delay(LOST)
    assert delay is not None and delay <= 0.25  # the link worked: at once
    clock.t += delay
    delay = b.next_delay(LOST)  # that attempt got nowhere: the first wait, not the fifth
    assert delay is not None and 0.5 <= delay <= 1.0


def test_budget_bounds_time_without_progress_not_the_whole_run() -> None:
    b, clock = backoff(budget=30.0)
    # A link that drops every 5 s but lets a message through each time: it never stops,
    # though the run lasts far longer than the budget.
    start = clock.t
    for _ in range(100):
        clock.t += 4.0
        b.progress()
        clock.t += 1.0
        delay = b.next_delay(LOST)
        assert delay is not None
        clock.t += delay
    assert clock.t - start > 10 * 30.0
    # Then nothing more gets through: it stops once 30 s went by without progress.
    stalled_at = b.since
    while (delay := b.next_delay(LOST)) is not None:
        clock.t += delay + 2.0  # each attempt takes 2 s to fail
    # No wait reaches past the budget; only the last attempt's own 2 s may.
    assert 30.0 - 16.0 - 2.0 <= clock.t - stalled_at <= 30.0 + 2.0


def test_a_long_attempt_without_progress_counts() -> None:
    b, clock = backoff(budget=30.0)
    clock.t += 29.5  # an attempt that ran 29.5 s and got nothing done
    assert b.next_delay(LOST) is None


def test_server_suggested_wait_and_final_errors() -> None:
    b, _ = backoff()
    busy = ServerUnavailable("busy", retry_after=7.0)
    assert b.next_delay(busy) == 7.0
    assert b.next_delay(AuthenticationFailed("no")) is None


def test_a_folder_started_while_the_mailbox_makes_no_progress_has_no_budget_of_its_own() -> None:
    clock = Clock()
    policy = RetryPolicy(budget=30.0, base=1.0, cap=16.0)
    mailbox = Progress(now=clock)
    first = Backoff(policy, random.Random(1), now=clock, whole=mailbox)
    clock.t += 10.0
    first.progress()
    clock.t += 29.5  # the server went away; then another folder starts
    second = Backoff(policy, random.Random(2), now=clock, whole=mailbox)
    assert second.next_delay(LOST) is None
    # One folder stuck while another makes progress gives up on its own budget.
    stuck = Backoff(policy, random.Random(3), now=clock, whole=mailbox)
    for _ in range(40):
        clock.t += 1.0
        first.progress()
    assert stuck.next_delay(LOST) is None
    assert not stuck.whole_stalled  # this folder only: the others go on
    assert first.next_delay(LOST) is not None
    clock.t += 31.0  # then nothing moves anywhere: the whole mailbox is stalled
    assert first.next_delay(LOST) is None
    assert first.whole_stalled


def test_an_attempt_that_moved_messages_is_retried_at_once_within_the_budget() -> None:
    b, clock = backoff(budget=30.0)
    for _ in range(3):
        delay = b.next_delay(LOST)
        assert delay is not None
        clock.t += delay
    # The link works (messages move) but drops before anything is recorded, again and again.
    delays = []
    while True:
        clock.t += 1.0
        b.working()
        delay = b.next_delay(LOST)
        if delay is None:
            break
        delays.append(delay)
        clock.t += delay
    assert all(d <= 0.25 for d in delays), delays
    assert b.failures == 0
    assert 30.0 - 1.25 <= b.stalled <= 30.0 + 1.0  # still bounded by time without progress
    # A server that then stops answering at all backs off again from the first wait.
    b.progress()
    assert (b.next_delay(LOST) or 1) <= 0.25
    assert 0.5 <= (b.next_delay(LOST) or 0) <= 1.0


def test_a_cut_of_a_working_link_is_retried_within_the_quick_wait_growing_slowly() -> None:
    b, clock = backoff(budget=10_000.0)
    ceilings = []
    for n in range(QUICK_LIMIT):
        b.working()  # each attempt logged in, then its link was cut
        delay = b.next_delay(LOST)
        assert delay is not None
        ceiling = min(0.25, b.policy.quick * 2 ** (n // QUICK_RUN))
        assert 0 <= delay <= ceiling, (n, delay)
        ceilings.append(ceiling)
        clock.t += delay + 0.1
    assert ceilings[0] == b.policy.quick and ceilings[-1] == 0.25
    # Then cut after cut without progress: something fails every time; the waits grow.
    waits = []
    for _ in range(4):
        b.working()
        delay = b.next_delay(LOST)
        assert delay is not None
        waits.append(delay)
        clock.t += delay + 0.1
    for delay, ceiling in zip(waits, [1, 2, 4, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    # Progress starts it all over.
    b.progress()
    assert (b.next_delay(LOST) or 1) <= b.policy.quick


def test_a_throttling_reply_is_never_retried_at_once() -> None:
    b, _ = backoff()
    b.working()
    delay = b.next_delay(ServerUnavailable("slow down"))
    assert delay is not None and 0.5 <= delay <= 1.0
