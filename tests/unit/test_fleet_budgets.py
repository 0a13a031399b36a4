"""Budgets and server holds shared by every runner on one job database (SQLite, PostgreSQL).

Each ``Store`` stands for a runner or worker process of its own (its own connections):
what one of them holds or learns, the others must respect.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from mailmover.service.budgets import Budgets, in_use
from mailmover.service.jobs import status
from mailmover.service.leases import claim, finish, heartbeat, now_utc, runnable_condition
from mailmover.store import Store, schema
from support.racing import race

mb = schema.mailbox

THROTTLED = {
    "outcome": "failed",
    "retryable": True,
    "failure_kind": "server",
    "failed_side": "source",
    "reason": "LOGIN refused by the server: [UNAVAILABLE] Maximum number of connections "
    "from user+IP exceeded (mail_max_userip_connections=1)",
}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


def boxes(store: Store, source_server: str, count: int, first: int = 0) -> list[int]:
    """Queued mailboxes from ``user<n>`` at ``source_server`` to one destination."""
    host, port = source_server.split(":")
    ids = []
    for n in range(first, first + count):
        m = store.mailbox(f"imap://user{n}@{host}", f"imap://user{n}@dst", "fleet")
        with store.write_engine.begin() as conn:
            conn.execute(
                update(mb)
                .where(mb.c.id == m.id)
                .values(
                    state="queued",
                    source_endpoint={"user": f"user{n}", "host": host, "port": int(port)},
                    dest_endpoint={"user": f"user{n}", "host": "dst", "port": 143},
                )
            )
            conn.execute(update(schema.job).values(settings={}))
        ids.append(m.id)
    return ids


def test_connections_held_by_one_runner_count_for_the_others(
    store: Store, database_url: str
) -> None:
    a, b, c = boxes(store, "src:143", 3)
    limits = Budgets(global_limit=100, per_server=3, per_account=10)
    with Store.open(database_url) as other:
        first = claim(store, a, "runner-1", budgets=limits, wanted=2)
        second = claim(other, b, "runner-2", budgets=limits, wanted=2)
        assert first is not None and first.connections == 2
        assert second is not None and second.connections == 1  # 3 at src:143
        assert claim(other, c, "runner-2", budgets=limits, wanted=2) is None
        assert in_use(other, now_utc()).held_hosts["src:143"] == 3
        # runner-1 dies: once its lease has expired its connections count no more.
        with store.write_engine.begin() as conn:
            conn.execute(
                update(mb).where(mb.c.id == a).values(lease_expires=now_utc() - timedelta(1))
            )
        third = claim(other, c, "runner-2", budgets=limits, wanted=2)
        assert third is not None and third.connections == 2


def test_racing_runners_never_grant_more_than_the_server_allows(
    store: Store, database_url: str
) -> None:
    ids = boxes(store, "src:143", 12)
    limits = Budgets(global_limit=100, per_server=5, per_account=10)

    def claim_all(s: Store, n: int) -> int:
        got = [claim(s, i, f"runner-{n}", budgets=limits, wanted=1) for i in ids]
        return sum(c.connections for c in got if c is not None)

    granted = race(database_url, 4, claim_all)
    assert sum(granted) == 5
    with store.engine.connect() as conn:
        running = conn.execute(select(mb.c.id).where(mb.c.state == "running")).all()
    assert len(running) == 5


def test_a_throttling_server_parks_its_mailboxes_for_every_runner(
    store: Store, database_url: str
) -> None:
    first, *others = boxes(store, "busy:143", 3)
    (elsewhere,) = boxes(store, "calm:143", 1, first=10)
    claimed = claim(store, first, "runner-1")
    assert claimed is not None
    after = finish(store, claimed, "runner-1", THROTTLED)
    assert after is not None and after.state == "waiting" and after.waiting_until is not None
    by_id = {s.id: s for s in status(store, "fleet")}
    for i in others:
        assert by_id[i].state == "waiting"
        assert by_id[i].waiting_until == after.waiting_until
        assert by_id[i].words.startswith("waiting until ")
        assert "busy:143 is throttling: LOGIN refused by the server" in by_id[i].words
    assert by_id[elsewhere].state == "queued"
    with Store.open(database_url) as other:
        assert all(claim(other, i, "runner-2") is None for i in others)
        assert claim(other, elsewhere, "runner-2") is not None
        # A mailbox added later on the held server is parked when it is first tried.
        (late,) = boxes(other, "busy:143", 1, first=20)
        assert claim(other, late, "runner-2") is None
        (row,) = [s for s in status(other, "fleet") if s.id == late]
        assert (row.state, row.waiting_until) == ("waiting", after.waiting_until)
        # When the hold is over, they run.
        later = after.waiting_until + timedelta(seconds=1)
        assert claim(other, late, "runner-2", later) is not None
        assert heartbeat(other, late, "runner-2") is None


def test_a_hold_parks_synced_and_completing_mailboxes_too(store: Store) -> None:
    """Their delta waits for the hold instead of being tried (and refused) every sweep."""
    first, due, later_due, completing, completing_late = boxes(store, "busy:143", 5)
    now = now_utc()
    with store.write_engine.begin() as conn:
        synced = {"state": "synced", "next_pass": "delta", "next_pass_at": now - timedelta(1)}
        conn.execute(update(mb).where(mb.c.id.in_([due, completing_late])).values(synced))
        conn.execute(update(mb).where(mb.c.id == later_due).values(
            synced | {"next_pass_at": now + timedelta(days=1)}))  # fmt: skip
        conn.execute(update(mb).where(mb.c.id == completing).values(
            state="completing", next_pass="delta"))  # fmt: skip
        conn.execute(update(schema.job).values(state="completing"))
    claimed = claim(store, first, "runner-1")
    assert claimed is not None
    after = finish(store, claimed, "runner-1", THROTTLED)
    assert after is not None and after.waiting_until is not None
    until = after.waiting_until
    state = {s.id: (s.state, s.waiting_until) for s in status(store, "fleet")}
    assert state[due] == state[completing] == state[completing_late] == ("waiting", until)
    assert state[later_due] == ("synced", None)  # not due: nothing to park
    assert runnable(store) == set()  # the fleet sweep has nothing to queue again and again
    # Made completing while the hold lasts: parked at its first claim, not tried again.
    with store.write_engine.begin() as conn:
        conn.execute(update(mb).where(mb.c.id == later_due).values(
            state="completing", next_pass="delta"))  # fmt: skip
    assert runnable(store) == {later_due}
    assert claim(store, later_due, "runner-1") is None
    assert runnable(store) == set()
    # Released with the hold: each runs its delta, and the completing ones complete.
    over = until + timedelta(seconds=1)
    assert runnable(store, over) == {first, due, later_due, completing, completing_late}
    for i in (due, completing):
        again = claim(store, i, "runner-1", over)
        assert again is not None and again.kind == "delta"
        done = finish(store, again, "runner-1", {"outcome": "completed"}, now=over)
        assert done is not None and done.state == "completed"


def runnable(store: Store, now: datetime | None = None) -> set[int]:
    with store.engine.connect() as conn:
        query = select(mb.c.id).where(runnable_condition(now or now_utc()))
        return set(conn.execute(query).scalars())
