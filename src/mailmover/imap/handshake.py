"""Before the pipeline starts: the greeting, and STARTTLS when asked for."""

from __future__ import annotations

import asyncio
from collections import deque

from mailmover.errors import ConnectionLost, IMAPTimeout, ProtocolError, TLSFailed
from mailmover.imap.proto.parser import ResponseParser
from mailmover.imap.proto.responses import Capability, Response, Tagged, UntaggedStatus
from mailmover.imap.trace import ProtocolTrace
from mailmover.imap.transport import Security, TLSSettings, start_tls


async def greet(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    parser: ResponseParser,
    host: str,
    port: int,
    *,
    security: Security,
    tls: TLSSettings,
    timeout: float,
    trace: ProtocolTrace | None,
) -> frozenset[str] | None:
    """Read the greeting, upgrade with STARTTLS if asked; the capabilities if already known.

    Never falls back to plain text: a server without STARTTLS is an error.
    """
    where = f"{host}:{port}"
    shake = _Handshake(reader, writer, parser, where, timeout, trace)
    try:
        greeting = await shake.next()
        if isinstance(greeting, UntaggedStatus) and greeting.status == "BYE":
            raise ConnectionLost(f"{where} refused the session: {greeting.text}")
        if not isinstance(greeting, UntaggedStatus) or greeting.status not in {"OK", "PREAUTH"}:
            raise ProtocolError(f"{where} did not greet like an IMAP server")
        caps = _caps_from_code(greeting)
        if security == "starttls":
            if caps is None:
                _, untagged = await shake.command(b"S0 CAPABILITY\r\n")
                found = [r.capabilities for r in untagged if isinstance(r, Capability)]
                caps = found[-1] if found else frozenset()
            if "STARTTLS" not in caps:
                raise TLSFailed(f"{where} does not offer STARTTLS; use imaps:// or its IMAPS port")
            reply, _ = await shake.command(b"S1 STARTTLS\r\n")
            if reply.status != "OK":
                raise TLSFailed(f"{where} refused STARTTLS: {reply.text}")
            await start_tls(writer, host, port, tls, timeout)
            return None  # ask again after TLS (RFC 3501 6.2.1)
        if shake.backlog or parser.pending:
            raise ProtocolError(f"{where} sent more than a greeting unasked")
        return caps
    except BaseException:
        writer.close()
        raise


def _caps_from_code(response: UntaggedStatus) -> frozenset[str] | None:
    code = response.code
    if code is not None and code.name == "CAPABILITY" and isinstance(code.value, frozenset):
        return code.value
    return None


class _Handshake:
    """Reads responses one at a time before the connection's tasks start."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: ResponseParser,
        where: str,
        timeout: float,
        trace: ProtocolTrace | None,
    ) -> None:
        self.reader, self.writer, self.parser = reader, writer, parser
        self.where, self.timeout, self.trace = where, timeout, trace
        self.backlog: deque[Response] = deque()

    async def next(self) -> Response:
        while not self.backlog:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), self.timeout)
            except TimeoutError:
                raise IMAPTimeout(
                    f"{self.where} sent no IMAP answer within {self.timeout:g} s; "
                    "is this an IMAPS port? try imaps://"
                ) from None
            except (ConnectionError, OSError) as exc:
                raise ConnectionLost(f"{self.where} closed the connection: {exc}") from exc
            if not data:
                raise ConnectionLost(f"{self.where} closed the connection")
            self.backlog.extend(self.parser.feed(data))
        response = self.backlog.popleft()
        if self.trace:
            self.trace.received(response)
        return response

    async def command(self, line: bytes) -> tuple[Tagged, list[Response]]:
        """Send one command line and read up to its tagged completion."""
        self.writer.write(line)
        untagged: list[Response] = []
        while True:
            response = await self.next()
            if isinstance(response, Tagged):
                if self.backlog or self.parser.pending:
                    raise ProtocolError(f"{self.where} sent data past {line!r}")
                return response, untagged
            untagged.append(response)
