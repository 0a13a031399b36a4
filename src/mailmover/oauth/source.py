"""A current access token on demand, refreshed ahead of its expiry."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from mailmover.errors import AuthenticationFailed, NetworkError
from mailmover.oauth.client import OAuthClient
from mailmover.oauth.grant import Clock, OAuthError, TokenSet, request_tokens, utcnow

log = logging.getLogger(__name__)

#: refresh when the access token has less than this left
DEFAULT_MARGIN = timedelta(minutes=5)

_NEVER = datetime.max.replace(tzinfo=UTC)


class TokenSource:
    """An async callable returning a valid access token: ``token = await source()``.

    With a refresh token and a client, a token that expires within ``margin``
    is replaced through the token endpoint before it is handed out, so every
    (re)connect of a long run logs in with a fresh one. Concurrent callers
    share one refresh. ``on_refresh`` is told of every new token set (to store
    a rotated refresh token); when it returns an awaitable (``TokenStore.asave``),
    that is awaited before the new token is handed out.
    """

    def __init__(
        self,
        tokens: TokenSet,
        client: OAuthClient | None = None,
        *,
        margin: timedelta = DEFAULT_MARGIN,
        on_refresh: Callable[[TokenSet], Awaitable[None] | None] | None = None,
        clock: Clock = utcnow,
        reauth: str | None = None,
    ) -> None:
        self._tokens = tokens
        self.client = client
        self.margin = margin
        self.on_refresh = on_refresh
        self.clock = clock
        #: the command that gets a new refresh token, for error messages
        self.reauth = reauth or f"mailmover auth {client.provider if client else ''}".rstrip()
        #: how many refreshes this source has made
        self.refreshes = 0
        self._lock = asyncio.Lock()

    @classmethod
    def static(cls, access_token: str) -> TokenSource:
        """A source that always gives ``access_token`` (never refreshed)."""
        if not access_token:
            raise ValueError("an empty access token")
        return cls(TokenSet(access_token, _NEVER))

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    @property
    def can_refresh(self) -> bool:
        return self.client is not None and bool(self._tokens.refresh_token)

    async def __call__(self) -> str:
        current = self._tokens
        if not current.expires_within(self.margin, self.clock()):
            return current.access_token
        async with self._lock:
            if self._tokens is current:
                try:
                    await self._refresh()
                except NetworkError:
                    # The token is only close to expiry: it still works, and the
                    # next connect tries the refresh again.
                    if not current.expires_within(timedelta(0), self.clock()):
                        log.warning(
                            "token refresh failed; using the current token until it expires"
                        )
                        return current.access_token
                    raise
            return self._tokens.access_token

    async def refresh(self) -> TokenSet:
        """Get a new access token now, whatever the current one's expiry."""
        async with self._lock:
            await self._refresh()
            return self._tokens

    async def _refresh(self) -> None:
        refresh_token = self._tokens.refresh_token
        if self.client is None or not refresh_token:
            raise AuthenticationFailed(
                f"the access token has expired and cannot be refreshed; run `{self.reauth}` again"
            )
        try:
            tokens = await request_tokens(
                self.client,
                {"grant_type": "refresh_token", "refresh_token": refresh_token},
                now=self.clock,
            )
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                raise AuthenticationFailed(
                    f"the refresh token was refused ({exc.description or exc.error}); "
                    f"run `{self.reauth}` again"
                ) from None
            raise
        self._tokens = tokens
        self.refreshes += 1
        log.debug("access token refreshed; valid until %s", tokens.expires_at.isoformat())
        if self.on_refresh is not None:
            saving = self.on_refresh(tokens)
            if inspect.isawaitable(saving):
                await saving

    def __repr__(self) -> str:
        provider = self.client.provider if self.client else "static"
        return f"<TokenSource {provider} until {self._tokens.expires_at.isoformat()}>"
