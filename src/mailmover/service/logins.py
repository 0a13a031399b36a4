"""Trying a login before anything is stored: is this password (or sign-in) right?

The wizard's pre-flight and the invitation page ask here, so a wrong password is said
on the page at once instead of failing a queued mailbox later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet

from mailmover.config import Endpoint
from mailmover.engine.ports import SideName
from mailmover.engine.session import SessionOptions, open_session
from mailmover.errors import MailmoverError
from mailmover.service.credentials import StoredCredentials
from mailmover.service.secrets import SecretBox


@dataclass(frozen=True)
class LoginCheck:
    """What a login attempt found."""

    reason: str | None  # None: logged in
    capabilities: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def appendlimit(self) -> int | None:
        """APPENDLIMIT=n announced after login (RFC 7889), if any."""
        for capability in self.capabilities:
            name, _, value = capability.partition("=")
            if name.upper() == "APPENDLIMIT" and value.isdigit():
                return int(value)
        return None


async def try_login(
    endpoint: Endpoint, spec: dict[str, Any], *, timeout: float = 20.0
) -> LoginCheck:
    """Log in to ``endpoint`` with a credentials spec and out again; the outcome in words.
    A refresh token the token endpoint rotated meanwhile is written into ``spec``."""
    box = SecretBox([Fernet.generate_key()])
    blob = box.encrypt(spec)

    async def read(_side: Any) -> bytes:
        return blob

    async def save(_side: Any, rotated: bytes) -> None:  # the caller stores ``spec`` later
        nonlocal blob
        blob = rotated
        spec.update(box.decrypt(rotated))

    users: dict[SideName, str] = {"source": endpoint.user, "dest": endpoint.user}
    credentials = StoredCredentials(box, read, users, save=save)
    options = SessionOptions(compress=False, connect_timeout=timeout, read_timeout=timeout)
    try:
        secret = await credentials.secret("source")
        client = await open_session(endpoint, secret, options, "check")
    except MailmoverError as exc:
        return LoginCheck(exc.message)
    except OSError as exc:
        return LoginCheck(f"cannot reach {endpoint.host}:{endpoint.port} ({type(exc).__name__})")
    try:
        return LoginCheck(None, frozenset(client.capabilities))
    finally:
        try:
            await client.logout()
        except (MailmoverError, OSError):
            await client.close()
