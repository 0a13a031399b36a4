"""Running ``mailmover`` as a user does (a subprocess), between accounts on real Dovecots.

``Accounts`` holds a source account on one DevServer and a destination account
on another, with their passwords in the environment the CLI reads, a state
database in a temporary directory, and endpoint URLs that can go through a
proxy. ``run`` and ``run_async`` run the CLI and return an ``Outcome``;
``start`` returns the running process for tests that signal or kill it, and
``Live`` follows a run's JSON events as they arrive (to arm faults, to signal
or kill it at a chosen moment) within a guard time against hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mailmover.devserver import DevServer

from . import snapshot
from .corpus import Corpus, CorpusFolder, CorpusMessage


def command(*args: str) -> list[str]:
    """The argv that runs the mailmover CLI with this interpreter."""
    return [sys.executable, "-m", "mailmover", *args]


@dataclass(frozen=True)
class Outcome:
    """What one CLI run printed and returned."""

    code: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON lines of stdout (``--json``)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    @property
    def report(self) -> dict[str, Any]:
        """The final ``report`` line; AssertionError (with stderr) when there is none."""
        reports = [e for e in self.events if e.get("event") == "report"]
        if not reports:
            raise AssertionError(f"no report (exit {self.code}); stderr: {self.stderr[-3000:]}")
        return reports[-1]

    @property
    def retries(self) -> list[dict[str, Any]]:
        """The ``retrying`` events."""
        return [e for e in self.events if e.get("event") == "retrying"]

    @property
    def stderr_lines(self) -> list[str]:
        """The non-empty lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-3000:]}"


def run(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120.0, stdin: str = ""
) -> Outcome:
    """Run the CLI to its end (``timeout``: a guard against hangs, not a measurement)."""
    proc = subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


