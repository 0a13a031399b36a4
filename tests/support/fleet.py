"""A batch on a PostgreSQL job database, moved by ``mailmover worker`` processes.

``FleetBatch`` is a ``Batch`` on a PostgreSQL job database whose key is in
``MAILMOVER_SECRET_KEY``, as on a fleet of machines. ``Workers`` starts, kills and
stops worker processes, each printing its JSON events into a file of its own (a
pipe nobody reads could fill up and stall it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from mailmover.devserver import DevServer

from . import runcli
from .service import Batch


class FleetBatch(Batch):
    def __init__(
        self, src: DevServer, dst: DevServer, tmp: Path, count: int, name: str, url: str
    ) -> None:
        super().__init__(src, dst, tmp, count, name, database=url)
        # The machines of a fleet share the key through their environment.
        self.env["MAILMOVER_SECRET_KEY"] = Fernet.generate_key().decode()

    def raw_states(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT state FROM mailbox ORDER BY id")]


class Workers:
    """``mailmover worker`` processes on one batch's database."""

    def __init__(self, batch: FleetBatch, tmp: Path) -> None:
        self.batch = batch
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        out = self.tmp / f"worker{n}.jsonl"
        err = self.tmp / f"worker{n}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                runcli.command("worker", "--json", *args),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env={**os.environ, **self.batch.env},
            )
        self.procs.append(proc)
        self.logs.append(out)
        return proc

    def events(self, n: int | None = None) -> list[dict[str, Any]]:
        """The events printed so far (by worker ``n``, or by all)."""
        logs = self.logs if n is None else [self.logs[n]]
        found = []
        for path in logs:
            for line in path.read_text().splitlines():
                if line.startswith("{"):
                    found.append(json.loads(line))
        return found

    def output(self) -> str:
        """Everything the workers printed, stdout and stderr."""
        return "".join(
            p.read_text(errors="replace")
            for path in self.logs
            for p in (path, path.with_suffix(".err"))
        )

    def stop(self, timeout: float) -> list[int]:
        """SIGTERM every worker still running; their exit codes."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes

    def kill(self, pid: int, timeout: float) -> None:
        """SIGKILL one worker and wait for its end."""
        (proc,) = [p for p in self.procs if p.pid == pid]
        proc.kill()
        proc.wait(timeout)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
