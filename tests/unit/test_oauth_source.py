"""TokenSet and TokenSource against the local authorization server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mailmover.errors import AuthenticationFailed, NetworkError, ProtocolError
from mailmover.oauth import OAuthClient, TokenSet, TokenSource, oauth_client
from support.oauth_server import OAuthServer

USER = "alice@example.com"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


def client_for(server: OAuthServer, **kwargs: str) -> OAuthClient:
    return oauth_client("test", server.client_id, token_url=server.token_url, **kwargs)


def server_clock(server: OAuthServer) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(server.now(), UTC)


def fresh(server: OAuthServer, lifetime: float = 3600) -> TokenSet:
    access, refresh = server.issue(USER, lifetime)
    expires = datetime.fromtimestamp(server.now(), UTC) + timedelta(seconds=lifetime)
    return TokenSet(access, expires, refresh)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- TokenSet ------------------------------------------------------------------------------


def test_token_reply_is_read_and_keeps_the_refresh_token_when_not_rotated() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    tokens = TokenSet.from_reply(
        {"access_token": "a1", "token_type": "bearer", "expires_in": "120", "scope": "mail"},
        now,
        refresh_token="r0",
    )
    assert tokens.access_token == "a1"
    assert tokens.refresh_token == "r0"
    assert tokens.expires_at == now + timedelta(seconds=120)
    assert tokens.scope == "mail"
    rotated = TokenSet.from_reply(
        {"access_token": "a2", "refresh_token": "r1"}, now, refresh_token="r0"
    )
    assert rotated.refresh_token == "r1"
    assert rotated.expires_at == now + timedelta(hours=1)  # no expires_in: assume an hour


@pytest.mark.parametrize(
    "reply",
    [
        {},
        {"access_token": ""},
        {"access_token": "x", "token_type": "mac"},
        {"access_token": "x", "expires_in": "soon"},
    ],
)
def test_unusable_token_replies_are_protocol_errors(reply: dict[str, str]) -> None:
    with pytest.raises(ProtocolError):
        TokenSet.from_reply(reply, datetime.now(UTC))


def test_tokens_and_secrets_stay_out_of_reprs() -> None:
    tokens = TokenSet("access-123", datetime.now(UTC), "refresh-456")
    client = OAuthClient("test", "https://example.invalid/token", "id", "secret-789")
    source = TokenSource(tokens, client)
    text = repr(tokens) + repr(client) + repr(source) + str(tokens)
    for secret in ("access-123", "refresh-456", "secret-789"):
        assert secret not in text


def test_expires_within() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    tokens = TokenSet("a", now + timedelta(minutes=10))
    assert not tokens.expires_within(timedelta(minutes=5), now)
    assert tokens.expires_within(timedelta(minutes=11), now)
    assert TokenSet.refresh_only("r").expires_within(timedelta(0), now)


# -- TokenSource -----------------------------------------------------------------------------


async def test_a_token_far_from_expiry_is_handed_out_as_is(oauth: OAuthServer) -> None:
    tokens = fresh(oauth)
    source = TokenSource(tokens, client_for(oauth), clock=server_clock(oauth))
    assert await source() == tokens.access_token
    assert await source() == tokens.access_token
    assert source.refreshes == 0 and oauth.refreshes == 0


async def test_a_token_within_the_margin_is_refreshed_once(oauth: OAuthServer) -> None:
    tokens = fresh(oauth)
    seen: list[TokenSet] = []
    source = TokenSource(
        tokens, client_for(oauth), clock=server_clock(oauth), on_refresh=seen.append
    )
    oauth.advance(3600 - 200)  # 200 s left, inside the 5-minute margin
    new = await source()
    assert new != tokens.access_token and oauth.is_live(new)
    assert source.refreshes == 1 and oauth.refreshes == 1
    assert [t.access_token for t in seen] == [new]
    assert seen[0].refresh_token == tokens.refresh_token  # not rotated: kept
    assert await source() == new
    assert oauth.refreshes == 1


async def test_concurrent_callers_share_one_refresh(oauth: OAuthServer) -> None:
    source = TokenSource(TokenSet.refresh_only(oauth.issue(USER)[1]), client_for(oauth))
    got = await asyncio.gather(*(source() for _ in range(20)))
    assert len(set(got)) == 1 and oauth.is_live(got[0])
    assert oauth.refreshes == 1


async def test_a_rotated_refresh_token_replaces_the_old_one(oauth: OAuthServer) -> None:
    oauth.rotate_refresh_tokens = True
    old = oauth.issue(USER)[1]
    seen: list[TokenSet] = []
    source = TokenSource(TokenSet.refresh_only(old), client_for(oauth), on_refresh=seen.append)
    await source()
    assert seen[0].refresh_token not in (None, old)
    assert source.tokens.refresh_token == seen[0].refresh_token
    await source.refresh()  # the old refresh token is dead; the new one must be used
    assert oauth.refreshes == 2


async def test_a_refused_refresh_token_says_to_sign_in_again(oauth: OAuthServer) -> None:
    refresh = oauth.issue(USER)[1]
    oauth.revoke(refresh)
    source = TokenSource(
        TokenSet.refresh_only(refresh), client_for(oauth), reauth="mailmover auth google bob"
    )
    with pytest.raises(AuthenticationFailed) as info:
        await source()
    assert "refresh token was refused" in info.value.message
    assert "run `mailmover auth google bob` again" in info.value.message
    assert refresh not in info.value.message
    assert not info.value.retryable


async def test_a_wrong_client_secret_is_an_authentication_failure(oauth: OAuthServer) -> None:
    oauth.client_secret = "right"
    source = TokenSource(
        TokenSet.refresh_only(oauth.issue(USER)[1]), client_for(oauth, client_secret="wrong")
    )
    with pytest.raises(AuthenticationFailed) as info:
        await source()
    assert "invalid_client" in info.value.message
    good = TokenSource(
        TokenSet.refresh_only(oauth.issue(USER)[1]), client_for(oauth, client_secret="right")
    )
    assert oauth.is_live(await good())


async def test_an_unreachable_token_endpoint_is_a_retryable_network_error() -> None:
    client = oauth_client("test", "id", token_url=f"http://127.0.0.1:{closed_port()}/token")
    source = TokenSource(TokenSet.refresh_only("r"), client)
    with pytest.raises(NetworkError) as info:
        await source()
    assert info.value.retryable


async def test_a_failing_token_endpoint_is_a_network_error(oauth: OAuthServer) -> None:
    source = TokenSource(TokenSet.refresh_only(oauth.issue(USER)[1]), client_for(oauth))
    oauth.outage = True
    with pytest.raises(NetworkError):
        await source()
    oauth.outage = False
    assert oauth.is_live(await source())


async def test_when_the_refresh_fails_a_still_valid_token_is_used(oauth: OAuthServer) -> None:
    tokens = fresh(oauth)
    source = TokenSource(tokens, client_for(oauth), clock=server_clock(oauth))
    oauth.advance(3600 - 60)  # within the margin, not expired
    oauth.outage = True
    assert await source() == tokens.access_token
    oauth.advance(120)  # now expired: nothing to fall back on
    with pytest.raises(NetworkError):
        await source()


async def test_an_expired_token_without_refresh_token_cannot_be_used() -> None:
    source = TokenSource(TokenSet("a", datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(AuthenticationFailed) as info:
        await source()
    assert "cannot be refreshed" in info.value.message


async def test_a_static_token_is_given_as_is() -> None:
    source = TokenSource.static("opaque")
    assert [await source(), await source()] == ["opaque", "opaque"]
    assert not source.can_refresh
    with pytest.raises(ValueError):
        TokenSource.static("")
