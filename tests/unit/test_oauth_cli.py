"""`mailmover auth` end to end against the local authorization server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailmover.cli.main import app
from mailmover.oauth import TokenStore
from support.oauth_server import OAuthServer

USER = "frank@example.com"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer(device_interval=0.01, auto_approve=USER) as server:
        yield server


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILMOVER_SECRET_KEY", raising=False)


def run(oauth: OAuthServer, store: Path, *args: str) -> tuple[int, str]:
    env = {
        "MAILMOVER_OAUTH_TOKEN_URL": oauth.token_url,
        "MAILMOVER_OAUTH_DEVICE_URL": oauth.device_url,
        "MAILMOVER_OAUTH_CLIENT_ID": oauth.client_id,
        "MAILMOVER_TOKEN_STORE": str(store),
    }
    result = CliRunner().invoke(app, ["auth", *args], env=env)
    return result.exit_code, result.output


def test_device_sign_in_stores_the_token_encrypted(oauth: OAuthServer, tmp_path: Path) -> None:
    store = tmp_path / "tokens.json"
    code, output = run(oauth, store, "microsoft", USER)
    assert code == 0, output
    assert f"{oauth.url}/verify" in output
    assert f"Stored the OAuth2 token of {USER} (microsoft), encrypted, in {store}" in output
    [refresh] = oauth.refresh_tokens(USER)
    [access] = oauth.access_tokens(USER)
    for secret in (refresh, access):
        assert secret not in output
        assert secret.encode() not in store.read_bytes()
    entry = TokenStore.open(store).load("microsoft", USER)
    assert entry is not None
    assert entry.tokens.refresh_token == refresh
    assert entry.client_id == oauth.client_id and entry.token_url == oauth.token_url


def test_forget_erases_the_stored_token(oauth: OAuthServer, tmp_path: Path) -> None:
    store = tmp_path / "tokens.json"
    assert run(oauth, store, "microsoft", USER, "--device")[0] == 0
    code, output = run(oauth, store, "microsoft", USER, "--forget")
    assert code == 0 and "Erased" in output
    assert TokenStore.open(store).load("microsoft", USER) is None
    assert oauth.refresh_tokens(USER)[0].encode() not in store.read_bytes()


def test_a_denied_sign_in_exits_3_and_stores_nothing(oauth: OAuthServer, tmp_path: Path) -> None:
    oauth.auto_approve = None

    def deny_on_the_verification_page() -> None:
        oauth.wait_for_polls(1)
        oauth.deny(oauth.pending_user_codes()[0])

    user = threading.Thread(target=deny_on_the_verification_page)
    user.start()
    store = tmp_path / "tokens.json"
    code, output = run(oauth, store, "microsoft", USER)
    user.join()
    assert code == 3
    assert "denied" in output
    assert not store.exists() or TokenStore.open(store).entries() == []


def test_an_unreachable_provider_exits_3(oauth: OAuthServer, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/device"
    code, output = run(oauth, tmp_path / "tokens.json", "microsoft", USER, "--device-url", closed)
    assert code == 3, output
    assert "cannot reach" in output


@pytest.mark.parametrize(
    "args",
    [["yahoo", USER], ["microsoft"], ["microsoft", USER, "--no-such-option"]],
)
def test_usage_errors_exit_2(oauth: OAuthServer, tmp_path: Path, args: list[str]) -> None:
    assert run(oauth, tmp_path / "tokens.json", *args)[0] == 2


def test_a_missing_client_id_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["auth", "google", USER, "--store", str(tmp_path / "t.json")],
        env={"MAILMOVER_OAUTH_CLIENT_ID": None},
    )
    assert result.exit_code == 2
    assert "client id" in result.output
