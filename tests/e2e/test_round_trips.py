"""Fast over latency, shown without a clock: the client's turns do not grow with the mail.

A proxy in front of each server counts the client's turns on every connection:
the times it had to hear back before it could go on (see ``Turns``). A client that waits
for each message's answer takes a turn per message; one that pipelines (many
commands in flight, MULTIAPPEND, LITERAL+) takes about as many for 1,000
messages as for 100. The same count with a window of one command in flight
(``PassSettings(window=1)``) shows the detector fires when pipelining is off.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.config import Endpoint
from mailmover.devserver_conf import mail_ids
from support import corpus, maildir, runcli, snapshot
from support.passes import copy_pass
from support.proxy import Proxy
from support.turns import TurnCounter

#: turns allowed for the 900 more messages of the larger folder
SLACK = 6

pytestmark = pytest.mark.slow


SIZES = (100, 1000)


@pytest.fixture(scope="module")
def source(dovecot_factory) -> Iterator[runcli.Accounts]:
    """A source account holding a folder of each size (loaded once for the module)."""
    accounts = runcli.Accounts(
        dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++"), Path("/nonexistent"),
        "rt",
    )  # fmt: skip
    # Files written straight into the Maildir (1,100 APPENDs would take seconds).
    root = accounts.src.maildir(accounts.user)
    for n in SIZES:
        messages = corpus.bulk(n, seed=n, size_dist="small")
        maildir.write_maildir(
            messages, maildir.folder_dir(root, (f"F{n}",), layout="fs"), mail_ids()
        )
    accounts.guard = snapshot.SourceGuard(
        accounts.src.host, accounts.src.port, accounts.user, accounts.src_pw
    )
    assert [accounts.guard.before.folders[(f"F{n}",)].total() for n in SIZES] == list(SIZES)
    yield accounts


async def copy_counting_turns(
    source: runcli.Accounts, tmp_path: Path, messages: int, window: int, hide: tuple[str, ...]
) -> int:
    """Copy the folder of ``messages`` into a new account through counting proxies;
    the client's turns."""
    src, dst = source.src, source.dst
    dst_pw = secrets.token_urlsafe(9)
    dst_user = dst.add_user(f"rt{secrets.token_hex(4)}", dst_pw).name
    counters = {"source": TurnCounter(hide), "dest": TurnCounter(hide)}
    async with Proxy(src.host, src.port) as src_proxy, Proxy(dst.host, dst.port) as dst_proxy:
        src_proxy.tap, dst_proxy.tap = counters["source"], counters["dest"]
        src_end = Endpoint(source.user, "127.0.0.1", src_proxy.port, "plain")
        dst_end = Endpoint(dst_user, "127.0.0.1", dst_proxy.port, "plain")
        src_end, dst_end = src_end.with_secret(source.src_pw), dst_end.with_secret(dst_pw)
        db = f"{tmp_path}/rt-{secrets.token_hex(3)}.db"
        report = await copy_pass(
            src_end, dst_end, db, include=(f"F{messages}",), connections=1, window=window
        )
    assert report.complete and report.copied == messages, report
    # The oracle: that folder, exactly, and the source untouched.
    want = source.guard.before
    want = snapshot.MailboxSnapshot(
        {p: c for p, c in want.folders.items() if p in {("INBOX",), (f"F{messages}",)}},
        want.subscribed & {(f"F{messages}",)},
    )
    assert want.differences(snapshot.snapshot(dst.host, dst.port, dst_user, dst_pw)) == []
    assert source.source_changes() == []
    turns = {side: c.turns for side, c in counters.items()}
    total = sum(c.total for c in counters.values())
    print(f"{messages} messages, window {window}, hiding {hide}: {total} turns {turns}")
    return total


#: servers as they are, and without MULTIAPPEND (one APPEND per message)
SERVERS = pytest.mark.parametrize("hide", [(), ("MULTIAPPEND",)], ids=["dovecot", "no-multiappend"])


@SERVERS
async def test_turns_do_not_grow_with_the_messages(source, tmp_path, hide) -> None:
    small = await copy_counting_turns(source, tmp_path, 100, 256, hide)
    large = await copy_counting_turns(source, tmp_path, 1000, 256, hide)
    assert large < small + SLACK, (small, large)


async def test_the_count_catches_a_client_that_does_not_pipeline(source, tmp_path) -> None:
    """With one command in flight, each APPEND waits for its answer: the same count
    grows with the messages and the assertion above would fail."""
    hide = ("MULTIAPPEND",)
    small = await copy_counting_turns(source, tmp_path, 100, 1, hide)
    large = await copy_counting_turns(source, tmp_path, 1000, 1, hide)
    assert not large < small + SLACK, (small, large)
    assert large - small >= 900  # a turn for each more message, at least
