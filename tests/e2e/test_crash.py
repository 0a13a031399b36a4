"""`kill -9` at random points of `mailmover copy`, several times in a row, then a run to the end.

The kill points are seeded: the first during start-up, the others once a
random number of bytes has gone through the proxies in front of the servers
(APPEND literals on their way to the destination, FETCH literals on their way
from the source), so each kill lands mid-transfer whatever the machine's speed;
each run uses 1, 2 or 4 connections, so kills find batches pending, done, or both.
After the last run the destination must hold each source message exactly
once (exact duplicates in the source stay duplicates), and a rerun copies
nothing.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Iterator

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli, snapshot
from support.corpus import Corpus
from support.proxy import Proxy

SEED = 9
KILLS = 6
GUARD = 60.0


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def mail() -> Corpus:
    """~60 MB in four folders of ~330 KB messages (4 MB batches); one message is there twice."""
    msgs = corpus.bulk(180, seed=SEED, size_dist="small", total_bytes=60_000_000)
    return runcli.folders(
        INBOX=msgs[:45],
        Projects=msgs[45:90],
        Archive=msgs[90:135],
        Clients=[*msgs[135:], msgs[140]],
    )


async def test_repeated_kill_9_then_rerun_is_exact(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "crash")
    mail_ = mail()
    accounts.load(mail_)
    total = sum(len(f.messages) for f in mail_)
    rng = random.Random(SEED)

    async with Proxy(src.host, src.port) as src_proxy, Proxy(dst.host, dst.port) as dst_proxy:
        args = accounts.copy_args(src_port=src_proxy.port, dst_port=dst_proxy.port)
        for kill in range(KILLS):
            # Fewer connections get further into each folder before the kill.
            connections = str(rng.choice([1, 2, 4]))
            live = await runcli.Live.start(
                *args, "--connections", connections, env=accounts.env, guard=GUARD
            )
            if kill == 0:
                await asyncio.sleep(rng.uniform(0.2, 1.0))  # start-up, planning
            else:
                proxy, direction = (
                    (dst_proxy, "to_server") if kill % 2 else (src_proxy, "to_client")
                )
                base = proxy.bytes_forwarded[direction]
                threshold = rng.randint(50_000, 12_000_000)
                await live.poll(lambda p=proxy, d=direction, b=base, t=threshold: (
                    p.bytes_forwarded[d] - b >= t
                ))  # fmt: skip
            killed = live.signal(signal.SIGKILL)
            out = await live.finish()
            # The copy must still have been running: otherwise this was no crash.
            assert killed and out.code == -signal.SIGKILL, f"kill {kill}: {out}"

        final = await runcli.run_async(*args, env=accounts.env, timeout=GUARD)
        again = await runcli.run_async(*args, env=accounts.env, timeout=GUARD)
    assert final.code == 0, str(final)
    report = final.report
    assert report["failures"] == 0, report
    assert sum(f["copied"] + f["already"] for f in report["folders"]) == total, report

    expected = snapshot.corpus_snapshot(mail_)
    assert runcli.extra_messages(expected, accounts.dst_snapshot()) == []  # nothing doubled
    assert accounts.problems(expected) == []  # nothing missing, the source untouched

    assert again.code == 0, str(again)
    assert again.report["copied"] == 0, again.report
    assert accounts.problems(expected) == []
