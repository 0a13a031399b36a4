"""`mailmover check` (pre-flight) and `copy --dry-run` (the plan) as a user runs them."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

from mailmover.devserver import DevServer
from mailmover.imap.client import IMAPClient, Message
from support import snapshot
from support.corpus import CorpusFolder, bulk


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailmover", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )  # fmt: skip


def account(server: DevServer) -> tuple[str, str]:
    name, password = f"c{secrets.token_hex(4)}", secrets.token_urlsafe(10)
    server.add_user(name, password)
    return name, password


async def fill(server: DevServer, user: str, password: str) -> None:
    client = await IMAPClient.connect(server.host, server.port, security="plain")
    await client.login(user, password)
    await client.create("Reports")
    await client.multiappend("Reports", [Message(b"Subject: r\r\n\r\n" + b"x" * 1000)] * 3)
    await client.append("INBOX", Message(b"Subject: i\r\n\r\nhello\r\n"))
    await client.logout()


def test_check_lists_capabilities_and_folders(dovecot) -> None:
    import asyncio

    user, password = account(dovecot)
    asyncio.run(fill(dovecot, user, password))
    url = f"imap://{user}@{dovecot.host}:{dovecot.port}"
    done = cli("check", url, "--ca-file", str(dovecot.ca_file), "--json",
               env={"MAILMOVER_PASSWORD": password})  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "UIDPLUS" in report["capabilities"]
    folders = {f["name"]: (f["messages"], f["bytes"]) for f in report["folders"]}
    assert folders["Reports"][0] == 3 and folders["Reports"][1] > 3000
    assert folders["INBOX"][0] == 1
    assert password not in done.stdout + done.stderr
    wrong = cli("check", url, "--ca-file", str(dovecot.ca_file),
                env={"MAILMOVER_PASSWORD": password + "x"})  # fmt: skip
    assert wrong.returncode == 3 and len(wrong.stderr.strip().splitlines()) == 1


def test_dry_run_writes_nothing(dovecot, tmp_path) -> None:
    import asyncio

    src_user, src_pw = account(dovecot)
    dst_user, dst_pw = account(dovecot)
    asyncio.run(fill(dovecot, src_user, src_pw))
    # The destination already holds mail: a dry run must leave it byte for byte as it is.
    held = [
        CorpusFolder(("INBOX",), bulk(2, seed=5), True),
        CorpusFolder(("Old",), bulk(1, seed=6), False),
    ]
    snapshot.load(held, dovecot.host, dovecot.port, dst_user, dst_pw)
    source = snapshot.SourceGuard(dovecot.host, dovecot.port, src_user, src_pw)
    before = snapshot.snapshot(dovecot.host, dovecot.port, dst_user, dst_pw)
    assert before.message_count() == 3
    env = {"MAILMOVER_SOURCE_PASSWORD": src_pw, "MAILMOVER_DEST_PASSWORD": dst_pw}
    urls = [f"imap://{u}@{dovecot.host}:{dovecot.port}?tls=none" for u in (src_user, dst_user)]
    done = cli("copy", *urls, "--dry-run", "--json", "--state", str(tmp_path / "s.db"), env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    plan = {p["folder"]: p for p in report["plan"]}
    assert plan["Reports"]["dest"] == "Reports" and not plan["Reports"]["exists"]
    assert plan["Reports"]["messages"] == 3
    assert report["copied"] == 0
    after = snapshot.snapshot(dovecot.host, dovecot.port, dst_user, dst_pw)
    assert before.differences(after) == []  # folders, bytes, flags, dates, subscriptions
    assert source.changes() == []
