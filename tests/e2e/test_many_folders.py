"""Many small folders: several in flight on one connection pair, copied exactly.

One worker (``connections=1``) copies 60 small folders, among them one whose
name the destination refuses (Dovecot, Maildir++ with ``separator = /``,
refuses ``.``) in the middle of the queue, a parent and its child (created by
the naming ladder before the copy), and one holding a message over the
destination's size limit (handed back to the ordinary copy, which names it).
The small folders go the short way (engine.smallfolders): their CREATE, their
EXAMINE, UID SEARCH and FETCH, and their APPEND follow each other without
waiting, so through a link of 50 ms round trips the source connection takes
far fewer turns than there are folders (one at a time takes one a folder at
least). Everything else arrives exactly; the refused name is renamed and
reported. A rerun with nothing new opens no folder; after one new message in
one folder, the next run opens that folder alone. When the connection creating
the folders ahead is cut, the worker creates them, still several at once.
"""

from __future__ import annotations

import imaplib
import secrets
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailmover.config import Endpoint
from mailmover.engine.events import Event, FolderFinished, FolderStarted, Retrying
from mailmover.engine.report import PassReport
from support import corpus, runcli, snapshot
from support.corpus import CorpusFolder, CorpusMessage
from support.passes import copy_pass
from support.proxy import Direction, Proxy
from support.rawmail import message, rfc5322_date
from support.turns import TurnCounter

SEED = 41
CLIENTS = 60
LIMIT = 6000
REFUSED = ("Client 1.5",)
RENAMED = ("Client 1_5",)
WORDS = "Character not allowed in mailbox name: '.'"
#: one way, each side: answers come late enough that what the client sends without
#: waiting for them shows as fewer turns (on loopback the server answers first)
DELAY_MS = 25


def big_message() -> CorpusMessage:
    when = datetime(2022, 5, 6, 7, 8, 9, tzinfo=UTC)
    headers = [
        ("From", "Scanner <scanner@example.org>"),
        ("To", "Owner <owner@example.com>"),
        ("Subject", "Too big for the destination"),
        ("Date", rfc5322_date(when)),
        ("Message-ID", "<too.big@example.com>"),
    ]
    raw = message(headers, b"x" * 70 + b"\r\n" * 1 + (b"y" * 70 + b"\r\n") * 120)
    return CorpusMessage(raw, frozenset({"\\Seen"}), when)


