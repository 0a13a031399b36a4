"""Every option of `mailmover copy` and every form of endpoint URL, end to end.

Each test runs the CLI as a user does between real Dovecots and judges the
result with the imaplib oracle (support.snapshot): the destination must hold
exactly the expected folders, with each message's bytes, flags and internal
date, and the expected subscriptions; the source must be as it was before.
The expectation is written from the corpus with the option's effect applied
by hand (a folder left out, renamed, a flag mapped or dropped, messages outside
a date range left out), never read back from mailmover.
"""

from __future__ import annotations

import itertools
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli, snapshot
from support.corpus import Corpus, CorpusFolder, CorpusMessage

SEED = 31


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def mail(seed: int = SEED) -> Corpus:
    """Five folders, one nested, one unsubscribed; small messages with everyday flags."""
    msgs = corpus.bulk(24, seed=seed, size_dist="small")
    return [
        CorpusFolder(("INBOX",), msgs[:6], True),
        CorpusFolder(("Work",), msgs[6:11], True),
        CorpusFolder(("Work", "2019"), msgs[11:15], True),
        CorpusFolder(("Personal",), msgs[15:20], True),
        CorpusFolder(("Old",), msgs[20:], False),
    ]


def expect(
    mail_: Corpus,
    *,
    keep: Callable[[tuple[str, ...]], bool] = lambda path: True,
    rename: Callable[[tuple[str, ...]], tuple[str, ...]] = lambda path: path,
    message: Callable[[CorpusMessage], bool] = lambda m: True,
    flags: Callable[[frozenset[str]], frozenset[str]] = lambda f: f,
) -> snapshot.MailboxSnapshot:
    """The destination after copying ``mail_`` with an option's effect applied by hand."""
    folders: dict[tuple[str, ...], Counter[snapshot.MessageKey]] = {("INBOX",): Counter()}
    subscribed = set()
    for folder in mail_:
        if not keep(folder.path):
            continue
        path = rename(folder.path)
        folders[path] = Counter(
            snapshot.message_key(m.raw, flags(m.flags), m.internaldate)
            for m in folder.messages
            if message(m)
        )
        if folder.subscribed:
            subscribed.add(path)
    return snapshot.MailboxSnapshot(folders, frozenset(subscribed))


def copied(accounts: runcli.Accounts, *options: str) -> runcli.Outcome:
    out = accounts.copy(*options)
    assert out.code == 0, str(out)
    assert out.report["failures"] == 0, out.report
    return out


def test_include(servers, tmp_path: Path) -> None:
    accounts = runcli.Accounts(*servers, tmp_path, "include")
    mail_ = mail()
    accounts.load(mail_)
    copied(accounts, "--include", "Work", "--include", "Old")
    # "Work" takes its subfolders with it; INBOX and Personal stay behind.
    want = expect(mail_, keep=lambda path: path[0] in ("Work", "Old"))
    assert accounts.problems(want) == []


def test_exclude(servers, tmp_path: Path) -> None:
    accounts = runcli.Accounts(*servers, tmp_path, "exclude")
    mail_ = mail()
    accounts.load(mail_)
    copied(accounts, "--exclude", "Work/2019", "--exclude", "Pers*")
    want = expect(mail_, keep=lambda path: path not in (("Work", "2019"), ("Personal",)))
    assert accounts.problems(want) == []


def test_map(servers, tmp_path: Path) -> None:
    accounts = runcli.Accounts(*servers, tmp_path, "map")
    mail_ = mail()
    accounts.load(mail_)
    out = copied(accounts, "--map", "Personal=Private/Home", "--map", "Old=Attic")
    renamed = {("Personal",): ("Private", "Home"), ("Old",): ("Attic",)}
    want = expect(mail_, rename=lambda path: renamed.get(path, path))
    assert accounts.problems(want) == []
    notes = {f["folder"]: f["note"] for f in out.report["folders"]}
    assert "--map" in notes["Personal"] and "--map" in notes["Old"]


