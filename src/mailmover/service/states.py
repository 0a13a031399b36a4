"""A mailbox's state as a person reads it, and where each pass outcome takes it.

A pass ends in one of the engine's outcomes; ``after_pass`` says where that leaves
the mailbox (``after_crash`` when its worker died instead)::

    queued ─(claimed by a worker: lease)─▶ running
    running ─ completed, pre-stage ─────────────────▶ queued (the full pass follows)
    running ─ completed, job scheduled ─────────────▶ synced (next delta at a time)
    running ─ completed, no schedule / completing ──▶ completed (credentials erased)
    running ─ completed with errors, same ──────────▶ completed_with_errors
    running ─ failed, retryable, < 5 in a row ──────▶ waiting (until a time, reason)
    running ─ failed, final ────────────────────────▶ failed (reason)
    running ─ paused, pause requested ──────────────▶ paused
    running ─ paused, no request (worker stopping) ─▶ queued
    running ─ cancelled / cancel requested ─────────▶ cancelled (credentials erased)
    running ─ worker died (1st, 2nd time) ──────────▶ waiting (crash counted; until
                                                      its last words can have landed)
    running ─ worker died the 3rd time ─────────────▶ failed ("died 3 times")
    waiting, synced ─(their time comes)─▶ running;   synced ─ delta JOB ─▶ queued
    synced ─ complete JOB ─▶ completing ─▶ running (a last delta) ─▶ completed
    queued, waiting, synced, completing ─ pause ─▶ paused ─ resume ─▶ queued
    queued, completing, synced (delta due) ─ server on hold (service.holds) ─▶ waiting
    any but running and the end states ─ cancel ─▶ cancelled
    awaiting_user ─ the user gives a password (service.invites) ─▶ queued
    awaiting_user ─ the link expired unused (service.retention) ─▶ failed (credentials erased)
    completed_with_errors ─ retry JOB ─▶ queued (a retry-errors pass)

"awaiting_user" (in words: waiting for the user) is a mailbox of a batch that asks
each user for their own password instead of carrying it; no worker claims it.

"Running" is only ever true while a live worker holds the lease (renewed every
second, 30 s long); a lease that is not renewed means the worker is gone, and
``status`` shows such a mailbox as queued even before a runner settles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

#: States in which a mailbox will not run again unless a person asks.
END_STATES: Final = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
#: States ``run --until-done`` waits out.
ACTIVE_STATES: Final = frozenset({"queued", "running", "waiting", "completing"})
#: A mailbox that waits for its user to give a password through an invitation link.
AWAITING_USER: Final = "awaiting_user"
#: States in words where the state's name alone does not read well.
STATE_WORDS: Final = {AWAITING_USER: "waiting for the user"}
#: A mailbox whose worker died this many times is failed.
MAX_CRASHES: Final = 3
#: Seconds after a dead worker's last heartbeat before its mailbox runs again: what it
#: had sent (APPENDs in socket buffers, on a slow link) must reach the destination
#: before another worker reads that destination, or both copies would stay.
SETTLE_SECONDS: Final = 30.0
#: Retryable failures in a row before a mailbox is failed.
MAX_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class After:
    """The mailbox row's new values after a pass (or its worker's death)."""

    state: str
    reason: str | None = None
    waiting_until: datetime | None = None
    next_pass: str | None = None
    next_pass_at: datetime | None = None
    erase: bool = False  # forget the credentials now

    def values(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "waiting_until": self.waiting_until,
            "next_pass": self.next_pass,
            "next_pass_at": self.next_pass_at,
        }


def after_pass(
    outcome: str,
    *,
    kind: str,
    requested: str | None,
    completing: bool,
    delta_every_hours: float | None,
    reason: str | None,
    retryable: bool,
    failures: int,
    failed_attempts: int,
    now: datetime,
    stopping: bool = False,
) -> After:
    """Where a finished pass leaves its mailbox.

    ``failed_attempts`` counts this pass: the retryable failures in a row so far.
    ``stopping``: the worker paused the pass because it is shutting down.
    """
    if outcome == "cancelled" or requested == "cancel":
        return After("cancelled", "cancelled by request", erase=True)
    if outcome == "paused":
        if requested == "pause":
            return After("paused", "paused by request", next_pass=kind)
        # The worker stopped it (shutting down, lease lost) or a pause was withdrawn.
        why = "its worker stopped; it runs again" if stopping else "resumed"
        return After("queued", why, next_pass=kind)
    if outcome == "failed":
        if retryable and failed_attempts < MAX_ATTEMPTS:
            delay = timedelta(seconds=min(30 * 2 ** (failed_attempts - 1), 3600))
            return After("waiting", reason, waiting_until=now + delay, next_pass=kind)
        return After("failed", reason or "the pass failed")
    not_copied = f"{failures} message(s) not copied" if failures else None
    if kind == "prestage":  # the mail before the date is in; everything else follows
        return After("queued", "pre-staged; the full pass follows", next_pass="full")
    if completing or delta_every_hours is None:
        if outcome == "completed":
            return After("completed", erase=True)
        return After("completed_with_errors", not_copied)
    return After(
        "synced",
        not_copied,
        next_pass="delta",
        next_pass_at=now + timedelta(hours=delta_every_hours),
    )


def after_crash(
    *, crashes: int, requested: str | None, kind: str | None, settled: datetime | None = None
) -> After:
    """Where a mailbox goes when the worker holding it died; ``crashes`` counts this one.

    ``settled``: when what the dead worker sent has surely arrived; the mailbox waits
    until then (None or past: it is queued at once).
    """
    if requested == "cancel":
        return After("cancelled", "cancelled by request", erase=True)
    if crashes >= MAX_CRASHES:
        return After("failed", f"its worker process died {crashes} times while moving it")
    if requested == "pause":
        return After("paused", "paused by request", next_pass=kind)
    why = "its worker process stopped; it runs again"
    if settled is not None:
        return After("waiting", why, waiting_until=settled, next_pass=kind or "full")
    return After("queued", why, next_pass=kind or "full")


def words(state: str, reason: str | None, waiting_until: datetime | None) -> str:
    """The state in words: ``waiting until 14:05 UTC, Gmail's daily limit``."""
    text = STATE_WORDS.get(state) or state.replace("_", " ")
    if state == "waiting" and waiting_until is not None:
        text += f" until {waiting_until:%Y-%m-%d %H:%M} UTC"
    if reason:
        text += f", {reason}" if state == "waiting" else f" ({reason})"
    return text
