"""Several runners on one job database, between real Dovecots, on SQLite and PostgreSQL.

The budgets are counted in the database, so two runners together keep a server's
limit, as the server (a proxy in front of it) counts its sessions. A server that
throttles one mailbox's login parks its other mailboxes ("waiting until …") while
the mailboxes on other servers go on.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import runcli, snapshot
from support.service import GUARD, Batch, SlowLink, mail, wait_for


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def test_two_runners_on_one_database_keep_one_per_server_limit(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    """Six mailboxes, two runners allowing two connections each at the source: two in all."""
    batch = Batch(*servers, tmp_path, 6, "shared", database=service_database)
    batch.load([mail(210 + n, count=40, total=400_000) for n in range(6)])
    source = SlowLink(servers[0], rate=300_000)  # each mailbox takes a while: runs overlap
    lines = ["source,source_password,dest,dest_password"]
    lines += [
        f"{a.src_url(source.port)},{a.src_pw},{a.dst_url()},{a.dst_pw}" for a in batch.accounts
    ]
    batch.file.write_text("\n".join(lines) + "\n")
    assert batch.cli("batch", str(batch.file), "--name", "shared", "--connections", "1").code == 0
    # Started together, each runner alone would take two connections at once.
    args = ("run", "--until-done", "--concurrency", "3", "--max-per-server", "2", "--json")
    runners = [runcli.start(*args, env=batch.env) for _ in range(2)]
    try:
        outs = [runcli.finish(r, timeout=GUARD) for r in runners]
    finally:
        for r in runners:
            if r.poll() is None:
                r.kill()
        source.close()
    assert [o.code for o in outs] == [0, 0], outs
    assert batch.problems() == []
    assert batch.states() == ["completed"] * 6
    started = [e for o in outs for e in o.events if e.get("event") == "started"]
    assert len(started) == 6
    assert source.proxy.accepted >= 6
    assert source.proxy.peak_connections == 2


def test_a_throttling_server_parks_its_other_mailboxes_while_others_go_on(
    dovecot_factory, servers: tuple[DevServer, DevServer], tmp_path: Path,
    service_database: str | None,
) -> None:  # fmt: skip
    busy = dovecot_factory(extra_conf="protocol imap {\n  mail_max_userip_connections = 1\n}\n")
    batch = Batch(busy, servers[1], tmp_path, 3, "throttled", database=service_database)
    calm = Batch(servers[0], servers[1], tmp_path, 1, "calm")
    batch.accounts += calm.accounts  # the fourth mailbox comes from another server
    batch.load([mail(230 + n, count=10, total=100_000) for n in range(4)])
    batch.create("--connections", "1")
    first = batch.accounts[0]
    # The first mailbox's user is logged in elsewhere: the server refuses one more.
    with contextlib.ExitStack() as held:

        def log_in() -> bool:  # the loading's own sessions may take a moment to end
            try:
                held.enter_context(snapshot.session(busy.host, busy.port, first.user, first.src_pw))
            except imaplib.IMAP4.error as exc:
                assert "Maximum number of connections" in str(exc), exc
                return False
            return True

        wait_for(log_in, "a session of the first mailbox's user")
        runner = runcli.start("run", "--concurrency", "1", "--json", env=batch.env)
        try:
            wait_for(lambda: batch.states()[3] == "completed", "the other server's mailbox")
            found = batch.status()
        finally:
            runner.send_signal(signal.SIGTERM)
            out = runcli.finish(runner, timeout=GUARD)
    assert out.code == 0, out
    assert [s.state for s in found] == ["waiting", "waiting", "waiting", "completed"]
    throttled, *parked, done = found
    assert "Maximum number of connections" in throttled.words, throttled.words
    server = f"{busy.host}:{busy.port}"
    for box in parked:
        assert box.waiting_until == throttled.waiting_until
        assert box.words.startswith("waiting until "), box.words
        assert f"{server} is throttling: " in box.words, box.words
        assert "Maximum number of connections" in box.words, box.words
    started = [e["mailbox"] for e in out.events if e.get("event") == "started"]
    assert started == [throttled.id, done.id]  # the parked ones never started
    shown = batch.cli("status", "throttled", "--json")
    words = [m["words"] for m in json.loads(shown.stdout)]
    assert [f"{server} is throttling: " in w for w in words] == [False, True, True, False]
    calm_copy = batch.accounts[3].dst_snapshot()
    assert runcli.exact_copy_problems(batch.expected[3], calm_copy) == []
    assert batch.leaked(out.stdout, out.stderr, shown.stdout) == []
