"""CPU-seconds of ``mailmover copy`` per message, and where they go: one folder, small messages.

The source folder (``bulk(N, seed=3, size_dist="small")``, as ingest_bench.py) is
written into a Dovecot and indexed; each round copies it into a fresh user of a
second Dovecot with ``mailmover copy`` as a child process and prints its wall
seconds, its CPU-seconds and the microseconds of CPU per message. With
``--py-spy FILE`` the copy runs under ``py-spy record`` (a dev tool: ``pip
install py-spy``) and the functions with the most samples, self and total, are
printed; FILE keeps the collapsed stacks.

    .venv/bin/python bench/copy_profile.py [--count 50000] [--repeat 2] [--py-spy FILE]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import measure
from mailboxes import index, meta_key, metadata, write_folders
from mailmover.devserver import DevServer
from support.corpus import bulk

FOLDER = "Archive"


def top(stacks: Path, shown: int) -> None:
    """Print the functions with the most samples in py-spy's collapsed ``stacks``."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [f.split(" (", 1)[0] + " " + f.rsplit("/", 1)[-1] for f in stack.split(";")]
        # Waiting, which py-spy counts as running: the event loop's select, and the job
        # database's writer thread waiting for work (its leaf is the worker loop itself).
        if "selectors.py" in frames[-1] or frames[-1].startswith("_worker thread.py"):
            continue
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    for title, counter in (("self", own), ("total", total)):
        print(f"\n{title} (of {samples} samples, waiting left out)")
        for frame, n in counter.most_common(shown):
            print(f"{100 * n / samples:5.1f} %  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1, help="rounds")
    parser.add_argument("--py-spy", type=Path, help="profile the copy; collapsed stacks here")
    parser.add_argument("--top", type=int, default=40, help="functions shown")
    parser.add_argument("--stderr", action="store_true", help="show the copy's error output")
    args = parser.parse_args()
    messages = bulk(args.count, seed=args.seed, size_dist="small")
    expected = sorted(meta_key(len(m.raw), m.flags, m.internaldate) for m in messages)
    total = sum(len(m.raw) for m in messages)
    print(f"{len(messages):,} messages, {total / 1e6:.1f} MB in one folder", flush=True)
    src_pw = secrets.token_urlsafe(12)
    with (
        DevServer({"source": src_pw}) as src,
        DevServer() as dst,
        tempfile.TemporaryDirectory(prefix="mm-copy-profile-") as tmp,
    ):
        write_folders(src, "source", {(FOLDER,): messages})
        del messages
        index(src.port, "source", src_pw)
        for round_ in range(1, args.repeat + 1):
            user, password = f"copy{round_}", secrets.token_urlsafe(12)
            dst.add_user(user, password)
            command = [
                sys.executable, "-m", "mailmover", "copy",
                f"imap://source@127.0.0.1:{src.port}?tls=none",
                f"imap://{user}@127.0.0.1:{dst.port}?tls=none",
                "--state", str(Path(tmp) / f"{user}.db"), "--json",
            ]  # fmt: skip
            if args.py_spy:
                spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                command = [spy, "record", "--format", "raw", "--rate", "200",
                           "--output", str(args.py_spy), "--", *command]  # fmt: skip
            env = {
                **os.environ,
                "MAILMOVER_SOURCE_PASSWORD": src_pw,
                "MAILMOVER_DEST_PASSWORD": password,
            }
            result = measure.run(command, env=env, timeout=3600, idle_timeout=600)
            lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
            report = json.loads(lines[-1]) if lines else {}
            if result.returncode != 0 or report.get("copied") != args.count:
                raise RuntimeError(f"copy failed ({result.returncode}): {result.stderr[-2000:]}")
            if args.stderr:
                print(result.stderr.rstrip(), flush=True)
            same = sorted(metadata(dst.port, user, password).get(FOLDER, {}).elements())
            cpu = result.cpu_seconds or 0.0
            print(
                f"round {round_}: copy {result.seconds:.1f} s (pass {report['seconds']:.1f} s),"
                f" {cpu:.1f} CPU-s, {1e6 * cpu / args.count:.0f} µs a message;"
                f" {'identical' if same == expected else 'DIFFERENT'} sizes, flags and dates",
                flush=True,
            )
            if same != expected:
                raise SystemExit("the copy was NOT correct")
    if args.py_spy:
        top(args.py_spy, args.top)


if __name__ == "__main__":
    main()
