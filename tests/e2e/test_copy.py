"""`mailmover copy` and `verify` end to end, as a user runs them, between two real Dovecots.

The source uses LAYOUT=fs (``/`` separator, dots allowed in names), the
destination Maildir++ (``.`` separator): the corpus's awkward folders and
messages must arrive exactly, reruns must write nothing, and later source
changes must arrive exactly.
"""

from __future__ import annotations

import imaplib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import corpus, imapwire, snapshot

SEED = 7


def run_cli(*args: str, env: dict[str, str], check_json: bool = True) -> tuple[int, list[dict]]:
    proc = subprocess.run(
        [sys.executable, "-m", "mailmover", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if check_json and not lines:
        raise AssertionError(f"no JSON output; stderr: {proc.stderr[-2000:]}")
    return proc.returncode, lines


class Pair:
    """A source account on one server and a destination account on another."""

    def __init__(self, src: DevServer, dst: DevServer, tmp: Path, name: str) -> None:
        self.src, self.dst = src, dst
        self.user = name
        self.src_pw, self.dst_pw = f"s-{name}-Pw!", f"d-{name}-Pw!"
        src.add_user(name, self.src_pw)
        dst.add_user(name, self.dst_pw)
        self.state = tmp / f"{name}.db"
        self.env = {
            "MAILMOVER_SOURCE_PASSWORD": self.src_pw,
            "MAILMOVER_DEST_PASSWORD": self.dst_pw,
        }

    @property
    def urls(self) -> list[str]:
        return [
            f"imap://{self.user}@{self.src.host}:{self.src.port}?tls=none",
            f"imap://{self.user}@{self.dst.host}:{self.dst.port}?tls=none",
        ]

    def copy(self, *extra: str) -> tuple[int, dict]:
        code, lines = run_cli("copy", *self.urls, "--json", "--state", str(self.state), *extra,
                              env=self.env)  # fmt: skip
        assert lines[-1]["event"] == "report"
        self.retries = [line for line in lines if line["event"] == "retrying"]
        return code, lines[-1]

    def verify(self) -> tuple[int, dict]:
        code, lines = run_cli("verify", *self.urls, "--json", env=self.env)
        return code, lines[-1]

    def src_snapshot(self) -> snapshot.MailboxSnapshot:
        return snapshot.snapshot(self.src.host, self.src.port, self.user, self.src_pw)

    def dst_snapshot(self) -> snapshot.MailboxSnapshot:
        return snapshot.snapshot(self.dst.host, self.dst.port, self.user, self.dst_pw)

    def src_session(self) -> snapshot.imaplib.IMAP4:
        return imaplib.IMAP4(self.src.host, self.src.port)


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def dotless(snap: snapshot.MailboxSnapshot) -> snapshot.MailboxSnapshot:
    """The snapshot with folder names as the Maildir++ destination must hold them."""
    rename = corpus.DOTLESS_NAMES
    return snapshot.MailboxSnapshot(
        {tuple(rename.get(p, p) for p in path): c for path, c in snap.folders.items()},
        frozenset(tuple(rename.get(p, p) for p in path) for path in snap.subscribed),
    )


@pytest.mark.slow
def test_copy_is_exact_then_incremental(servers, tmp_path) -> None:
    pair = Pair(*servers, tmp_path, "exact")
    mail = corpus.generate(SEED, huge=True)
    snapshot.load(mail, pair.src.host, pair.src.port, pair.user, pair.src_pw)
    source = snapshot.SourceGuard(pair.src.host, pair.src.port, pair.user, pair.src_pw)
    expected = snapshot.corpus_snapshot(corpus.generate(SEED, huge=True, dots=False))

    code, report = pair.copy()
    assert code == 0, report
    assert report["failures"] == 0
    assert pair.retries == []  # nothing failed on a clean link
    assert report["copied"] == sum(len(f.messages) for f in mail)
    got = pair.dst_snapshot()
    assert expected.differences(got) == []
    assert got == expected  # folders, messages, flags, dates and subscriptions
    assert source.changes() == []  # the source is never changed (no \\Seen either)
    dotted = next(f for f in report["folders"] if f["folder"] == "v1.2 release")
    assert dotted["dest"] == "v1_2 release" and dotted["note"]

    # A rerun writes nothing.
    code, again = pair.copy()
    assert code == 0 and again["copied"] == 0
    assert sum(f["flags_updated"] for f in again["folders"]) == 0
    assert pair.dst_snapshot() == expected
    assert source.changes() == []

    # New messages and changed flags on the source arrive, and nothing else.
    conn = pair.src_session()
    conn.login(pair.user, pair.src_pw)
    conn.select('"Projects/2019"')
    _, data = conn.uid("SEARCH", "ALL")
    first_uid = data[0].split()[0]
    conn.uid("STORE", first_uid, "+FLAGS", "(\\Flagged $Changed)")
    new = b"From: x@example.com\r\nSubject: later\r\nMessage-ID: <later@x>\r\n\r\nnew\r\n"
    conn.append('"Projects/2019"', "(\\Seen)", imaplib.Time2Internaldate(
        datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)), new)  # fmt: skip
    conn.logout()
    code, third = pair.copy()
    assert code == 0
    assert third["copied"] == 1
    assert sum(f["flags_updated"] for f in third["folders"]) == 1
    assert pair.dst_snapshot().folders == dotless(pair.src_snapshot()).folders

    code, checked = pair.verify()
    assert code == 0 and checked["identical"], checked


def test_verify_catches_deleted_altered_and_extra(servers, tmp_path) -> None:
    pair = Pair(*servers, tmp_path, "verify")
    mail = corpus.generate(SEED + 1, scale=0.2, huge=False)
    snapshot.load(mail, pair.src.host, pair.src.port, pair.user, pair.src_pw)
    source = snapshot.SourceGuard(pair.src.host, pair.src.port, pair.user, pair.src_pw)
    code, _ = pair.copy()
    assert code == 0
    assert pair.verify()[0] == 0
    assert source.changes() == []

    conn = imaplib.IMAP4(pair.dst.host, pair.dst.port)
    conn.login(pair.user, pair.dst_pw)
    conn.select("INBOX")
    _, data = conn.uid("SEARCH", "ALL")
    uids = data[0].split()
    _, fetched = conn.uid("FETCH", uids[1], "(BODY.PEEK[] INTERNALDATE FLAGS)")
    original = fetched[0][1]
    conn.uid("STORE", uids[0] + b"," + uids[1], "+FLAGS.SILENT", "(\\Deleted)")
    conn.expunge()
    altered = original.replace(b"\r\n\r\n", b"\r\n\r\nX", 1)
    conn.append("INBOX", None, None, altered)
    conn.append("Archive", None, None, b"Subject: extra\r\n\r\nextra\r\n")
    # A flag changed on one message, and one message's internal date moved by a day.
    conn.select("Sent")
    first = conn.uid("SEARCH", "ALL")[1][0].split()[0]
    conn.uid("STORE", first, "+FLAGS.SILENT", "($Changed)")
    conn.select("Attachments")
    first = conn.uid("SEARCH", "ALL")[1][0].split()[0]
    fetched = imapwire.fetched_messages(
        conn.uid("FETCH", first, "(UID FLAGS INTERNALDATE BODY.PEEK[])")[1]
    )[int(first)]
    later = imaplib.Time2Internaldate(fetched.internaldate + timedelta(days=1))
    flags = "(" + " ".join(sorted(fetched.flags - {"\\Recent"})) + ")"
    conn.append("Attachments", flags, later, fetched.body)
    conn.uid("STORE", first, "+FLAGS.SILENT", "(\\Deleted)")
    conn.expunge()
    conn.logout()

    code, report = pair.verify()
    assert code == 1 and not report["identical"]
    kinds = {
        f["folder"]: sorted(d["kind"] for d in f["differences"])
        for f in report["folders"]
        if f["differences"]
    }
    assert kinds == {
        "INBOX": ["extra", "missing", "missing"],
        "Archive": ["extra"],
        "Sent": ["flags"],  # the same message, a flag the source never had
        "Attachments": ["extra", "missing"],
    }
