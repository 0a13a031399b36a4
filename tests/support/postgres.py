"""A throwaway PostgreSQL cluster for the test session, from Debian's packages.

``PostgresCluster().start()`` runs ``initdb`` into a temporary directory (as the
``postgres`` user when the tests run as root: initdb refuses root), then
``pg_ctl start`` listening on 127.0.0.1 only, on a free port, with its unix socket
in that directory. Clients log in as ``mailmover`` with a generated password
(scram-sha-256 over TCP); the socket (trust) is for the cluster's own housekeeping.

``fresh_url()`` is a new, empty database; ``fresh_url(migrated=True)`` a copy of a
template already at the newest schema (CREATE DATABASE … TEMPLATE, a few ms). URLs
are plain ``postgresql://`` as a user writes them. ``stop()`` stops the server and
removes the directory.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

#: The role the tests' URLs log in as (not a superuser: mailmover must not need one).
ROLE = "mailmover"
#: The database every ``fresh_url(migrated=True)`` is copied from.
TEMPLATE = "mailmover_template"

_numbers = itertools.count(1)


def bindir() -> Path:
    """Where initdb and pg_ctl are: ``MAILMOVER_PG_BINDIR``, Debian's newest, or PATH."""
    given = os.environ.get("MAILMOVER_PG_BINDIR")
    if given:
        return Path(given)
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        newest = max(found, key=lambda p: int(Path(p).parent.parent.name.split(".")[0]))
        return Path(newest).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed: run scripts/install-sysdeps.sh")
    return Path(initdb).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """One PostgreSQL server in a temporary directory, for one test session."""

    def __init__(self) -> None:
        self.bin = bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="mailmover-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.host = "127.0.0.1"
        self.running = False
        # initdb and postgres refuse to run as root: they run as the postgres user.
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            self._user = {"user": "postgres", "group": "postgres", "extra_groups": []}
            shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o700)

    # -- lifetime ---------------------------------------------------------------------

    def start(self) -> PostgresCluster:
        try:
            self._initdb()
            self._serve()
            self._admin(
                f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD %s",
                self.password,
            )
            self._admin(f"CREATE DATABASE {TEMPLATE} OWNER {ROLE}")
            self._migrate_template()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (at once: nothing in it is kept) and remove its directory."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases --------------------------------------------------------------------

    def url(self, database: str, *, password: str | None = None) -> str:
        """A ``postgresql://`` URL for ``database`` (another ``password`` to see it refused)."""
        pw = self.password if password is None else password
        return f"postgresql://{ROLE}:{pw}@{self.host}:{self.port}/{database}"

    def fresh_url(self, *, migrated: bool = False) -> str:
        """A new database nobody else uses: empty, or at the newest schema."""
        name = f"t{next(_numbers)}_{secrets.token_hex(3)}"
        template = TEMPLATE if migrated else "template0"
        self._admin(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE {template}")
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop the database of ``url``, closing whatever still uses it."""
        name = url.rsplit("/", 1)[1]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def connections(self, database: str | None = None) -> int:
        """Client connections open now (to ``database``, or to any of the tests')."""
        query = "SELECT count(*) FROM pg_stat_activity WHERE usename = %s"
        args: tuple[str, ...] = (ROLE,)
        if database is not None:
            query += " AND datname = %s"
            args += (database,)
        with self._connect() as conn:
            row = conn.execute(query, args).fetchone()
        return int(row[0]) if row else 0

    # -- inside -----------------------------------------------------------------------

    def _initdb(self) -> None:
        pwfile = self.dir / "superuser-password"
        pwfile.write_text(secrets.token_urlsafe(16) + "\n")
        if self._user:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile),
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
            "--no-sync",
        )  # fmt: skip
        pwfile.unlink()

    def _serve(self) -> None:
        # The port is free when looked at; another process may take it before the
        # server binds it, so a failed start is tried again on another.
        for _ in range(5):
            self.port = free_port()
            options = " ".join([
                "-c listen_addresses=127.0.0.1", f"-p {self.port}", f"-k {self.dir}",
                "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
                "-c max_connections=300", "-c shared_buffers=32MB",
            ])  # fmt: skip
            done = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                "-w", "-t", "60", "start", check=False,
            )  # fmt: skip
            if done.returncode == 0:
                self.running = True
                return
        raise RuntimeError(f"PostgreSQL did not start: {self.log.read_text(errors='replace')}")

    def _migrate_template(self) -> None:
        from mailmover.store.connect import make_engine
        from mailmover.store.migrate import upgrade

        engine = make_engine(self.url(TEMPLATE))
        try:
            upgrade(engine)
        finally:
            engine.dispose()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=str(self.dir), port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def _admin(self, sql: str, *args: str) -> None:
        with self._connect() as conn:
            if args:
                # Utility statements take no parameters: quote them client side.
                sql = sql.replace("%s", "{}")
                quoted = [pgsql.Literal(a) for a in args]
                conn.execute(pgsql.SQL(sql).format(*quoted))  # type: ignore[arg-type]
            else:
                conn.execute(sql)  # type: ignore[arg-type]

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            cwd=self.dir,
            check=False,
            **self._user,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")
        return done


@contextlib.contextmanager
def cluster() -> Any:
    """A started cluster, stopped and removed at the end even when the body fails."""
    pg = PostgresCluster()
    try:
        yield pg.start()
    finally:
        pg.stop()
