"""One folder of 200,000 small messages: ``mailmover copy``, then a rerun with nothing new.

The messages (``bulk(N, seed=3, size_dist="small")``, 1 to 3 KB each) are
written straight into the source Dovecot's Maildir, and Dovecot indexes them
(EXAMINE + FETCH 1:* FLAGS, timed on its own) before mailmover runs, so that
indexing is not counted against it. Both runs use the same state file and are
measured as child processes (wall time, peak RSS: see measure.py). The copy is
then read back with imaplib and compared with what was written.

    .venv/bin/python bench/big_folder_bench.py [--count 200000] [--verify full|meta|none]

Targets (issue 4): the rerun takes seconds (read here as at most 10 s) and the
peak RSS of both runs stays under 200 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import measure
from machine import print_machine
from mailboxes import index, meta_key, metadata, read_account, snapshot, write_folders
from mailmover.devserver import DevServer
from support.corpus import bulk

FOLDER = "Archive"
RSS_TARGET = 200e6
RERUN_TARGET = 10.0


def copy_command(src_port: int, dst_port: int, state: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mailmover",
        "copy",
        f"imap://source@127.0.0.1:{src_port}?tls=none",
        f"imap://dest@127.0.0.1:{dst_port}?tls=none",
        "--state",
        str(state),
        "--json",
    ]


def copied(result: measure.Measured) -> int:
    if result.returncode != 0:
        raise RuntimeError(f"mailmover exited {result.returncode}: {result.stderr[-2000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report.get("failures"):
        raise RuntimeError(f"mailmover reported {report['failures']} failures")
    return int(report["copied"])


def progress(stdout: str) -> str:
    """How far a run got, from its JSON progress lines."""
    messages = size = 0
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event.get("event") == "progress":
                messages += event.get("messages", 0)
                size += event.get("bytes", 0)
    return f"progress reported: {messages:,} messages, {size / 2**20:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="messages in the folder")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        help="seconds without a line of output after which a run counts as hung",
    )
    parser.add_argument(
        "--verify",
        choices=("full", "meta", "none"),
        default="full",
        help="compare every message's bytes (full) or only sizes, flags and dates (meta)",
    )
    args = parser.parse_args()
    print_machine()
    print(f"peak RSS measured by {measure.METHOD}; MB = 10^6 bytes\n")

    start = time.perf_counter()
    messages = bulk(args.count, seed=args.seed, size_dist="small")
    total = sum(len(m.raw) for m in messages)
    expected = snapshot.messages_counter(messages)
    expected_meta = Counter(meta_key(len(m.raw), m.flags, m.internaldate) for m in messages)
    print(
        f"{len(messages):,} messages, {total / 1e6:.1f} MB, made in"
        f" {time.perf_counter() - start:.1f} s"
    )
    src_pw, dst_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    with (
        DevServer({"source": src_pw}) as src,
        DevServer({"dest": dst_pw}) as dst,
        tempfile.TemporaryDirectory(prefix="mm-big-bench-") as tmp,
    ):
        start = time.perf_counter()
        write_folders(src, "source", {(FOLDER,): messages})
        del messages
        print(f"written into the source Maildir in {time.perf_counter() - start:.1f} s")
        seconds, counts = index(src.port, "source", src_pw)
        print(f"Dovecot indexed the source (EXAMINE + FETCH 1:* FLAGS) in {seconds:.1f} s")
        if counts.get(FOLDER) != args.count:
            raise RuntimeError(f"source holds {counts}")

        state = Path(tmp) / "state.db"
        command = copy_command(src.port, dst.port, state)
        env = {"MAILMOVER_SOURCE_PASSWORD": src_pw, "MAILMOVER_DEST_PASSWORD": dst_pw}
        heads = f"{'seconds':>8} {'msgs/s':>8} {'MB/s':>6} {'peak RSS MB':>11} {'CPU s':>6}"
        print(f"\n{'run':<28} {heads}")
        results = {}
        for label, want in (("first copy", args.count), ("rerun, nothing new", 0)):
            try:
                result = measure.run(
                    command, env=env, timeout=4 * 3600, idle_timeout=args.idle_timeout
                )
            except measure.Stalled as exc:
                print(f"{label}: HUNG ({exc}); {progress(exc.stdout)}")
                raise SystemExit(1) from None
            got = copied(result)
            if got != want:
                raise RuntimeError(f"{label}: copied {got}, expected {want}")
            results[label] = result
            rate = f"{args.count / result.seconds:>8.0f} {total / 1e6 / result.seconds:>6.1f}"
            cpu = f"{result.cpu_seconds:6.1f}" if result.cpu_seconds is not None else "     -"
            print(
                f"{label:<28} {result.seconds:>8.1f} {rate if want else ' ' * 15}"
                f" {result.peak_rss / 1e6:>11.1f} {cpu}",
                flush=True,
            )

        start = time.perf_counter()
        if args.verify == "full":
            got_snap, _ = read_account(dst.port, "dest", dst_pw, chunk=2000)
            folders = {p: c for p, c in got_snap.folders.items() if c or p != ("INBOX",)}
            differences = snapshot.MailboxSnapshot({(FOLDER,): expected}).differences(
                snapshot.MailboxSnapshot(folders)
            )
        elif args.verify == "meta":
            got_meta = {k: c for k, c in metadata(dst.port, "dest", dst_pw).items() if c}
            differences = [] if got_meta == {FOLDER: expected_meta} else ["metadata differ"]
        else:
            differences = []
        verdict = "not verified" if args.verify == "none" else "identical"
        if differences:
            verdict = f"DIFFERENT: {differences[:3]}"
        print(f"\ndestination {verdict} ({args.verify} check, {time.perf_counter() - start:.1f} s)")

    first, rerun = results["first copy"], results["rerun, nothing new"]
    peak = max(first.peak_rss, rerun.peak_rss)
    print(
        f"rerun: {rerun.seconds:.1f} s (target <= {RERUN_TARGET:g} s:"
        f" {'met' if rerun.seconds <= RERUN_TARGET else 'NOT met'})"
    )
    print(
        f"peak RSS: first {first.peak_rss / 1e6:.1f} MB, rerun {rerun.peak_rss / 1e6:.1f} MB"
        f" (target < 200 MB: {'met' if peak < RSS_TARGET else 'NOT met'})"
    )
    if differences:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
