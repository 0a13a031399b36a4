"""Large messages relayed: their APPEND starts while their ranges still arrive.

The source sits behind a slow line (a bandwidth cap on the proxy), so that a
message of a few MB takes a second or more to arrive and its APPEND is under
way meanwhile; the protocol trace (``--trace``) shows which literals were
relayed. A relayed message arrives exactly. A source that sends fewer bytes
than it announced (the ``misreads`` emulator, its RFC822.SIZE 7 bytes too
large), or a message deleted by another session while it is relayed, leaves
nothing of it in the destination: the destination connection is dropped
before the literal ends, the one is named as not copied, the other counted as
deleted on the source, and every other message arrives exactly.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.config import Endpoint
from mailmover.devserver import DevServer
from mailmover.engine.events import Event, MessageFailed
from mailmover.engine.options import TransferOptions
from support import corpus, passes, runcli, snapshot
from support.emulator import Emulator
from support.proxy import Direction, Network, Proxy

SEED = 41
#: bytes per second each way on the source's line: a 3 MB message takes about 2 s
RATE = 1_500_000
#: the size of the ranges large messages are read in
RANGE = TransferOptions().range_size


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def mailbox() -> tuple[list[corpus.CorpusMessage], list[corpus.CorpusMessage]]:
    """Small messages, and two large ones (about 3 MB and 1.6 MB) placed among them."""
    small = corpus.bulk(20, seed=SEED, size_dist="small")
    large = [
        *corpus.bulk(1, seed=SEED + 1, total_bytes=3_000_000),
        *corpus.bulk(1, seed=SEED + 2, total_bytes=1_600_000),
    ]
    return small, large


def relayed_sizes(trace: Path) -> list[int]:
    """The sizes of the literals the trace shows relayed to the destination, in order."""
    return [int(n) for n in re.findall(r"…(\d+) bytes relayed", trace.read_text())]


def relays_begun(trace: Path) -> list[int]:
    """The sizes of the relayed literals whose bytes began to be written, in order."""
    return [int(n) for n in re.findall(r"…relaying (\d+) bytes", trace.read_text())]


async def test_a_relayed_large_message_arrives_exact(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "relay")
    small, large = mailbox()
    inbox = [*small[:5], large[0], *small[5:12], large[1], *small[12:]]
    mail = runcli.folders(INBOX=inbox)
    accounts.load(mail)
    trace = tmp_path / "trace.txt"
    async with Proxy(src.host, src.port, network=Network(rate=RATE)) as slow:
        out = await runcli.run_async(
            *accounts.copy_args("--trace", str(trace), src_port=slow.port),
            env=accounts.env, timeout=120,
        )  # fmt: skip
    assert out.code == 0, str(out)
    assert out.report["copied"] == len(inbox), out.report
    assert sorted(relayed_sizes(trace)) == sorted(len(m.raw) for m in large)
    assert accounts.problems(snapshot.corpus_snapshot(mail)) == []


async def test_a_source_that_sends_less_than_it_announced(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "relayshort")
    small, large = mailbox()
    inbox = [*small[:4], large[0], *small[4:]]  # the large one is UID 5
    mail = runcli.folders(INBOX=inbox)
    accounts.load(mail)
    wrong = 5
    size = len(inbox[wrong - 1].raw)
    trace = tmp_path / "trace.txt"
    async with (
        Emulator(src.host, src.port, profile="misreads", wrong_size=frozenset({wrong})) as emu,
        Proxy("127.0.0.1", emu.port, network=Network(rate=RATE)) as slow,
    ):
        out = await runcli.run_async(
            *accounts.copy_args("--trace", str(trace), src_port=slow.port),
            env=accounts.env, timeout=120,
        )  # fmt: skip
    assert emu.errors == []
    assert out.code == 1, str(out)
    # The relay began (its literal announced at the size the source gave) and never ended.
    assert size + 7 in relays_begun(trace)
    assert size + 7 not in relayed_sizes(trace)
    failures = [f for folder in out.report["folders"] for f in folder["failures"]]
    assert [f["uid"] for f in failures] == [wrong], failures
    assert f"{size:,} bytes of a message it sized {size + 7:,}" in failures[0]["reason"]
    rest = runcli.folders(INBOX=inbox[: wrong - 1] + inbox[wrong:])
    assert runcli.exact_copy_problems(snapshot.corpus_snapshot(rest), accounts.dst_snapshot()) == []


async def test_a_message_deleted_on_the_source_while_it_is_relayed(servers, tmp_path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "relaygone")
    small, large = mailbox()
    inbox = [*small[:3], large[0], *small[3:]]  # the large one is UID 4
    mail = runcli.folders(INBOX=inbox)
    accounts.load(mail)
    doomed = 4
    head = b"{%d" % len(inbox[doomed - 1].raw)
    expunged: list[asyncio.Future[None]] = []

    def expunge() -> None:
        with snapshot.session(src.host, src.port, accounts.user, accounts.src_pw) as conn:
            conn.select("INBOX")
            conn.uid("STORE", str(doomed), "+FLAGS.SILENT", "(\\Deleted)")
            conn.expunge()

    def watch(connection: int, direction: Direction, data: bytes) -> bytes:
        if direction == "to_server" and head in data and not expunged:  # its APPEND began
            expunged.append(asyncio.get_running_loop().run_in_executor(None, expunge))
        return data

    trace = tmp_path / "trace.txt"
    async with (
        Proxy(src.host, src.port, network=Network(rate=RATE)) as slow,
        Proxy(dst.host, dst.port) as watched,
    ):
        watched.tap = watch
        out = await runcli.run_async(
            *accounts.copy_args("--trace", str(trace), src_port=slow.port, dst_port=watched.port),
            env=accounts.env, timeout=120,
        )  # fmt: skip
    assert expunged, "the large message's APPEND never began"
    await expunged[0]
    assert out.code == 0, str(out)
    report = out.report
    assert report["failures"] == 0, report
    (folder,) = [f for f in report["folders"] if f["folder"] == "INBOX"]
    assert folder["vanished"] == 1, folder
    assert report["copied"] == len(inbox) - 1, report
    assert len(inbox[doomed - 1].raw) in relays_begun(trace)
    assert len(inbox[doomed - 1].raw) not in relayed_sizes(trace)
    rest = runcli.folders(INBOX=inbox[: doomed - 1] + inbox[doomed:])
    assert runcli.exact_copy_problems(snapshot.corpus_snapshot(rest), accounts.dst_snapshot()) == []
    # A rerun finds nothing left to copy.
    again = await runcli.run_async(*accounts.copy_args(), env=accounts.env, timeout=120)
    assert again.code == 0 and again.report["copied"] == 0, str(again)


async def test_relayed_messages_through_a_slow_link_that_keeps_dropping(servers, tmp_path) -> None:
    """Both servers behind one slow line that cuts a connection on average every 1.5 MB,
    for the whole run: cuts fall inside relayed literals on either side (a source range
    cut: the relay breaks and its destination link is dropped; a destination cut: the
    literal is lost). One invocation, exit 0, the exact multiset, nothing doubled."""
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "relaycuts")
    msgs = corpus.bulk(40, seed=SEED + 3, size_dist="small")
    large = [
        *corpus.bulk(1, seed=SEED + 4, total_bytes=2_500_000),
        *corpus.bulk(1, seed=SEED + 5, total_bytes=1_800_000),
        *corpus.bulk(1, seed=SEED + 6, total_bytes=1_300_000),
        *corpus.bulk(1, seed=SEED + 7, total_bytes=2_100_000),
    ]
    mail = runcli.folders(
        INBOX=[*msgs[:10], large[0], *msgs[10:20], large[1]],
        Archive=[*msgs[20:30], large[2], large[3], *msgs[30:]],
    )
    accounts.load(mail)
    trace = tmp_path / "trace.txt"
    network = Network(rate=6_000_000, cut_every=1_500_000, seed=SEED)
    async with (
        Proxy(src.host, src.port, network=network) as src_proxy,
        Proxy(dst.host, dst.port, network=network) as dst_proxy,
    ):
        ports = {"src_port": src_proxy.port, "dst_port": dst_proxy.port}
        out = await runcli.run_async(
            *accounts.copy_args("--timeout", "10", "--trace", str(trace), **ports),
            env=accounts.env, timeout=240,
        )  # fmt: skip
    assert out.code == 0, str(out)
    assert out.report["failures"] == 0, out.report
    expected = snapshot.corpus_snapshot(mail)
    got = accounts.dst_snapshot()
    assert runcli.extra_messages(expected, got) == []  # nothing doubled
    assert runcli.exact_copy_problems(expected, got) == []
    assert min(network.cuts.values()) >= 2, network.cuts
    # Relays began, and cuts fell inside them (a relay cut is sent whole once read).
    sizes = {len(m.raw) for m in large}
    begun = [n for n in relays_begun(trace) if n in sizes]
    assert len(begun) > len(relayed_sizes(trace)), "no relayed literal was cut"


async def test_a_relay_whose_source_read_is_cut_before_its_append_began(servers, tmp_path) -> None:
    """The destination is slow, so the large message is handed on to be relayed while the
    small ones' APPENDs ahead of it still wait for their answers; the source link drops in
    its second range, before its APPEND began. The message is not named as failed, the
    next attempt reads on from the range already read, and the copy ends exact."""
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "relaywait")
    small = corpus.bulk(12, seed=SEED + 8, size_dist="small")
    (large,) = corpus.bulk(1, seed=SEED + 9, total_bytes=2_000_000)
    inbox = [*small, large]
    mail = runcli.folders(INBOX=inbox)
    accounts.load(mail)
    uid, head = len(inbox), b"{%d" % len(large.raw)
    second_range = b"BODY[]<%d>" % RANGE
    fetches = rb"UID FETCH %d \(UID BODY\.PEEK\[\]<(\d+)\." % uid
    line = Network(rate=5_000)  # the destination's: its small APPENDs answered in seconds
    seen: list[str] = []  # "cut armed", "append began", in the order they happened
    asked: list[int] = []  # the offsets the source was asked for the large message, in order
    tail = {"to_client": b"", "to_server": b""}

    def watch_src(connection: int, direction: Direction, data: bytes) -> bytes:
        text = tail[direction] + data
        tail[direction] = data[-64:]
        if direction == "to_server":
            asked.extend(int(n) for n in re.findall(fetches, text))
        elif second_range in text and "cut armed" not in seen:
            seen.append("cut armed")
            src_proxy.cut_after(100_000)  # inside the second range
            asyncio.get_running_loop().call_later(0.5, setattr, line, "rate", None)
        return data

    def watch_dst(connection: int, direction: Direction, data: bytes) -> bytes:
        if direction == "to_server" and head in data:
            seen.append("append began")
        return data

    events: list[Event] = []
    async with (
        Proxy(src.host, src.port) as src_proxy,
        Proxy(dst.host, dst.port, network=line) as dst_proxy,
    ):
        src_proxy.tap, dst_proxy.tap = watch_src, watch_dst
        source = Endpoint(accounts.user, "127.0.0.1", src_proxy.port, "plain")
        dest = Endpoint(accounts.user, "127.0.0.1", dst_proxy.port, "plain")
        report = await passes.copy_pass(
            source.with_secret(accounts.src_pw), dest.with_secret(accounts.dst_pw),
            str(tmp_path / "state.db"), events, connections=1, batch_messages=1,
        )  # fmt: skip
    assert seen[:2] == ["cut armed", "append began"], seen
    assert src_proxy.accepted >= 2, "the source link was never cut"
    assert [e for e in events if isinstance(e, MessageFailed)] == []
    assert report.failures == 0 and report.copied == len(inbox), report
    # Read on from where the cut left it: the first range is not asked for again.
    assert asked[0] == 0 and 0 not in asked[1:] and len(asked) >= 2, asked
    assert runcli.exact_copy_problems(snapshot.corpus_snapshot(mail), accounts.dst_snapshot()) == []
