"""Leases on SQLite and on PostgreSQL: a mailbox is held by one worker at a time.

Each claimer has a ``Store`` of its own (its own connections), as separate runner
and worker processes do, and they race for the same mailboxes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mailmover.service.leases import (
    LEASE_SECONDS,
    Claim,
    claim,
    crashed,
    finish,
    heartbeat,
    now_utc,
    recover_expired,
    runnable_condition,
)
from mailmover.store import Store, schema
from support.racing import race

mb = schema.mailbox


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


def queued(store: Store, count: int) -> list[int]:
    ids = [store.mailbox(f"imap://u{n}@src", f"imap://u{n}@dst", "race").id for n in range(count)]
    with store.write_engine.begin() as conn:
        conn.execute(update(mb).values(state="queued"))
    return ids


def test_every_mailbox_is_claimed_by_exactly_one_of_four_racing_workers(
    store: Store, database_url: str
) -> None:
    ids = queued(store, 40)

    def claim_all(s: Store, n: int) -> list[int]:
        return [i for i in ids if claim(s, i, f"worker-{n}") is not None]

    won = race(database_url, 4, claim_all)
    holders = Counter(i for got in won for i in got)
    assert sorted(holders) == ids
    assert set(holders.values()) == {1}
    with store.engine.connect() as conn:
        owners = dict(conn.execute(select(mb.c.id, mb.c.lease_owner)).all())
        passes = conn.execute(select(func.count()).select_from(schema.mailbox_pass)).scalar()
    for n, got in enumerate(won):
        assert all(owners[i] == f"worker-{n}" for i in got)
    assert passes == 40


def test_a_dead_workers_mailbox_is_settled_once_however_many_runners_see_it(
    store: Store, database_url: str
) -> None:
    ids = queued(store, 10)
    past = now_utc() - timedelta(seconds=2 * LEASE_SECONDS)
    for i in ids:
        assert claim(store, i, "dead", past) is not None

    def settle(s: Store, _n: int) -> int:
        return sum(crashed(s, i, None) is not None for i in ids)

    settled = race(database_url, 4, settle)
    assert sum(settled) == 10
    with store.engine.connect() as conn:
        rows = conn.execute(select(mb.c.state, mb.c.crashes, mb.c.lease_owner)).all()
    assert sorted(set(rows)) == [("queued", 1, None)]


def test_a_worker_that_lost_its_lease_can_no_longer_write(store: Store) -> None:
    (box,) = queued(store, 1)
    past = now_utc() - timedelta(seconds=2 * LEASE_SECONDS)
    first = claim(store, box, "slow", past)
    assert isinstance(first, Claim)
    assert crashed(store, box, None) is not None  # its lease expired: settled
    second = claim(store, box, "fresh")
    assert second is not None and second.pass_id != first.pass_id
    with pytest.raises(Exception, match="no longer held"):
        heartbeat(store, box, "slow")
    assert finish(store, first, "slow", {"outcome": "completed"}) is None
    assert heartbeat(store, box, "fresh") is None
    with store.engine.connect() as conn:
        row = conn.execute(select(mb.c.state, mb.c.lease_owner)).one()
    assert tuple(row) == ("running", "fresh")
    with store.engine.connect() as conn:
        outcome = conn.execute(
            select(schema.mailbox_pass.c.outcome).where(schema.mailbox_pass.c.id == first.pass_id)
        ).scalar()
    assert outcome == "crashed"  # the late report of the lost pass does not rewrite it


def test_a_dead_workers_mailbox_waits_the_settle_from_its_last_heartbeat(store: Store) -> None:
    early, late = queued(store, 2)
    now = now_utc()
    beat = now - timedelta(seconds=LEASE_SECONDS + 5)  # both leases expired 5 s ago
    for i in (early, late):
        assert claim(store, i, "dead", beat) is not None
    with store.write_engine.begin() as conn:  # one beat more for ``late``, 20 s later
        conn.execute(update(mb).where(mb.c.id == late).values(
            heartbeat_at=beat + timedelta(seconds=20),
            lease_expires=now - timedelta(seconds=1)))  # fmt: skip
    assert sorted(recover_expired(store, now, settle=60.0)) == [early, late]
    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(mb.c.id, mb.c.state, mb.c.waiting_until))}
        runnable = set(conn.execute(select(mb.c.id).where(runnable_condition(now))).scalars())
    assert rows[early].state == rows[late].state == "waiting"
    assert rows[early].waiting_until == beat + timedelta(seconds=60)
    assert rows[late].waiting_until == beat + timedelta(seconds=80)
    assert runnable == set()
    assert claim(store, early, "fresh", now) is None
    after = now + timedelta(seconds=30)  # past early's settle, not late's
    assert claim(store, early, "fresh", after) is not None
    assert claim(store, late, "fresh", after) is None
