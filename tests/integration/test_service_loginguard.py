"""A person's jobs spend their wrong-password budget, on both backends: claims of
mailboxes whose logins are unchecked stay within it, and wait once it is spent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailmover.service import jobs, leases
from mailmover.service.accounts import USER, create_account
from mailmover.service.batchfile import BatchOptions, parse_batch
from mailmover.service.loginguard import REASON, LoginLimits
from mailmover.service.secrets import SecretBox
from mailmover.service.signinlimits import SigninLimiter, person_key
from mailmover.store import Store
from support.racing import race

LIMITS = LoginLimits(per_person=2, window=600.0)
WRONG = {"outcome": "failed", "reason": "wrong password", "failure_kind": "authentication"}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


def make(store: Store, tmp: Path, name: str, users: str, **spec: object) -> list[int]:
    lines = "".join(f"imap://{u}@src,pw-{u},imap://{u}@dst,pw2-{u}\n" for u in users.split())
    rows = parse_batch("source,source_password,dest,dest_password\n" + lines, BatchOptions())
    box = SecretBox.open(tmp, env={})
    jobs.create_job_from_batch(store, box, rows, jobs.JobSpec(name, **spec))  # type: ignore[arg-type]
    return [s.id for s in jobs.status(store, name)]


def claim(store: Store, mailbox_id: int, now: datetime) -> leases.Claim | None:
    return leases.claim(store, mailbox_id, "w1", now, logins=LIMITS)


def test_unchecked_logins_stay_within_their_owners_budget(store: Store, tmp_path: Path) -> None:
    person = create_account(store, "pat@example.com", "a long account password", USER)
    a, b, c, d = make(store, tmp_path, "guesses", "a b c d", owner_id=person.id)
    (checked,) = make(store, tmp_path, "checked", "e", owner_id=person.id, logins_checked=True)
    (cli,) = make(store, tmp_path, "cli", "f")  # no owner: made with the CLI
    now = datetime.now(UTC)

    first, second = claim(store, a, now), claim(store, b, now)
    assert first is not None and second is not None
    assert claim(store, c, now) is None  # two logins in flight: as many as may still fail
    assert jobs.status(store, "guesses", "c")[0].state == "queued"
    assert leases.finish(store, first, "w1", WRONG, now=now, logins=LIMITS) is not None
    assert claim(store, c, now) is None  # one failed, one in flight
    assert leases.finish(store, second, "w1", {"outcome": "completed", "plan": []},
                         now=now, logins=LIMITS) is not None  # fmt: skip
    third = claim(store, c, now)  # b's logins worked: room for one more
    assert third is not None
    assert leases.finish(store, third, "w1", WRONG, now=now, logins=LIMITS) is not None

    # Spent: d waits until the first wrong password leaves the window, and says why.
    assert claim(store, d, now) is None
    waiting = jobs.status(store, "guesses", "d")[0]
    assert (waiting.state, waiting.reason) == ("waiting", REASON)
    assert waiting.waiting_until == now + timedelta(seconds=LIMITS.window)
    assert claim(store, d, now + timedelta(seconds=LIMITS.window + 1)) is not None
    # The same budget as the web app's: the wizard is closed to this person too.
    limiter = SigninLimiter(store, 2, 30, LIMITS.window)
    assert not limiter.allowed(person_key(person.id))
    # Logins already checked, and jobs without an owner, run as ever.
    assert claim(store, checked, now) is not None
    assert claim(store, cli, now) is not None


def test_claims_racing_for_one_owner_stay_within_the_budget(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    person = create_account(store, "sam@example.com", "a long account password", USER)
    ids = make(store, tmp_path, "many", " ".join(f"u{n}" for n in range(8)), owner_id=person.id)
    now = datetime.now(UTC)

    def work(racer: Store, n: int) -> bool:
        return leases.claim(racer, ids[n], f"w{n}", now, logins=LIMITS) is not None

    assert sum(race(database_url, len(ids), work)) == LIMITS.per_person


def test_a_pass_that_planned_its_folders_no_longer_counts_as_a_guess(
    store: Store, tmp_path: Path
) -> None:
    from mailmover.service.worker import EventTally

    person = create_account(store, "kim@example.com", "a long account password", USER)
    a, b, c = make(store, tmp_path, "three", "a b c", owner_id=person.id)
    now = datetime.now(UTC)
    assert claim(store, a, now) is not None and claim(store, b, now) is not None
    assert claim(store, c, now) is None
    tally = EventTally()  # a's worker: both servers let it in, its folders are planned
    tally.add({"event": "folder_planned", "folder": "INBOX", "messages": 3, "bytes": 300})
    assert leases.heartbeat_many(store, "w1", {a: (tally.progress, [])}) == {a: None}
    assert claim(store, c, now) is not None  # a's logins are no guess any more
