"""Fixtures for servers other than Dovecot (imported by tests/conftest.py).

``cyrus``         a Cyrus IMAP 3 for the session (upstream defaults: no personal
                  prefix, ``/`` separator; refuses ``"`` in names with a bare NO).
``cyrus_user``    a new user on it, as ``Account(name, password)``.
``courier``       a Courier IMAP for the session (``INBOX.`` prefix, ``.`` separator).
``courier_user``  a new user on it.
``cyrus_factory`` ``cyrus_factory(users=None, **CyrusServer options)`` starts a Cyrus
                  of its own (``altnamespace=False, unixhierarchysep=False``: Debian's
                  layout); all of them stop when the test module ends.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from mailmover.devserver import Account

from .courier import CourierServer
from .cyrus import CyrusServer

_numbers = itertools.count(1)


def _fresh_name() -> str:
    return f"user{next(_numbers)}-{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def cyrus() -> Iterator[CyrusServer]:
    """The Cyrus IMAP shared by the session."""
    with CyrusServer() as server:
        yield server


@pytest.fixture
def cyrus_user(cyrus: CyrusServer) -> Account:
    """A user nobody else has touched, on the session's Cyrus."""
    return cyrus.add_user(_fresh_name(), secrets.token_urlsafe(12))


@pytest.fixture(scope="session")
def courier() -> Iterator[CourierServer]:
    """The Courier IMAP shared by the session."""
    with CourierServer() as server:
        yield server


@pytest.fixture
def courier_user(courier: CourierServer) -> Account:
    """A user nobody else has touched, on the session's Courier."""
    return courier.add_user(_fresh_name(), secrets.token_urlsafe(12))


CyrusFactory = Callable[..., CyrusServer]


@pytest.fixture(scope="module")
def cyrus_factory() -> Iterator[CyrusFactory]:
    """Starts Cyruses with a configuration of their own; stops them after the module."""
    servers: list[CyrusServer] = []

    def start(users: Mapping[str, str] | None = None, **options: Any) -> CyrusServer:
        server = CyrusServer(users, **options)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
