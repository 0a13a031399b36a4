"""What the benchmarks ran on: cores, CPU, memory, OS, Python, Dovecot, mbsync, code, date.

python bench/machine.py        # print it
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _first_line(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def mailmover_code() -> str:
    """Where ``import mailmover`` comes from, and the git commit of that code."""
    import mailmover

    where = Path(mailmover.__file__).resolve().parents[1]
    # run_all.py --rev exports a commit to a temporary tree and names it here.
    if rev := os.environ.get("MAILMOVER_BENCH_REV"):
        return f"commit {rev} (exported to {where})"
    if where.is_relative_to(REPO):
        commit = _first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
        return f"working tree {where} at {commit}"
    return str(where)


def describe() -> dict[str, str]:
    """The facts a reader needs to compare figures between machines."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "ram": _memory(),
        "os": _os_name(),
        "python": sys.version.split()[0],
        "dovecot": _first_line(["/usr/sbin/dovecot", "--version"]),
        "mbsync": _first_line(["mbsync", "--version"]),
        "mailmover": mailmover_code(),
        "load average": load,
    }


def print_machine() -> None:
    for key, value in describe().items():
        print(f"{key:>12}: {value}")


if __name__ == "__main__":
    print_machine()
