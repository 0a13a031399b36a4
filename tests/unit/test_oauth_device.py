"""The device authorization grant (RFC 8628) against the local authorization server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mailmover.errors import AuthenticationFailed, UsageError
from mailmover.oauth import DevicePrompt, OAuthClient, device_flow, oauth_client
from support.oauth_server import OAuthServer

USER = "carol@example.com"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer(device_interval=0.01) as server:
        yield server


def client_for(server: OAuthServer) -> OAuthClient:
    return oauth_client(
        "test",
        server.client_id,
        token_url=server.token_url,
        device_url=server.device_url,
        scopes=("mail", "offline_access"),
    )


class Approver:
    """Approves the shown code, in a background task, once the client has polled enough."""

    def __init__(self, server: OAuthServer, polls: int) -> None:
        self.server, self.polls = server, polls
        self.prompts: list[DevicePrompt] = []
        self.task: asyncio.Task[None] | None = None

    def show(self, prompt: DevicePrompt) -> None:
        self.prompts.append(prompt)
        self.task = asyncio.create_task(self._approve(prompt.user_code))

    async def _approve(self, user_code: str) -> None:
        await asyncio.to_thread(self.server.wait_for_polls, self.polls)
        self.server.approve(user_code, USER)


async def test_the_code_is_shown_and_tokens_come_once_approved(oauth: OAuthServer) -> None:
    approver = Approver(oauth, polls=3)
    tokens = await device_flow(client_for(oauth), approver.show)
    assert approver.task is not None
    await approver.task
    assert len(approver.prompts) == 1
    prompt = approver.prompts[0]
    assert prompt.verification_uri == oauth.url + "/verify"
    assert prompt.user_code in (prompt.verification_uri_complete or "")
    assert oauth.polls >= 4  # pending at least three times, then granted
    assert oauth.is_live(tokens.access_token)
    assert tokens.refresh_token in oauth.refresh_tokens(USER)
    assert tokens.scope == "mail offline_access"


async def test_slow_down_replies_do_not_end_the_polling(oauth: OAuthServer) -> None:
    oauth.slow_down_polls = 2
    oauth.auto_approve = USER
    tokens = await device_flow(client_for(oauth), lambda prompt: None, slow_down_step=0.01)
    assert oauth.polls == 3
    assert oauth.is_live(tokens.access_token)


async def test_a_denied_request_fails(oauth: OAuthServer) -> None:
    def show(prompt: DevicePrompt) -> None:
        oauth.deny(prompt.user_code)

    with pytest.raises(AuthenticationFailed) as info:
        await device_flow(client_for(oauth), show)
    assert "denied" in info.value.message


async def test_an_expired_code_fails(oauth: OAuthServer) -> None:
    def show(prompt: DevicePrompt) -> None:
        oauth.advance(oauth.device_ttl + 1)  # the user takes too long

    with pytest.raises(AuthenticationFailed) as info:
        await device_flow(client_for(oauth), show)
    assert "expired" in info.value.message


async def test_the_code_lifetime_also_bounds_polling(oauth: OAuthServer) -> None:
    oauth.device_ttl = 0.05  # the server never answers expired_token within it
    with pytest.raises(AuthenticationFailed) as info:
        await device_flow(client_for(oauth), lambda prompt: None)
    assert "expired" in info.value.message


async def test_a_wrong_client_id_is_refused(oauth: OAuthServer) -> None:
    client = oauth_client(
        "test", "someone-else", token_url=oauth.token_url, device_url=oauth.device_url
    )
    with pytest.raises(AuthenticationFailed) as info:
        await device_flow(client, lambda prompt: None)
    assert "invalid_client" in info.value.message


async def test_a_provider_without_device_endpoint_is_a_usage_error(oauth: OAuthServer) -> None:
    client = oauth_client("test", oauth.client_id, token_url=oauth.token_url)
    with pytest.raises(UsageError):
        await device_flow(client, lambda prompt: None)
