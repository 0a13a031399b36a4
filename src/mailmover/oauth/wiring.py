"""Giving an endpoint a token source: a stored refresh token, a token set or an access token."""

from __future__ import annotations

from datetime import timedelta

from mailmover.config import Endpoint
from mailmover.errors import UsageError
from mailmover.oauth.client import oauth_client, provider_for_host
from mailmover.oauth.grant import TokenSet
from mailmover.oauth.source import DEFAULT_MARGIN, TokenSource
from mailmover.oauth.store import TokenStore

_OAUTH_MECHANISMS = ("xoauth2", "oauthbearer")


def endpoint_with_oauth(
    endpoint: Endpoint,
    tokens: TokenStore | TokenSet | str,
    *,
    provider: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    token_url: str | None = None,
    margin: timedelta = DEFAULT_MARGIN,
) -> Endpoint:
    """``endpoint`` with a ``TokenSource`` that ``open_session`` asks at every (re)connect.

    ``tokens`` is a ``TokenStore`` (the entry of ``endpoint.user`` is used, and
    a rotated refresh token is saved back), a ``TokenSet``, or a bare access
    token (used as is, never refreshed). ``provider`` defaults to the preset
    owning the endpoint's host, else the only stored provider for the user.
    Client id, secret and token URL default to those stored with the entry,
    then to the provider's preset.
    """
    if endpoint.auth not in _OAUTH_MECHANISMS:
        raise UsageError(
            f"{endpoint.url} logs in with {endpoint.auth}; add ?auth=xoauth2 or "
            "?auth=oauthbearer to use an OAuth2 token"
        )
    if isinstance(tokens, str):
        return endpoint.with_token_source(TokenSource.static(tokens))
    store = tokens if isinstance(tokens, TokenStore) else None
    if store is not None:
        provider = provider or _stored_provider(store, endpoint)
        entry = store.load(provider, endpoint.user)
        if entry is None:
            raise UsageError(
                f"no OAuth2 token stored for {endpoint.user} at {provider}; "
                f"run `mailmover auth {provider} {endpoint.user}` first"
            )
        tokens = entry.tokens
        client_id = client_id or entry.client_id
        client_secret = client_secret or entry.client_secret
        token_url = token_url or entry.token_url
    assert isinstance(tokens, TokenSet)
    provider = provider or provider_for_host(endpoint.host) or "custom"
    client = None
    if tokens.refresh_token:
        client = oauth_client(provider, client_id, client_secret=client_secret, token_url=token_url)
    source = TokenSource(
        tokens, client, margin=margin, reauth=f"mailmover auth {provider} {endpoint.user}"
    )
    if store is not None:
        saved_as = (provider, endpoint.user)
        # A refresh may rotate the refresh token (Microsoft does): keep the new one,
        # written from a worker thread (the refresh runs on the event loop).
        source.on_refresh = lambda new: store.asave(*saved_as, new, client)
    return endpoint.with_token_source(source)


def _stored_provider(store: TokenStore, endpoint: Endpoint) -> str:
    by_host = provider_for_host(endpoint.host)
    if by_host is not None:
        return by_host
    user = endpoint.user.casefold()
    found = sorted({p for p, u in store.entries() if u.casefold() == user})
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(
            f"no OAuth2 token stored for {endpoint.user}; run `mailmover auth PROVIDER "
            f"{endpoint.user}` first"
        )
    raise UsageError(
        f"tokens for {endpoint.user} are stored for {', '.join(found)}; say which provider"
    )
