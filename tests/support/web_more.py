"""Session fixtures for the pages that make transfers (tests/web): one ``mailmover serve``
that can send email (aiosmtpd, STARTTLS) and sign users in with Microsoft (the local
OAuth server), and two Dovecots with different folder separators.

Shared by the wizard, batch and API modules so the app and the servers start once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailmover.devserver import DevServer

from .oauth_server import OAuthServer
from .smtp_server import SmtpServer
from .web import WebServer


@pytest.fixture(scope="session")
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="session")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path_factory.mktemp("smtp")) as server:
        yield server


@pytest.fixture(scope="session")
def served(
    tmp_path_factory: pytest.TempPathFactory, oauth: OAuthServer, smtp: SmtpServer
) -> Iterator[WebServer]:
    """``mailmover serve`` with its runner, an SMTP server and Microsoft sign-in."""
    server = WebServer(tmp_path_factory.mktemp("served") / "data")
    server.env |= {
        "MAILMOVER_SMTP_HOST": "127.0.0.1",
        "MAILMOVER_SMTP_PORT": str(smtp.port),
        "MAILMOVER_SMTP_FROM": "migrations@example.com",
        "MAILMOVER_SMTP_CA_FILE": str(smtp.ca_file),
        "MAILMOVER_OAUTH_MICROSOFT_CLIENT_ID": oauth.client_id,
        "MAILMOVER_OAUTH_MICROSOFT_TOKEN_URL": oauth.token_url,
        "MAILMOVER_OAUTH_MICROSOFT_AUTHORIZE_URL": oauth.authorize_url,
    }
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[tuple[DevServer, DevServer]]:
    """A source (``/`` between levels) and a destination (Maildir++, ``.``) Dovecot."""
    with DevServer(layout="fs") as src, DevServer(layout="maildir++") as dst:
        yield src, dst
