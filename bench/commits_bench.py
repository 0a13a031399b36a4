"""The small-message copy at several commits, side by side, in interleaved rounds.

One folder of ``bulk(N, seed=3, size_dist="small")`` (1-3 KB each, as in
big_folder_bench.py) is written into a source Dovecot once and indexed; then,
round after round, ``python -m mailmover copy`` of each commit (its ``src/``
exported to a temporary tree and put first on ``PYTHONPATH``) copies it into a
fresh user with a fresh state file. Running the commits alternately spreads load
from elsewhere on a shared machine over all of them. Every copy is checked
(sizes, flags and dates of every message) before its figures count.

    .venv/bin/python bench/commits_bench.py --rev 6779a5a --rev main [--count 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import measure
from big_folder_bench import FOLDER, copied
from machine import print_machine
from mailboxes import index, meta_key, metadata, write_folders
from mailmover.devserver import DevServer
from run_all import export
from support.corpus import bulk


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rev", action="append", required=True, help="a commit (repeatable)")
    parser.add_argument("--count", type=int, default=20_000, help="messages in the folder")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best time counts")
    args = parser.parse_args()
    print_machine()
    print(f"peak RSS measured by {measure.METHOD}; MB = 10^6 bytes\n")

    start = time.perf_counter()
    messages = bulk(args.count, seed=args.seed, size_dist="small")
    total = sum(len(m.raw) for m in messages)
    expected = Counter(meta_key(len(m.raw), m.flags, m.internaldate) for m in messages)
    made = time.perf_counter() - start
    print(f"{len(messages):,} messages, {total / 1e6:.1f} MB, made in {made:.1f} s")

    src_pw = secrets.token_urlsafe(12)
    with (
        DevServer({"source": src_pw}) as src,
        DevServer() as dst,
        tempfile.TemporaryDirectory(prefix="mm-commits-bench-") as tmp,
    ):
        trees: dict[str, tuple[str, str]] = {}  # rev → (commit, PYTHONPATH)
        for rev in args.rev:
            tree = Path(tmp) / f"tree{len(trees)}"
            tree.mkdir()
            commit = export(rev, tree)
            trees[rev] = (commit[:12], str(tree / "src"))
            imported = subprocess.run(
                [sys.executable, "-c", "import mailmover; print(mailmover.__file__)"],
                env={**os.environ, "PYTHONPATH": str(tree / "src")},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            if not imported.startswith(str(tree)):
                raise RuntimeError(f"{rev}: the child imports {imported}, not {tree}")
            print(f"{rev}: commit {commit[:12]} (a child imports mailmover from {imported})")
        write_folders(src, "source", {(FOLDER,): messages})
        del messages
        seconds, counts = index(src.port, "source", src_pw)
        print(f"Dovecot indexed the source in {seconds:.1f} s")
        if counts.get(FOLDER) != args.count:
            raise RuntimeError(f"source holds {counts}")

        runs: dict[str, list[measure.Measured]] = {rev: [] for rev in args.rev}
        for round_ in range(1, args.repeat + 1):
            for rev in args.rev:
                user, password = f"dest{round_}x{args.rev.index(rev)}", secrets.token_urlsafe(12)
                dst.add_user(user, password)
                command = [
                    sys.executable, "-m", "mailmover", "copy",
                    f"imap://source@127.0.0.1:{src.port}?tls=none",
                    f"imap://{user}@127.0.0.1:{dst.port}?tls=none",
                    "--state", str(Path(tmp) / f"{user}.db"), "--json",
                ]  # fmt: skip
                env = {
                    "MAILMOVER_SOURCE_PASSWORD": src_pw,
                    "MAILMOVER_DEST_PASSWORD": password,
                    "PYTHONPATH": trees[rev][1],
                }
                result = measure.run(command, env=env, timeout=3600, idle_timeout=300)
                if copied(result) != args.count:
                    raise RuntimeError(f"{rev}: copied {copied(result)} of {args.count}")
                got = {k: c for k, c in metadata(dst.port, user, password).items() if c}
                if got != {FOLDER: expected}:
                    raise RuntimeError(f"{rev}: the destination differs from the source")
                runs[rev].append(result)
                cpu = result.cpu_seconds
                print(
                    f"round {round_} {rev:<10} {trees[rev][0]}  {result.seconds:6.2f} s"
                    f"  CPU {cpu if cpu is None else f'{cpu:.2f}'} s"
                    f"  peak RSS {result.peak_rss / 1e6:.1f} MB  (checked: identical)",
                    flush=True,
                )

    print(
        f"\n{'rev':<10} {'commit':<12} {'best s':>7} {'msgs/s':>7} {'median s':>8}"
        f" {'CPU s (median)':>14} {'peak RSS MB':>11}"
    )
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for rev, results in runs.items():
        best[rev] = min(r.seconds for r in results)
        cpus = [r.cpu_seconds for r in results if r.cpu_seconds is not None]
        cpu[rev] = statistics.median(cpus) if cpus else float("nan")
        print(
            f"{rev:<10} {trees[rev][0]:<12} {best[rev]:>7.2f} {args.count / best[rev]:>7.0f}"
            f" {statistics.median(r.seconds for r in results):>8.2f} {cpu[rev]:>14.2f}"
            f" {max(r.peak_rss for r in results) / 1e6:>11.1f}"
        )
    first = args.rev[0]
    for rev in args.rev[1:]:
        print(
            f"{rev} / {first}: best time {best[rev] / best[first]:.2f},"
            f" median CPU {cpu[rev] / cpu[first]:.2f}"
        )


if __name__ == "__main__":
    main()
