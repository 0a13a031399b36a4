"""OAuth2 logins end to end: Dovecot's oauth2 passdb checks tokens at the local server.

Dovecot introspects every XOAUTH2/OAUTHBEARER token at ``OAuthServer``'s
RFC 7662 endpoint, so a login succeeds exactly when the token is live there.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailmover.config import Endpoint
from mailmover.devserver import DevServer
from mailmover.engine.session import EndpointCredentials, SessionOptions, open_session
from mailmover.errors import AuthenticationFailed, UsageError
from mailmover.imap import sasl
from mailmover.imap.client import IMAPClient
from mailmover.imap.trace import ProtocolTrace
from mailmover.oauth import (
    DevicePrompt,
    TokenSet,
    TokenSource,
    TokenStore,
    device_flow,
    endpoint_with_oauth,
    oauth_client,
)
from support.oauth_dovecot import oauth_dovecot
from support.oauth_server import OAuthServer

MECHANISMS = ["XOAUTH2", "OAUTHBEARER"]


async def connect(ep: Endpoint, options: SessionOptions, label: str) -> IMAPClient:
    """A session for ``ep``, asking for its secret as the engine does at each connect."""
    return await open_session(
        ep, await EndpointCredentials(ep, ep).secret("source"), options, label
    )


@pytest.fixture(scope="module")
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer(device_interval=0.01) as server:
        yield server


@pytest.fixture(scope="module")
def server(oauth: OAuthServer, dovecot_factory: Callable[..., DevServer]) -> Iterator[DevServer]:
    """Dovecot taking passwords (passwd-file) and OAuth2 tokens (oauth2 passdb)."""
    with oauth_dovecot(dovecot_factory, oauth) as dovecot:
        yield dovecot


def new_user() -> str:
    return f"oauth-{secrets.token_hex(4)}@example.com"


def endpoint(server: DevServer, user: str, auth: str = "xoauth2") -> Endpoint:
    return Endpoint(user=user, host=server.host, port=server.port, security="plain", auth=auth)


def server_clock(oauth: OAuthServer) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(oauth.now(), UTC)


async def login(
    server: DevServer, mechanism: str, user: str, token: str, trace: ProtocolTrace | None = None
) -> IMAPClient:
    client = await IMAPClient.connect(server.host, server.port, security="plain", trace=trace)
    try:
        await client.authenticate(mechanism, user, token)
    except BaseException:
        await client.close()
        raise
    return client


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_a_live_token_logs_in(server: DevServer, oauth: OAuthServer, mechanism: str) -> None:
    user = new_user()
    access, _ = oauth.issue(user)
    client = await login(server, mechanism, user, access)
    mailbox = await client.select("INBOX")
    assert mailbox is not None
    await client.logout()
    assert [(i.token, i.active) for i in oauth.introspections if i.username == user] == [
        (access, True)
    ]


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_an_expired_token_is_refused(
    server: DevServer, oauth: OAuthServer, mechanism: str
) -> None:
    user = new_user()
    access, _ = oauth.issue(user, ttl=0)
    with pytest.raises(AuthenticationFailed) as info:
        await login(server, mechanism, user, access)
    assert access not in str(info.value)
    assert [i.active for i in oauth.introspections if i.token == access] == [False]


async def test_a_token_of_another_user_is_refused(server: DevServer, oauth: OAuthServer) -> None:
    owner, intruder = new_user(), new_user()
    access, _ = oauth.issue(owner)
    with pytest.raises(AuthenticationFailed):
        await login(server, "XOAUTH2", intruder, access)
    client = await login(server, "XOAUTH2", owner, access)
    await client.logout()


async def test_passwords_still_work_beside_tokens(server: DevServer) -> None:
    account = server.add_user(f"pw-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    client = await IMAPClient.connect(server.host, server.port, security="plain")
    await client.login(account.name, account.password)
    await client.logout()


async def test_a_long_run_refreshes_the_token_before_reconnecting(
    server: DevServer, oauth: OAuthServer
) -> None:
    user = new_user()
    first, refresh = oauth.issue(user)
    clock = server_clock(oauth)
    source = TokenSource(
        TokenSet(first, clock() + timedelta(seconds=oauth.access_ttl), refresh),
        oauth_client("test", oauth.client_id, token_url=oauth.token_url),
        clock=clock,
    )
    ep = endpoint(server, user).with_token_source(source)
    options = SessionOptions()

    early = await connect(ep, options, "first")
    assert source.refreshes == 0

    # Hours into the run: the token has less than the 5-minute margin left.
    oauth.advance(oauth.access_ttl - 120)
    later = await connect(ep, options, "reconnect")
    second = source.tokens.access_token
    assert source.refreshes == 1 and second != first
    assert [i.token for i in oauth.introspections if i.username == user] == [first, second]
    await early.noop()  # a session already logged in is not disturbed
    await asyncio.gather(early.logout(), later.logout())

    # Past the first token's expiry: it is refused, the source's token still works.
    oauth.advance(300)
    with pytest.raises(AuthenticationFailed):
        await login(server, "XOAUTH2", user, first)
    last = await connect(ep, options, "again")
    await last.logout()
    assert source.refreshes == 1
    assert oauth.introspections[-1].token == second and oauth.introspections[-1].active


async def test_device_flow_then_login_from_the_encrypted_store(
    server: DevServer, oauth: OAuthServer, tmp_path: Path
) -> None:
    user = new_user()
    client = oauth_client(
        "test", oauth.client_id, token_url=oauth.token_url, device_url=oauth.device_url
    )
    approvals: list[asyncio.Task[None]] = []

    async def approve(prompt: DevicePrompt) -> None:
        # The user reads the code, opens the page while we poll, and approves.
        await asyncio.to_thread(oauth.wait_for_polls, oauth.polls + 2)
        oauth.approve(prompt.user_code, user)

    tokens = await device_flow(
        client, lambda prompt: approvals.append(asyncio.create_task(approve(prompt)))
    )
    await asyncio.gather(*approvals)
    assert tokens.refresh_token is not None

    store = TokenStore.open(tmp_path / "tokens.json", secret_key=None)
    store.save("test", user, tokens, client)
    stored = store.path.read_bytes()
    for secret in (tokens.refresh_token, tokens.access_token):
        assert secret.encode() not in stored
        assert base64.b64encode(secret.encode()) not in stored

    for auth in ("xoauth2", "oauthbearer"):
        wired = endpoint_with_oauth(endpoint(server, user, auth), store, provider="test")
        session = await connect(wired, SessionOptions(), "stored")
        await session.logout()

    assert store.delete("test", user)
    assert tokens.refresh_token.encode() not in store.path.read_bytes()
    with pytest.raises(UsageError):
        endpoint_with_oauth(endpoint(server, user), store, provider="test")


async def test_the_trace_of_an_oauth_login_holds_no_token(
    server: DevServer, oauth: OAuthServer
) -> None:
    user = new_user()
    live, _ = oauth.issue(user)
    dead, _ = oauth.issue(user, ttl=0)
    lines: list[str] = []
    ep = endpoint(server, user).with_token_source(TokenSource.static(live))
    session = await connect(ep, SessionOptions(trace=lines.append), "t")
    await session.logout()
    with pytest.raises(AuthenticationFailed):
        await login(server, "XOAUTH2", user, dead, trace=ProtocolTrace("t", lines.append))
    with pytest.raises(AuthenticationFailed):
        await login(server, "OAUTHBEARER", user, dead, trace=ProtocolTrace("t", lines.append))
    text = "\n".join(lines)
    assert text.count("AUTHENTICATE") >= 3
    for token in (live, dead):
        leaks = [
            token,
            base64.b64encode(token.encode()).decode(),
            sasl.xoauth2(user, token).decode(),
            sasl.oauthbearer(user, token, server.host, server.port).decode(),
        ]
        assert not [leak for leak in leaks if leak in text]
