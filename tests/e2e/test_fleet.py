"""The fleet end to end: ``mailmover worker`` processes on one PostgreSQL job database.

Twenty mailboxes between real Dovecots moved by three workers, one of them killed
with SIGKILL while it copies; a worker drained by SIGTERM; pause and cancel of a
mailbox that runs in another process; a per-server limit kept by three workers as
the server counts it; webhooks posted by one worker at a time, handed over when it
stops. Every destination is compared with its source (``Batch.problems``): exactly
its messages, none twice.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from mailmover.service.webhooks import verify
from support.fleet import FleetBatch, Workers
from support.service import GUARD, SlowLink, dest_messages, mail, wait_for, worker_pid
from support.webhook_server import WebhookServer

#: the kill test's batch: mailboxes, and messages in each
COUNT, EACH = 20, 48
#: the lease of a killed worker runs out (30 s) before its mailboxes run again
KILL_GUARD = GUARD + 60


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def copying(batch: FleetBatch, each: int, pids: set[int] | None = None) -> tuple[int, int] | None:
    """A mailbox whose worker (one of ``pids``) has appended some of its messages, not all."""
    for s, account in zip(batch.status(), batch.accounts, strict=True):
        pid = worker_pid(s.worker)
        if s.state != "running" or not pid or (pids is not None and pid not in pids):
            continue
        if 0 < dest_messages(account) < each:
            return s.id, pid
    return None


def test_three_workers_one_killed_every_mailbox_exact(
    servers: tuple[DevServer, DevServer], tmp_path: Path, postgres_url: str
) -> None:
    batch = FleetBatch(*servers, tmp_path, COUNT, "fleet", postgres_url)
    batch.load([mail(200 + n, count=EACH, total=EACH * 2500) for n in range(COUNT)])
    link = SlowLink(servers[1], rate=60_000)  # about 2 s a mailbox: the kill lands mid-copy
    batch.create("--connections", "1", dst_port=link.port)
    workers = Workers(batch, tmp_path)
    try:
        procs = [workers.start("--concurrency", "3") for _ in range(3)]
        victim, pid = wait_for(lambda: copying(batch, EACH), "a mailbox copying in a worker")
        workers.kill(pid, GUARD)
        killed_at = time.monotonic()
        held = {s.id for s in batch.status() if s.worker and worker_pid(s.worker) == pid}
        assert victim in held

        def rerun_elsewhere() -> bool:
            s = next(s for s in batch.status() if s.id == victim)
            return s.state == "completed" or (s.state == "running" and worker_pid(s.worker) != pid)

        wait_for(rerun_elsewhere, "another worker to take the killed worker's mailbox", KILL_GUARD)
        pickup = time.monotonic() - killed_at
        wait_for(
            lambda: batch.raw_states() == ["completed"] * COUNT, "every mailbox to complete",
            KILL_GUARD,
        )  # fmt: skip
        codes = workers.stop(GUARD)
    finally:
        workers.kill_all()
        link.close()
    print(f"\nkilled worker's mailbox running again {pickup:.1f} s after SIGKILL")
    assert batch.problems() == []
    found = batch.status()
    assert [s.state for s in found] == ["completed"] * COUNT
    assert all(s.worker is None for s in found)
    crashed = {s.id for s in found if s.crashes == 1}
    assert victim in crashed and crashed <= held, (crashed, held)
    # The killed worker's mailboxes ended where others picked them up: a crashed pass,
    # then one by a live worker that completed it.
    passes = batch.rows(
        'SELECT mailbox_id, worker, outcome FROM "pass" ORDER BY id'
    )  # fmt: skip
    for mailbox_id in crashed:
        mine = [(w, o) for m, w, o in passes if m == mailbox_id]
        assert mine[0] == (mine[0][0], "crashed") and worker_pid(mine[0][0]) == pid
        assert mine[-1][1] == "completed" and worker_pid(mine[-1][0]) != pid
    # The dead worker took no pass after its death; each live one took some.
    runners = {worker_pid(w) for _, w, _ in passes}
    assert runners == {p.pid for p in procs}
    assert [c for p, c in zip(procs, codes, strict=True) if p.pid != pid] == [0, 0]
    left = batch.rows("SELECT status FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
    assert left == []
    assert batch.leaked(workers.output()) == []


def test_sigterm_drains_and_another_worker_goes_on(
    servers: tuple[DevServer, DevServer], tmp_path: Path, postgres_url: str
) -> None:
    count, each = 3, 120
    batch = FleetBatch(*servers, tmp_path, count, "drain", postgres_url)
    batch.load([mail(300 + n, count=each, total=each * 2500) for n in range(count)])
    link = SlowLink(servers[1], rate=60_000)  # about 5 s a mailbox
    batch.create("--connections", "1", dst_port=link.port)
    workers = Workers(batch, tmp_path)
    try:
        first = workers.start("--concurrency", "3")
        wait_for(
            lambda: sum(1 for s in batch.status() if s.state == "running") == count,
            "every mailbox to start",
        )
        wait_for(lambda: copying(batch, each), "copying to start")
        first.send_signal(signal.SIGTERM)
        assert first.wait(GUARD) == 0
        # Drained: every pass recorded as paused, each mailbox queued with no worker.
        found = batch.status()
        assert [(s.state, s.worker) for s in found] == [("queued", None)] * count
        assert [s.reason for s in found] == ["its worker stopped; it runs again"] * count
        copied = [dest_messages(a) for a in batch.accounts]
        assert 0 < sum(copied) < count * each
        drained = batch.rows('SELECT outcome FROM "pass" ORDER BY id')
        assert [r[0] for r in drained] == ["paused"] * count
        second = workers.start("--concurrency", "3")
        wait_for(lambda: batch.raw_states() == ["completed"] * count, "the second worker to finish")
        assert workers.stop(GUARD) == [0, 0]
    finally:
        workers.kill_all()
        link.close()
    assert batch.problems() == []
    passes = batch.rows('SELECT mailbox_id, worker, outcome FROM "pass" ORDER BY id')
    assert sorted((m, worker_pid(w), o) for m, w, o in passes) == sorted(
        [(s.id, first.pid, "paused") for s in found]
        + [(s.id, second.pid, "completed") for s in found]
    )
    # The second pass copied only what the first had not.
    assert [s.messages_copied for s in batch.status()] == [each] * count
    draining = [e for e in workers.events(0) if e.get("event") == "draining"]
    assert [e["passes"] for e in draining] == [count]


def test_pause_and_cancel_reach_the_worker_that_runs_the_mailbox(
    servers: tuple[DevServer, DevServer], tmp_path: Path, postgres_url: str
) -> None:
    batch = FleetBatch(*servers, tmp_path, 2, "remote", postgres_url)
    batch.load([mail(400 + n, count=500, total=3_500_000) for n in range(2)])
    link = SlowLink(servers[1], rate=300_000)  # about 12 s a mailbox
    batch.create("--connections", "1", dst_port=link.port)
    batch.tune(batch_messages=25, memory_budget=512 * 1024, window=16)
    one, two = (a.user for a in batch.accounts)
    workers = Workers(batch, tmp_path)
    try:
        procs = [workers.start("--concurrency", "1") for _ in range(2)]

        def both_copying() -> bool:
            found = batch.status()
            return all(s.state == "running" and s.messages_copied > 0 for s in found)

        wait_for(both_copying, "both mailboxes to copy, one in each worker")
        held = {s.id: worker_pid(s.worker) for s in batch.status()}
        assert sorted(held.values()) == sorted(p.pid for p in procs)
        started = time.monotonic()
        assert batch.cli("pause", "remote", "--mailbox", one).stdout.strip() == (
            "pause: 1 mailbox(es)"
        )
        asked = time.monotonic()
        command = asked - started
        wait_for(lambda: batch.states()[0] == "paused", "the pause to be taken")
        paused_in = time.monotonic() - asked
        at_pause = batch.accounts[0].dst_snapshot().message_count()
        assert 0 < at_pause < 500
        assert batch.cli("cancel", "remote", "--mailbox", two).stdout.strip() == (
            "cancel: 1 mailbox(es)"
        )
        asked = time.monotonic()
        wait_for(lambda: batch.states()[1] == "cancelled", "the cancel to be taken")
        cancelled_in = time.monotonic() - asked
        time.sleep(1.5)  # any APPEND still going would land now
        assert batch.accounts[0].dst_snapshot().message_count() == at_pause
        (box,) = [s for s in batch.status() if s.state == "cancelled"]
        assert not box.has_credentials and box.worker is None
        link.proxy.rate = 0  # the rest at full speed
        assert batch.cli("resume", "remote", "--mailbox", one).stdout.strip() == (
            "resume: 1 mailbox(es)"
        )
        wait_for(lambda: batch.states()[0] == "completed", "the resumed mailbox to complete")
        assert workers.stop(GUARD) == [0, 0]
    finally:
        workers.kill_all()
        link.close()
    print(f"\npause taken {paused_in:.1f} s, cancel {cancelled_in:.1f} s after the command ended"
          f" (the pause command itself took {command:.1f} s)")  # fmt: skip
    batch.expected = batch.expected[:1]
    batch.accounts = batch.accounts[:1]
    assert batch.problems() == []
    passes = batch.rows('SELECT mailbox_id, outcome FROM "pass" ORDER BY id')
    ids = sorted(held)
    assert [o for m, o in passes if m == ids[0]] == ["paused", "completed"]
    assert [o for m, o in passes if m == ids[1]] == ["cancelled"]


def test_three_workers_keep_one_per_server_limit_as_the_server_counts(
    servers: tuple[DevServer, DevServer], tmp_path: Path, postgres_url: str
) -> None:
    """Six mailboxes, three workers allowing two connections at the source: two in all."""
    batch = FleetBatch(*servers, tmp_path, 6, "limited", postgres_url)
    batch.load([mail(500 + n, count=40, total=400_000) for n in range(6)])
    source = SlowLink(servers[0], rate=300_000)  # each mailbox takes a while: runs overlap
    lines = ["source,source_password,dest,dest_password"]
    lines += [
        f"{a.src_url(source.port)},{a.src_pw},{a.dst_url()},{a.dst_pw}" for a in batch.accounts
    ]
    batch.file.write_text("\n".join(lines) + "\n")
    workers = Workers(batch, tmp_path)
    try:
        # Each worker alone would take two connections at the source, three together six.
        for _ in range(3):
            workers.start("--concurrency", "2", "--max-per-server", "2")
        created = batch.cli("batch", str(batch.file), "--name", "limited", "--connections", "1")
        assert created.code == 0, created
        wait_for(lambda: batch.raw_states() == ["completed"] * 6, "every mailbox to complete")
        assert workers.stop(GUARD) == [0, 0, 0]
    finally:
        workers.kill_all()
        source.close()
    assert batch.problems() == []
    started = [e for e in workers.events() if e.get("event") == "started"]
    assert len(started) == 6 and {e["connections"] for e in started} == {1}
    assert source.proxy.accepted >= 6
    assert source.proxy.peak_connections == 2


def test_one_worker_at_a_time_posts_the_webhooks(
    servers: tuple[DevServer, DevServer], tmp_path: Path, postgres_url: str
) -> None:
    """Three workers with the same webhook; the one that posts stops and another takes
    over: every state change is posted once, signed."""
    secret = "hook-" + os.urandom(8).hex()
    batch = FleetBatch(*servers, tmp_path, 2, "hooked", postgres_url)
    batch.env["MAILMOVER_WEBHOOK_SECRET"] = secret
    batch.load([mail(600), mail(601)])
    workers = Workers(batch, tmp_path)

    def leaders() -> list[int]:
        return [n for n in range(len(workers.procs))
                if any(e.get("event") == "notifier" for e in workers.events(n))]  # fmt: skip

    with WebhookServer() as hooks:
        try:
            procs = [workers.start("--webhook-url", hooks.url) for _ in range(3)]
            (first,) = wait_for(leaders, "a worker to take the notifier's lock")
            procs[first].send_signal(signal.SIGTERM)
            assert procs[first].wait(GUARD) == 0
            wait_for(lambda: len(leaders()) == 2, "another worker to take it over")
            batch.create()
            wait_for(lambda: batch.raw_states() == ["completed"] * 2, "both mailboxes")
            assert workers.stop(GUARD) == [0, 0, 0]
        finally:
            workers.kill_all()
        accepted = hooks.accepted()
    assert batch.problems() == []
    (second,) = set(leaders()) - {first}
    notified = [[e for e in workers.events(n) if e.get("event") == "notified"] for n in range(3)]
    assert notified[first] == [{"event": "notified", "sent": 0, "failed": 0}]
    assert notified[second] == [{"event": "notified", "sent": 6, "failed": 0}]
    assert sum(map(len, notified)) == 2  # the third never posted
    for post in accepted:
        headers = {k.lower(): v for k, v in post.headers.items()}
        assert verify(
            secret, headers["mailmover-timestamp"], post.body, headers["mailmover-signature"]
        )
    events = sorted((json.loads(p.body) for p in accepted), key=lambda e: e["id"])
    assert len({e["id"] for e in events}) == len(events) == 6
    by_mailbox: dict[int, list[str]] = {}
    for e in events:
        by_mailbox.setdefault(e["mailbox"]["id"], []).append(e["state"])
    assert by_mailbox == {1: ["queued", "running", "completed"],
                          2: ["queued", "running", "completed"]}  # fmt: skip
    assert batch.leaked(workers.output(), *(p.body.decode() for p in accepted),
                        more=[secret]) == []  # fmt: skip
