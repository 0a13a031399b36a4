"""``mailmover users``: the web app's accounts from the console (list, add, password), for
the first administrator's lost password and for scripts. Passwords come from
``$MAILMOVER_USER_PASSWORD`` or a hidden prompt, never from the command line."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from mailmover.cli.jobs import DatabaseUrl, DataDir, opened

users_app = typer.Typer(help="The web app's accounts", no_args_is_help=True)
PASSWORD_ENV = "MAILMOVER_USER_PASSWORD"


def _password() -> str:
    given = os.environ.get(PASSWORD_ENV)
    if given:
        return given
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("list")
def list_command(data: DataDir = None, database: DatabaseUrl = None) -> None:
    """Every account with its role."""
    from mailmover.service.accounts import list_accounts

    with opened(data, database) as (store, _, _):
        for account in list_accounts(store):
            state = "" if account.active else " (disabled)"
            print(f"{account.email}\t{account.role}{state}")


@users_app.command("add")
def add_command(
    email: Annotated[str, typer.Argument(help="The account's email address")],
    role: Annotated[str, typer.Option(help="administrator or user")] = "user",
    data: DataDir = None,
    database: DatabaseUrl = None,
) -> None:
    """Make an account (password from $MAILMOVER_USER_PASSWORD or a prompt)."""
    from mailmover.service.accounts import create_account

    with opened(data, database) as (store, _, _):
        made = create_account(store, email, _password(), role)
    print(f"made {made.email} ({made.role})")


@users_app.command("password")
def password_command(
    email: Annotated[str, typer.Argument(help="The account's email address")],
    data: DataDir = None,
    database: DatabaseUrl = None,
) -> None:
    """Give an account a new password (its sessions end); e.g. a lost administrator's."""
    from mailmover.service.accounts import AccountError, list_accounts, normal_email, set_password

    with opened(data, database) as (store, _, _):
        wanted = normal_email(email)
        found = [a for a in list_accounts(store) if a.email == wanted]
        if not found:
            raise AccountError(f"no account {wanted}")
        set_password(store, None, found[0].id, _password())
    print(f"new password set for {wanted}")