async def run_async(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> Outcome:
    """``run`` without blocking the event loop (a proxy in the same loop keeps working)."""
    proc = await asyncio.create_subprocess_exec(
        *command(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Outcome(proc.returncode, out.decode(), err.decode())


def start(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the CLI and return at once; stdout and stderr are pipes."""
    return subprocess.Popen(
        command(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> Outcome:
    """Wait for a started CLI and collect what it printed."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return Outcome(proc.returncode, out, err)


class Hung(AssertionError):
    """A CLI run went past its guard time; the message holds what it had printed."""


class Live:
    """A CLI run in progress: its JSON events as they arrive, signals, and its end.

    Every wait is bounded by ``guard`` seconds from the start; past that the
    process is killed and ``Hung`` says what it had printed.
    """

    def __init__(self, proc: asyncio.subprocess.Process, guard: float) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.deadline = asyncio.get_running_loop().time() + guard
        self.guard = guard
        self._changed = asyncio.Event()
        self._stdout = asyncio.create_task(self._read_stdout())
        assert proc.stderr is not None
        self._stderr = asyncio.create_task(proc.stderr.read())

    @classmethod
    async def start(
        cls, *args: str, env: Mapping[str, str] | None = None, guard: float = 60.0
    ) -> Live:
        proc = await asyncio.create_subprocess_exec(
            *command(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        return cls(proc, guard)

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            async for raw in self.proc.stdout:
                self.lines.append(raw.decode())
                self._changed.set()
        finally:
            self._changed.set()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    @property
    def running(self) -> bool:
        return self.proc.returncode is None and not self._stdout.done()

    def _left(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    async def until(self, condition: Callable[[list[dict[str, Any]]], bool]) -> bool:
        """Wait until ``condition(events)`` holds (True) or stdout ends without it (False)."""
        while True:
            self._changed.clear()
            if condition(self.events):
                return True
            if self._stdout.done():
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), self._left())
            except TimeoutError:
                await self._hung()

    async def poll(self, condition: Callable[[], bool], interval: float = 0.005) -> bool:
        """Wait until ``condition()`` holds while the process runs (True), or it ends (False)."""
        while self.running:
            if condition():
                return True
            if self._left() <= 0:
                await self._hung()
            await asyncio.sleep(interval)
        return False

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if the process still runs; whether it did."""
        if self.proc.returncode is not None:
            return False
        try:
            self.proc.send_signal(sig)
        except ProcessLookupError:
            return False
        return True

    async def finish(self) -> Outcome:
        """Wait for the end (within the guard) and return what was printed."""
        try:
            await asyncio.wait_for(self.proc.wait(), max(self._left(), 0.1))
        except TimeoutError:
            await self._hung()
        await self._stdout
        err = await self._stderr
        assert self.proc.returncode is not None
        return Outcome(self.proc.returncode, "".join(self.lines), err.decode())

    async def _hung(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(self._stdout, self._stderr), 5)
        err = self._stderr.result().decode() if self._stderr.done() else ""
        tail = "".join(self.lines[-15:])
        raise Hung(
            f"mailmover was still running {self.guard:g} s after it started; killed it.\n"
            f"last stdout lines:\n{tail}\nstderr:\n{err[-3000:]}"
        )


def folders(**by_name: Sequence[CorpusMessage]) -> Corpus:
    """A corpus of flat folders (``INBOX=[...]``, ``Big=[...]``), all subscribed."""
    return [CorpusFolder((name,), list(msgs), True) for name, msgs in by_name.items()]


class Accounts:
    """A source account on ``src`` and a destination account on ``dst``, both empty at first."""

    def __init__(
        self, src: DevServer, dst: DevServer, tmp: Path, name: str, user: str | None = None
    ) -> None:
        self.src, self.dst, self.tmp = src, dst, tmp
        self.user = user or f"{name}-{secrets.token_hex(3)}"
        self.src_pw = f"S3cret-{secrets.token_urlsafe(9)}"
        self.dst_pw = f"D3cret-{secrets.token_urlsafe(9)}"
        src.add_user(self.user, self.src_pw)
        dst.add_user(self.user, self.dst_pw)
        self.state = tmp / f"{name}.db"
        self.env = {
            "MAILMOVER_SOURCE_PASSWORD": self.src_pw,
            "MAILMOVER_DEST_PASSWORD": self.dst_pw,
        }

    def src_url(self, port: int | None = None) -> str:
        return (
            f"imap://{quote(self.user, safe='')}@{self.src.host}:{port or self.src.port}?tls=none"
        )

    def dst_url(self, port: int | None = None) -> str:
        return (
            f"imap://{quote(self.user, safe='')}@{self.dst.host}:{port or self.dst.port}?tls=none"
        )

    def copy_args(
        self, *extra: str, src_port: int | None = None, dst_port: int | None = None
    ) -> list[str]:
        """``copy SRC DST --json --state DB`` plus ``extra``, optionally through proxies."""
        return [
            "copy",
            self.src_url(src_port),
            self.dst_url(dst_port),
            "--json",
            "--state",
            str(self.state),
            *extra,
        ]

    def copy(
        self,
        *extra: str,
        src_port: int | None = None,
        dst_port: int | None = None,
        timeout: float = 120.0,
    ) -> Outcome:
        return run(
            *self.copy_args(*extra, src_port=src_port, dst_port=dst_port),
            env=self.env,
            timeout=timeout,
        )

    def load(self, corpus: Corpus) -> None:
        """Put ``corpus`` into the source account, and remember the source as it is now."""
        snapshot.load(corpus, self.src.host, self.src.port, self.user, self.src_pw)
        self.guard = snapshot.SourceGuard(self.src.host, self.src.port, self.user, self.src_pw)

    def source_changes(self) -> list[str]:
        """How the source differs from when it was loaded (empty when untouched)."""
        return self.guard.changes()

    def problems(self, expected: snapshot.MailboxSnapshot) -> list[str]:
        """The oracle: how the destination differs from ``expected`` (folders, messages,
        flags, dates, subscriptions) and how the source changed since ``load``."""
        return exact_copy_problems(expected, self.dst_snapshot()) + [
            f"source changed: {line}" for line in self.source_changes()
        ]

    def src_snapshot(self) -> snapshot.MailboxSnapshot:
        return snapshot.snapshot(self.src.host, self.src.port, self.user, self.src_pw)

    def dst_snapshot(self) -> snapshot.MailboxSnapshot:
        return snapshot.snapshot(self.dst.host, self.dst.port, self.user, self.dst_pw)


def exact_copy_problems(
    expected: snapshot.MailboxSnapshot, got: snapshot.MailboxSnapshot
) -> list[str]:
    """How ``got`` differs from ``expected``: folders, each folder's multiset of
    (bytes, flags, internal date), and subscriptions (empty when exact)."""
    return expected.differences(got, 50)


def extra_messages(expected: snapshot.MailboxSnapshot, got: snapshot.MailboxSnapshot) -> list[str]:
    """Messages ``got`` holds more often than ``expected`` (duplicates, strays): empty when none."""
    out = []
    for path, messages in sorted(got.folders.items()):
        for (digest, flags, when), n in (messages - expected.folders.get(path, Counter())).items():
            out.append(f"{'/'.join(path)}: {n} x {digest[:12]} {sorted(flags)} {when} too many")
    return out
