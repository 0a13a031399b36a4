"""Opening the socket: plain, implicit TLS or STARTTLS, with clear errors.

Everything that can go wrong before the first IMAP command is translated here,
once, into the error tree (host unknown, port closed, TLS spoken to a plain
port and the reverse, a certificate refused).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import Literal

from mailmover.errors import ConnectFailed, IMAPTimeout, TLSFailed

Security = Literal["tls", "starttls", "plain"]


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """How to check the server's certificate: verified by default."""

    verify: bool = True
    ca_file: str | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def tls_error(host: str, port: int, exc: BaseException) -> TLSFailed:
    """A TLS failure as one line that says what to do."""
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        if "expired" in reason.lower():
            return TLSFailed(
                f"the certificate of {where} has expired ({reason}); the server's "
                "administrator must renew it"
            )
        if "mismatch" in reason.lower():  # a trusted certificate, for other names
            return TLSFailed(
                f"the certificate of {where} is not for {host!r} ({reason}); connect by a "
                "name the certificate holds, or use --insecure for a test server"
            )
        return TLSFailed(
            f"the certificate of {where} was refused ({reason}); "
            "give its CA with --ca-file, or turn verification off for this server"
        )
    text = str(exc)
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return TLSFailed(
            f"{where} does not speak TLS on this port; use imap:// (STARTTLS) or the IMAPS port"
        )
    return TLSFailed(f"TLS with {where} failed: {text}")


async def open_stream(
    host: str,
    port: int,
    *,
    security: Security,
    tls: TLSSettings,
    timeout: float,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, with implicit TLS when ``security == "tls"``."""
    ctx = tls.context() if security == "tls" else None
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=ctx,
                server_hostname=host if ctx else None,
                limit=2**20,
            ),
            timeout,
        )
    except ssl.SSLError as exc:
        raise tls_error(host, port, exc) from exc
    except socket.gaierror as exc:
        raise ConnectFailed(f"unknown host {host!r}: {exc.strerror}") from exc
    except ConnectionRefusedError as exc:
        raise ConnectFailed(f"connection to {host}:{port} refused (is the port right?)") from exc
    except TimeoutError as exc:
        raise IMAPTimeout(f"no connection to {host}:{port} within {timeout:g} s") from exc
    except ConnectionError as exc:
        if ctx is not None:
            raise TLSFailed(
                f"{host}:{port} closed the connection during the TLS handshake; "
                "is this a plain IMAP port? try imap://"
            ) from exc
        raise ConnectFailed(f"cannot connect to {host}:{port}: {exc}") from exc
    except OSError as exc:
        raise ConnectFailed(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc


async def start_tls(
    writer: asyncio.StreamWriter, host: str, port: int, tls: TLSSettings, timeout: float
) -> None:
    """Upgrade an open connection after ``STARTTLS`` was accepted."""
    try:
        await asyncio.wait_for(writer.start_tls(tls.context(), server_hostname=host), timeout)
    except ssl.SSLError as exc:
        raise tls_error(host, port, exc) from exc
    except TimeoutError as exc:
        raise IMAPTimeout(f"TLS handshake with {host}:{port} timed out") from exc
    except (ConnectionError, OSError) as exc:
        raise TLSFailed(f"TLS with {host}:{port} failed: {exc}") from exc