def mail() -> tuple[list[CorpusFolder], CorpusMessage]:
    messages = corpus.bulk(3 * CLIENTS + 8, seed=SEED, size_dist="small")
    assert all(len(m.raw) < LIMIT for m in messages)
    folders = [
        CorpusFolder((f"Client {i:02d}",), messages[3 * i : 3 * i + 3], True)
        for i in range(CLIENTS)
    ]
    rest = messages[3 * CLIENTS :]
    folders.insert(CLIENTS // 2, CorpusFolder(REFUSED, rest[0:3], True))
    folders.append(CorpusFolder(("Projects",), rest[3:5], True))
    folders.append(CorpusFolder(("Projects", "2024"), rest[5:7], True))
    big = big_message()
    folders.insert(5, CorpusFolder(("Client big",), [rest[7], big], True))
    return folders, big


class Link:
    """Both sides through latency proxies, kept for the whole test (the job database
    knows a mailbox pair by its addresses), with fresh counters for each pass."""

    def __init__(
        self, accounts: runcli.Accounts, db: str, src: Proxy, dst: Proxy, connections: int = 1
    ) -> None:
        self.accounts, self.db, self.src, self.dst = accounts, db, src, dst
        self.connections = connections

    async def copy(self, events: list[Event]) -> tuple[PassReport, TurnCounter, TurnCounter]:
        a = self.accounts
        counters = TurnCounter(), TurnCounter()
        self.src.tap, self.dst.tap = counters
        src_end = Endpoint(a.user, "127.0.0.1", self.src.port, "plain")
        dst_end = Endpoint(a.user, "127.0.0.1", self.dst.port, "plain")
        report = await copy_pass(
            src_end.with_secret(a.src_pw), dst_end.with_secret(a.dst_pw), self.db, events,
            connections=self.connections,
        )  # fmt: skip
        return report, *counters


@pytest.mark.parametrize("connections", [1, 2, 4])
async def test_many_small_folders_go_together_and_arrive_exactly(
    dovecot_factory, tmp_path: Path, connections: int
) -> None:
    """With one connection pair the worker creates its folders itself; with two or four,
    the last pair's destination connection creates them all ahead (engine.creator) and
    the other workers append once each CREATE is answered."""
    src = dovecot_factory(layout="fs")
    dst = dovecot_factory(layout="maildir++", separator="/", max_message_size=LIMIT)
    accounts = runcli.Accounts(src, dst, tmp_path, "many")
    folders, big = mail()
    accounts.load(folders)
    db = str(tmp_path / f"many-{secrets.token_hex(3)}.db")

    async with (
        Proxy(src.host, src.port, delay_ms=DELAY_MS) as src_proxy,
        Proxy(dst.host, dst.port, delay_ms=DELAY_MS) as dst_proxy,
    ):
        link = Link(accounts, db, src_proxy, dst_proxy, connections)
        await check_copies(link, folders, big)


async def check_copies(link: Link, folders: list[CorpusFolder], big: CorpusMessage) -> None:
    accounts, total = link.accounts, sum(len(f.messages) for f in folders)
    events: list[Event] = []
    done, source, dest = await link.copy(events)
    report = done.to_dict()
    assert report["copied"] == total - 1 and report["failures"] == 1, report
    by_source = {f["folder"]: f for f in report["folders"]}
    renamed = by_source["/".join(REFUSED)]
    assert renamed["dest"] == "/".join(RENAMED) and renamed["error"] is None, renamed
    assert "renamed" in renamed["note"] and WORDS in renamed["note"], renamed
    rows = [r for r in done.manifest() if r["uid"] is None]
    assert [r["folder"] for r in rows] == ["/".join(REFUSED)], rows
    (left,) = by_source["Client big"]["failures"]
    assert left["size"] == len(big.raw) and "Too big" in left["subject"], left
    assert all(f["error"] is None for f in by_source.values()), report
    finished = [e.result.source_name for e in events if isinstance(e, FolderFinished)]
    assert sorted(finished) == sorted(by_source), finished  # each folder finished once
    # Progress totals add up what each start names: every message once ("Client big",
    # refused by MULTIAPPEND and handed back to the ordinary copy, included).
    started: Counter[str] = Counter()
    for e in events:
        if isinstance(e, FolderStarted):
            started[e.folder] += e.to_copy
    assert started == {"/".join(f.path): len(f.messages) for f in folders}, started

    # The oracle: every folder exact (the refused one under its new name), the big
    # message alone missing, the source untouched.
    expected = snapshot.corpus_snapshot(folders)
    expected.folders[("Client big",)] -= snapshot.messages_counter([big])
    expected.folders[RENAMED] = expected.folders.pop(REFUSED)
    expected = snapshot.MailboxSnapshot(
        expected.folders,
        frozenset(RENAMED if p == REFUSED else p for p in expected.subscribed),
    )
    assert accounts.problems(expected) == []

    # Folders went several at once: the commands of several folders in flight together
    # on each side (one folder at a time: its EXAMINE, UID SEARCH and FETCH at most),
    # and fewer turns than folders (one at a time takes one a folder at least).
    assert source.most > 3 * 2 and dest.most > 2 * 2, (source.most, dest.most)
    assert source.total < len(folders), source.turns
    # With a creator, a worker's APPEND waits for a CREATE answered on another connection:
    # about one turn a folder on the destination, still half what one at a time takes.
    most_dest = len(folders) if link.connections == 1 else 2 * len(folders)
    assert dest.total < most_dest, dest.turns
    # Every new folder created once, on one connection when a creator has them; a name
    # refused is never subscribed (RFC 3501 6.3.6 lets a server keep such a name).
    names = [f.path[0] for f in folders if f.path[0].startswith("Client") and f.path != REFUSED]
    creates = [f'CREATE "{name}"' for name in names]
    assert [dest.lines(c) for c in creates] == [1] * len(creates)
    assert dest.connections_sending(creates) == 1, dest.turns
    assert dest.lines(f'SUBSCRIBE "{REFUSED[0]}"') == 0
    assert dest.lines(f'SUBSCRIBE "{RENAMED[0]}"') == 1

    # A rerun with nothing new opens no folder and keeps the names.
    again, source, dest = await link.copy([])
    report = again.to_dict()
    assert report["copied"] == 0 and report["failures"] == 1, report
    dests = {f["folder"]: f["dest"] for f in report["folders"]}
    assert dests == {name: f["dest"] for name, f in by_source.items()}
    assert source.commands("EXAMINE") == 1  # "Client big": a failure to retry
    assert dest.commands("SELECT") <= 1 and dest.commands("CREATE") == 0

    # One new message in one folder: that folder alone is opened.
    new = corpus.bulk(1, seed=SEED + 1, size_dist="small")[0]
    conn = imaplib.IMAP4(accounts.src.host, accounts.src.port)
    conn.login(accounts.user, accounts.src_pw)
    conn.append('"Client 07"', "(\\Seen)", imaplib.Time2Internaldate(new.internaldate), new.raw)
    conn.logout()
    third, source, _ = await link.copy([])
    assert third.copied == 1, third
    assert source.commands('EXAMINE "Client 07"') == 1
    assert source.commands("EXAMINE") == 2  # and "Client big" again
    expected.folders[("Client 07",)] += snapshot.messages_counter([new])
    assert runcli.exact_copy_problems(expected, accounts.dst_snapshot()) == []


async def test_a_late_named_small_folder_fills_a_folder_already_there_once(
    dovecot_factory, tmp_path: Path
) -> None:
    """The refused name's folder is named late, onto a destination folder that already
    holds its messages (copied before, no journal): nothing is appended twice."""
    src = dovecot_factory(layout="fs")
    dst = dovecot_factory(layout="maildir++", separator="/")
    accounts = runcli.Accounts(src, dst, tmp_path, "late")
    messages = corpus.bulk(12, seed=SEED + 2, size_dist="small")
    folders = [
        CorpusFolder((f"Client {i:02d}",), messages[3 * i : 3 * i + 3], True) for i in range(3)
    ]
    folders.insert(1, CorpusFolder(REFUSED, messages[9:12], True))
    accounts.load(folders)
    there = [CorpusFolder(RENAMED, messages[9:12], True)]
    snapshot.load(there, dst.host, dst.port, accounts.user, accounts.dst_pw)

    a = accounts
    done = await copy_pass(
        Endpoint(a.user, src.host, src.port, "plain").with_secret(a.src_pw),
        Endpoint(a.user, dst.host, dst.port, "plain").with_secret(a.dst_pw),
        str(tmp_path / "late.db"), connections=1,
    )  # fmt: skip
    report = done.to_dict()
    by_source = {f["folder"]: f for f in report["folders"]}
    assert by_source["/".join(REFUSED)]["dest"] == "/".join(RENAMED), report
    assert report["failures"] == 0 and report["copied"] == 9, report
    expected = snapshot.corpus_snapshot(folders)
    expected.folders[RENAMED] = expected.folders.pop(REFUSED)
    expected = snapshot.MailboxSnapshot(
        expected.folders,
        frozenset(RENAMED if p == REFUSED else p for p in expected.subscribed),
    )
    assert runcli.extra_messages(expected, accounts.dst_snapshot()) == []
    assert accounts.problems(expected) == []


async def test_a_creator_whose_link_drops_leaves_the_folders_to_the_workers(
    dovecot_factory, tmp_path: Path
) -> None:
    """The connection creating every new folder ahead (engine.creator) is cut once its
    CREATEs are on their way: the worker creates the folders whose CREATE it lost (at
    once for those not yet under way), and the folders still go several at once, none
    handed back to wait and retry one at a time, every one exact."""
    src = dovecot_factory(layout="fs")
    dst = dovecot_factory(layout="maildir++")
    accounts = runcli.Accounts(src, dst, tmp_path, "creatorcut")
    messages = corpus.bulk(2 * CLIENTS, seed=SEED + 2, size_dist="small")
    folders = [
        CorpusFolder((f"Client {i:02d}",), messages[2 * i : 2 * i + 2], True)
        for i in range(CLIENTS)
    ]
    accounts.load(folders)
    db = str(tmp_path / f"creatorcut-{secrets.token_hex(3)}.db")
    cut: list[int] = []
    async with (
        Proxy(src.host, src.port, delay_ms=DELAY_MS) as src_proxy,
        Proxy(dst.host, dst.port, delay_ms=DELAY_MS) as dst_proxy,
    ):
        source, dest = TurnCounter(), TurnCounter()

        def tap(connection: int, direction: Direction, data: bytes) -> bytes:
            data = dest(connection, direction, data)
            if direction == "to_server" and data.count(b" CREATE ") >= 10 and not cut:
                cut.append(connection)  # the creator: its CREATEs sent in one go
                dst_proxy.close_connections(connection)
            return data

        src_end = Endpoint(accounts.user, "127.0.0.1", src_proxy.port, "plain")
        dst_end = Endpoint(accounts.user, "127.0.0.1", dst_proxy.port, "plain")
        src_proxy.tap, dst_proxy.tap = source, tap
        events: list[Event] = []
        report = await copy_pass(
            src_end.with_secret(accounts.src_pw), dst_end.with_secret(accounts.dst_pw), db,
            events, connections=2,
        )  # fmt: skip
    assert cut, "no connection sent the CREATEs ahead"
    assert report.failures == 0 and report.copied == len(messages), report.to_dict()
    assert (
        runcli.exact_copy_problems(snapshot.corpus_snapshot(folders), accounts.dst_snapshot()) == []
    )
    # No folder was handed back to wait and retry the ordinary way, one at a time.
    assert [e for e in events if isinstance(e, Retrying)] == []
    assert source.total < len(folders), source.turns
    creates = sorted(bytes(sent).count(b" CREATE ") for sent in dest.sent_on.values())
    assert creates[-1] == CLIENTS and creates[-2] > 0, creates  # the worker made the rest
