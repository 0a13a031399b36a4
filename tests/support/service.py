"""A batch of mailbox pairs between two real Dovecots, driven through the service's CLI.

``Batch`` makes ``count`` source/destination accounts, fills the sources, writes the
batch file and runs ``mailmover batch|run|status|...`` as subprocesses with a data
directory of its own. ``status()`` reads the job database directly (as the web page
will), ``exact()`` compares every destination with its source.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from mailmover.devserver import DevServer
from mailmover.service.jobs import MailboxStatus, status
from mailmover.store import Store, schema

from . import corpus, runcli, snapshot
from .corpus import Corpus
from .proxy import Proxy

#: a guard against hangs (seconds), not a timing: MAILMOVER_TEST_GUARD changes it
GUARD = float(os.environ.get("MAILMOVER_TEST_GUARD", "90"))


class Batch:
    def __init__(
        self,
        src: DevServer,
        dst: DevServer,
        tmp: Path,
        count: int,
        name: str = "team",
        users: Sequence[str] | None = None,
        database: str | None = None,
    ) -> None:
        self.tmp = tmp
        #: A PostgreSQL URL for the job database; None: SQLite in the data directory.
        self.database = database
        self.name = name
        self.accounts = [
            runcli.Accounts(src, dst, tmp, f"{name}{n}", users[n] if users else None)
            for n in range(count)
        ]
        self.data = tmp / "data"
        self.env = {"MAILMOVER_DATA_DIR": str(self.data)}
        for var in ("MAILMOVER_SOURCE_PASSWORD", "MAILMOVER_DEST_PASSWORD"):
            self.env[var] = ""
        self.env["MAILMOVER_DATABASE_URL"] = self.url
        self.file = tmp / f"{name}.csv"
        self.expected: list[Any] = []

    @property
    def url(self) -> str:
        return self.database or f"sqlite:///{self.data / 'state.db'}"

    def passwords(self) -> list[str]:
        return [pw for a in self.accounts for pw in (a.src_pw, a.dst_pw)]

    def load(self, corpora: Sequence[Corpus]) -> None:
        for account, content in zip(self.accounts, corpora, strict=True):
            account.load(content)
        self.expected = [a.src_snapshot() for a in self.accounts]

    def write_csv(self, dst_port: int | None = None) -> Path:
        lines = ["source,source_password,dest,dest_password"]
        lines += [
            f"{a.src_url()},{a.src_pw},{a.dst_url(dst_port)},{a.dst_pw}" for a in self.accounts
        ]
        self.file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.file

    def cli(self, *args: str, timeout: float = 120.0) -> runcli.Outcome:
        return runcli.run(*args, env=self.env, timeout=timeout)

    def create(self, *extra: str, dst_port: int | None = None) -> runcli.Outcome:
        out = self.cli("batch", str(self.write_csv(dst_port)), "--name", self.name, *extra)
        assert out.code == 0, out
        assert out.stdout.strip() == self.name
        return out

    def tune(self, **settings: Any) -> None:
        """Change the job's stored pass settings (what a web form may one day offer)."""
        job = schema.job
        with Store.open(self.url) as store, store.write_engine.begin() as conn:
            stored = conn.execute(select(job.c.settings).where(job.c.name == self.name)).scalar()
            merged = dict(stored or {}) | settings
            conn.execute(update(job).where(job.c.name == self.name).values(settings=merged))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query on the job database, whichever the backend."""
        with Store.open(self.url) as store, store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]

    def status(self) -> list[MailboxStatus]:
        with Store.open(self.url) as store:
            return status(store, self.name)

    def states(self) -> list[str]:
        return [s.state for s in self.status()]

    def problems(self) -> list[str]:
        """How each destination differs from its source (empty when all are exact)."""
        out = []
        for account, expected in zip(self.accounts, self.expected, strict=True):
            got = account.dst_snapshot()
            out += [f"{account.user}: {p}" for p in runcli.exact_copy_problems(expected, got)]
            out += [f"{account.user}: {p}" for p in runcli.extra_messages(expected, got)]
        return out

    def leaked(self, *texts: str, more: Sequence[str] = ()) -> list[str]:
        """Passwords (the accounts' and ``more``) found in these texts or in the data directory.

        The database files are searched as bytes, WAL included; a PostgreSQL job
        database, row by row as text.
        """
        blobs = [t.encode() for t in texts]
        blobs += [p.read_bytes() for p in self.data.rglob("*") if p.is_file()]
        if self.database:  # every row of every table, as PostgreSQL writes it out
            with Store.open(self.url) as store, store.engine.connect() as conn:
                for table in schema.metadata.sorted_tables:
                    rows = conn.execute(text(f'SELECT t::text FROM "{table.name}" t')).scalars()
                    blobs += [row.encode() for row in rows]
        secrets = [*self.passwords(), *more]
        return [pw for pw in secrets if any(pw.encode() in b for b in blobs)]


def worker_pid(worker: str | None) -> int | None:
    """The pid in a worker's name (``host/pid``)."""
    if not worker:
        return None
    return int(worker.rsplit("/", 1)[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def dest_messages(account: runcli.Accounts) -> int:
    """Messages in the destination's INBOX and Archive now (STATUS, no snapshot)."""
    total = 0
    with snapshot.session(account.dst.host, account.dst.port, account.user, account.dst_pw) as c:
        for folder in ("INBOX", "Archive"):
            typ, data = c.status(folder, "(MESSAGES)")
            if typ == "OK" and data and data[0]:
                total += int(data[0].split(b"MESSAGES ")[1].rstrip(b")"))
    return total


class SlowLink:
    """A ``Proxy`` limited to ``rate`` bytes/s, served from a thread for synchronous tests."""

    def __init__(self, server: DevServer, rate: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = Proxy(server.host, server.port, rate=rate)
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)

    @property
    def port(self) -> int:
        return self.proxy.port

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def mail(seed: int, count: int = 40, total: int = 400_000) -> Corpus:
    """Two folders of small distinct messages."""
    msgs = corpus.bulk(count, seed=seed, size_dist="small", total_bytes=total)
    half = count // 2
    return runcli.folders(INBOX=msgs[:half], Archive=msgs[half:])


def wait_for(condition, what: str, guard: float | None = None):  # type: ignore[no-untyped-def]
    """Poll until ``condition()`` is truthy (returned); a guard against hangs, not a timing."""
    guard = GUARD if guard is None else guard
    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"still waiting for {what} after {guard:g} s")


def raw_states(batch: Batch) -> list[str]:
    """The stored states, as they are (``status`` would show an expired lease as queued)."""
    return [r[0] for r in batch.rows("SELECT state FROM mailbox ORDER BY id")]