def cutoffs(mail_: Corpus) -> tuple[date, date]:
    """Two days, each in the middle of a gap of at least five days between internal
    dates, so the server's day boundaries (and time zones) cannot move a message
    across; about a third of the messages lie before the first, a third after
    the second."""
    days = sorted(m.internaldate.astimezone(UTC).date() for f in mail_ for m in f.messages)
    gaps = [
        (a + (b - a) / 2, i)
        for i, (a, b) in enumerate(itertools.pairwise(days))
        if b - a >= timedelta(days=5)
    ]
    third = len(days) // 3
    low = min(gaps, key=lambda g: abs(g[1] - third))[0]
    high = min(gaps, key=lambda g: abs(g[1] - 2 * third))[0]
    assert low < high
    return low, high


def test_since_and_before(servers, tmp_path: Path) -> None:
    accounts = runcli.Accounts(*servers, tmp_path, "dates")
    mail_ = mail()
    accounts.load(mail_)
    low, high = cutoffs(mail_)
    copied(accounts, "--since", low.isoformat(), "--before", high.isoformat())

    def between(m: CorpusMessage) -> bool:
        return low <= m.internaldate.astimezone(UTC).date() < high

    want = expect(mail_, message=between)
    assert 0 < sum(c.total() for c in want.folders.values()) < 24
    assert accounts.problems(want) == []

    # A later run with only --since brings the rest after the first cut-off, nothing
    # twice: the first run's limits must not make the folders look done.
    copied(accounts, "--since", low.isoformat())
    later = expect(mail_, message=lambda m: low <= m.internaldate.astimezone(UTC).date())
    assert accounts.problems(later) == []
    # And a run without limits brings everything.
    copied(accounts)
    assert accounts.problems(expect(mail_)) == []


def test_flag_map_and_drop_flags(servers, tmp_path: Path) -> None:
    accounts = runcli.Accounts(*servers, tmp_path, "flags")
    mail_ = mail()
    accounts.load(mail_)
    copied(
        accounts, "--flag-map", "\\Flagged=$Important", "--flag-map", "$Forwarded=Forwarded",
        "--drop-flags", "\\Answered",
    )  # fmt: skip
    table = {"\\Flagged": "$Important", "$Forwarded": "Forwarded"}

    def mapped(flags: frozenset[str]) -> frozenset[str]:
        return frozenset(table.get(f, f) for f in flags if f != "\\Answered")

    want = expect(mail_, flags=mapped)
    every = {f for m in corpus.all_messages(mail_) for f in m.flags}
    assert {"\\Flagged", "$Forwarded", "\\Answered"} <= every  # each rule has work to do
    assert accounts.problems(want) == []


def test_percent_encoded_user_with_an_at_sign(servers, tmp_path: Path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "pct")
    accounts.user = "ann.smith@example.org"
    src.add_user(accounts.user, accounts.src_pw)
    dst.add_user(accounts.user, accounts.dst_pw)
    mail_ = mail(SEED + 1)
    accounts.load(mail_)
    user = quote(accounts.user, safe="")
    assert user == "ann.smith%40example.org"
    urls = [f"imap://{user}@{s.host}:{s.port}?tls=none" for s in (src, dst)]
    out = runcli.run(
        "copy", *urls, "--json", "--state", str(accounts.state), env=accounts.env
    )  # fmt: skip
    assert out.code == 0, str(out)
    assert accounts.problems(expect(mail_)) == []


@pytest.mark.parametrize("side", ["source", "dest"])
def test_namespace_prefix(dovecot_factory, servers, tmp_path: Path, side: str) -> None:
    """A server whose folders all live under ``INBOX.`` (Courier, Cyrus): on the source the
    prefix is taken off, on the destination it is put on; nothing else changes."""
    prefixed = dovecot_factory(layout="maildir++", prefix="INBOX.")
    plain = servers[0]
    src, dst = (prefixed, plain) if side == "source" else (plain, prefixed)
    accounts = runcli.Accounts(src, dst, tmp_path, f"ns{side}")
    mail_ = mail(SEED + 2)
    accounts.load(mail_)
    copied(accounts)
    assert accounts.problems(expect(mail_)) == []
    with snapshot.session(dst.host, dst.port, accounts.user, accounts.dst_pw) as conn:
        names = [e.name for e in snapshot.imapwire.list_entries(conn.list('""', "*")[1])]
    if side == "dest":
        assert sorted(names) == sorted(["INBOX", "INBOX.Work", "INBOX.Work.2019",
                                        "INBOX.Personal", "INBOX.Old"])  # fmt: skip


