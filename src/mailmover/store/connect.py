"""Engines for the job state: SQLite tuned for one writer and many readers, or PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import platformdirs
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects.postgresql import Insert as PGInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from mailmover.errors import UsageError

SUPPORTED_BACKENDS: Final = frozenset({"sqlite", "postgresql"})

#: PostgreSQL URLs as users write them, all run with psycopg 3.
PG_SCHEMES: Final = frozenset({"postgres", "postgresql", "postgresql+psycopg"})
PG_DRIVER: Final = "postgresql+psycopg"
#: Seconds to wait for a PostgreSQL server to answer a new connection.
PG_CONNECT_TIMEOUT: Final = 10

#: Milliseconds a writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000

#: Execution option that makes a SQLite transaction take the write lock at BEGIN.
WRITE_OPTION: Final = "mailmover_write"


def default_url() -> str:
    """The URL of the state database in the user's data directory."""
    path = Path(platformdirs.user_data_dir("mailmover")) / "state.db"
    return f"sqlite:///{path}"


def parse_url(url: str) -> URL:
    """The parsed database URL; a ``UsageError`` when it is not one mailmover can use."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in PG_SCHEMES:  # the driver is ours to choose: psycopg 3
        url = f"{PG_DRIVER}://{rest}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise UsageError("the state database URL cannot be parsed") from exc
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise UsageError(
            f"the state database must be SQLite or PostgreSQL, not {parsed.get_backend_name()}"
        )
    return parsed


def is_memory_sqlite(url: URL) -> bool:
    """True for a private in-memory SQLite database."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _secret_param(name: str) -> bool:
    """A query parameter that holds a password (libpq's ``password``, ``sslpassword``)."""
    return "password" in name.lower()


def shown(url: str | URL) -> str:
    """The URL as it may be printed: without its password, with the scheme users write."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    drivername = "postgresql" if parsed.get_backend_name() == "postgresql" else parsed.drivername
    query = {k: v for k, v in parsed.query.items() if not _secret_param(k)}
    bare = URL.create(
        drivername, parsed.username, None, parsed.host, parsed.port, parsed.database, query
    )
    return bare.render_as_string(hide_password=False)


def unreachable(url: str | URL, exc: BaseException) -> str:
    """One line saying why the database at ``url`` cannot be used; never the password."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    why = lines[0] if lines else type(orig).__name__
    # libpq's prefixes repeat the address or say nothing to a person.
    why = re.sub(r'^(connection failed: )?(connection to server at "[^"]*", port \d+ failed: )?'
                 r"(FATAL: +)?", "", why)  # fmt: skip
    secrets = [str(parsed.password)] if parsed.password else []
    for key, value in parsed.query.items():
        if _secret_param(key):
            secrets += [value] if isinstance(value, str) else list(value)
    for secret in filter(None, secrets):
        why = why.replace(secret, "***")
    return f"cannot use the job database {shown(parsed)}: {why}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for a SQLite file, its parent directories are created."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:  # an unreachable host fails, not hangs
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    kwargs: dict[str, Any] = {}
    if is_memory_sqlite(parsed):
        # One shared connection, or every thread would see its own empty database.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif parsed.database and not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "connect", _tune_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take SQLite's write lock when they begin."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling would BEGIN late and DEFERRED;
    # _begin_sqlite issues BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite(conn: Connection) -> None:
    # A deferred transaction that later writes fails at once with SQLITE_BUSY
    # when another connection writes, instead of waiting out busy_timeout.
    if conn.get_execution_options().get(WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def insert_for(engine: Engine | Connection, table: Table) -> SQLiteInsert | PGInsert:
    """An INSERT on ``table`` that can take ON CONFLICT clauses in this engine's dialect."""
    if engine.dialect.name == "sqlite":
        return sqlite_insert(table)
    return pg_insert(table)
