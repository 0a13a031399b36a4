"""Cut and stalled links between `mailmover copy` and real Dovecots: one run, the exact multiset.

A fault-injecting proxy sits on the source side or on the destination side.
Cuts land at seeded random byte offsets of the traffic in one direction:
inside FETCH literals (server to client, source side) or APPEND literals
(client to server, destination side), plus a cut in the other direction that
loses commands or their completions. The next fault is armed each time
mailmover reports a retry, so every fault meets a running copy; a stall makes
mailmover time out (``--timeout 3``) and retry. The copy must finish in that
one invocation with exit 0 and the destination holding exactly the source's
messages. A destination that goes away for good ends the run with exit 3
within the retry budget (of time without progress), a reason, and nothing
duplicated.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli, snapshot
from support.corpus import Corpus
from support.proxy import Direction, Proxy

SEED = 4
#: seconds a run may take before it counts as hanging
GUARD = 60.0
MESSAGES = 45

#: (fault, bytes after arming, direction)
Fault = tuple[str, int, Direction]


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def mail(seed: int) -> Corpus:
    """Three folders of ~330 KB messages, 15 MB in all: most bytes on the wire are literals."""
    msgs = corpus.bulk(MESSAGES, seed=seed, size_dist="small", total_bytes=15_000_000)
    return runcli.folders(INBOX=msgs[:15], Reports=msgs[15:30], Travel=msgs[30:])


async def copy_under_faults(
    accounts: runcli.Accounts, proxy: Proxy, faults: list[Fault], *, src_port: int, dst_port: int
) -> runcli.Outcome:
    """Run one copy, arming fault i once the transfer began and i retries were reported."""
    live = await runcli.Live.start(
        *accounts.copy_args("--timeout", "3", src_port=src_port, dst_port=dst_port),
        env=accounts.env,
        guard=GUARD,
    )
    for i, (kind, offset, direction) in enumerate(faults):

        def ready(events: list[dict], i: int = i) -> bool:
            started = any(e["event"] == "folder_started" for e in events)
            return started and sum(e["event"] == "retrying" for e in events) >= i

        if not await live.until(ready):
            break
        if kind == "cut":
            proxy.cut_after(offset, direction)
        else:
            proxy.stall_after(offset, direction)
    outcome = await live.finish()
    proxy.clear_faults()
    return outcome


def assert_exact(accounts: runcli.Accounts, mail_: Corpus) -> None:
    expected = snapshot.corpus_snapshot(mail_)
    assert accounts.problems(expected) == []


def assert_one_run_survived(out: runcli.Outcome, faults: list[Fault]) -> None:
    assert out.code == 0, str(out)
    report = out.report
    assert report["failures"] == 0, report
    # Messages whose APPEND completed but whose OK was lost are found, not sent again.
    assert sum(f["copied"] + f["already"] for f in report["folders"]) == MESSAGES, report
    # Every fault met the copy and cost it a retry: the faults really happened.
    assert len(out.retries) >= len(faults), out.retries
    if any(kind == "stall" for kind, _, _ in faults):
        assert any(re.search(r"answer|time", r["reason"]) for r in out.retries), out.retries


async def test_source_cuts_and_stall_inside_fetch_literals(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "srcfaults")
    mail_ = mail(SEED)
    accounts.load(mail_)
    rng = random.Random(SEED)
    faults: list[Fault] = [
        ("cut", rng.randint(1, 150_000), "to_client"),
        ("cut", rng.randint(1, 150_000), "to_client"),
        ("stall", rng.randint(1, 150_000), "to_client"),
        ("cut", rng.randint(0, 40), "to_server"),  # the next command is lost
        ("cut", rng.randint(1, 150_000), "to_client"),
    ]
    async with Proxy(src.host, src.port) as proxy:
        out = await copy_under_faults(
            accounts, proxy, faults, src_port=proxy.port, dst_port=dst.port
        )
    assert_one_run_survived(out, faults)
    assert_exact(accounts, mail_)
    assert "Traceback" not in out.stderr, out.stderr


async def test_destination_cuts_and_stall_inside_append_literals(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "dstfaults")
    mail_ = mail(SEED + 1)
    accounts.load(mail_)
    rng = random.Random(SEED + 1)
    faults: list[Fault] = [
        ("cut", rng.randint(1, 150_000), "to_server"),
        ("cut", rng.randint(0, 200), "to_client"),  # an APPEND's completion is lost
        ("stall", rng.randint(1, 150_000), "to_server"),
        ("cut", rng.randint(1, 150_000), "to_server"),
        ("cut", rng.randint(0, 200), "to_client"),
    ]
    async with Proxy(dst.host, dst.port) as proxy:
        out = await copy_under_faults(
            accounts, proxy, faults, src_port=src.port, dst_port=proxy.port
        )
    assert_one_run_survived(out, faults)
    assert_exact(accounts, mail_)
    assert "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize("side", ["source", "dest"])
async def test_cut_while_planning(servers, tmp_path, side: str) -> None:
    # After logging in, both sides are listed, the source folders sized, and the
    # destination folders created and subscribed before any message moves; a link
    # dropped then is as transient as one dropped later.
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, f"plancut-{side}")
    msgs = corpus.bulk(9, seed=SEED, size_dist="small")
    mail_ = runcli.folders(INBOX=msgs[:3], Alpha=msgs[3:6], Beta=msgs[6:])
    accounts.load(mail_)
    server = src if side == "source" else dst
    logins_before = _logins(server, accounts.user)
    # 150 ms each way stretches planning over a second or more of round trips (they
    # are pipelined: from the login on, the source is asked a few round trips' worth).
    async with Proxy(server.host, server.port, delay_ms=150) as proxy:
        ports = {"src_port": proxy.port} if side == "source" else {"dst_port": proxy.port}
        live = await runcli.Live.start(
            *accounts.copy_args("--timeout", "3", **ports), env=accounts.env, guard=GUARD
        )
        # Once Dovecot logged the login, the next ~150 bytes the client sends are
        # planning commands (ID, NAMESPACE, LIST, LSUB, STATUS, CREATE, SUBSCRIBE).
        logged_in = await live.poll(lambda: _logins(server, accounts.user) > logins_before)
        assert logged_in, "the copy ended before it logged in"
        proxy.cut_after(random.Random(SEED).randint(0, 150), "to_server")
        out = await live.finish()
    assert out.code == 0, str(out)
    assert out.report["copied"] == len(msgs), out.report
    kinds = [e["event"] for e in out.events]
    assert "retrying" in kinds, kinds
    assert kinds.index("retrying") < kinds.index("folder_planned"), kinds
    assert_exact(accounts, mail_)


def _logins(server: DevServer, user: str) -> int:
    return server.log_path.read_text(errors="replace").count(f"Login: user=<{user}>")


async def test_destination_down_for_good(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "dstdown")
    mail_ = mail(SEED + 2)
    accounts.load(mail_)
    expected = snapshot.corpus_snapshot(mail_)
    budget = 5.0
    proxy = await Proxy(dst.host, dst.port).start()
    port = proxy.port
    try:
        live = await runcli.Live.start(
            *accounts.copy_args("--retry-for", str(budget), "--timeout", "3", dst_port=port),
            env=accounts.env, guard=GUARD,
        )  # fmt: skip
        copying = await live.until(lambda ev: any(e["event"] == "progress" for e in ev))
        assert copying, "the copy ended before the destination went away"
        await proxy.close()  # connections dropped, nothing listens on the port any more
        out = await live.finish()
    finally:
        await proxy.close()

    assert out.code == 3, str(out)
    report = out.report
    errors = [f["error"] for f in report["folders"] if f["error"]]
    assert errors, report
    assert all(re.search(r"refused|closed|lost", e) for e in errors), errors
    assert any(str(port) in e for e in errors), errors
    assert report["copied"] < MESSAGES
    # The budget bounds each folder's time without progress (not the sum of all).
    for folder in {r["folder"] for r in out.retries}:
        waits = [r["delay"] for r in out.retries if r["folder"] == folder]
        assert sum(waits) <= budget, out.retries
    partial = accounts.dst_snapshot()
    assert runcli.extra_messages(expected, partial) == []  # nothing doubled
    assert accounts.source_changes() == []
    held = partial.message_count()

    # Back up on the same port: the rerun sends only what is missing.
    async with Proxy(dst.host, dst.port, port=port):
        again = await runcli.run_async(
            *accounts.copy_args(dst_port=port), env=accounts.env, timeout=GUARD
        )
    assert again.code == 0, str(again)
    assert again.report["copied"] == MESSAGES - held, again.report
    assert_exact(accounts, mail_)