def test_presets(dovecot_factory, tmp_path: Path) -> None:
    """--source-preset and --dest-preset with servers shaped as the presets say."""
    courier = dovecot_factory(layout="maildir++", prefix="INBOX.")
    dovecot = dovecot_factory(layout="fs")
    accounts = runcli.Accounts(courier, dovecot, tmp_path, "presets")
    mail_ = mail(SEED + 3)
    accounts.load(mail_)
    copied(accounts, "--source-preset", "courier", "--dest-preset", "dovecot")
    assert accounts.problems(expect(mail_)) == []
    # And back, into the Courier-shaped server, with the presets the other way round.
    back = runcli.Accounts(dovecot, courier, tmp_path, "presetsback")
    back.load(mail_)
    copied(back, "--source-preset", "dovecot", "--dest-preset", "courier")
    assert back.problems(expect(mail_)) == []


def test_non_ascii_user_name_and_password(dovecot_factory, tmp_path: Path) -> None:
    """UTF-8 credentials (LOGIN with literals, or SASL PLAIN): a user called Zoë-Müller
    whose passwords hold umlauts and CJK characters."""
    conf = "auth_username_chars =\n"
    src = dovecot_factory(layout="fs", extra_conf=conf)
    dst = dovecot_factory(layout="maildir++", extra_conf=conf)
    accounts = runcli.Accounts(src, dst, tmp_path, "utf8")
    accounts.user = "zoë-müller"
    accounts.src_pw, accounts.dst_pw = "pässwörd-源-1", "Grüße-密码-2"
    accounts.env = {
        "MAILMOVER_SOURCE_PASSWORD": accounts.src_pw,
        "MAILMOVER_DEST_PASSWORD": accounts.dst_pw,
    }
    src.add_user(accounts.user, accounts.src_pw)
    dst.add_user(accounts.user, accounts.dst_pw)
    mail_ = mail(SEED + 4)
    accounts.load(mail_)
    # The source URL percent-encodes the name (as the README shows), the destination's
    # holds it as typed; the destination logs in with AUTHENTICATE PLAIN.
    src_url = f"imap://{quote(accounts.user, safe='')}@{src.host}:{src.port}?tls=none"
    dst_url = f"imap://{accounts.user}@{dst.host}:{dst.port}?tls=none&auth=plain"
    out = runcli.run(
        "copy", src_url, dst_url, "--json", "--state", str(accounts.state), env=accounts.env
    )  # fmt: skip
    assert out.code == 0, str(out)
    assert accounts.problems(expect(mail_)) == []


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_ipv6_endpoints(dovecot_factory, tmp_path: Path) -> None:
    both = "listen = 127.0.0.1, ::1\n"
    src = dovecot_factory(layout="fs", extra_conf=both)
    dst = dovecot_factory(layout="maildir++", extra_conf=both)
    accounts = runcli.Accounts(src, dst, tmp_path, "ipv6")
    mail_ = mail(SEED + 5)
    accounts.load(mail_)
    urls = [f"imap://{accounts.user}@[::1]:{s.port}?tls=none" for s in (src, dst)]
    out = runcli.run("copy", *urls, "--json", "--state", str(accounts.state), env=accounts.env)
    assert out.code == 0, str(out)
    assert accounts.problems(expect(mail_)) == []
    # The connections really were IPv6 ones (Dovecot logs the client address).
    assert "rip=::1" in dst.log_path.read_text(errors="replace")
    # The oracle reads over IPv6 too.
    got = snapshot.snapshot("::1", dst.port, accounts.user, accounts.dst_pw)
    assert expect(mail_).differences(got) == []


def test_since_cutoffs_are_between_messages() -> None:
    low, high = cutoffs(mail())
    when = [m.internaldate.astimezone(UTC) for m in corpus.all_messages(mail())]
    for day in (low, high):
        edge = datetime(day.year, day.month, day.day, tzinfo=UTC)
        assert all(abs(w - edge) > timedelta(days=2) for w in when)
