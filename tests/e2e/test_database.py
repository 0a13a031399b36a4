"""``mailmover db upgrade`` and every service command on a PostgreSQL job database.

The URL's password must never be printed, whatever goes wrong: each failure is one
line on stderr that says what to fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmover.store.migrate import HEAD
from support import runcli
from support.postgres import PostgresCluster, free_port


def test_db_upgrade_migrates_an_empty_postgresql_database_once(postgres: PostgresCluster) -> None:
    url = postgres.fresh_url()
    first = runcli.run("db", "upgrade", env={"MAILMOVER_DATABASE_URL": url})
    assert first.code == 0, first
    shown = url.replace(f":{postgres.password}@", "@")
    assert first.stdout.strip() == f"{shown}: upgraded from an empty database to revision {HEAD}"
    again = runcli.run("db", "upgrade", "--database-url", url)
    assert again.code == 0, again
    assert again.stdout.strip() == f"{shown}: at revision {HEAD}, nothing to do"
    jobs = runcli.run("jobs", "--json", env={"MAILMOVER_DATABASE_URL": url})
    assert (jobs.code, jobs.stdout.strip()) == (0, "[]"), jobs
    for out in (first, again, jobs):
        assert postgres.password not in out.stdout + out.stderr
    postgres.drop(url)


def test_db_upgrade_on_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    out = runcli.run("db", "upgrade", "--data-dir", str(tmp_path / "data"))
    assert out.code == 0, out
    assert out.stdout.strip().endswith(f"upgraded from an empty database to revision {HEAD}")
    assert (tmp_path / "data" / "state.db").is_file()


@pytest.mark.parametrize(
    ("command", "cases"),
    [
        (("db", "upgrade"), ("refused", "wrong password", "no such database", "bad port", "mysql")),
        (("status",), ("refused", "wrong password")),
        (("run", "--until-done"), ("no such database", "bad port")),
    ],
    ids=["db-upgrade", "status", "run"],
)
def test_an_unusable_database_is_one_line_without_the_password(
    postgres: PostgresCluster, command: tuple[str, ...], cases: tuple[str, ...]
) -> None:
    secret = "Pw-that-must-not-show-4711"
    urls = {
        "refused": f"postgresql://mailmover:{secret}@127.0.0.1:{free_port()}/x",
        "wrong password": postgres.url("postgres", password=secret),
        "no such database": postgres.url("nothere"),
        "bad port": f"postgresql://mailmover:{secret}@127.0.0.1:notaport/x",
        "mysql": f"mysql://mailmover:{secret}@127.0.0.1/x",
    }
    expected = {
        "refused": "/x: Connection refused",
        "wrong password": '/postgres: password authentication failed for user "mailmover"',
        "no such database": '/nothere: database "nothere" does not exist',
        "bad port": "the state database URL cannot be parsed",
        "mysql": "must be SQLite or PostgreSQL, not mysql",
    }
    for case in cases:
        out = runcli.run(*command, env={"MAILMOVER_DATABASE_URL": urls[case]}, timeout=60)
        assert out.code != 0, (case, out)
        assert len(out.stderr_lines) == 1, (case, out)
        assert out.stderr.startswith("mailmover: "), (case, out)
        assert expected[case] in out.stderr, (case, out)
        for password in (secret, postgres.password):
            assert password not in out.stdout + out.stderr, (case, out)
