"""A link that keeps dropping, for the whole run: one `mailmover copy`, the exact multiset.

Both servers sit behind one line (two proxies sharing a
:class:`~support.proxy.Network`) that cuts a connection on average every
1.5 MB of traffic, both directions counted together, at seeded random points:
inside FETCH and APPEND literals (most bytes on the wire are literals),
commands and their answers, logins. It never stops cutting. The mailbox holds
about 11 MB in 200 messages, the largest 2.5 MB, so most messages cross at
least one cut on their way. The copy must end in that one invocation with exit
0, every message exactly once, and progress kept at the message.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli, snapshot
from support.proxy import Network, Proxy

SEED = 6
CUT_EVERY = 1_500_000
#: a guard against hangs, not a measurement
GUARD = 240.0


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


async def test_copy_through_a_link_that_keeps_dropping(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "steady")
    msgs = corpus.bulk(200, seed=SEED)
    assert max(len(m.raw) for m in msgs) > 2_000_000
    mail = runcli.folders(INBOX=msgs[:120], Archive=msgs[120:170], Projects=msgs[170:])
    accounts.load(mail)
    network = Network(cut_every=CUT_EVERY, seed=SEED)
    async with (
        Proxy(src.host, src.port, network=network) as src_proxy,
        Proxy(dst.host, dst.port, network=network) as dst_proxy,
    ):
        ports = {"src_port": src_proxy.port, "dst_port": dst_proxy.port}
        out = await runcli.run_async(
            *accounts.copy_args("--timeout", "10", **ports), env=accounts.env, timeout=GUARD
        )
    assert out.code == 0, str(out)
    report = out.report
    assert report["failures"] == 0, report
    expected = snapshot.corpus_snapshot(mail)
    got = accounts.dst_snapshot()
    assert runcli.extra_messages(expected, got) == []  # nothing doubled
    assert runcli.exact_copy_problems(expected, got) == []
    # The line really kept dropping, both ways, and the copy went through it.
    traffic = network.traffic
    assert traffic > 2 * sum(len(m.raw) for m in msgs)
    assert sum(network.cuts.values()) >= traffic / CUT_EVERY / 2, network.cuts
    assert min(network.cuts.values()) >= 2, network.cuts
    assert len(out.retries) >= sum(network.cuts.values()) / 2, out.retries
    # A cut of connections that were logged in is retried at once (engine.retry's quick
    # wait, a few hundredths of a second), not after a backoff: most waits are that short.
    waits = sorted(r["delay"] for r in out.retries)
    assert waits[len(waits) // 2] <= 0.05, waits
    assert "Traceback" not in out.stderr, out.stderr


#: small folders' traffic is mostly commands and answers: cut far more often
SMALL_CUT_EVERY = 150_000


async def test_many_small_folders_through_a_link_that_keeps_dropping(servers, tmp_path) -> None:
    """40 new small folders with 2 connections: one destination connection creates them
    all ahead (engine.creator) while the other copies, and cuts land in the CREATEs,
    the APPENDs and the source's reads alike; one invocation, exact, nothing doubled."""
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "steadysmall")
    msgs = corpus.bulk(120, seed=SEED + 1, size_dist="small")
    mail = runcli.folders(**{f"Client {i:02d}": msgs[3 * i : 3 * i + 3] for i in range(40)})
    accounts.load(mail)
    network = Network(cut_every=SMALL_CUT_EVERY, seed=SEED + 1)
    async with (
        Proxy(src.host, src.port, network=network) as src_proxy,
        Proxy(dst.host, dst.port, network=network) as dst_proxy,
    ):
        ports = {"src_port": src_proxy.port, "dst_port": dst_proxy.port}
        args = accounts.copy_args("--timeout", "10", "--connections", "2", **ports)
        out = await runcli.run_async(*args, env=accounts.env, timeout=GUARD)
    assert out.code == 0, str(out)
    assert out.report["failures"] == 0, out.report
    expected = snapshot.corpus_snapshot(mail)
    got = accounts.dst_snapshot()
    assert runcli.extra_messages(expected, got) == []  # nothing doubled
    assert runcli.exact_copy_problems(expected, got) == []
    assert sum(network.cuts.values()) >= 3, network.cuts
    assert "Traceback" not in out.stderr, out.stderr
