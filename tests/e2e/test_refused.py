"""A destination that refuses some messages: the copy goes on and names each one it left.

The destination Dovecot refuses messages over 1 MB (``[LIMIT]``). The source
holds a few larger ones among ordinary mail: one beside small messages (its
MULTIAPPEND batch is refused as a whole), one alone, and one over 4 MB (sent
as a synchronising literal, refused before its bytes go). Exit 1; the JSON
report and the CSV and JSON manifests name every message not copied with its
folder, UID, size, date, subject and a reason naming the limit; everything
else arrives exactly, and a rerun names them again without copying anything
twice.
"""

from __future__ import annotations

import csv
import imaplib
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import corpus, imapwire, runcli, snapshot
from support.corpus import CorpusFolder, CorpusMessage
from support.rawmail import base64_body, base64_raw_size, message, rfc5322_date

SEED = 21
LIMIT = 1_000_000
LIMIT_REASON = re.compile(r"limit|too (large|big)|size", re.IGNORECASE)

#: (folder, size, Subject header as sent, subject as a reader sees it)
OVERSIZED = (
    ("INBOX", 1_500_000, "Scanned contract", "Scanned contract"),
    ("Scans", 2_600_000, "=?utf-8?q?R=C3=A9sum=C3=A9_scans?=", "Résumé scans"),
    ("Scans", 5_200_000, "Holiday video", "Holiday video"),
)


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield (
        dovecot_factory(layout="fs"),
        dovecot_factory(layout="maildir++", max_message_size=LIMIT),
    )


def oversized(n: int, size: int, subject: str) -> CorpusMessage:
    when = datetime(2021, 3, 4 + n, 5, 6, 7, tzinfo=UTC)
    headers = [
        ("From", "Scanner <scanner@example.org>"),
        ("To", "Owner <owner@example.com>"),
        ("Subject", subject),
        ("Date", rfc5322_date(when)),
        ("Message-ID", f"<oversized.{n}@example.com>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "application/octet-stream"),
        ("Content-Transfer-Encoding", "base64"),
    ]
    data = random.Random(f"{SEED}-{n}").randbytes(base64_raw_size(size - 400))
    return CorpusMessage(message(headers, base64_body(data)), frozenset({"\\Seen"}), when)


def mail() -> list[CorpusFolder]:
    small = corpus.bulk(24, seed=SEED, size_dist="small", total_bytes=2_400_000)
    folders = runcli.folders(INBOX=small[:12], Scans=small[12:20], Notes=small[20:])
    for n, (folder, size, subject, _) in enumerate(OVERSIZED):
        target = next(f for f in folders if f.path == (folder,))
        target.messages.insert(len(target.messages) // 2, oversized(n, size, subject))
    return folders


def source_facts(accounts: runcli.Accounts) -> set[tuple[str, int, int, datetime]]:
    """(folder, UID, size, internal date) of each source message over the limit."""
    facts = set()
    with snapshot.session(accounts.src.host, accounts.src.port, accounts.user,
                          accounts.src_pw) as conn:  # fmt: skip
        for folder in ("INBOX", "Scans", "Notes"):
            imapwire.check(conn.select(folder, readonly=True), "EXAMINE")
            fetched = conn.uid("FETCH", "1:*", "(UID RFC822.SIZE INTERNALDATE)")
            data = imapwire.check(fetched, "FETCH")
            for item in data:
                assert isinstance(item, bytes)
                uid = int(re.search(rb"UID (\d+)", item).group(1))  # type: ignore[union-attr]
                size = int(re.search(rb"RFC822.SIZE (\d+)", item).group(1))  # type: ignore[union-attr]
                stamp = imaplib.Internaldate2tuple(item)
                assert stamp is not None
                when = datetime(*stamp[:6], tzinfo=UTC)
                if size > LIMIT:
                    facts.add((folder, uid, size, when))
    return facts


def parse_date(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def check_rows(rows: list[dict], facts: set[tuple[str, int, int, datetime]]) -> None:
    """The rows name exactly the oversized messages, each with its subject and a reason."""
    named = {(r["folder"], int(r["uid"]), int(r["size"]), parse_date(r["date"])) for r in rows}
    assert named == facts
    assert len(rows) == len(facts)
    assert sorted(r["subject"] for r in rows) == sorted(s for *_, s in OVERSIZED)
    for row in rows:
        assert LIMIT_REASON.search(row["reason"]), row


def test_refused_messages_are_named_and_the_rest_arrives(servers, tmp_path: Path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "refused")
    mail_ = mail()
    accounts.load(mail_)
    facts = source_facts(accounts)
    assert len(facts) == len(OVERSIZED)
    total = sum(len(f.messages) for f in mail_)

    out = accounts.copy("--manifest", str(tmp_path / "left.csv"))
    assert out.code == 1, str(out)
    report = out.report
    assert report["failures"] == len(OVERSIZED), report
    assert report["copied"] == total - len(OVERSIZED), report
    assert all(f["error"] is None for f in report["folders"]), report
    check_rows(
        [{"folder": f["folder"], **x} for f in report["folders"] for x in f["failures"]], facts
    )
    with (tmp_path / "left.csv").open(newline="", encoding="utf-8") as handle:
        check_rows(list(csv.DictReader(handle)), facts)

    # Everything else arrived exactly, and nothing over the limit.
    small_only = [
        CorpusFolder(f.path, [m for m in f.messages if len(m.raw) <= LIMIT], f.subscribed)
        for f in mail_
    ]
    expected = snapshot.corpus_snapshot(small_only)
    assert accounts.problems(expected) == []

    # A rerun tries them again, names them again, and copies nothing twice.
    again = accounts.copy("--manifest", str(tmp_path / "left.json"))
    assert again.code == 1, str(again)
    assert again.report["copied"] == 0, again.report
    assert again.report["failures"] == len(OVERSIZED), again.report
    check_rows(json.loads((tmp_path / "left.json").read_text(encoding="utf-8")), facts)
    assert accounts.problems(expected) == []
