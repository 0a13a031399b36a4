"""The service end to end: batches run by ``mailmover run`` between real Dovecots.

Every run is checked against the sources with imaplib (``support.snapshot``): each
destination holds exactly its source's messages, none twice. Passwords are searched
for in everything the commands printed and in every file of the data directory.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli
from support.service import (
    GUARD,
    Batch,
    SlowLink,
    alive,
    dest_messages,
    mail,
    raw_states,
    wait_for,
    worker_pid,
)


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def test_a_batch_runs_until_done_exactly_and_says_no_password(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    batch = Batch(*servers, tmp_path, 4, "four", database=service_database)
    batch.load([mail(seed) for seed in range(4)])
    batch.create()
    assert batch.states() == ["queued"] * 4
    run = batch.cli("run", "--until-done", "--concurrency", "3", "--json", timeout=GUARD)
    assert run.code == 0, run
    assert batch.problems() == []
    found = batch.status()
    assert [s.state for s in found] == ["completed"] * 4
    done = sorted(e["source"] for e in run.events if e.get("event") == "mailbox")
    assert done == sorted(a.src_url() for a in batch.accounts)
    human = batch.cli("status", "four")
    assert human.code == 0 and human.stdout.count("completed") == 4, human
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
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    batch = Batch(*servers, tmp_path, 2, "bad", database=service_database)
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


def test_cancel_erases_credentials(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    batch = Batch(*servers, tmp_path, 2, "gone", database=service_database)
    batch.create()
    assert batch.rows("SELECT count(*) FROM mailbox WHERE source_secret IS NOT NULL") == [(2,)]
    out = batch.cli("cancel", "gone", "--mailbox", batch.accounts[0].user)
    assert out.code == 0 and out.stdout.strip() == "cancel: 1 mailbox(es)", out
    assert [(s.state, s.has_credentials) for s in batch.status()] == [
        ("cancelled", False),
        ("queued", True),
    ]
    assert batch.cli("cancel", "gone").stdout.strip() == "cancel: 1 mailbox(es)"
    rows = batch.rows("SELECT state, source_secret, dest_secret FROM mailbox")
    assert rows == [("cancelled", None, None)] * 2
    assert batch.cli("pause", "nosuchjob").code == 2


#: the crash test's batch: mailboxes, and messages in each
COUNT, EACH = 20, 48


def test_a_killed_worker_and_a_killed_runner_leave_no_ghost_and_lose_nothing(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    """Twenty mailboxes: a worker SIGKILLed while it copies, then the runner SIGKILLed."""
    batch = Batch(*servers, tmp_path, COUNT, "crash", database=service_database)
    batch.load([mail(10 + n, count=EACH, total=EACH * 2500) for n in range(COUNT)])
    link = SlowLink(servers[1], rate=60_000)  # about 2 s a mailbox: kills land mid-copy
    batch.create("--connections", "1", dst_port=link.port)
    args = ("run", "--concurrency", "4", "--workers", "2", "--json")
    runner = runcli.start(*args, env=batch.env)
    try:

        def running_worker() -> tuple[int, int] | None:
            """A mailbox whose worker has appended some of its messages, not all."""
            for s, account in zip(batch.status(), batch.accounts, strict=True):
                pid = worker_pid(s.worker)
                if s.state == "running" and pid and 0 < dest_messages(account) < EACH:
                    return s.id, pid
            return None

        victim, pid = wait_for(running_worker, "a mailbox copying in a worker")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), "the worker's death")
        # The runner sees its worker die: the mailbox is queued again (or already rerun).
        wait_for(
            lambda: next(s for s in batch.status() if s.id == victim).crashes == 1,
            "the crash to be counted",
        )
        second = wait_for(running_worker, "another mailbox copying")
        runner.kill()
        runner.wait()
        # Its workers see the runner gone: they pause, record, queue their mailboxes, exit.
        wait_for(lambda: not alive(second[1]), "the orphaned worker to stop")
        assert "running" not in raw_states(batch)
    finally:
        if runner.poll() is None:
            runner.kill()
        runner.communicate()
    try:
        again = batch.cli("run", "--until-done", "--concurrency", "8", timeout=GUARD)
    finally:
        link.close()
    assert again.code == 0, again
    assert batch.problems() == []
    assert raw_states(batch) == ["completed"] * COUNT
    assert [s.crashes for s in batch.status()].count(1) >= 1
    assert batch.leaked(again.stdout, again.stderr) == []


def test_pause_stops_appends_and_resume_completes_exactly(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    batch = Batch(*servers, tmp_path, 1, "pausing", database=service_database)
    # About 10 s through the slow link.
    batch.load([mail(30, count=750, total=6_000_000)])
    link = SlowLink(servers[1], rate=600_000)
    batch.create("--connections", "1", dst_port=link.port)
    # Little in flight at once, so that the pause is taken mid-mailbox on any machine.
    batch.tune(batch_messages=25, memory_budget=512 * 1024, window=16)
    runner = runcli.start("run", "--json", env=batch.env)
    try:
        wait_for(lambda: batch.status()[0].messages_copied > 0, "copying to start")
        assert batch.cli("pause", "pausing").stdout.strip() == "pause: 1 mailbox(es)"
        wait_for(lambda: batch.states() == ["paused"], "the pause to be taken")
        at_pause = batch.accounts[0].dst_snapshot().message_count()
        assert 0 < at_pause < 750
        time.sleep(1.5)  # any APPEND still going would land now
        assert batch.accounts[0].dst_snapshot().message_count() == at_pause
        assert batch.cli("resume", "pausing").stdout.strip() == "resume: 1 mailbox(es)"
        wait_for(lambda: batch.states() == ["completed"], "the resumed mailbox to complete")
    finally:
        runner.send_signal(signal.SIGTERM)
        out = runcli.finish(runner, timeout=GUARD)
        link.close()
    assert out.code == 0, out
    assert batch.problems() == []
    events = [e.get("state") for e in out.events if e.get("event") == "mailbox"]
    assert events == ["paused", "completed"]


def test_synced_then_delta_then_complete(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    """A scheduled job keeps its mailboxes synced; complete runs a last delta and erases."""
    batch = Batch(*servers, tmp_path, 2, "cutover", database=service_database)
    first = [mail(60), mail(61)]
    batch.load(first)
    batch.create("--delta-every", "24")
    assert batch.cli("run", "--until-done", timeout=GUARD).code == 0
    assert batch.problems() == []
    found = batch.status()
    assert [(s.state, s.has_credentials) for s in found] == [("synced", True)] * 2
    # New mail arrives before the cutover; a delta brings only it.
    extra = corpus.bulk(5, seed=62, size_dist="small")
    for account in batch.accounts:
        account.load(runcli.folders(INBOX=extra))
    batch.expected = [a.src_snapshot() for a in batch.accounts]
    assert batch.cli("delta", "cutover").stdout.strip() == "delta: 2 mailbox(es) queued"
    assert batch.cli("run", "--until-done", timeout=GUARD).code == 0
    assert batch.problems() == []
    assert [s.messages_copied for s in batch.status()] == [45, 45]
    assert batch.cli("complete", "cutover").stdout.strip() == "complete: 2 mailbox(es) completing"
    assert batch.states() == ["completing"] * 2
    assert batch.cli("run", "--until-done", timeout=GUARD).code == 0
    assert [(s.state, s.has_credentials) for s in batch.status()] == [("completed", False)] * 2
    (one,) = json.loads(
        batch.cli("status", "cutover", "--mailbox", batch.accounts[0].user, "--json").stdout
    )
    states = [e["text"] for e in one["events"] if e["kind"] == "state"]
    assert states == ["queued", "running", "synced", "queued", "running", "synced",
                      "completing", "running", "completed"]  # fmt: skip
    report = json.loads(batch.cli("report", "cutover").stdout)
    kinds = [[(p["kind"], p["outcome"]) for p in m["passes"]] for m in report["mailboxes"]]
    assert kinds == [[("full", "completed"), ("delta", "completed"), ("delta", "completed")]] * 2
    assert batch.problems() == []


def test_rotated_keys_still_open_and_the_report_names_what_was_refused(
    dovecot_factory,
    servers: tuple[DevServer, DevServer],
    tmp_path: Path,
    service_database: str | None,
) -> None:
    """Keys rotated between batch and run; a destination that refuses a large message."""
    small_dest = dovecot_factory(max_message_size=200_000)
    batch = Batch(servers[0], small_dest, tmp_path, 1, "refused", database=service_database)
    big = corpus.bulk(1, seed=99, size_dist="realistic", total_bytes=400_000)
    small = corpus.bulk(10, seed=98, size_dist="small")
    batch.load([runcli.folders(INBOX=[*small[:5], *big, *small[5:]])])
    batch.create()
    key_file = batch.data / "secret.key"
    before = key_file.read_bytes()
    rotated = batch.cli("secrets", "rotate")
    assert rotated.stdout.strip() == "re-encrypted 2 credential(s)", rotated
    assert key_file.read_bytes() != before
    run = batch.cli("run", "--until-done", timeout=GUARD)
    assert run.code == 1, run  # completed with errors
    (box,) = batch.status()
    assert (box.state, box.messages_copied, box.messages_failed) == (
        "completed_with_errors", 10, 1,
    )  # fmt: skip
    report = json.loads(batch.cli("report", "refused").stdout)
    (missing,) = report["mailboxes"][0]["not_copied"]
    assert missing["folder"] == "INBOX" and missing["size"] > 200_000
    assert missing["subject"] == "Bulk message 0 of 1" and missing["reason"]
    out = tmp_path / "report.csv"
    assert batch.cli("report", "refused", "--format", "csv", "--output", str(out)).code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["row"] for r in rows] == ["mailbox", "folder", "pass", "not_copied"]
    assert rows[3]["reason"] == missing["reason"]
    assert rows[1]["copied"] == "10" and rows[1]["failed"] == "1"
    # A pass over only the failed message: refused again, named again, nothing else sent.
    assert batch.cli("retry", "refused").stdout.strip() == "retry: 1 mailbox(es) queued"
    assert batch.cli("run", "--until-done", timeout=GUARD).code == 1
    (box,) = batch.status()
    assert (box.state, box.messages_copied, box.messages_failed) == (
        "completed_with_errors", 10, 1,
    )  # fmt: skip
    passes = json.loads(batch.cli("report", "refused").stdout)["mailboxes"][0]["passes"]
    assert [(p["kind"], p["outcome"], p["copied"]) for p in passes] == [
        ("full", "completed_with_errors", 10),
        ("retry_errors", "completed_with_errors", 0),
    ]


def test_a_mailbox_that_kills_its_worker_three_times_is_failed(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    batch = Batch(*servers, tmp_path, 1, "deadly", database=service_database)
    batch.load([mail(95, count=300, total=2_000_000)])
    link = SlowLink(servers[1], rate=200_000)  # long enough to be killed each time
    batch.create("--connections", "1", dst_port=link.port)
    # A short settle: the link is fast enough that nothing the dead worker sent is left.
    runner = runcli.start("run", "--json", "--settle-after-crash", "1", env=batch.env)
    try:
        for crashes in range(3):

            def held(crashes: int = crashes) -> int | None:
                (s,) = batch.status()
                running = s.state == "running" and s.crashes == crashes
                return worker_pid(s.worker) if running else None

            pid = wait_for(held, f"the mailbox to run after {crashes} crashes")
            os.kill(pid, signal.SIGKILL)
            counted = crashes + 1
            wait_for(lambda n=counted: batch.status()[0].crashes == n, "the crash to count")
        (box,) = batch.status()
        assert (box.state, box.reason, box.worker) == (
            "failed", "its worker process died 3 times while moving it", None,
        )  # fmt: skip
    finally:
        runner.send_signal(signal.SIGTERM)
        out = runcli.finish(runner, timeout=GUARD)
        link.close()
    died = [e for e in out.events if e.get("event") == "worker_died"]
    assert [e["state"] for e in died] == ["waiting", "waiting", "failed"]


def test_a_prestage_pass_moves_the_old_mail_first_then_the_rest(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    batch = Batch(*servers, tmp_path, 1, "staged", database=service_database)
    msgs = corpus.bulk(30, seed=97, size_dist="small")
    batch.load([runcli.folders(INBOX=msgs)])
    cutoff = datetime(2015, 1, 1, tzinfo=UTC)
    old = sum(1 for m in msgs if m.internaldate < cutoff)
    assert 0 < old < 30
    batch.create("--prestage-before", "2015-01-01")
    assert batch.cli("run", "--until-done", timeout=GUARD).code == 0
    assert batch.problems() == []
    passes = json.loads(batch.cli("report", "staged").stdout)["mailboxes"][0]["passes"]
    assert [(p["kind"], p["outcome"], p["copied"]) for p in passes] == [
        ("prestage", "completed", old),
        ("full", "completed", 30 - old),
    ]


def test_the_per_server_budget_holds_as_the_server_counts(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    """Four mailboxes, two connections allowed at the source: counted at a proxy in front."""
    batch = Batch(*servers, tmp_path, 4, "budget", database=service_database)
    batch.load([mail(110 + n, count=60, total=600_000) for n in range(4)])
    source = SlowLink(servers[0], rate=300_000)  # each mailbox takes a while: runs overlap
    lines = ["source,source_password,dest,dest_password"]
    lines += [
        f"{a.src_url(source.port)},{a.src_pw},{a.dst_url()},{a.dst_pw}" for a in batch.accounts
    ]
    batch.file.write_text("\n".join(lines) + "\n")
    assert batch.cli("batch", str(batch.file), "--name", "budget", "--connections", "1").code == 0
    try:
        run = batch.cli(
            "run", "--until-done", "--concurrency", "4", "--max-per-server", "2", "--json",
            timeout=GUARD,
        )  # fmt: skip
    finally:
        source.close()
    assert run.code == 0, run
    assert batch.problems() == []
    assert source.proxy.accepted >= 4
    assert source.proxy.peak_connections == 2, run.stdout
    started = [e for e in run.events if e.get("event") == "started"]
    assert len(started) == 4 and {e["connections"] for e in started} == {1}
