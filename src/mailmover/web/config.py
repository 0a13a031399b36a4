"""The web app's settings, built at the edge (``mailmover serve``, the tests) and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailmover.service import signinlimits
from mailmover.service.emails import SmtpSettings


@dataclass(frozen=True)
class WebConfig:
    """How the web app runs: where its data is, what it starts, how it guards sign-in."""

    #: holds the job database (unless ``database_url``) and the credentials' key file
    data_dir: Path
    #: job database URL; None: ``sqlite:///DATA_DIR/state.db``
    database_url: str | None = None
    #: where ``MAILMOVER_SECRET_KEY`` (the credentials' key) is read from
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    #: run the local runner (worker processes) inside the app's process
    start_runner: bool = True
    #: mailboxes the local runner moves at once
    runner_concurrency: int = 4
    #: the session cookie is sent over HTTPS only (turn off only for plain http on loopback)
    cookie_secure: bool = True
    #: wrong passwords in ``signin_window`` seconds after which sign-in is refused unchecked
    signin_account_limit: int = signinlimits.ACCOUNT_LIMIT
    signin_address_limit: int = signinlimits.ADDRESS_LIMIT
    signin_window: float = signinlimits.WINDOW
    #: the address people open, for links in emails (e.g. https://mail-move.example.com)
    public_url: str = "http://127.0.0.1:8080"
    #: sending email (invitations, notices); None: no email is sent
    smtp: SmtpSettings | None = None

    @property
    def url(self) -> str:
        """The job database's URL."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'state.db'}"
