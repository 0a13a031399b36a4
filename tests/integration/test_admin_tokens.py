"""Admin logins that fetch a token per user: Google service accounts and Microsoft app-only.

Both run against the local token endpoint of ``tests/support/oauth_server.py``,
which checks the service account's RS256 signature and the app's client secret.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailmover.engine.ports import SideName
from mailmover.errors import AuthenticationFailed
from mailmover.service.credentials import AdminLogin, StoredCredentials
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
