"""A body that is not as long as the server announced is never appended.

The source is Dovecot behind the ``misreads`` emulator: one message's
RFC822.SIZE is announced 7 bytes too large in every answer; two others, a
small one (fetched whole) and one over 1 MiB (fetched in ranges), come short
by 100 bytes the first time they are read. The short ones are read again and
arrive exactly; the one whose size never matches is named as not copied,
with the sizes, and is not in the destination. Everything else arrives
exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli, snapshot
from support.emulator import Emulator

SEED = 31


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


async def test_bodies_of_the_wrong_length_are_read_again_or_named(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "misreads")
    msgs = corpus.bulk(12, seed=SEED, size_dist="small")
    big = corpus.bulk(1, seed=SEED, total_bytes=1_800_000)
    inbox = [*msgs[:5], *big, *msgs[5:]]  # UIDs 1..13, the large one is UID 6
    mail = runcli.folders(INBOX=inbox)
    accounts.load(mail)
    wrong, short = 3, {2, 6}
    async with Emulator(
        src.host, src.port, profile="misreads",
        wrong_size=frozenset({wrong}), short_once=frozenset(short),
    ) as emulator:  # fmt: skip
        out = await runcli.run_async(
            *accounts.copy_args(src_port=emulator.port), env=accounts.env, timeout=120
        )
    assert emulator.errors == []
    assert emulator.accounts[""].shortened == short  # the short reads really happened
    assert out.code == 1, str(out)
    report = out.report
    failures = [f for folder in report["folders"] for f in folder["failures"]]
    assert [f["uid"] for f in failures] == [wrong], failures
    size = len(inbox[wrong - 1].raw)
    assert f"{size:,} bytes of a message it sized {size + 7:,}" in failures[0]["reason"], failures
    assert report["copied"] == len(inbox) - 1, report
    expected = snapshot.corpus_snapshot(runcli.folders(INBOX=inbox[: wrong - 1] + inbox[wrong:]))
    assert runcli.exact_copy_problems(expected, accounts.dst_snapshot()) == []
