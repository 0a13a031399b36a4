"""A mailbox's life without servers: transitions, leases, budgets, and the job functions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailmover.service import jobs, leases, retention
from mailmover.service.batchfile import BatchOptions, parse_batch
from mailmover.service.budgets import Budgets
from mailmover.service.secrets import SecretBox
from mailmover.service.states import after_crash, after_pass, words
from mailmover.store import Store

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def outcome(name: str, **kw: object) -> tuple[str, str | None, datetime | None, bool]:
    args: dict[str, object] = dict(
        kind="full", requested=None, completing=False, delta_every_hours=None, reason=None,
        retryable=False, failures=0, failed_attempts=0, now=NOW,
    )  # fmt: skip
    after = after_pass(name, **(args | kw))  # type: ignore[arg-type]
    return after.state, after.reason, after.waiting_until, after.erase


def test_where_each_outcome_leads() -> None:
    assert outcome("completed") == ("completed", None, None, True)
    assert outcome("completed_with_errors", failures=2) == (
        "completed_with_errors", "2 message(s) not copied", None, False,
    )  # fmt: skip
    scheduled = after_pass(
        "completed", kind="full", requested=None, completing=False, delta_every_hours=6,
        reason=None, retryable=False, failures=0, failed_attempts=0, now=NOW,
    )  # fmt: skip
    assert (scheduled.state, scheduled.next_pass, scheduled.next_pass_at) == (
        "synced", "delta", NOW + timedelta(hours=6),
    )  # fmt: skip
    assert outcome("completed", delta_every_hours=6, completing=True)[0] == "completed"
    assert outcome("paused", requested="pause")[:2] == ("paused", "paused by request")
    assert outcome("paused")[:2] == ("queued", "resumed")  # a pause withdrawn in time
    assert outcome("paused", stopping=True)[0] == "queued"
    assert outcome("completed", kind="prestage")[:2] == (
        "queued",
        "pre-staged; the full pass follows",
    )
    assert outcome("paused", requested="cancel") == (
        "cancelled",
        "cancelled by request",
        None,
        True,
    )
    assert outcome("failed", reason="no route", retryable=True, failed_attempts=1)[:3] == (
        "waiting", "no route", NOW + timedelta(seconds=30),
    )  # fmt: skip
    assert outcome("failed", reason="no route", retryable=True, failed_attempts=5)[:2] == (
        "failed", "no route",
    )  # fmt: skip
    assert outcome("failed", reason="wrong password")[:2] == ("failed", "wrong password")


def test_three_crashes_fail_the_mailbox() -> None:
    assert after_crash(crashes=1, requested=None, kind="full").state == "queued"
    assert after_crash(crashes=2, requested="pause", kind="full").state == "paused"
    third = after_crash(crashes=3, requested=None, kind="full")
    assert (third.state, third.reason) == (
        "failed",
        "its worker process died 3 times while moving it",
    )
    assert after_crash(crashes=3, requested="cancel", kind=None).erase


def test_a_crashed_mailbox_waits_for_what_its_dead_worker_sent() -> None:
    """A rerun reading the destination while the dead worker's APPENDs still land doubles them."""
    settled = NOW + timedelta(seconds=29)
    after = after_crash(crashes=1, requested=None, kind="delta", settled=settled)
    assert (after.state, after.waiting_until, after.next_pass) == ("waiting", settled, "delta")
    assert after_crash(crashes=1, requested="pause", kind="full", settled=settled).state == (
        "paused"
    )


def test_states_in_words() -> None:
    until = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
    assert words("waiting", "Gmail's daily limit", until) == (
        "waiting until 2026-12-03 14:05 UTC, Gmail's daily limit"
    )
    assert words("completed_with_errors", "2 message(s) not copied", None) == (
        "completed with errors (2 message(s) not copied)"
    )


def test_budgets_share_servers_and_accounts() -> None:
    b = Budgets(global_limit=20, per_server=6, per_account=4)
    first = b.grant(("a:1", "b:1"), ("a:1/u", "b:1/u"), 4)
    assert first is not None and first.pairs == 4
    assert b.grant(("a:1", "b:1"), ("a:1/u", "b:1/u"), 4) is None  # the accounts are full
    second = b.grant(("a:1", "b:1"), ("a:1/v", "b:1/v"), 4)
    assert second is not None and second.pairs == 2  # the servers have 2 left
    assert b.grant(("a:1", "c:1"), ("a:1/w", "c:1/w"), 4) is None
    other = b.grant(("d:1", "e:1"), ("d:1/x", "e:1/x"), 4)
    assert other is not None and other.pairs == 4  # global: 12 + 8 = 20
    assert b.grant(("f:1", "g:1"), ("f:1/y", "g:1/y"), 1) is None
    b.give_back(first)
    assert b.held_global == 12 and b.held_hosts["a:1"] == 2


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Store]:
    rows = parse_batch(
        "source,source_password,dest,dest_password\n"
        "imap://al@src,pw1,imap://al@dst,pw2\nimap://bo@src,pw3,imap://bo@dst,pw4\n",
        BatchOptions(),
    )
    with Store.open(f"sqlite:///{tmp_path}/s.db") as store:
        box = SecretBox.open(tmp_path, env={})
        jobs.create_job_from_batch(store, box, rows, jobs.JobSpec("team"))
        yield store


