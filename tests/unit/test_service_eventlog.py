"""The event log read in order on PostgreSQL, where ids can become visible out of order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mailmover.service.eventlog import GAP_SECONDS, EventCursor
from mailmover.store import Store, schema


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


def add(conn, text: str) -> int:  # type: ignore[no-untyped-def]
    row = {"mailbox_id": None, "at": datetime.now(UTC), "level": "info", "kind": "t", "text": text}
    return int(
        conn.execute(schema.event.insert().values(row).returning(schema.event.c.id)).scalar_one()
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_cursor_waits_for_an_id_committed_late_and_passes_a_rolled_back_one(
    store: Store,
) -> None:
    cursor = EventCursor(store)
    start = cursor.position
    slow = store.engine.connect()
    slow_tx = slow.begin()
    late = add(slow, "committed late")
    with store.engine.begin() as conn:
        after = add(conn, "committed first")
    assert after == late + 1
    with store.engine.connect() as conn:
        assert cursor.horizon(conn, now=0.0) == start  # late is not visible yet
    slow_tx.commit()
    slow.close()
    with store.engine.connect() as conn:
        top = cursor.horizon(conn, now=1.0)
    assert top == after
    cursor.advance(top)
    # An insert rolled back leaves a hole that is waited for, then passed over.
    with store.engine.connect() as conn, conn.begin() as tx:
        lost = add(conn, "rolled back")
        tx.rollback()
    with store.engine.begin() as conn:
        kept = add(conn, "after the hole")
    assert kept == lost + 1
    with store.engine.connect() as conn:
        assert cursor.horizon(conn, now=10.0) == after
        assert cursor.horizon(conn, now=10.0 + GAP_SECONDS / 2) == after
        assert cursor.horizon(conn, now=10.0 + GAP_SECONDS + 1) == kept


def test_on_either_backend_the_horizon_is_the_newest_event_once_all_are_in(
    store: Store,
) -> None:
    cursor = EventCursor(store)
    with store.engine.begin() as conn:
        ids = [add(conn, str(n)) for n in range(3)]
    with store.engine.connect() as conn:
        assert cursor.horizon(conn) == ids[-1]
