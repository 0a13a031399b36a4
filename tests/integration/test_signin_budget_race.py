"""Wrong-password budgets under sign-ins checked at once: each attempt is counted before
its password is checked, so parallel requests (threads here, each with its own database
connection, as web processes would be) never pass the limit together."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from mailmover.service.signinlimits import KEEP, SigninLimiter
from mailmover.store import Store, schema

LIMIT = 5
PARALLEL = 24


@pytest.fixture
def stores(database_url: str) -> Iterator[list[Store]]:
    opened = [Store.open(database_url) for _ in range(PARALLEL)]
    try:
        yield opened
    finally:
        for store in opened:
            store.close()


def test_sign_ins_checked_at_once_never_pass_the_limit_together(stores: list[Store]) -> None:
    start = threading.Barrier(PARALLEL)

    def guess(store: Store) -> bool:
        limiter = SigninLimiter(store, account_limit=LIMIT, address_limit=100)
        start.wait()
        attempt = limiter.begin("signin:ann", "192.0.2.7")
        if attempt is None:
            return False
        time.sleep(0.2)  # the password is checked meanwhile (Argon2, or a mail login)
        return True  # wrong: it stays counted

    with ThreadPoolExecutor(PARALLEL) as pool:
        checked = sum(pool.map(guess, stores))
    assert checked == LIMIT
    with stores[0].engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(schema.signin_failure)).scalar()
    assert rows == 2 * LIMIT  # one for the account, one for the address, per attempt


def test_a_right_password_gives_its_attempt_back(stores: list[Store]) -> None:
    limiter = SigninLimiter(stores[0], account_limit=2, address_limit=100)
    for _ in range(5):  # right every time: never refused
        attempt = limiter.begin("signin:bob", "192.0.2.8")
        assert attempt is not None
        attempt.succeeded()
    assert limiter.begin("signin:bob", "192.0.2.8") is not None  # wrong, counted
    assert limiter.begin("signin:bob", "192.0.2.8") is not None  # wrong, counted
    assert limiter.begin("signin:bob", "192.0.2.8") is None  # the budget is spent
    assert limiter.begin("signin:carol", "192.0.2.8") is not None  # another account's


def test_attempts_forget_rows_older_than_they_are_kept(stores: list[Store]) -> None:
    """Rows past ``KEEP`` (or the window) are deleted as new attempts are counted."""
    now = [1_000_000.0]
    limiter = SigninLimiter(stores[0], account_limit=3, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.begin("signin:dan", "192.0.2.9") is not None
    assert limiter.begin("signin:dan", "192.0.2.9") is None
    now[0] += KEEP + 1
    assert limiter.begin("signin:dan", "192.0.2.9") is not None
    with stores[0].engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(schema.signin_failure)).scalar()
    assert rows == 2  # this attempt's two rows; the old six are gone
