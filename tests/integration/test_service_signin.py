"""A user's OAuth2 sign-in as the web app does it: authorize, code, tokens, XOAUTH2 login.

The local authorization server signs its user in at once and redirects with a code;
Dovecot checks every token at that server's introspection endpoint.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mailmover.config import Endpoint
from mailmover.devserver import DevServer
from mailmover.errors import AuthenticationFailed
from mailmover.service.credentials import oauth_spec
from mailmover.service.logins import try_login
from mailmover.service.secrets import SecretBox
from mailmover.service.signin import SignIns, clients
from mailmover.store import Store
from support.oauth_dovecot import oauth_dovecot
from support.oauth_server import OAuthServer


@pytest.fixture(scope="module")
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(oauth: OAuthServer, dovecot_factory) -> Iterator[DevServer]:  # type: ignore[no-untyped-def]
    with oauth_dovecot(dovecot_factory, oauth) as dovecot:
        yield dovecot


def env(oauth: OAuthServer) -> dict[str, str]:
    return {
        "MAILMOVER_OAUTH_GOOGLE_CLIENT_ID": oauth.client_id,
        "MAILMOVER_OAUTH_GOOGLE_TOKEN_URL": oauth.token_url,
        "MAILMOVER_OAUTH_GOOGLE_AUTHORIZE_URL": oauth.authorize_url,
    }


async def test_a_signin_gives_a_refresh_token_that_logs_in(
    oauth: OAuthServer, server: DevServer, tmp_path: Path
) -> None:
    user = f"web-{secrets.token_hex(3)}@example.com"
    oauth.authorize_as = user
    url_db, box = f"sqlite:///{tmp_path}/state.db", SecretBox.open(tmp_path, env={})
    with Store.open(url_db) as here, Store.open(url_db) as there:
        # Started by one web process; the browser comes back to another.
        started = SignIns(clients(env(oauth)), here, box)
        signins = SignIns(clients(env(oauth)), there, box)
        await one_signin(oauth, server, user, started, signins)


async def one_signin(
    oauth: OAuthServer, server: DevServer, user: str, started: SignIns, signins: SignIns
) -> None:
    assert list(signins.clients) == ["google"]
    redirect = "http://127.0.0.1:1/oauth/callback"
    url = started.start("google", redirect, {"draft": "d1", "side": "source"}, login_hint=user)
    async with httpx.AsyncClient() as http:
        answer = await http.get(url, follow_redirects=False)
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    purpose, spec = await signins.finish(back["state"][0], back["code"][0], None)
    assert purpose == {"draft": "d1", "side": "source"}
    assert spec["kind"] == "oauth" and spec["refresh_token"]
    endpoint = Endpoint(user, server.host, server.port, "plain", auth="xoauth2")
    assert (await try_login(endpoint, spec)).ok
    # The same state cannot be used twice, nor one the server never made.
    with pytest.raises(AuthenticationFailed, match="not one this server started"):
        await signins.finish(back["state"][0], back["code"][0], None)
    oauth.authorize_as = None
    url = signins.start("google", redirect, {})
    async with httpx.AsyncClient() as http:
        answer = await http.get(url, follow_redirects=False)
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    with pytest.raises(AuthenticationFailed, match="refused"):
        await signins.finish(back["state"][0], None, back["error"][0])


def test_only_providers_with_a_client_id_are_offered() -> None:
    assert clients({}) == {}
    assert list(clients({"MAILMOVER_OAUTH_MICROSOFT_CLIENT_ID": "abc"})) == ["microsoft"]


async def test_a_login_check_keeps_the_refresh_token_it_rotated(dovecot_factory) -> None:  # type: ignore[no-untyped-def]
    """A provider that rotates refresh tokens voids the one a check spent: the check
    writes the new one into the spec the caller then stores, so the next login works."""
    with (
        OAuthServer(rotate_refresh_tokens=True) as oauth,
        oauth_dovecot(dovecot_factory, oauth) as server,
    ):
        user = f"rot-{secrets.token_hex(3)}@example.com"
        _access, refresh = oauth.issue(user)
        spec = oauth_spec(refresh, client_id=oauth.client_id, client_secret=None,
                          token_url=oauth.token_url, scope="IMAP")  # fmt: skip
        endpoint = Endpoint(user, server.host, server.port, "plain", auth="xoauth2")
        assert (await try_login(endpoint, spec)).ok
        assert spec["refresh_token"] != refresh
        assert oauth.refresh_tokens(user) == [spec["refresh_token"]]
        assert (await try_login(endpoint, spec)).ok  # the stored spec still logs in
