"""An aiosmtpd server on loopback that takes mail only after STARTTLS, and keeps it."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import trustme
from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    content: bytes
    tls: bool


class _Sink:
    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                     session.ssl is not None)
        )  # fmt: skip
        return "250 OK"


class SmtpServer:
    """``with SmtpServer(tmp) as smtp:``; ``smtp.ca_file`` is the CA a client must trust."""

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        self.ca_file = directory / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.sink = _Sink()
        self._controller = Controller(
            self.sink, hostname="127.0.0.1", port=self.port,
            tls_context=context, require_starttls=True,
        )  # fmt: skip

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()

    @property
    def received(self) -> list[Received]:
        return list(self.sink.received)
