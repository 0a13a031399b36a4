"""Wall time and peak resident memory of one command run as a child process.

Peak RSS comes from GNU time (``/usr/bin/time``, Debian package ``time``) when it
is installed: time forks a copy of itself (a couple of MB) and execs the
command, and reports the ``ru_maxrss`` that ``wait4`` gives for that child alone.
Asking ``getrusage(RUSAGE_CHILDREN)`` here instead would be wrong twice over:
it is the maximum over every child this process ever waited for, and a child
started with vfork or posix_spawn (as ``subprocess`` does) inherits its
parent's high-water mark at exec, so it would report this process's own peak.

Without GNU time the child's ``VmHWM`` (high-water mark of the running image)
is read from /proc every 20 ms; that can only miss a peak reached in the last
20 ms before exit, and the method name printed says which one was used.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"
_POLL = 0.02


@dataclass(frozen=True)
class Measured:
    """One finished command."""

    seconds: float
    peak_rss: int  # bytes
    cpu_seconds: float | None  # user + system, when known
    returncode: int
    stdout: str
    stderr: str

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss / 2**20


def _has_gnu_time() -> bool:
    if not os.access(GNU_TIME, os.X_OK):
        return False
    result = subprocess.run([GNU_TIME, "--version"], capture_output=True, text=True)
    return "GNU" in (result.stdout + result.stderr)


USE_GNU_TIME = _has_gnu_time()
METHOD = (
    "GNU time (wait4 ru_maxrss of the command alone)"
    if USE_GNU_TIME
    else "VmHWM of the command read from /proc every 20 ms"
)


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run ``command`` to the end; its output is captured, not shown."""
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory(prefix="mm-measure-") as tmp:
        out, err = Path(tmp, "out"), Path(tmp, "err")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            if USE_GNU_TIME:
                report = Path(tmp, "time")
                wrapped = [GNU_TIME, "-f", "%e %M %U %S", "-o", str(report), *command]
                start = time.perf_counter()
                code = subprocess.run(
                    wrapped, env=full_env, stdout=stdout, stderr=stderr, timeout=timeout
                ).returncode
                seconds = time.perf_counter() - start
                fields = report.read_text().strip().splitlines()[-1].split()
                peak = int(fields[1]) * 1024
                cpu: float | None = float(fields[2]) + float(fields[3])
            else:
                start = time.perf_counter()
                proc = subprocess.Popen(command, env=full_env, stdout=stdout, stderr=stderr)
                peak = 0
                deadline = None if timeout is None else start + timeout
                while proc.poll() is None:
                    peak = max(peak, _vm_hwm(proc.pid))
                    if deadline is not None and time.perf_counter() > deadline:
                        proc.kill()
                        proc.wait()
                        raise subprocess.TimeoutExpired(list(command), timeout or 0)
                    time.sleep(_POLL)
                seconds = time.perf_counter() - start
                code = proc.returncode
                cpu = None
        return Measured(
            seconds,
            peak,
            cpu,
            code,
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
        )


def _vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0