def test_a_lease_is_held_by_one_worker_and_a_dead_one_is_settled(job: Store) -> None:
    first = leases.claim(job, 1, "w1")
    assert first is not None and first.kind == "full"
    assert leases.claim(job, 1, "w2") is None
    assert leases.heartbeat(job, 1, "w1") is None
    with pytest.raises(leases.LeaseLost):
        leases.heartbeat(job, 1, "w2")
    assert jobs.pause(job, "team", "al") == 1  # asked of the running worker
    assert leases.heartbeat(job, 1, "w1") == "pause"
    assert jobs.status(job, "team")[0].words == "running (pause requested)"
    later = datetime.now(UTC) + timedelta(seconds=leases.LEASE_SECONDS + 1)
    assert [s.state for s in jobs.status(job, "team")] == ["running", "queued"]
    assert leases.recover_expired(job, later) == [1]
    al = jobs.status(job, "team", "al")[0]
    assert (al.state, al.crashes, al.worker) == ("paused", 1, None)
    assert jobs.resume(job, "team") == 1
    again = leases.claim(job, 1, "w3")
    assert again is not None
    after = leases.finish(job, again, "w3", {"outcome": "completed"})
    assert after is not None and after.state == "completed"
    al = jobs.status(job, "team", "al")[0]
    assert (al.state, al.has_credentials) == ("completed", False)
    assert leases.finish(job, again, "w3", {"outcome": "completed"}) is None  # lease gone


def test_pause_resume_cancel_delta_complete_on_idle_mailboxes(job: Store) -> None:
    assert jobs.pause(job, "team") == 2
    assert [s.words for s in jobs.status(job, "team")] == ["paused (paused by request)"] * 2
    assert jobs.resume(job, "team", "imap://bo@dst:143") == 1
    assert jobs.cancel(job, "team", "bo") == 1
    assert [(s.state, s.has_credentials) for s in jobs.status(job, "team")] == [
        ("paused", True), ("cancelled", False),
    ]  # fmt: skip
    assert jobs.delta(job, "team") == 0
    assert jobs.complete(job, "team") == 0
    with pytest.raises(jobs.NotFound):
        jobs.pause(job, "team", "nobody")
    with pytest.raises(jobs.NotFound):
        jobs.status(job, "other")
    assert [j.by_state for j in jobs.list_jobs(job)] == [{"paused": 1, "cancelled": 1}]


def test_credentials_are_erased_after_the_retention_period(job: Store) -> None:
    claimed = leases.claim(job, 1, "w1")
    assert claimed is not None
    leases.finish(job, claimed, "w1", {"outcome": "failed", "reason": "no", "retryable": False})
    assert retention.erase_stale_credentials(job, 7) == 0  # the last pass was just now
    in_eight_days = datetime.now(UTC) + timedelta(days=8)
    assert retention.erase_stale_credentials(job, 7, in_eight_days) == 1  # not the queued one
    assert [(s.state, s.has_credentials) for s in jobs.status(job, "team")] == [
        ("failed", False), ("queued", True),
    ]  # fmt: skip


def test_a_passs_events_become_counters_and_log_lines() -> None:
    from mailmover.service.worker import EventTally

    tally = EventTally()
    for data in (
        {"event": "folder_planned", "folder": "INBOX", "messages": 10, "bytes": 1000},
        {"event": "folder_planned", "folder": "Sent", "messages": 5, "bytes": 500},
        {"event": "folder_started", "folder": "INBOX", "to_copy": 8, "bytes": 800},
        {"event": "progress", "folder": "INBOX", "messages": 4, "bytes": 400,
         "copied": 3, "copied_bytes": 300},
        {"event": "message_failed", "folder": "INBOX", "uid": 7, "reason": "too large"},
        {"event": "retrying", "folder": "INBOX", "reason": "connection lost", "delay": 1.0},
        {"event": "folder_finished", "folder": "INBOX", "copied": 3, "error": None},
        {"event": "folder_started", "folder": "INBOX", "to_copy": 4, "bytes": 400},  # a retry
    ):  # fmt: skip
        tally.add(data)
    p = tally.progress
    assert (p.messages_total, p.bytes_total, p.messages_left, p.bytes_left) == (15, 1500, 4, 400)
    assert (p.copied, p.copied_bytes, p.changed) == (3, 300, True)
    assert tally.lines == [
        ("warning", "message", "INBOX UID 7 not copied: too large"),
        ("warning", "retrying", "INBOX: connection lost"),
        ("info", "folder", "INBOX: 3 copied"),
    ]  # and the retry's start counted what was left once, not twice
    taken = p.take()
    assert (taken["messages_left"], p.copied, p.changed) == (4, 0, False)


def test_a_worker_saves_a_rotated_credential_but_never_brings_back_an_erased_one(
    job: Store, tmp_path: Path
) -> None:
    from mailmover.service.secrets import erase
    from mailmover.service.worker import Worker

    box = SecretBox.open(tmp_path, env={})
    worker = Worker(job, box, "w1")
    worker._save_secret(1, "source", box.encrypt({"kind": "password", "password": "new"}))
    blob = worker._secret(1, "source")
    assert blob is not None and box.decrypt(blob)["password"] == "new"
    assert box.decrypt(worker._secret(1, "dest") or b"")["password"] == "pw2"  # untouched
    erase(job, [1])
    worker._save_secret(1, "source", box.encrypt({"kind": "password", "password": "late"}))
    assert worker._secret(1, "source") is None and worker._secret(1, "dest") is None
