"""Which idle mailboxes lose their credentials after the retention period, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailmover.service import jobs, leases, retention, schedule
from mailmover.service.batchfile import BatchOptions, parse_batch
from mailmover.service.secrets import SecretBox
from mailmover.store import Store

USERS = ("paused", "scheduled", "failed", "queued")


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    lines = "".join(f"imap://{u}@src,pw-{u},imap://{u}@dst,pw2-{u}\n" for u in USERS)
    rows = parse_batch("source,source_password,dest,dest_password\n" + lines, BatchOptions())
    with Store.open(database_url) as s:
        box = SecretBox.open(tmp_path, env={})
        jobs.create_job_from_batch(s, box, rows, jobs.JobSpec("kept"))
        jobs.create_job_from_batch(s, box, rows, jobs.JobSpec("ended"))
        yield s


def one_pass(store: Store, job: str, user: str, report: dict[str, object]) -> None:
    """A worker runs the mailbox's pass to ``report``."""
    mailbox_id = next(s.id for s in jobs.status(store, job, user))
    claimed = leases.claim(store, mailbox_id, "w1")
    assert claimed is not None
    assert leases.finish(store, claimed, "w1", report) is not None


def kept(store: Store, job: str) -> dict[str, tuple[str, bool]]:
    return {
        s.source.split("//")[1].split("@")[0]: (s.state, s.has_credentials)
        for s in jobs.status(store, job)
    }


def test_paused_and_scheduled_mailboxes_keep_their_credentials(store: Store) -> None:
    done = {"outcome": "completed"}
    for job in ("kept", "ended"):
        # Deltas every 30 days: the next one is further away than the 7 days' retention.
        schedule.set_delta_schedule(store, job, 24 * 30)
        one_pass(store, job, "paused", done)
        assert jobs.pause(store, job, "paused") == 1
        one_pass(store, job, "scheduled", done)
        one_pass(store, job, "failed", {"outcome": "failed", "reason": "no", "retryable": False})
    schedule.set_delta_schedule(store, "ended", None)  # its schedule ends
    in_eight_days = datetime.now(UTC) + timedelta(days=8)

    assert retention.erase_stale_credentials(store, 7) == 0  # every pass was just now
    erased = retention.erase_stale_credentials(store, 7, in_eight_days)

    assert kept(store, "kept") == {
        "paused": ("paused", True),  # a person resumes it, and it needs them then
        "scheduled": ("synced", True),  # its next delta, in 30 days, needs them
        "failed": ("failed", False),
        "queued": ("queued", True),
    }
    assert kept(store, "ended") == {
        "paused": ("paused", True),
        "scheduled": ("synced", False),  # no delta will come: idle since its last pass
        "failed": ("failed", False),
        "queued": ("queued", True),
    }
    assert erased == 3
    assert retention.erase_stale_credentials(store, 7, in_eight_days) == 0
