"""Opening a logged-in IMAP session for an endpoint."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mailmover import __version__
from mailmover.config import Endpoint
from mailmover.errors import CommandFailed, UsageError
from mailmover.imap.client import IMAPClient
from mailmover.imap.trace import ProtocolTrace, TraceSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionOptions:
    """How sessions are opened; shared by every connection of a run."""

    compress: bool | None = None  # None: on unless the server is on loopback
    window: int = 256
    connect_timeout: float = 20.0
    read_timeout: float = 120.0
    trace: TraceSink | None = None


async def open_session(endpoint: Endpoint, options: SessionOptions, label: str) -> IMAPClient:
    """Connect, authenticate, identify, and turn on compression where it helps."""
    secret = endpoint.secret
    if endpoint.token_source is not None:
        secret = await endpoint.token_source()
    if secret is None:
        raise UsageError(f"no password or token given for {endpoint.url}")
    trace = ProtocolTrace(label, options.trace) if options.trace else None
    client = await IMAPClient.connect(
        endpoint.host,
        endpoint.port,
        security=endpoint.security,
        tls=endpoint.tls,
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        window=options.window,
        trace=trace,
    )
    try:
        if endpoint.auth == "login":
            await client.login(endpoint.user, secret)
        else:
            await client.authenticate(endpoint.auth, endpoint.user, secret)
        if client.has("ID"):
            try:
                await client.id(name="mailmover", version=__version__)
            except CommandFailed as exc:
                log.debug("ID refused: %s", exc)
        compress = options.compress
        if compress is None:
            compress = not endpoint.is_loopback
        if compress:
            await client.compress()
    except BaseException:
        await client.close()
        raise
    return client
