"""A first copy of one folder of 200,000 small messages against what Dovecot ingests.

What the destination Dovecot can store from a ready buffer is the ceiling of any
copy into it: here a child process makes the same messages in memory
(``bulk(N, seed=3, size_dist="small")``, as big_folder_bench.py writes into the
source), logs in, and only then starts the clock for MULTIAPPENDs of 1,000
messages each, four in flight, on one connection (a folder is one connection
pair in a copy). In the same rounds, ``mailmover copy`` of that folder from a
source Dovecot (indexed first) into another fresh user. Both destinations are
on one Dovecot; rounds alternate the two. Printed: the ingest's seconds, the
copy's wall seconds and the seconds of its pass (the report's: without Python's
start-up), and ingest / copy.

    .venv/bin/python bench/ingest_bench.py [--count 200000] [--repeat 2]

Target (issue 8): the copy at least 0.8 of the ingest (ingest seconds / copy seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import measure
from machine import print_machine
from mailboxes import index, meta_key, metadata, write_folders
from mailmover.devserver import DevServer
from mailmover.imap.client import IMAPClient, Message
from support.corpus import bulk

FOLDER = "Archive"
TARGET = 0.8
BATCH = int(os.environ.get("BENCH_BATCH", "250"))
IN_FLIGHT = 4


async def ingest(port: int, user: str, password: str, count: int, seed: int) -> float:
    """MULTIAPPEND the messages from memory; the seconds from the first to the last answer."""
    messages = [
        Message(m.raw, sorted(m.flags), m.internaldate)
        for m in bulk(count, seed=seed, size_dist="small")
    ]
    client = await IMAPClient.connect("127.0.0.1", port, security="plain")
    await client.login(user, password)
    await client.create(FOLDER)
    start = time.perf_counter()
    pending: list[asyncio.Future[object]] = []
    for at in range(0, len(messages), BATCH):
        pending.append(client.multiappend_nowait(FOLDER, messages[at : at + BATCH]))
        if len(pending) >= IN_FLIGHT:
            await pending.pop(0)
    for future in pending:
        await future
    seconds = time.perf_counter() - start
    await client.logout()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2, help="rounds")
    parser.add_argument("--ingest", nargs=2, metavar=("PORT", "USER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest:  # the child: the password comes in the environment
        port, user = int(args.ingest[0]), args.ingest[1]
        password = os.environ["BENCH_PASSWORD"]
        print(asyncio.run(ingest(port, user, password, args.count, args.seed)))
        return
    print_machine()
    messages = bulk(args.count, seed=args.seed, size_dist="small")
    total = sum(len(m.raw) for m in messages)
    expected = sorted(meta_key(len(m.raw), m.flags, m.internaldate) for m in messages)
    print(f"{len(messages):,} messages, {total / 1e6:.1f} MB in one folder")
    src_pw = secrets.token_urlsafe(12)
    ingests: list[float] = []
    copies: list[float] = []
    passes: list[float] = []
    with (
        DevServer({"source": src_pw}) as src,
        DevServer() as dst,
        tempfile.TemporaryDirectory(prefix="mm-ingest-bench-") as tmp,
    ):
        write_folders(src, "source", {(FOLDER,): messages})
        del messages
        index(src.port, "source", src_pw)
        for round_ in range(1, args.repeat + 1):
            user, password = f"ingest{round_}", secrets.token_urlsafe(12)
            dst.add_user(user, password)
            child = [sys.executable, __file__, "--count", str(args.count),
                     "--seed", str(args.seed), "--ingest", str(dst.port), user]  # fmt: skip
            env = {"BENCH_PASSWORD": password, "PYTHONPATH": os.pathsep.join(sys.path)}
            result = measure.run(child, env=env, timeout=3600)
            if result.returncode != 0:
                raise RuntimeError(f"ingest failed: {result.stderr[-2000:]}")
            ingests.append(float(result.stdout.strip().splitlines()[-1]))

            user, password = f"copy{round_}", secrets.token_urlsafe(12)
            dst.add_user(user, password)
            command = [
                sys.executable, "-m", "mailmover", "copy",
                f"imap://source@127.0.0.1:{src.port}?tls=none",
                f"imap://{user}@127.0.0.1:{dst.port}?tls=none",
                "--state", str(Path(tmp) / f"{user}.db"), "--json",
            ]  # fmt: skip
            env = {"MAILMOVER_SOURCE_PASSWORD": src_pw, "MAILMOVER_DEST_PASSWORD": password}
            result = measure.run(command, env=env, timeout=3600, idle_timeout=600)
            report = json.loads(result.stdout.strip().splitlines()[-1])
            if result.returncode != 0 or report.get("copied") != args.count:
                raise RuntimeError(f"copy failed ({result.returncode}): {result.stderr[-2000:]}")
            copies.append(result.seconds)
            passes.append(float(report["seconds"]))
            got = metadata(dst.port, user, password)
            same = sorted(got.get(FOLDER, {}).elements()) == expected
            print(
                f"round {round_}: ingest {ingests[-1]:6.1f} s, copy {copies[-1]:6.1f} s"
                f" (pass {passes[-1]:.1f} s, {result.cpu_seconds or 0:.1f} CPU-s;"
                f" {'identical' if same else 'DIFFERENT'} sizes, flags and dates)",
                flush=True,
            )
            if not same:
                raise SystemExit("the copy was NOT correct")
    ratio = min(ingests) / min(copies)
    print(
        f"\nbest ingest {min(ingests):.1f} s, best copy {min(copies):.1f} s"
        f" (pass {min(passes):.1f} s); medians {statistics.median(ingests):.1f} s,"
        f" {statistics.median(copies):.1f} s"
    )
    print(
        f"ingest / copy = {ratio:.2f}, ingest / pass = {min(ingests) / min(passes):.2f}"
        f" (target >= {TARGET:g}: {'met' if ratio >= TARGET else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
