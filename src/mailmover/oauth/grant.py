"""Talking to an OAuth2 authorization server: form POSTs, error replies and token sets."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from mailmover.errors import AuthenticationFailed, NetworkError, ProtocolError
from mailmover.oauth.client import OAuthClient

Clock = Callable[[], datetime]

#: lifetime assumed when a token reply does not say (RFC 6749 5.1 makes expires_in optional)
ASSUMED_LIFETIME = timedelta(hours=1)
#: error codes that mean "try again later" rather than "no" (RFC 6749 5.2, 4.1.2.1)
_TRANSIENT = {"temporarily_unavailable", "server_error"}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint granted. Tokens never appear in ``repr``."""

    access_token: str = field(repr=False)
    expires_at: datetime
    refresh_token: str | None = field(default=None, repr=False)
    scope: str = ""
    token_type: str = "Bearer"

    def expires_within(self, margin: timedelta, now: datetime) -> bool:
        """Whether the access token is gone, or will be within ``margin`` of ``now``."""
        return not self.access_token or self.expires_at - margin <= now

    @classmethod
    def refresh_only(cls, refresh_token: str, scope: str = "") -> TokenSet:
        """A set holding only a refresh token: the first use fetches an access token."""
        return cls("", datetime.min.replace(tzinfo=UTC), refresh_token, scope)

    @classmethod
    def from_reply(
        cls, reply: Mapping[str, Any], now: datetime, *, refresh_token: str | None = None
    ) -> TokenSet:
        """Read a successful token reply (RFC 6749 5.1).

        ``refresh_token`` is kept when the reply brings no new one (a refresh
        need not rotate it, RFC 6749 6).
        """
        access = reply.get("access_token")
        token_type = reply.get("token_type", "Bearer")
        if not isinstance(access, str) or not access:
            raise ProtocolError("the token endpoint answered without an access token")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise ProtocolError(f"the token endpoint issued a {token_type!r} token, not Bearer")
        lifetime = ASSUMED_LIFETIME
        expires_in = reply.get("expires_in")
        if expires_in is not None:
            try:
                lifetime = timedelta(seconds=float(expires_in))
            except (TypeError, ValueError):
                raise ProtocolError("the token endpoint sent an unreadable expires_in") from None
        new_refresh = reply.get("refresh_token")
        scope = reply.get("scope", "")
        return cls(
            access_token=access,
            expires_at=now + lifetime,
            refresh_token=new_refresh
            if isinstance(new_refresh, str) and new_refresh
            else refresh_token,
            scope=scope if isinstance(scope, str) else "",
            token_type="Bearer",
        )


class OAuthError(AuthenticationFailed):
    """The authorization server refused the request."""

    def __init__(self, message: str, *, error: str, description: str = "") -> None:
        super().__init__(message)
        #: the RFC 6749 5.2 error code, e.g. ``invalid_grant``
        self.error = error
        self.description = description


async def post_form(
    url: str, form: Mapping[str, str], *, timeout: float, what: str
) -> dict[str, Any]:
    """POST ``form`` to an OAuth2 endpoint and return its JSON object.

    Raises ``OAuthError`` for an RFC 6749 error reply, ``NetworkError`` when the
    server cannot be reached or is failing, ``ProtocolError`` for anything else.
    """
    where = f"the {what} at {urlsplit(url).netloc or url}"
    try:
        async with httpx.AsyncClient(timeout=timeout, verify=_tls_context()) as http:
            response = await http.post(url, data=dict(form), headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise NetworkError(f"{where} did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise NetworkError(f"cannot reach {where}: {type(exc).__name__}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        error = body["error"]
        raw = body.get("error_description")
        description = raw if isinstance(raw, str) else ""
        detail = f"{error}: {description}" if description else error
        if error in _TRANSIENT:
            raise NetworkError(f"{where} is unavailable ({detail})")
        raise OAuthError(
            f"{where} refused the request ({detail})", error=error, description=description
        )
    if response.status_code >= 500 or response.status_code == 429:
        raise NetworkError(f"{where} answered HTTP {response.status_code}")
    if response.status_code != 200 or not isinstance(body, dict):
        raise ProtocolError(f"{where} answered HTTP {response.status_code} without a JSON object")
    return body


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every request (building one costs ~0.1 s)."""
    return ssl.create_default_context(cafile=certifi.where())


async def request_tokens(
    client: OAuthClient, grant: Mapping[str, str], *, now: Clock = utcnow
) -> TokenSet:
    """Ask the token endpoint for tokens with ``grant`` (the grant_type and its fields)."""
    # The lifetime counts from the request, so a slow answer errs on the early side.
    issued = now()
    reply = await post_form(
        client.token_url,
        {**grant, **client.credentials()},
        timeout=client.timeout,
        what="token endpoint",
    )
    return TokenSet.from_reply(reply, issued, refresh_token=grant.get("refresh_token"))
