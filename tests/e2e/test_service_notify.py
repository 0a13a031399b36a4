"""What the runner tells the world: signed webhooks, emails to owners, Prometheus metrics.

Each against a local receiver: an HTTP server that checks signatures, an aiosmtpd server
that requires STARTTLS, and a scrape of the metrics endpoint.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailmover.devserver import DevServer
from mailmover.service.webhooks import verify
from support import runcli
from support.service import GUARD, Batch, mail, wait_for
from support.smtp_server import SmtpServer
from support.webhook_server import WebhookServer


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def test_webhooks_post_every_state_change_signed_and_retried(
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    secret = "hook-" + os.urandom(8).hex()
    batch = Batch(*servers, tmp_path, 2, "hooked", database=service_database)
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
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    tag = os.urandom(3).hex()
    users = [f"ann-{tag}@example.com", f"bob-{tag}@example.com"]
    batch = Batch(*servers, tmp_path, 2, "mailed", users=users, database=service_database)
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
        run = runcli.run(
            "run", "--until-done", "--notify-users", "--json", env=batch.env | env, timeout=GUARD
        )
        received = smtp.received
    assert run.code == 1, run  # one mailbox failed
    assert batch.states() == ["completed", "failed"]
    assert [e for e in run.events if e.get("event") == "emails"] == [
        {"event": "emails", "sent": 3, "failed": 0}
    ]
    assert all(r.tls for r in received)
    notes = [r for r in received if r.recipients != ["boss@example.com"]]
    assert [n.recipients for n in notes] == [[users[0]]]  # the one whose mailbox completed
    received = [r for r in received if r not in notes]
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
    servers: tuple[DevServer, DevServer], tmp_path: Path, service_database: str | None
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    batch = Batch(*servers, tmp_path, 2, "metered", database=service_database)
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
