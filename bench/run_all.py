"""Run every benchmark in sequence and print their figures (``make bench``).

    .venv/bin/python bench/run_all.py                  # the working tree, full sizes
    .venv/bin/python bench/run_all.py --rev HEAD       # a commit, exported to a temporary tree
    .venv/bin/python bench/run_all.py --quick          # small sizes: checks the scripts run
    .venv/bin/python bench/run_all.py --only copy big  # some of them

Each benchmark runs as its own process, one after another (they would
otherwise compete for the cores). A benchmark that fails does not stop the
others; the exit status says whether all of them finished.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

#: name → (script, arguments at full size, arguments with --quick)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "proxy": ("latency_proxy.py", ["--measure", "--rtt-ms", "50"], ["--measure", "--rtt-ms", "50"]),
    "parser": ("parser_bench.py", [], []),
    "store": ("store_bench.py", [], ["--rows", "20000"]),
    "append": ("append_bench.py", [], ["--count", "100", "--repeat", "1"]),
    "copy": ("copy_bench.py", [], ["--count", "200", "--total-mb", "10"]),
    "big": ("big_folder_bench.py", [], ["--count", "5000"]),
    "flaky": (
        "flaky_bench.py",
        [],
        ["--count", "100", "--bw-count", "100", "--bw-total-mb", "10", "--repeat", "1"],
    ),
}


def export(rev: str, into: Path) -> str:
    """Write ``rev``'s src/ into ``into``; return the full commit id."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.Popen(
        ["git", "-C", str(REPO), "archive", commit, "src"], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {rev} failed")
    return commit


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rev", help="benchmark this commit instead of the working tree")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--big-count", type=int, help="messages in the big-folder benchmark")
    args = parser.parse_args()

    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="mm-bench-src-") as tmp:
        if args.rev:
            commit = export(args.rev, Path(tmp))
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [f"{tmp}/src", env.get("PYTHONPATH")]))
            env["MAILMOVER_BENCH_REV"] = commit[:12]
            print(f"benchmarking commit {commit[:12]} ({args.rev})", flush=True)
        outcomes: list[tuple[str, int, float]] = []
        for name, (script, full, quick) in BENCHMARKS.items():
            if args.only and name not in args.only:
                continue
            arguments = quick if args.quick else full
            if name == "big" and args.big_count:
                arguments = [*arguments, "--count", str(args.big_count)]
            command = [sys.executable, str(BENCH / script), *arguments]
            shown = " ".join(["bench/" + script, *arguments])
            print(f"\n===== {name}: {shown}", flush=True)
            start = time.perf_counter()
            code = subprocess.run(command, env=env, cwd=REPO).returncode
            outcomes.append((name, code, time.perf_counter() - start))

    print("\n===== summary")
    for name, code, seconds in outcomes:
        print(f"{name:<8} {'ok' if code == 0 else f'FAILED ({code})':<12} {seconds:8.1f} s")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
