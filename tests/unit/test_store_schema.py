"""The Alembic migrations build exactly the schema of mailmover.store.schema, on SQLite and
on PostgreSQL."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, Table, Text, inspect, text

from mailmover.errors import UsageError
from mailmover.store import Store, default_url
from mailmover.store.connect import make_engine
from mailmover.store.migrate import HEAD, alembic_config, current_revision
from mailmover.store.schema import metadata
from support.postgres import PostgresCluster


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A fresh database migrated by Store.open, on SQLite and on PostgreSQL in turn."""
    s = Store.open(database_url)
    yield s
    s.close()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrations_produce_the_metadata_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []
    assert set(inspect(store.engine).get_table_names()) == {
        "alembic_version",
        "job",
        "mailbox",
        "folder",
        "message",
        "event",
        "pass",
        "invitation",
        "server_hold",
        "account",
        "web_session",
        "api_token",
        "audit",
        "signin_failure",
        "web_draft",
        "web_pending",
    }


def test_comparison_sees_a_column_the_migrations_lack(store: Store) -> None:
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(changed)
    Table("message", changed, Column("extra", Text), extend_existing=True)
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), changed)
    assert [(d[0], d[2], d[3].name) for d in diffs] == [("add_column", "message", "extra")]


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/deep/er/state.db"
    with Store.open(url) as first:
        first.mailbox("imap://a@src", "imap://a@dst").log("info", "test", "kept")
        assert current_revision(first.engine) == head_revision()
    with Store.open(url) as second:
        assert current_revision(second.engine) == head_revision()
        events = second.mailbox("imap://a@src", "imap://a@dst").events()
        assert [e.text for e in events] == ["kept"]
        with second.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_downgrade_removes_every_table(store: Store) -> None:
    with store.write_engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_connections_are_tuned(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000


def test_migration_renders_for_postgresql() -> None:
    out = io.StringIO()
    config = alembic_config("postgresql://mailmover@db.invalid/mailmover")
    config.output_buffer = out
    command.upgrade(config, "head", sql=True)
    ddl = out.getvalue()
    assert "CREATE TABLE message" in ddl
    assert "id BIGSERIAL NOT NULL" in ddl
    assert "internaldate TIMESTAMP WITH TIME ZONE NOT NULL" in ddl
    assert "digest BYTEA" in ddl
    assert "subscribed BOOLEAN NOT NULL" in ddl
    assert "CONSTRAINT uq_message_folder_id_source_uidvalidity_source_uid UNIQUE" in ddl
    assert "CREATE INDEX ix_message_folder_id_state ON message (folder_id, state)" in ddl
    assert ddl.count("ON DELETE CASCADE") == 9
    assert "ALTER TABLE mailbox ADD COLUMN lease_expires TIMESTAMP WITH TIME ZONE" in ddl


def test_default_url_is_in_the_user_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_url() == f"sqlite:///{tmp_path}/data/mailmover/state.db"
    with Store.open() as store:
        store.log("info", "test", "default")
    assert (tmp_path / "data" / "mailmover" / "state.db").is_file()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(UsageError):
        Store.open(url)


def test_head_constant_is_alembics_head() -> None:
    """Store.open skips Alembic when the database is at HEAD: HEAD must be the real head."""
    assert head_revision() == HEAD


def test_upgrade_from_0001_keeps_rows_and_zeroes_the_new_counters(database_url: str) -> None:
    url = database_url
    config = alembic_config(url)
    command.upgrade(config, "0001")
    with Store(make_engine(url)) as old:
        old.mailbox("imap://a@src", "imap://a@dst").log("info", "test", "from 0001")
    with Store.open(url) as store:
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            row = conn.execute(
                text("SELECT messages_copied, crashes, lease_owner, connections FROM mailbox")
            ).one()
        assert tuple(row) == (0, 0, None, 0)
        assert [e.text for e in store.mailbox("imap://a@src", "imap://a@dst").events()] == [
            "from 0001"
        ]


def test_processes_racing_on_an_empty_postgresql_database_migrate_it_once(
    postgres: PostgresCluster,
) -> None:
    url = postgres.fresh_url()
    # Each process waits for the same moment, then opens (and so migrates) the database.
    at = time.time() + 2.0
    code = (
        "import os, time; from mailmover.store import Store\n"
        f"time.sleep(max(0.0, {at} - time.time()))\n"
        "with Store.open(os.environ['MAILMOVER_DATABASE_URL']) as s:\n"
        "    s.log('info', 'test', 'opened')\n"
    )
    env = {**os.environ, "MAILMOVER_DATABASE_URL": url}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    with Store.open(url) as store, store.engine.connect() as conn:
        assert current_revision(store.engine) == head_revision()
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM event")).scalar() == 4
    postgres.drop(url)
