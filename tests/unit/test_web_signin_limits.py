"""Sign-in limits (in a real job database) and anonymous CSRF tokens; the test moves the clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.service.signinlimits import SigninLimiter
from mailmover.store import Store
from mailmover.web.csrf import AnonymousTokens


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


def test_ten_wrong_passwords_close_the_account_for_the_window(store: Store) -> None:
    clock = Clock()
    limiter = SigninLimiter(store, 10, 30, 60.0, clock)
    for _ in range(10):
        assert limiter.allowed("a@x", "1.2.3.4")
        limiter.failed("a@x", "1.2.3.4")
    assert not limiter.allowed("a@x", "1.2.3.4")
    assert not limiter.allowed("a@x", "5.6.7.8")  # per account, from anywhere
    assert limiter.allowed("b@x", "1.2.3.4")  # the address has 20 to go
    clock.now += 59.9
    assert not limiter.allowed("a@x", "1.2.3.4")
    clock.now += 0.2
    assert limiter.allowed("a@x", "1.2.3.4")


def test_an_address_trying_many_accounts_is_closed_too(store: Store) -> None:
    limiter = SigninLimiter(store, 10, 30, 60.0, Clock())
    for n in range(30):
        assert limiter.allowed(f"user{n}@x", "9.9.9.9")
        limiter.failed(f"user{n}@x", "9.9.9.9")
    assert not limiter.allowed("someone-new@x", "9.9.9.9")
    assert limiter.allowed("someone-new@x", "9.9.9.8")


def test_anonymous_tokens_are_signed_by_this_process() -> None:
    tokens = AnonymousTokens()
    token = tokens.mint()
    assert tokens.valid(token)
    nonce, _, signature = token.partition(".")
    assert not tokens.valid(f"{nonce}x.{signature}")
    assert not tokens.valid(nonce)
    assert not tokens.valid(None)
    assert not AnonymousTokens().valid(token)  # another process's key
