"""``mailmover db``: the job database itself (``db upgrade`` brings its schema up to date)."""

from __future__ import annotations

import sys

import typer

from mailmover.cli.jobs import DatabaseUrl, DataDir, data_dir, database_url
from mailmover.errors import MailmoverError
from mailmover.store.connect import shown
from mailmover.store.migrate import upgrade_database

db_app = typer.Typer(help="The job database (SQLite or PostgreSQL).", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_command(data: DataDir = None, database: DatabaseUrl = None) -> None:
    """Create the job database's tables, or bring them to this version's schema.

    Every command does this on its own when the database is behind; run it once
    before starting workers on several machines, or to see that the database answers.
    """
    url = database_url(database, data_dir(data))
    try:
        where = shown(url)
        before, after = upgrade_database(url)
    except MailmoverError as exc:
        print(f"mailmover: {exc.message}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    if before == after:
        print(f"{where}: at revision {after}, nothing to do")
    else:
        print(f"{where}: upgraded from {before or 'an empty database'} to revision {after}")
