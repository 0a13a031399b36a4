"""The service end to end: batches run by ``mailmover run`` between real Dovecots.

Every run is checked against the sources with imaplib (``support.snapshot``): each
destination holds exactly its source's messages, none twice. Passwords are searched
for in everything the commands printed and in every file of the data directory.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli
from support.service import Batch, alive, worker_pid

GUARD = 90.0


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def mail(seed: int, count: int = 40, total: int = 400_000) -> corpus.Corpus:
    msgs = corpus.bulk(count, seed=seed, size_dist="small", total_bytes=total)
    half = count // 2
    return runcli.folders(INBOX=msgs[:half], Archive=msgs[half:])


def test_a_batch_runs_until_done_exactly_and_says_no_password(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 4, "four")
    batch.load([mail(seed) for seed in range(4)])
    batch.create()
    assert batch.states() == ["queued"] * 4
    run = batch.cli("run", "--until-done", "--concurrency", "3", "--json", timeout=GUARD)
    assert run.code == 0, run
    assert batch.problems() == []
    found = batch.status()
    assert [s.state for s in found] == ["completed"] * 4
    assert [s.messages_copied for s in found] == [40] * 4
    assert not any(s.has_credentials for s in found)  # erased once completed
    status = batch.cli("status", "four", "--json")
    report = batch.cli("report", "four", "--format", "json")
    csv = batch.cli("report", "four", "--format", "csv")
    jobs = batch.cli("jobs", "--json")
    assert [j["by_state"] for j in json.loads(jobs.stdout)] == [{"completed": 4}]
    data = json.loads(report.stdout)
    assert [sum(f["copied"] for f in m["folders"]) for m in data["mailboxes"]] == [40] * 4
    assert [[p["outcome"] for p in m["passes"]] for m in data["mailboxes"]] == [["completed"]] * 4
    assert csv.stdout.count("\nmailbox,") == 4
    outputs = [o.stdout + o.stderr for o in (run, status, report, csv, jobs)]
    assert batch.leaked(*outputs) == []


def test_bad_lines_are_named_by_number_and_nothing_is_created(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 2, "bad")
    good = batch.write_csv().read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join([*good, good[1], "imap://x@h,,imap://y@h,pw", "ftp://a@b,pw,imap://c@d,pw"])
        + "\n"
    )
    out = batch.cli("batch", str(bad))
    assert out.code == 2, out
    assert out.stderr_lines[1:] == [
        "  line 4: duplicate pair "
        f"{batch.accounts[0].src_url().replace('imap://', 'imap://', 1)} -> "
        f"{batch.accounts[0].dst_url()} (first on line 2)",
        "  line 5: empty password in source_password",
        "  line 6: bad URL in source: endpoint 'ftp://a@b' must start with imaps:// or imap://; "
        "e.g. imaps://alice%40example.com@imap.example.com:993",
    ]
    assert json.loads(batch.cli("jobs", "--json").stdout) == []
    assert batch.leaked(out.stdout + out.stderr) == []


def test_cancel_erases_credentials(servers: tuple[DevServer, DevServer], tmp_path: Path) -> None:
    batch = Batch(*servers, tmp_path, 2, "gone")
    batch.create()
    db = sqlite3.connect(batch.data / "state.db")
    assert db.execute(
        "SELECT count(*) FROM mailbox WHERE source_secret IS NOT NULL"
    ).fetchone() == (2,)
    out = batch.cli("cancel", "gone", "--mailbox", batch.accounts[0].user)
    assert out.code == 0 and out.stdout.strip() == "cancel: 1 mailbox(es)", out
    assert [(s.state, s.has_credentials) for s in batch.status()] == [
        ("cancelled", False),
        ("queued", True),
    ]
    assert batch.cli("cancel", "gone").stdout.strip() == "cancel: 1 mailbox(es)"
    rows = db.execute("SELECT state, source_secret, dest_secret FROM mailbox").fetchall()
    assert rows == [("cancelled", None, None)] * 2
    assert batch.cli("pause", "nosuchjob").code == 2
