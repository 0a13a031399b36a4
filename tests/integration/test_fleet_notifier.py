"""The fleet's notifier on PostgreSQL: one worker at a time, even when a lock is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from mailmover.service.notifier import NOTIFY_LOCK, FleetNotifier
from mailmover.store import Store
from support.service import wait_for

#: Nothing listens there; no state changes, so nothing is posted.
NOWHERE = ("http://127.0.0.1:9/hook",)


@pytest.fixture
def two(postgres_url: str) -> Iterator[tuple[FleetNotifier, FleetNotifier, Store]]:
    """Two workers' notifiers, each on a store of its own, and a third store to look."""
    stores = [Store.open(postgres_url) for _ in range(3)]
    a, b = (FleetNotifier(store, NOWHERE) for store in stores[:2])
    yield a, b, stores[2]
    for notifier in (a, b):
        notifier.close()
    for store in stores:
        store.close()


def _end_the_lock_holders_session(store: Store) -> int:
    """What a server restart or a keepalive giving up does; how many sessions ended."""
    with store.engine.connect() as conn:
        ended = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND classid = 0 AND objid = :key"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"key": NOTIFY_LOCK},
        ).scalar_one()
        conn.commit()
    return int(ended)


def test_a_notifier_whose_lock_went_with_its_session_stops_notifying(
    two: tuple[FleetNotifier, FleetNotifier, Store],
) -> None:
    a, b, look = two
    assert a.poll() and a.leading
    assert not b.poll() and not b.leading
    assert _end_the_lock_holders_session(look) == 1
    wait_for(b.poll, "the other worker to take the freed lock")
    assert not a.poll()
    assert not a.leading and b.leading
