"""The service end to end: batches run by ``mailmover run`` between real Dovecots.

Every run is checked against the sources with imaplib (``support.snapshot``): each
destination holds exactly its source's messages, none twice. Passwords are searched
for in everything the commands printed and in every file of the data directory.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mailmover.devserver import DevServer
from mailmover.service.webhooks import verify
from support import corpus, runcli
from support.oauth_server import OAuthServer
from support.service import Batch, SlowLink, alive, dest_messages, worker_pid
from support.smtp_server import SmtpServer
from support.webhook_server import WebhookServer

GUARD = float(os.environ.get("MAILMOVER_TEST_GUARD", "90"))


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


def wait_for(condition, what: str, guard: float = GUARD):  # type: ignore[no-untyped-def]
    """Poll until ``condition()`` is truthy (returned); a guard against hangs, not a timing."""
    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"still waiting for {what} after {guard:g} s")


def raw_states(batch: Batch) -> list[str]:
    db = sqlite3.connect(batch.data / "state.db")
    try:
        return [r[0] for r in db.execute("SELECT state FROM mailbox ORDER BY id")]
    finally:
        db.close()


def test_a_killed_worker_and_a_killed_runner_leave_no_ghost_and_lose_nothing(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 4, "crash")
    batch.load([mail(10 + n, count=300, total=2_000_000) for n in range(4)])
    link = SlowLink(servers[1], rate=1_000_000)  # about 2 s a mailbox: kills land mid-copy
    batch.create("--connections", "1", dst_port=link.port)
    args = ("run", "--concurrency", "2", "--workers", "2", "--json")
    runner = runcli.start(*args, env=batch.env)
    try:

        def running_worker() -> tuple[int, int] | None:
            """A mailbox whose worker has appended some of its messages, not all."""
            for s, account in zip(batch.status(), batch.accounts, strict=True):
                pid = worker_pid(s.worker)
                if s.state == "running" and pid and 0 < dest_messages(account) < 300:
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
        again = batch.cli("run", "--until-done", "--concurrency", "4", timeout=GUARD)
    finally:
        link.close()
    assert again.code == 0, again
    assert batch.problems() == []
    assert raw_states(batch) == ["completed"] * 4
    assert [s.crashes for s in batch.status()].count(1) >= 1
    assert batch.leaked(again.stdout, again.stderr) == []


def test_pause_stops_appends_and_resume_completes_exactly(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 1, "pausing")
    # Three batches of the engine (250 messages each), about 10 s through the slow link.
    batch.load([mail(30, count=750, total=6_000_000)])
    link = SlowLink(servers[1], rate=600_000)
    batch.create("--connections", "1", dst_port=link.port)
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


@pytest.mark.parametrize("method", ["master", "authzid"])
def test_a_master_user_moves_mail_without_the_users_password(
    dovecot_factory, servers: tuple[DevServer, DevServer], tmp_path: Path, method: str
) -> None:
    """Microsoft 365's CSV names source logins; the destination is reached as its master:
    ``user*mover`` with the master's password, or SASL PLAIN as ``mover`` acting as the user
    (RFC 4616 authorization identity)."""
    # Dovecot's auth process must read it: not under pytest's private (0700) directories.
    masters = Path(tempfile.mkdtemp(prefix="mailmover-masters-"))
    masters.chmod(0o755)
    admin_pw = "Adm1n-" + os.urandom(6).hex()
    (masters / "master-users").write_text(f"mover:{admin_pw}\n")
    (masters / "master-users").chmod(0o644)
    conf = (
        "auth_master_user_separator = *\n"
        "passdb {\n  driver = passwd-file\n  master = yes\n"
        f"  args = scheme=PLAIN {masters}/master-users\n  result_success = continue\n}}\n"
    )
    dst = dovecot_factory(extra_conf=conf)
    batch = Batch(servers[0], dst, tmp_path, 2, "m365")
    batch.load([mail(40), mail(41)])
    lines = ["EmailAddress,UserName,Password"]
    lines += [f"{a.user},{a.user},{a.src_pw}" for a in batch.accounts]
    batch.file.write_text("\n".join(lines) + "\n")
    src, dest = batch.accounts[0].src_url(), batch.accounts[0].dst_url()
    server = lambda url: url.replace(f"{batch.accounts[0].user}@", "")  # noqa: E731
    out = runcli.run(
        "batch", str(batch.file), "--name", "m365",
        "--source-server", server(src), "--dest-server", server(dest),
        "--dest-admin", f"{method}:mover",
        env=batch.env | {"MAILMOVER_DEST_ADMIN_SECRET": admin_pw},
    )  # fmt: skip
    assert out.code == 0, out
    run = batch.cli("run", "--until-done", timeout=GUARD)
    assert run.code == 0, run
    assert batch.problems() == []
    assert batch.states() == ["completed", "completed"]
    logins = (dst.root / "dovecot.log").read_text()
    for account in batch.accounts:
        assert f"Master user logging in as {account.user}" in logins
    outputs = (out.stdout, out.stderr, run.stdout, run.stderr)
    assert batch.leaked(*outputs, more=[admin_pw]) == []
    shutil.rmtree(masters)


def test_check_runs_the_preflight_pass_per_row_and_names_failures(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 2, "checked")
    batch.load([mail(50), mail(51)])
    text = batch.write_csv().read_text()
    wrong = batch.accounts[1].dst_pw
    batch.file.write_text(text.replace(wrong, "not-the-password"))
    out = batch.cli("batch", str(batch.file), "--check")
    assert out.code == 2, out
    assert len(out.stderr_lines) == 2
    assert out.stderr_lines[1].startswith("  line 3: pre-flight failed: ")
    assert "authentication" in out.stderr_lines[1].lower() or "login" in out.stderr_lines[1].lower()
    assert json.loads(batch.cli("jobs", "--json").stdout) == []
    batch.file.write_text(text)
    out = batch.cli("batch", str(batch.file), "--check")
    assert out.code == 0, out
    assert out.stderr_lines == [
        "line 2: 2 folders, 40 messages, 0.4 MB",
        "line 3: 2 folders, 40 messages, 0.4 MB",
    ]
    assert batch.states() == ["queued", "queued"]
    assert batch.accounts[0].dst_snapshot().message_count() == 0
    assert batch.leaked(out.stdout, out.stderr, more=["not-the-password"]) == []


def test_synced_then_delta_then_complete(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    """A scheduled job keeps its mailboxes synced; complete runs a last delta and erases."""
    batch = Batch(*servers, tmp_path, 2, "cutover")
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


def test_webhooks_post_every_state_change_signed_and_retried(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    secret = "hook-" + os.urandom(8).hex()
    batch = Batch(*servers, tmp_path, 2, "hooked")
    batch.load([mail(70), mail(71)])
    batch.create()
    with WebhookServer(fail_first=2) as hooks:
        env = {"MAILMOVER_WEBHOOK_SECRET": secret}
        run = runcli.run(
            "run", "--until-done", "--webhook-url", hooks.url, "--json",
            env=batch.env | env, timeout=GUARD,
        )  # fmt: skip
        assert run.code == 0, run
        assert [p.status for p in hooks.posts[:2]] == [500, 500]
        accepted = hooks.accepted()
    summary = [e for e in run.events if e.get("event") == "webhooks"]
    assert summary == [{"event": "webhooks", "sent": 4, "failed": 0}]
    for post in accepted:
        headers = {k.lower(): v for k, v in post.headers.items()}
        assert verify(
            secret, headers["mailmover-timestamp"], post.body, headers["mailmover-signature"]
        )
        assert not verify(
            secret, headers["mailmover-timestamp"], post.body + b" ", headers["mailmover-signature"]
        )
    events = [json.loads(p.body) for p in accepted]
    by_mailbox: dict[int, list[str]] = {}
    for e in sorted(events, key=lambda e: e["id"]):
        by_mailbox.setdefault(e["mailbox"]["id"], []).append(e["state"])
    assert by_mailbox == {1: ["running", "completed"], 2: ["running", "completed"]}
    assert {e["job"] for e in events} == {"hooked"}
    assert batch.leaked(*(p.body.decode() for p in hooks.posts), more=[secret]) == []


def test_the_owner_gets_an_email_for_a_failure_and_when_the_job_finishes(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 2, "mailed")
    batch.load([mail(80), mail(81)])
    text = batch.write_csv().read_text()
    batch.file.write_text(text.replace(batch.accounts[1].src_pw, "wrong-password"))
    out = batch.cli("batch", str(batch.file), "--name", "mailed", "--owner", "boss@example.com")
    assert out.code == 0, out
    with SmtpServer(tmp_path) as smtp:
        env = {
            "MAILMOVER_SMTP_HOST": "127.0.0.1",
            "MAILMOVER_SMTP_PORT": str(smtp.port),
            "MAILMOVER_SMTP_FROM": "mover@example.com",
            "MAILMOVER_SMTP_CA_FILE": str(smtp.ca_file),
        }
        run = runcli.run("run", "--until-done", "--json", env=batch.env | env, timeout=GUARD)
        received = smtp.received
    assert run.code == 1, run  # one mailbox failed
    assert batch.states() == ["completed", "failed"]
    assert [e for e in run.events if e.get("event") == "emails"] == [
        {"event": "emails", "sent": 2, "failed": 0}
    ]
    assert all(r.tls and r.recipients == ["boss@example.com"] for r in received)
    messages = [email.message_from_bytes(r.content, policy=email.policy.default) for r in received]
    subjects = sorted(str(m["Subject"]) for m in messages)
    assert subjects == [
        f"mailmover: {batch.accounts[1].src_url()} failed in job mailed",
        "mailmover: job mailed finished",
    ]
    bodies = [str(m.get_content()) for m in messages]  # type: ignore[attr-defined]
    assert any("1 completed" in b and "1 failed" in b for b in bodies)
    assert batch.leaked(*bodies, more=["wrong-password"]) == []


def test_the_metrics_endpoint_matches_the_jobs_counters(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    batch = Batch(*servers, tmp_path, 2, "metered")
    batch.load([mail(90), mail(91)])
    batch.create()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = runcli.start("run", "--metrics-port", str(port), env=batch.env)
    try:
        wait_for(lambda: batch.states() == ["completed"] * 2, "the batch to complete")

        def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            return {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }

        metrics = scrape()
    finally:
        runner.send_signal(signal.SIGTERM)
        out = runcli.finish(runner, timeout=GUARD)
    assert out.code == 0, out
    found = batch.status()
    job = (("job", "metered"),)
    assert metrics[("mailmover_mailboxes", (*job, ("state", "completed")))] == 2
    assert (
        metrics[("mailmover_messages_copied_total", job)]
        == sum(s.messages_copied for s in found)
        == 80
    )
    assert metrics[("mailmover_bytes_copied_total", job)] == sum(s.bytes_copied for s in found)
    assert metrics[("mailmover_messages_failed_total", job)] == 0
    assert metrics[("mailmover_passes_total", (("kind", "full"), ("outcome", "completed")))] == 2


def test_rotated_keys_still_open_and_the_report_names_what_was_refused(
    dovecot_factory, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    """Keys rotated between batch and run; a destination that refuses a large message."""
    small_dest = dovecot_factory(max_message_size=200_000)
    batch = Batch(servers[0], small_dest, tmp_path, 1, "refused")
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
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 1, "deadly")
    batch.load([mail(95, count=300, total=2_000_000)])
    link = SlowLink(servers[1], rate=200_000)  # long enough to be killed each time
    batch.create("--connections", "1", dst_port=link.port)
    runner = runcli.start("run", "--json", env=batch.env)
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
    assert [e["state"] for e in died] == ["queued", "queued", "failed"]


def test_a_prestage_pass_moves_the_old_mail_first_then_the_rest(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 1, "staged")
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
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    """Four mailboxes, two connections allowed at the source: counted at a proxy in front."""
    batch = Batch(*servers, tmp_path, 4, "budget")
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


def test_a_google_service_account_reads_every_source_mailbox(
    dovecot_factory, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    """The source takes OAuth2 tokens checked at the local token server (introspection);
    the service account's signed JWT is exchanged for a token per user."""
    with OAuthServer() as oauth:
        conf_dir = Path(tempfile.mkdtemp(prefix="mailmover-oauth2-"))
        conf_dir.chmod(0o755)
        settings = conf_dir / "dovecot-oauth2.conf.ext"
        settings.write_text(
            f"introspection_url = {oauth.introspect_url}\nintrospection_mode = post\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        settings.chmod(0o644)
        src = dovecot_factory(
            extra_conf="auth_mechanisms = plain login xoauth2 oauthbearer\n"
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {settings}\n}}\n"
        )
        batch = Batch(src, servers[1], tmp_path, 2, "google")
        batch.load([mail(120), mail(121)])
        key = tmp_path / "key.json"
        key.write_text(json.dumps(oauth.add_service_account("mover@p.iam.gserviceaccount.com")))
        lines = ["source,source_password,dest,dest_password"]
        lines += [f"{a.src_url()},,{a.dst_url()},{a.dst_pw}" for a in batch.accounts]
        batch.file.write_text("\n".join(lines) + "\n")
        out = batch.cli("batch", str(batch.file), "--source-admin", f"google:{key}")
        assert out.code == 0, out
        run = batch.cli("run", "--until-done", timeout=GUARD)
        assert run.code == 0, run
        assert batch.problems() == []
        users = sorted(g.subject or "" for g in oauth.admin_grants if g.granted)
        assert users == sorted(a.user for a in batch.accounts)
        assert {i.username for i in oauth.introspections if i.active} == set(users)
        shutil.rmtree(conf_dir)
    private_key = json.loads(key.read_text())["private_key"].splitlines()[1]
    assert batch.leaked(run.stdout, run.stderr, more=[private_key]) == []
