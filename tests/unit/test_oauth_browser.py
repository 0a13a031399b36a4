"""The browser flow (PKCE, loopback redirect) against the local authorization server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from mailmover.errors import AuthenticationFailed, UsageError
from mailmover.oauth import OAuthClient, TokenSet, browser_flow, oauth_client
from mailmover.oauth.browser import pkce_pair
from support.oauth_server import OAuthServer

USER = "dave@example.com"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        server.authorize_as = USER
        yield server


def client_for(server: OAuthServer) -> OAuthClient:
    return oauth_client(
        "test",
        server.client_id,
        token_url=server.token_url,
        authorize_url=server.authorize_url,
        scopes=("mail",),
    )


class Browser:
    """Follows the authorization URL like a browser would, in a background task."""

    def __init__(self, rewrite: Callable[[str], str] = lambda url: url) -> None:
        self.rewrite = rewrite
        self.urls: list[str] = []
        self.pages: list[httpx.Response] = []
        self.tasks: list[asyncio.Task[None]] = []

    def open(self, url: str) -> None:
        self.urls.append(url)
        self.tasks.append(asyncio.create_task(self._visit(url)))

    async def _visit(self, url: str) -> None:
        async with httpx.AsyncClient() as http:
            first = await http.get(url)
            assert first.status_code == 302
            target = self.rewrite(first.headers["Location"])
            self.pages.append(await http.get(target))

    async def done(self) -> None:
        await asyncio.gather(*self.tasks)


def set_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


async def test_sign_in_through_the_browser(oauth: OAuthServer) -> None:
    browser = Browser()
    tokens = await browser_flow(client_for(oauth), browser.open, login_hint=USER)
    await browser.done()
    assert isinstance(tokens, TokenSet)
    assert oauth.is_live(tokens.access_token)
    assert tokens.refresh_token in oauth.refresh_tokens(USER)
    request = oauth.authorize_requests[0]
    assert request["code_challenge_method"] == "S256"
    assert request["login_hint"] == USER and request["scope"] == "mail"
    assert request["redirect_uri"].startswith("http://127.0.0.1:")
    # The server checked the PKCE verifier against this challenge (RFC 7636 4.6).
    assert len(request["code_challenge"]) == 43
    assert browser.pages[0].status_code == 200
    assert "signed in" in browser.pages[0].text


async def test_stray_requests_do_not_end_the_wait(oauth: OAuthServer) -> None:
    browser = Browser()
    strays: list[int] = []

    async def favicon_then_sign_in(url: str) -> None:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        async with httpx.AsyncClient() as http:
            strays.append((await http.get(redirect + "favicon.ico")).status_code)
        browser.open(url)

    def open_url(url: str) -> None:
        browser.tasks.append(asyncio.create_task(favicon_then_sign_in(url)))

    tokens = await browser_flow(client_for(oauth), open_url)
    await browser.done()
    assert strays == [404]
    assert oauth.is_live(tokens.access_token)


async def test_a_redirect_with_the_wrong_state_is_refused(oauth: OAuthServer) -> None:
    browser = Browser(rewrite=lambda url: set_query(url, state="forged"))
    with pytest.raises(AuthenticationFailed) as info:
        await browser_flow(client_for(oauth), browser.open)
    await browser.done()
    assert "wrong state" in info.value.message
    assert browser.pages[0].status_code == 400
    assert oauth.access_tokens(USER) == []


async def test_a_refused_sign_in_fails(oauth: OAuthServer) -> None:
    oauth.authorize_as = None
    browser = Browser()
    with pytest.raises(AuthenticationFailed) as info:
        await browser_flow(client_for(oauth), browser.open)
    await browser.done()
    assert "access_denied" in info.value.message


async def test_no_answer_from_the_browser_times_out(oauth: OAuthServer) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        await browser_flow(client_for(oauth), lambda url: None, timeout=0.05)
    assert "did not come back" in info.value.message


async def test_a_provider_without_authorization_endpoint_is_a_usage_error(
    oauth: OAuthServer,
) -> None:
    client = oauth_client("test", oauth.client_id, token_url=oauth.token_url)
    with pytest.raises(UsageError):
        await browser_flow(client, lambda url: None)


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert pkce_pair()[0] != verifier
