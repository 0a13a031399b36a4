"""The throwaway PostgreSQL cluster of the test suite, and the job store on it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mailmover.errors import UsageError
from mailmover.store import Store
from mailmover.store.connect import make_engine, parse_url
from mailmover.store.migrate import HEAD, current_revision
from support.postgres import PostgresCluster


def test_the_cluster_listens_on_loopback_and_asks_for_the_password(
    postgres: PostgresCluster,
) -> None:
    url = postgres.fresh_url()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            listen = conn.execute(text("SHOW listen_addresses")).scalar()
            auth = conn.execute(text("SELECT current_user")).scalar()
    finally:
        engine.dispose()
    assert listen == "127.0.0.1"
    assert auth == "mailmover"
    wrong = make_engine(postgres.url(url.rsplit("/", 1)[1], password="not-it"))
    try:
        with pytest.raises(Exception, match="password authentication failed"):
            wrong.connect()
    finally:
        wrong.dispose()


def test_a_fresh_database_is_a_migrated_copy_that_no_other_test_sees(
    postgres: PostgresCluster,
) -> None:
    one, two = postgres.fresh_url(migrated=True), postgres.fresh_url(migrated=True)
    assert one != two
    with Store.open(one) as store:
        store.mailbox("imap://a@h", "imap://b@h", "only-here")
        assert current_revision(store.engine) == HEAD
    with Store.open(two) as store, store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM job")).scalar() == 0
    postgres.drop(one)
    postgres.drop(two)


def test_plain_postgresql_urls_run_on_psycopg_3() -> None:
    for scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        parsed = parse_url(f"{scheme}://u:pw@127.0.0.1:5432/db")
        assert parsed.drivername == "postgresql+psycopg"
    with pytest.raises(UsageError, match="SQLite or PostgreSQL, not mysql"):
        parse_url("mysql://u@h/db")
