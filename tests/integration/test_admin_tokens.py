"""Admin logins that fetch a token per user: Google service accounts and Microsoft app-only.

Both run against the local token endpoint of ``tests/support/oauth_server.py``,
which checks the service account's RS256 signature and the app's client secret.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailmover.engine.ports import SideName
from mailmover.errors import AuthenticationFailed
from mailmover.service.credentials import AdminLogin, StoredCredentials, oauth_spec
from mailmover.service.secrets import SecretBox
from support.oauth_server import JWT_BEARER, OAuthServer


def creds(
    tmp_path: Path, login: AdminLogin, user: str, oauth: OAuthServer | None = None
) -> StoredCredentials:
    box = SecretBox.open(tmp_path, env={})
    blob = box.encrypt(login.spec())

    async def read(_side: SideName) -> bytes | None:
        return blob

    def clock() -> datetime:  # the token server's clock, which tests move forward
        return datetime.fromtimestamp(oauth.now() if oauth else time.time(), UTC)

    return StoredCredentials(box, read, {"source": user, "dest": user}, clock=clock)


async def test_google_service_account_acts_as_each_user(tmp_path: Path) -> None:
    with OAuthServer() as oauth:
        key = oauth.add_service_account("mover@project.iam.gserviceaccount.com")
        login = AdminLogin("google_service_account", secret=json.dumps(key))
        alice = creds(tmp_path, login, "alice@example.com", oauth)
        first = (await alice.secret("dest")).value
        assert oauth.is_live(first) and oauth.access_tokens("alice@example.com") == [first]
        assert (await alice.secret("dest")).value == first  # held until near expiry
        oauth.advance(3600)
        assert (await alice.secret("dest")).value != first
        bob = (await creds(tmp_path, login, "bob@example.com", oauth).secret("source")).value
        assert oauth.access_tokens("bob@example.com") == [bob]
        assert [(g.grant_type, g.subject, g.scope, g.granted) for g in oauth.admin_grants] == [
            (JWT_BEARER, "alice@example.com", "https://mail.google.com/", True),
            (JWT_BEARER, "alice@example.com", "https://mail.google.com/", True),
            (JWT_BEARER, "bob@example.com", "https://mail.google.com/", True),
        ]


async def test_a_service_account_key_the_server_does_not_know_is_refused(tmp_path: Path) -> None:
    with OAuthServer() as oauth:
        key = oauth.add_service_account("a@p.iam.gserviceaccount.com")
        with OAuthServer() as elsewhere:
            other = elsewhere.add_service_account("a@p.iam.gserviceaccount.com")
        forged = {**key, "private_key": other["private_key"]}
        login = AdminLogin("google_service_account", secret=json.dumps(forged))
        with pytest.raises(AuthenticationFailed, match="invalid_grant"):
            await creds(tmp_path, login, "alice@example.com").secret("dest")
        assert [g.granted for g in oauth.admin_grants] == [False]


async def test_microsoft_app_only_client_credentials(tmp_path: Path) -> None:
    with OAuthServer() as oauth:
        oauth.add_app("app-123", "app-secret-xyz")
        login = AdminLogin("microsoft_app", "app-123", "app-secret-xyz", token_url=oauth.token_url)
        assert login.endpoint_auth == "xoauth2"
        token = (await creds(tmp_path, login, "alice@contoso.com").secret("dest")).value
        assert oauth.access_tokens("app:app-123") == [token]
        grant = oauth.admin_grants[-1]
        assert (grant.grant_type, grant.scope) == (
            "client_credentials",
            "https://outlook.office365.com/.default",
        )
        wrong = AdminLogin("microsoft_app", "app-123", "wrong", token_url=oauth.token_url)
        with pytest.raises(AuthenticationFailed, match="invalid_client"):
            await creds(tmp_path, wrong, "alice@contoso.com").secret("dest")


async def test_a_rotated_refresh_token_is_saved_and_used(tmp_path: Path) -> None:
    """A server that rotates refresh tokens voids the old one at each refresh: the new
    one is written back, so the same pass and the next one (another process) go on."""
    with OAuthServer(rotate_refresh_tokens=True) as oauth:
        _access, refresh = oauth.issue("alice@example.com")
        box = SecretBox.open(tmp_path, env={})
        spec = oauth_spec(
            refresh, client_id=oauth.client_id, client_secret=None,
            token_url=oauth.token_url, scope="IMAP",
        )  # fmt: skip
        stored = {"source": box.encrypt(spec)}
        saves: list[str] = []

        async def read(side: SideName) -> bytes | None:
            return stored.get(side)

        async def save(side: SideName, blob: bytes) -> None:
            stored[side] = blob
            saves.append(side)

        def clock() -> datetime:
            return datetime.fromtimestamp(oauth.now(), UTC)

        users: dict[SideName, str] = {"source": "alice@example.com", "dest": "x"}
        first = StoredCredentials(box, read, users, save=save, clock=clock)
        token = (await first.secret("source")).value
        assert oauth.is_live(token) and saves == ["source"]
        [live] = oauth.refresh_tokens("alice@example.com")
        assert live != refresh and box.decrypt(stored["source"])["refresh_token"] == live
        oauth.advance(3600)  # the access token expires: this pass refreshes again
        assert oauth.is_live((await first.secret("source")).value)
        oauth.advance(3600)  # a later pass, in another process, reads the saved one
        later = StoredCredentials(box, read, users, save=save, clock=clock)
        assert oauth.is_live((await later.secret("source")).value)
        assert oauth.refreshes == 3 and saves == ["source"] * 3


async def test_a_rotated_refresh_token_is_used_without_a_place_to_save_it(
    tmp_path: Path,
) -> None:
    with OAuthServer(rotate_refresh_tokens=True) as oauth:
        _access, refresh = oauth.issue("alice@example.com")
        box = SecretBox.open(tmp_path, env={})
        blob = box.encrypt(
            oauth_spec(refresh, client_id=oauth.client_id, client_secret=None,
                       token_url=oauth.token_url, scope="IMAP")
        )  # fmt: skip

        async def read(_side: SideName) -> bytes | None:
            return blob  # never changes: a pre-flight's credentials

        def clock() -> datetime:
            return datetime.fromtimestamp(oauth.now(), UTC)

        creds = StoredCredentials(box, read, {"source": "a", "dest": "a"}, clock=clock)
        for _ in range(3):
            assert oauth.is_live((await creds.secret("source")).value)
            oauth.advance(3600)


async def test_connections_refreshing_together_spend_the_refresh_token_once(
    tmp_path: Path,
) -> None:
    with OAuthServer(rotate_refresh_tokens=True) as oauth:
        _access, refresh = oauth.issue("alice@example.com")
        box = SecretBox.open(tmp_path, env={})
        stored = {
            "dest": box.encrypt(
                oauth_spec(refresh, client_id=oauth.client_id, client_secret=None,
                           token_url=oauth.token_url, scope="IMAP")
            )
        }  # fmt: skip

        async def read(side: SideName) -> bytes | None:
            return stored.get(side)

        async def save(side: SideName, blob: bytes) -> None:
            stored[side] = blob

        creds = StoredCredentials(box, read, {"source": "a", "dest": "a"}, save=save)
        tokens = await asyncio.gather(*(creds.secret("dest") for _ in range(4)))
        assert len({t.value for t in tokens}) == 1 and oauth.is_live(tokens[0].value)
        assert oauth.refreshes == 1
