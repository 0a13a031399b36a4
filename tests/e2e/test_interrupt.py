"""Ctrl-C (and SIGTERM) during `mailmover copy`: stop cleanly, exit 130, resume exactly.

The signal is sent once a seeded number of bytes has gone to the destination
through a proxy that adds 30 ms each way, so APPENDs are in flight when it
lands. The first signal must let them complete and be recorded, start nothing
new, print the report and exit 130: the destination then holds exactly what
the report says was copied. A second signal right after the first ends the
process at once. Either way the next run finishes the job with the exact
multiset.
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

SEED = 13
#: seconds a run may take before it counts as hanging (a stop must be prompt)
GUARD = 30.0


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def mail(seed: int) -> Corpus:
    """~40 MB in eight folders of ~500 KB messages: more folders than connections."""
    msgs = corpus.bulk(80, seed=seed, size_dist="small", total_bytes=40_000_000)
    return runcli.folders(**{f"Folder{n}": msgs[n * 10 : n * 10 + 10] for n in range(8)})


async def start_and_signal(
    accounts: runcli.Accounts, proxy: Proxy, signals: list[int], rng: random.Random
) -> runcli.Outcome:
    """Start a copy through ``proxy``; send ``signals`` (10 ms apart) once it is mid-transfer."""
    live = await runcli.Live.start(
        *accounts.copy_args(dst_port=proxy.port), env=accounts.env, guard=GUARD
    )
    base = proxy.bytes_forwarded["to_server"]
    threshold = rng.randint(1_000_000, 4_000_000)
    moving = await live.poll(lambda: proxy.bytes_forwarded["to_server"] - base >= threshold)
    assert moving, "the copy ended before it could be interrupted"
    for n, sig in enumerate(signals):
        if n:
            await asyncio.sleep(0.01)
        assert live.signal(sig), "the copy ended before the signal"
    return await live.finish()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_one_signal_stops_cleanly_then_a_rerun_finishes(servers, tmp_path, sig) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, f"stop{sig}")
    mail_ = mail(SEED + sig)
    accounts.load(mail_)
    expected = snapshot.corpus_snapshot(mail_)
    total = sum(len(f.messages) for f in mail_)
    rng = random.Random(SEED + sig)

    async with Proxy(dst.host, dst.port, delay_ms=30) as proxy:
        out = await start_and_signal(accounts, proxy, [sig], rng)
        assert out.code == 130, str(out)
        report = out.report
        assert report["interrupted"] is True, report
        # New work stopped: folders were left for the next run.
        assert report["copied"] < total, report
        assert any(f["interrupted"] for f in report["folders"]), report
        # In-flight work finished and was reported: the destination holds exactly
        # what the report says this run copied, and nothing twice.
        partial = accounts.dst_snapshot()
        assert runcli.extra_messages(expected, partial) == []
        assert partial.message_count() == report["copied"], report

        again = await runcli.run_async(
            *accounts.copy_args(dst_port=proxy.port), env=accounts.env, timeout=GUARD
        )
    assert again.code == 0, str(again)
    assert again.report["copied"] == total - report["copied"], again.report
    assert accounts.problems(expected) == []


async def test_second_sigint_stops_at_once_and_a_rerun_is_exact(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "abort")
    mail_ = mail(SEED)
    accounts.load(mail_)
    expected = snapshot.corpus_snapshot(mail_)
    rng = random.Random(SEED)

    async with Proxy(dst.host, dst.port, delay_ms=30) as proxy:
        out = await start_and_signal(accounts, proxy, [signal.SIGINT, signal.SIGINT], rng)
        assert out.code == 130, str(out)
        # It did not wait for the clean stop: no report, and it said so.
        assert not any(e["event"] == "report" for e in out.events), out.stdout[-2000:]
        assert "at once" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr, out.stderr

        again = await runcli.run_async(
            *accounts.copy_args(dst_port=proxy.port), env=accounts.env, timeout=GUARD
        )
    assert again.code == 0, str(again)
    assert again.report["failures"] == 0, again.report
    assert runcli.extra_messages(expected, accounts.dst_snapshot()) == []
    assert accounts.problems(expected) == []
