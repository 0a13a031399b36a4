"""Which idle mailboxes lose their credentials after the retention period, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from mailmover.service import jobs, leases, retention, schedule
from mailmover.service.accounts import USER, create_account
from mailmover.service.batchfile import BatchOptions, parse_batch
from mailmover.service.drafts import Drafts
from mailmover.service.pending import PendingRecords
from mailmover.service.secrets import SecretBox
from mailmover.store import Store, schema

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


def test_expired_drafts_and_sign_ins_on_their_way_are_deleted(store: Store, tmp_path: Path) -> None:
    """Nobody comes back to a draft (with its passwords) or a sign-in: the sweep deletes
    them once expired, though no new one was written to delete them."""
    box = SecretBox.open(tmp_path, env={})
    owner = create_account(store, "ann@example.com", "a long enough password", USER).id
    drafts = Drafts(store, box)
    old_draft, new_draft = drafts.new(owner, name="old"), drafts.new(owner, name="new")
    PendingRecords(store, box, "oauth", timedelta(minutes=10)).put("state", {"pw": "x"})
    with store.write_engine.begin() as conn:
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1, seconds=1)
        conn.execute(
            update(schema.web_draft)
            .where(schema.web_draft.c.id == old_draft.id)
            .values(touched_at=an_hour_ago)
        )
    assert retention.sweep(store, 7).forms == 1  # the old draft; the sign-in is 10 min old
    assert drafts.get(new_draft.id, owner).name == "new"
    later = datetime.now(UTC) + timedelta(hours=2)
    assert retention.sweep(store, 7, later).forms == 2  # the new draft and the sign-in
    with store.engine.connect() as conn:
        for table in (schema.web_draft, schema.web_pending):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0
