"""A first copy of one folder of 200,000 small messages against what Dovecot ingests.

What the destination Dovecot can store from a ready buffer is the ceiling of any
copy into it: here a child process makes the same messages in memory
(``bulk(N, seed=3, size_dist="small")``, as big_folder_bench.py writes into the
source), logs in, and only then starts the clock for MULTIAPPENDs of 250
messages each (``BENCH_BATCH``), four in flight, on one connection (a folder is one connection
pair in a copy). In the same rounds, ``mailmover copy`` of that folder from a
source Dovecot (indexed first) into another fresh user. Both destinations are
on one Dovecot; rounds alternate the two. Printed: the ingest's seconds, the
copy's wall seconds and the seconds of its pass (the report's: without Python's
start-up), and ingest / copy. With ``--baseline SRC`` each round also copies with
the mailmover of another source tree (``git archive REV src | tar -x -C DIR``,
then ``DIR/src``), before or after the copy in turn: two versions side by side.

    .venv/bin/python bench/ingest_bench.py [--count 200000] [--repeat 2] [--baseline SRC]

Target (issue 8): the copy at least 0.8 of the ingest (ingest seconds / copy seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from mailboxes import MetaKey, index, meta_key, metadata, write_folders
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
    # 200,000 messages held at once: the collector would scan them all, again and again,
    # and the measure would be the client's, not Dovecot's.
    gc.freeze()
    client = await IMAPClient.connect("127.0.0.1", port, security="plain")
    await client.login(user, password)
    await client.create(FOLDER)
    # Selected, as the copy has it: an APPEND to a folder not selected makes Dovecot open
    # (and sync) it for each command, which grows with the folder.
    await client.select(FOLDER)
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


def copy_once(
    src: DevServer,
    dst: DevServer,
    src_pw: str,
    user: str,
    tmp: Path,
    count: int,
    expected: list[MetaKey],
    tree: str | None,
) -> tuple[float, float, float, float, float]:
    """``mailmover copy`` of the folder into a fresh user: wall s, pass s, its CPU-s, and
    the CPU-s of the source's and of the destination's Dovecot meanwhile."""
    password = secrets.token_urlsafe(12)
    dst.add_user(user, password)
    command = [
        sys.executable, "-m", "mailmover", "copy",
        f"imap://source@127.0.0.1:{src.port}?tls=none",
        f"imap://{user}@127.0.0.1:{dst.port}?tls=none",
        "--state", str(tmp / f"{user}.db"), "--json",
    ]  # fmt: skip
    env = {"MAILMOVER_SOURCE_PASSWORD": src_pw, "MAILMOVER_DEST_PASSWORD": password}
    if tree is not None:  # that tree's mailmover first on the path
        env["PYTHONPATH"] = str(Path(tree).resolve())
    servers = [measure.server_group(s.root / "dovecot.conf") for s in (src, dst)]
    before = [measure.group_cpu_seconds(g) for g in servers]
    result = measure.run(command, env=env, timeout=3600, idle_timeout=600)
    used = [measure.group_cpu_seconds(g) - b for g, b in zip(servers, before, strict=True)]
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    if result.returncode != 0 or report.get("copied") != count:
        raise RuntimeError(f"copy failed ({result.returncode}): {result.stderr[-2000:]}")
    got = metadata(dst.port, user, password)
    if sorted(got.get(FOLDER, {}).elements()) != expected:
        raise SystemExit(f"the copy into {user} was NOT correct")
    return result.seconds, float(report["seconds"]), result.cpu_seconds or 0.0, *used


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2, help="rounds")
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also copy with mailmover from this source tree (a src/ directory), in each round",
    )
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
    bases: list[float] = []
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
            group = measure.server_group(dst.root / "dovecot.conf")
            before = measure.group_cpu_seconds(group)
            result = measure.run(child, env=env, timeout=3600)
            print(
                f"round {round_}: ingest client {result.cpu_seconds or 0:.1f} CPU-s (making the"
                f" messages included), Dovecot {measure.group_cpu_seconds(group) - before:.1f}"
                " CPU-s",
                flush=True,
            )
            if result.returncode != 0:
                raise RuntimeError(f"ingest failed: {result.stderr[-2000:]}")
            ingests.append(float(result.stdout.strip().splitlines()[-1]))

            order = [("copy", None, copies)]
            if args.baseline:  # side by side, in turn first and second
                order.insert(round_ % 2, ("baseline", args.baseline, bases))
            for label, tree, runs in order:
                seconds, pass_s, cpu, src_cpu, dst_cpu = copy_once(
                    src, dst, src_pw, f"{label}{round_}", Path(tmp), args.count, expected, tree
                )
                runs.append(seconds)
                if label == "copy":
                    passes.append(pass_s)
                print(
                    f"round {round_}: ingest {ingests[-1]:6.1f} s, {label} {seconds:6.1f} s"
                    f" (pass {pass_s:.1f} s, {cpu:.1f} CPU-s; Dovecots: source {src_cpu:.1f},"
                    f" destination {dst_cpu:.1f} CPU-s; identical sizes, flags and dates)",
                    flush=True,
                )
    ratio = min(ingests) / min(copies)
    if bases:
        print(
            f"\nbaseline ({args.baseline}): best copy {min(bases):.1f} s,"
            f" ingest / copy = {min(ingests) / min(bases):.2f}"
        )
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
