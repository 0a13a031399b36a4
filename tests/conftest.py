"""Fixtures for the whole suite: throwaway Dovecot servers and users on them.

``dovecot``          one DevServer for the session (users in ``SESSION_USERS``,
                     random passwords in ``dovecot.users``).
``fresh_user``       a new user on that server, as ``Account(name, password)``, so
                     that a test sees only its own mail.
``dovecot_factory``  ``dovecot_factory(users=None, **DevServer options)`` starts a
                     server with its own configuration; all of them stop when the
                     test module ends (or earlier, with ``server.stop()``).
``cyrus``, ``cyrus_user``, ``cyrus_factory``, ``courier``, ``courier_user``:
                     real Cyrus and Courier IMAP servers, the same way
                     (tests/support/server_fixtures.py).
``postgres``, ``postgres_url``, ``database_url``, ``service_database``: a throwaway
                     PostgreSQL cluster, a fresh database on it, and a fresh job
                     database on SQLite and on PostgreSQL in turn
                     (tests/support/database_fixtures.py).
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from mailmover.devserver import Account, DevServer
from support.database_fixtures import (  # noqa: F401
    database_url,
    postgres,
    postgres_url,
    service_database,
)
from support.server_fixtures import (  # noqa: F401
    courier,
    courier_user,
    cyrus,
    cyrus_factory,
    cyrus_user,
)

SESSION_USERS = ("alice", "bob", "carol", "dave", "erin")

DovecotFactory = Callable[..., DevServer]

_user_numbers = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def own_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user data directory (the CLI's default job database, OAuth tokens) in a
    temporary directory: the suite never reads or migrates the real one."""
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data-home"))
    yield
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DevServer]:
    """The Dovecot shared by the session."""
    users = {name: secrets.token_urlsafe(12) for name in SESSION_USERS}
    with DevServer(users) as server:
        yield server


@pytest.fixture
def fresh_user(dovecot: DevServer) -> Account:
    """A user nobody else has touched, on the session's Dovecot."""
    name = f"user{next(_user_numbers)}-{secrets.token_hex(3)}"
    return dovecot.add_user(name, secrets.token_urlsafe(12))


@pytest.fixture(scope="module")
def dovecot_factory() -> Iterator[DovecotFactory]:
    """Starts Dovecots with a configuration of their own; stops them after the module."""
    servers: list[DevServer] = []

    def start(users: Mapping[str, str] | None = None, **options: Any) -> DevServer:
        server = DevServer(users, **options)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests last, whatever the command line's order: Playwright's sync API
    keeps an event loop running in this thread for the rest of the session, and an
    asyncio test after it could not start its own."""
    web = [item for item in items if item.path.parent.name == "web"]
    if web:
        items[:] = [item for item in items if item.path.parent.name != "web"] + web
