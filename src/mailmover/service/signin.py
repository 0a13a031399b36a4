"""A user's OAuth2 sign-in through the web app (authorization code with PKCE, RFC 7636).

The web app sends the browser to the provider's authorization page with a random
``state``, and trades the code it gets back for tokens; what is stored is the refresh
token as a ``service.credentials`` spec of kind ``oauth``. A sign-in on its way is kept
in the job database (``service.pending``), so the browser may come back to any process
of the app. Which providers can sign in
depends on configuration: ``MAILMOVER_OAUTH_GOOGLE_CLIENT_ID`` (and ``_CLIENT_SECRET``),
``MAILMOVER_OAUTH_MICROSOFT_CLIENT_ID`` (and ``_CLIENT_SECRET``); the endpoints may be
moved with ``MAILMOVER_OAUTH_<PROVIDER>_AUTHORIZE_URL`` and ``..._TOKEN_URL``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from mailmover.errors import AuthenticationFailed, UsageError
from mailmover.oauth.browser import authorize_url, pkce_pair
from mailmover.oauth.client import OAuthClient, oauth_client
from mailmover.oauth.grant import request_tokens
from mailmover.service.credentials import oauth_spec
from mailmover.service.pending import PendingRecords
from mailmover.service.secrets import SecretBox
from mailmover.store.database import Store

PROVIDERS: Final = ("google", "microsoft")
#: how long a sign-in may take between leaving for the provider and coming back
PENDING_FOR: Final = timedelta(minutes=10)


def clients(env: Mapping[str, str]) -> dict[str, OAuthClient]:
    """The providers users can sign in with, by name (those with a client id configured)."""
    out = {}
    for name in PROVIDERS:
        prefix = f"MAILMOVER_OAUTH_{name.upper()}_"
        client_id = env.get(prefix + "CLIENT_ID", "").strip()
        if not client_id:
            continue
        out[name] = oauth_client(
            name,
            client_id,
            client_secret=env.get(prefix + "CLIENT_SECRET") or None,
            token_url=env.get(prefix + "TOKEN_URL") or None,
            authorize_url=env.get(prefix + "AUTHORIZE_URL") or None,
        )
    return out


class SignIns:
    """Sign-ins waiting for the browser to come back, by ``state`` (short-lived)."""

    def __init__(self, clients: dict[str, OAuthClient], store: Store, box: SecretBox) -> None:
        self.clients = clients
        self._pending = PendingRecords(store, box, "oauth", PENDING_FOR)

    def start(
        self,
        provider: str,
        redirect_uri: str,
        purpose: dict[str, Any],
        login_hint: str | None = None,
    ) -> str:
        """The provider's authorization URL to send the browser to."""
        client = self.clients.get(provider)
        if client is None or not client.authorize_url:
            raise UsageError(f"signing in with {provider} is not set up on this server")
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        self._pending.put(state, {"provider": provider, "verifier": verifier,
                                  "redirect_uri": redirect_uri, "purpose": purpose})  # fmt: skip
        return authorize_url(client, redirect_uri, state, challenge, login_hint)

    async def finish(
        self, state: str, code: str | None, error: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The purpose given to ``start`` and the credentials spec the sign-in gave."""
        pending = self._pending.pop(state) if state else None
        if pending is None:
            raise AuthenticationFailed(
                "this sign-in is not one this server started, or it took too long; start again"
            )
        if error:
            raise AuthenticationFailed(f"the sign-in was refused ({error[:60]})")
        if not code:
            raise AuthenticationFailed("the provider sent no authorization code; start again")
        client = self.clients[pending["provider"]]
        grant = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending["redirect_uri"],
            "code_verifier": pending["verifier"],
        }
        tokens = await request_tokens(client, grant)
        spec = oauth_spec(
            tokens.refresh_token or "",
            client_id=client.client_id,
            client_secret=client.client_secret,
            token_url=client.token_url,
            scope=client.scope,
        )
        purpose: dict[str, Any] = pending["purpose"]
        return purpose, spec
