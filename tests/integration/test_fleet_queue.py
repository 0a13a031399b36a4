"""The fleet's queue on a real PostgreSQL: which mailboxes get a task, and only one.

``wake`` (what ``batch``, ``resume`` and ``delta`` call) and the workers' sweep
defer ``run_mailbox`` tasks for runnable mailboxes; the mailbox's lock and
queueing lock keep it to one task waiting and one running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text, update

from mailmover.service import queue
from mailmover.service.leases import claim
from mailmover.service.queue import (
    TASK,
    conninfo,
    defer_async,
    ensure_schema,
    has_schema,
    make_app,
    runnable_ids,
    waiting_count,
    wake,
)
from mailmover.store import Store, schema
from support import runcli

mb = schema.mailbox


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    with Store.open(postgres_url) as s:
        yield s


def queued(store: Store, count: int) -> list[int]:
    ids = [store.mailbox(f"imap://u{n}@src", f"imap://u{n}@dst", "q").id for n in range(count)]
    endpoint = {"host": "h", "port": 143, "user": "u"}
    with store.write_engine.begin() as conn:
        conn.execute(update(mb).values(state="queued", source_endpoint=endpoint))
    return ids


def tasks(store: Store) -> list[tuple[str, str, str, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status::text, lock, queueing_lock, (args->>'mailbox_id')::int "
                "FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"
            ),
            {"t": TASK},
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_wake_does_nothing_on_sqlite_or_before_a_worker_made_the_queue(
    tmp_path: Path, postgres_url: str, store: Store
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as lite:
        queued(lite, 2)
        assert wake(lite, f"sqlite:///{tmp_path / 'state.db'}") == 0
    queued(store, 2)
    assert not has_schema(store)
    assert wake(store, postgres_url) == 0
    assert not has_schema(store)  # a job database only the local runner uses stays as it is


def test_each_runnable_mailbox_gets_one_task_with_its_locks(
    postgres_url: str, store: Store
) -> None:
    a, b, c = queued(store, 3)
    with make_app(postgres_url).open() as app:
        assert ensure_schema(store, app) is True
        assert ensure_schema(store, app) is False
    with store.write_engine.begin() as conn:
        conn.execute(update(mb).where(mb.c.id == c).values(state="paused"))
    assert wake(store, postgres_url) == 2
    assert wake(store, postgres_url) == 0  # waiting already: not twice
    assert waiting_count(store) == 2
    assert tasks(store) == [
        ("todo", f"mailbox:{a}", f"mailbox:{a}", a),
        ("todo", f"mailbox:{b}", f"mailbox:{b}", b),
    ]
    assert runnable_ids(store) == []
    # A worker takes a's task and holds its lease: not runnable, and no second task.
    with store.write_engine.begin() as conn:
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing' WHERE lock = :l"),
                     {"l": f"mailbox:{a}"})  # fmt: skip
    assert claim(store, a, "host/1") is not None
    assert runnable_ids(store) == []
    # Its pass ends and it is due again (a pre-stage done): its own task hands it on.
    with store.write_engine.begin() as conn:
        conn.execute(update(mb).where(mb.c.id == a).values(
            state="queued", lease_owner=None, lease_expires=None))  # fmt: skip
    assert runnable_ids(store) == []
    assert runnable_ids(store, mailbox_id=a, own=True) == [a]


def test_wake_fills_the_queue_no_further_than_the_sweep_does(
    postgres_url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = queued(store, 3)
    with make_app(postgres_url).open() as app:
        ensure_schema(store, app)
    monkeypatch.setattr(queue, "MAX_WAITING", 2)
    assert wake(store, postgres_url) == 2
    assert wake(store, postgres_url) == 0  # full: c waits for a sweep, or a task to end
    assert [t[3] for t in tasks(store)] == [a, b]
    assert runnable_ids(store) == [c]


async def test_defer_skips_a_mailbox_whose_task_waits_already(
    postgres_url: str, store: Store
) -> None:
    a, b = queued(store, 2)
    app = make_app(postgres_url)
    async with app.open_async():
        assert await asyncio.to_thread(ensure_schema, store, app) is True
        assert await defer_async(app, [a]) == [a]
        assert await defer_async(app, [a, b]) == [b]  # the batch fails; one by one
        assert await defer_async(app, [a, b]) == []
    assert sorted(t[3] for t in tasks(store)) == [a, b]


def test_conninfo_is_a_libpq_url() -> None:
    url = "postgresql+psycopg://mm:p%40ss@db.example:5433/jobs?sslmode=require"
    assert conninfo(url) == "postgresql://mm:p%40ss@db.example:5433/jobs?sslmode=require"


def test_a_worker_refuses_sqlite_and_a_missing_key(tmp_path: Path, postgres_url: str) -> None:
    env = {"MAILMOVER_DATA_DIR": str(tmp_path), "MAILMOVER_SECRET_KEY": ""}
    lite = runcli.run("worker", env=env | {"MAILMOVER_DATABASE_URL": ""})
    assert lite.code == 2 and "on SQLite, use mailmover run" in lite.stderr, lite
    keyless = runcli.run("worker", env=env | {"MAILMOVER_DATABASE_URL": postgres_url})
    assert keyless.code == 2, keyless
    assert keyless.stderr_lines == [
        "mailmover: set MAILMOVER_SECRET_KEY to the key the jobs were made with"
    ]
    assert not (tmp_path / "secret.key").exists()  # no key of its own made up
