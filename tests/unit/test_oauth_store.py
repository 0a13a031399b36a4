"""The encrypted token store and wiring tokens into endpoints."""

from __future__ import annotations

import base64
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mailmover.config import Endpoint, parse_endpoint
from mailmover.errors import UsageError
from mailmover.oauth import (
    TokenSet,
    TokenSource,
    TokenStore,
    endpoint_with_oauth,
    oauth_client,
)
from mailmover.oauth import store as token_store
from support.oauth_server import OAuthServer

USER = "Erin@Example.com"
REFRESH = "rt-very-secret-refresh-token"
ACCESS = "at-very-secret-access-token"
CLIENT_SECRET = "cs-very-secret-client-secret"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILMOVER_SECRET_KEY", raising=False)


def sample_tokens() -> TokenSet:
    return TokenSet(ACCESS, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), REFRESH, "mail")


def forms(secret: str) -> list[bytes]:
    """The secret as it could leak: clear, base64, urlsafe base64."""
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


def test_round_trip_with_a_key_file_made_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "tokens.json"
    client = oauth_client("google", "cid", client_secret=CLIENT_SECRET)
    TokenStore.open(path).save("google", USER, sample_tokens(), client)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key_file = path.with_suffix(".key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    entry = TokenStore.open(path).load("google", USER.lower())  # users match case-blind
    assert entry is not None
    assert entry.tokens == sample_tokens()
    assert (entry.client_id, entry.client_secret) == ("cid", CLIENT_SECRET)
    assert entry.token_url == "https://oauth2.googleapis.com/token"
    stored = path.read_bytes()
    for secret in (REFRESH, ACCESS, CLIENT_SECRET):
        assert not any(form in stored for form in forms(secret))
        assert secret not in repr(entry)


def test_the_environment_key_is_used_and_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens.json"
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("MAILMOVER_SECRET_KEY", key)
    TokenStore.open(path).save("microsoft", USER, sample_tokens())
    assert not path.with_suffix(".key").exists()
    entry = TokenStore.open(path).load("microsoft", USER)
    assert entry is not None and entry.tokens.refresh_token == REFRESH
    monkeypatch.delenv("MAILMOVER_SECRET_KEY")
    with pytest.raises(UsageError) as info:
        TokenStore.open(path).load("microsoft", USER)  # a new key file: wrong key
    assert "another key" in info.value.message
    with pytest.raises(UsageError):
        TokenStore.open(path, secret_key="not a fernet key")


def test_delete_erases_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = TokenStore.open(path)
    store.save("google", USER, sample_tokens())
    other = TokenSet("at-other", datetime.now(UTC), "rt-other")
    store.save("microsoft", USER, other)
    before = path.read_text()
    assert sorted(store.entries()) == [("google", USER), ("microsoft", USER)]
    assert store.delete("google", USER)
    assert not store.delete("google", USER)
    after = path.read_text()
    assert store.load("google", USER) is None
    assert store.entries() == [("microsoft", USER)]
    ciphertexts = [line for line in before.splitlines() if '"secrets"' in line]
    assert sum(c in after for c in ciphertexts) == 1  # only microsoft's remains
    assert not list(tmp_path.glob("*.new"))


def staged_files(directory: Path) -> list[Path]:
    return list(directory.glob("*.new"))


@pytest.fixture
def writers(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The thread of every write of a token store file."""
    threads: list[threading.Thread] = []
    write = token_store._write_private

    def recording(path: Path, data: bytes) -> None:
        threads.append(threading.current_thread())
        write(path, data)

    monkeypatch.setattr(token_store, "_write_private", recording)
    return threads


async def test_asave_writes_off_the_event_loop_atomically_and_private(
    tmp_path: Path, writers: list[threading.Thread]
) -> None:
    path = tmp_path / "tokens.json"
    store = TokenStore.open(path)
    store.save("google", USER, sample_tokens())
    first = path.stat().st_ino
    await store.asave("microsoft", USER, sample_tokens(), oauth_client("microsoft", "cid"))
    assert writers[0] is threading.current_thread()  # save: the caller's thread
    assert len(writers) == 2 and writers[1] is not threading.current_thread()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != first  # a new file renamed over the old one
    assert not staged_files(tmp_path)
    assert sorted(store.entries()) == [("google", USER), ("microsoft", USER)]
    entry = store.load("microsoft", USER)
    assert entry is not None and entry.client_id == "cid"


def test_a_damaged_store_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("[1, 2]")
    with pytest.raises(UsageError):
        TokenStore.open(path).load("google", USER)


# -- endpoint_with_oauth -------------------------------------------------------------------


def oauth_endpoint(host: str = "imap.example.com") -> Endpoint:
    return parse_endpoint(f"imaps://{USER.replace('@', '%40')}@{host}?auth=xoauth2")


async def test_a_bare_access_token_is_used_as_is() -> None:
    endpoint = endpoint_with_oauth(oauth_endpoint(), "opaque-token")
    assert endpoint.token_source is not None
    assert await endpoint.token_source() == "opaque-token"
    assert "opaque-token" not in repr(endpoint)


def test_a_password_endpoint_is_refused() -> None:
    with pytest.raises(UsageError):
        endpoint_with_oauth(parse_endpoint("imaps://bob@imap.example.com"), "token")


async def test_a_stored_token_is_refreshed_and_the_rotated_one_saved(
    tmp_path: Path, oauth: OAuthServer, writers: list[threading.Thread]
) -> None:
    oauth.rotate_refresh_tokens = True
    store = TokenStore.open(tmp_path / "tokens.json")
    first_refresh = oauth.issue(USER)[1]
    client = oauth_client("test", oauth.client_id, token_url=oauth.token_url)
    store.save("test", USER, TokenSet.refresh_only(first_refresh), client)
    endpoint = endpoint_with_oauth(oauth_endpoint(), store, provider="test")
    assert isinstance(endpoint.token_source, TokenSource)
    access = await endpoint.token_source()
    assert oauth.is_live(access)
    # Saved before the token was handed out, from a worker thread, not the event loop's.
    assert len(writers) == 2 and writers[1] is not threading.current_thread()
    saved = store.load("test", USER)
    assert saved is not None
    assert saved.tokens.access_token == access
    assert saved.tokens.refresh_token not in (None, first_refresh)
    assert saved.tokens.refresh_token in oauth.refresh_tokens(USER)
    # A later run starts from what was saved: the stored access token, no refresh.
    again = endpoint_with_oauth(oauth_endpoint(), store, provider="test")
    assert again.token_source is not None
    assert await again.token_source() == access
    assert oauth.refreshes == 1


def test_the_provider_comes_from_the_host_or_the_only_entry(tmp_path: Path) -> None:
    store = TokenStore.open(tmp_path / "tokens.json")
    client = oauth_client("microsoft", "cid")
    store.save("microsoft", USER, sample_tokens(), client)
    by_host = endpoint_with_oauth(oauth_endpoint("outlook.office365.com"), store)
    assert isinstance(by_host.token_source, TokenSource)
    assert by_host.token_source.client is not None
    assert by_host.token_source.client.token_url.startswith("https://login.microsoftonline.com/")
    only = endpoint_with_oauth(oauth_endpoint(), store)
    assert isinstance(only.token_source, TokenSource)
    assert "mailmover auth microsoft" in only.token_source.reauth
    with pytest.raises(UsageError) as info:
        endpoint_with_oauth(oauth_endpoint("imap.gmail.com"), store)
    assert "mailmover auth google" in info.value.message
    store.save("google", USER, sample_tokens(), oauth_client("google", "cid"))
    with pytest.raises(UsageError) as info:
        endpoint_with_oauth(oauth_endpoint(), store)
    assert "say which provider" in info.value.message


def test_a_refresh_token_needs_a_client_id() -> None:
    tokens = TokenSet(ACCESS, datetime.now(UTC) + timedelta(hours=1), REFRESH)
    with pytest.raises(UsageError) as info:
        endpoint_with_oauth(oauth_endpoint("imap.gmail.com"), tokens)
    assert "client id" in info.value.message
    wired = endpoint_with_oauth(oauth_endpoint("imap.gmail.com"), tokens, client_id="cid")
    assert isinstance(wired.token_source, TokenSource) and wired.token_source.can_refresh


@pytest.mark.parametrize(
    "url", ["http://auth.example.com/token", "ftp://127.0.0.1/token", "https:///token", "token"]
)
def test_endpoints_must_be_https_off_loopback(url: str) -> None:
    with pytest.raises(UsageError):
        oauth_client("test", "cid", token_url=url)
    with pytest.raises(UsageError):
        oauth_client("google", "cid", device_url=url)
    assert oauth_client("test", "cid", token_url="http://[::1]:8080/token").token_url
