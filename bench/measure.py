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

import contextlib
import os
import signal
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


class Stalled(RuntimeError):
    """The command printed nothing for longer than its idle limit and was killed."""

    def __init__(self, command: Sequence[str], idle: float, stdout: str) -> None:
        super().__init__(f"{command[0]}: no output for {idle:g} s; killed")
        self.stdout = stdout


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    idle_timeout: float | None = None,
) -> Measured:
    """Run ``command`` to the end; its output is captured, not shown.

    Raises ``subprocess.TimeoutExpired`` past ``timeout`` seconds, and ``Stalled``
    when neither its standard output nor its error grew for ``idle_timeout``
    seconds (the command and its children are killed first).
    """
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory(prefix="mm-measure-") as tmp:
        out, err, report = Path(tmp, "out"), Path(tmp, "err"), Path(tmp, "time")
        wrapped = list(command)
        if USE_GNU_TIME:
            wrapped = [GNU_TIME, "-f", "%e %M %U %S", "-o", str(report), *command]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            start = time.perf_counter()
            proc = subprocess.Popen(
                wrapped, env=full_env, stdout=stdout, stderr=stderr, start_new_session=True
            )
            peak, seen, last_change = 0, -1, start
            while proc.poll() is None:
                now = time.perf_counter()
                if not USE_GNU_TIME:
                    peak = max(peak, _vm_hwm(proc.pid))
                if idle_timeout is not None:
                    size = out.stat().st_size + err.stat().st_size
                    if size != seen:
                        seen, last_change = size, now
                    elif now - last_change > idle_timeout:
                        _kill(proc)
                        raise Stalled(command, idle_timeout, out.read_text(errors="replace"))
                if timeout is not None and now - start > timeout:
                    _kill(proc)
                    raise subprocess.TimeoutExpired(list(command), timeout)
                time.sleep(_POLL)
            seconds = time.perf_counter() - start
        cpu: float | None = None
        if USE_GNU_TIME:
            fields = report.read_text().strip().splitlines()[-1].split()
            peak = int(fields[1]) * 1024
            cpu = float(fields[2]) + float(fields[3])
        return Measured(
            seconds,
            peak,
            cpu,
            proc.returncode,
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command's process group (GNU time and the command under it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU-seconds of process group ``pgid``: its live processes' own, and
    those of the children they reaped (a server's finished session processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ...
                total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / tick


def server_group(config: Path) -> int:
    """The process group of the server started with ``-c config`` (a DevServer's Dovecot)."""
    wanted = str(config).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if wanted in cmdline.read_bytes().split(b"\0"):
                stat = (cmdline.parent / "stat").read_text()
                return int(stat.rpartition(")")[2].split()[2])
    raise LookupError(f"no process runs with {config}")
