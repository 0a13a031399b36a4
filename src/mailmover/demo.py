"""``make demo``: two throwaway Dovecot servers, a mailbox moved between them, then verified.

The source uses ``/`` as its separator and holds folders a Maildir++
destination (separator ``.``) cannot name as they are; the demo runs the
real ``mailmover copy`` and ``mailmover verify`` commands against them.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from mailmover.devserver import DevServer
from mailmover.imap.client import IMAPClient, Message

FOLDERS = {
    "INBOX": 120,
    "Sent": 60,
    "Projects/2024": 40,
    "Projects/2024/Q1": 25,
    "Entwürfe": 10,
    "v1.2 release": 15,
    "Empty": 0,
}


def _message(rng: random.Random, folder: str, n: int) -> Message:
    when = datetime(2008, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(500_000_000))
    size = rng.choice([800, 2_000, 6_000, 20_000, 120_000])
    words = ("mail", "move", "folder", "exact", "bytes", "flags", "date", "über", "naïve")
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(size // 70 + 1)]
    body = "\r\n".join(lines)
    raw = (
        f"From: Demo Sender <sender{n}@example.com>\r\n"
        f"To: you@example.com\r\n"
        f"Subject: {folder} message {n} — grüße\r\n"
        f"Message-ID: <{folder.replace('/', '.')}.{n}@demo.example>\r\n"
        f"Date: {when:%a, %d %b %Y %H:%M:%S +0000}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()
    flags = [f for f in ("\\Seen", "\\Flagged", "\\Answered", "$Forwarded") if rng.random() < 0.3]
    return Message(raw, flags, when)


async def _fill(server: DevServer, user: str, password: str) -> int:
    rng = random.Random(2009)
    client = await IMAPClient.connect(server.host, server.port, security="plain")
    await client.login(user, password)
    count = 0
    for folder, n in FOLDERS.items():
        if folder != "INBOX":
            await client.create(folder)
            await client.subscribe(folder)
        messages = [_message(rng, folder, i) for i in range(n)]
        if messages:
            await client.multiappend(folder, messages)
        count += n
    await client.logout()
    return count


def _run(args: list[str], env: dict[str, str]) -> int:
    print(f"\n$ mailmover {' '.join(args)}", flush=True)
    return subprocess.call([sys.executable, "-m", "mailmover", *args], env={**os.environ, **env})


def main() -> int:
    source_pw, dest_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    with (
        DevServer({"alice": source_pw}, layout="fs") as source,
        DevServer({"alice": dest_pw}, layout="maildir++") as dest,
    ):
        count = asyncio.run(_fill(source, "alice", source_pw))
        print(
            f"source: Dovecot on 127.0.0.1:{source.port} (separator '/'), {count} messages; "
            f"destination: Dovecot on 127.0.0.1:{dest.port} (separator '.'), empty"
        )
        src = f"imap://alice@127.0.0.1:{source.port}?tls=none"
        dst = f"imap://alice@127.0.0.1:{dest.port}?tls=none"
        env = {"MAILMOVER_SOURCE_PASSWORD": source_pw, "MAILMOVER_DEST_PASSWORD": dest_pw}
        state = f"{dest.root}/demo-state.db"
        steps = [
            ["copy", src, dst, "--dry-run", "--state", state],
            ["copy", src, dst, "--state", state],
            ["copy", src, dst, "--state", state],  # a rerun: nothing to copy
            ["verify", src, dst, "--state", state],
        ]
        for step in steps:
            code = _run(step, env)
            if code != 0:
                print(f"demo: step failed with exit code {code}", file=sys.stderr)
                return code
    print("\ndemo: every message arrived exactly; the rerun copied nothing.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
