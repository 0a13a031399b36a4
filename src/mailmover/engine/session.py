"""Opening logged-in IMAP sessions for a mailbox pair, asking for credentials at each connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from mailmover import __version__
from mailmover.config import Endpoint
from mailmover.engine.ports import Credentials, Secret, SideName
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.errors import CommandFailed, MailmoverError, UsageError
from mailmover.imap.client import IMAPClient, Result
from mailmover.imap.trace import ProtocolTrace, TraceSink

log = logging.getLogger(__name__)
Pair = tuple[IMAPClient, IMAPClient]


@dataclass(frozen=True)
class SessionOptions:
    """How sessions are opened; shared by every connection of a pass."""

    compress: bool | None = None  # None: on unless the server is on loopback
    window: int = 256
    connect_timeout: float = 20.0
    read_timeout: float = 120.0
    trace: TraceSink | None = None

    @classmethod
    def of(cls, settings: PassSettings, trace: TraceSink | None = None) -> SessionOptions:
        return cls(
            settings.compress, settings.window, settings.connect_timeout, settings.timeout, trace
        )


async def open_session(
    endpoint: Endpoint, secret: Secret, options: SessionOptions, label: str
) -> IMAPClient:
    """Connect, authenticate, identify, and turn on compression where it helps."""
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
        user = secret.login or endpoint.user
        if secret.authzid is not None:  # RFC 4616: log in as an admin, act as the user
            await client.authenticate("plain", user, secret.value, authzid=secret.authzid)
        elif endpoint.auth == "login":
            await client.login(user, secret.value)
        else:
            await client.authenticate(endpoint.auth, user, secret.value)
        compress = options.compress
        if compress is None:
            compress = not endpoint.is_loopback
        if client.has("ID"):
            # Its answer changes nothing: what follows goes behind it, a round trip saved
            # (COMPRESS alone waits for it: nothing may be in flight when it starts).
            identified = client.id_nowait(name="mailmover", version=__version__)
            identified.add_done_callback(_id_answered)
            if compress:
                with contextlib.suppress(CommandFailed):
                    await identified
        if compress:
            await client.compress()
    except BaseException:
        await client.close()
        raise
    return client


def _id_answered(future: asyncio.Future[Result]) -> None:
    if future.cancelled():
        return
    if isinstance(exc := future.exception(), CommandFailed):
        log.debug("ID refused: %s", exc)


@dataclass(frozen=True)
class Connector:
    """Opens sessions to either side of a pair, asking ``credentials`` each time."""

    pair: MailboxPair
    credentials: Credentials
    options: SessionOptions

    async def open(self, side: SideName, label: str) -> IMAPClient:
        endpoint = self.pair.source if side == "source" else self.pair.dest
        try:
            return await open_session(
                endpoint, await self.credentials.secret(side), self.options, label
            )
        except MailmoverError as exc:
            exc.side = exc.side or side  # which server refused or throttled us
            raise

    async def open_pair(self, n: int) -> Pair:
        """Both sides at once; when either fails, or the caller is cancelled meanwhile, the
        other is closed (none is left connected) and the error raised."""
        opening = [
            asyncio.ensure_future(self.open("source", f"src{n}")),
            asyncio.ensure_future(self.open("dest", f"dst{n}")),
        ]
        try:
            await asyncio.wait(opening)
        except BaseException:  # cancelled: one side may have connected already
            for task in opening:
                task.cancel()
            await _close_opened(opening)
            raise
        for task in opening:
            if (error := task.exception()) is not None:
                await _close_opened(opening)
                raise error
        return opening[0].result(), opening[1].result()


async def _close_opened(opening: Sequence[asyncio.Future[IMAPClient]]) -> None:
    """Close the sessions of ``opening`` that did open (waiting for every one to end)."""
    await asyncio.wait(opening)
    for task in opening:
        if not task.cancelled() and task.exception() is None:
            await task.result().close()


async def close_pair(pair: Pair | None, *, logout: bool) -> None:
    if pair is None:
        return
    await asyncio.gather(*((c.logout() if logout else c.close()) for c in pair))


class EndpointCredentials:
    """Credentials from endpoints that carry their secret (the CLI, tests).

    An endpoint with a token source (OAuth2) is asked for a current token at each
    connect; otherwise its password is used as it is.
    """

    def __init__(self, source: Endpoint, dest: Endpoint) -> None:
        self._sides = {"source": source, "dest": dest}

    async def secret(self, side: SideName) -> Secret:
        endpoint = self._sides[side]
        if endpoint.token_source is not None:
            return Secret(await endpoint.token_source())
        if endpoint.secret is None:
            raise UsageError(f"no password or token given for {endpoint.url}")
        return Secret(endpoint.secret)
