"""A live progress stream checks its reader again as they are now, in a real job database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.requests import Request

from mailmover.service import accounts, apitokens, sessions
from mailmover.service.accounts import ADMIN, USER
from mailmover.store import Store, schema
from mailmover.web.auth import SESSION_COOKIE
from mailmover.web.transfers import still_allowed


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


def _request(cookie: str | None = None, bearer: str | None = None) -> Request:
    headers = []
    if cookie is not None:
        headers.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    if bearer is not None:
        headers.append((b"authorization", f"Bearer {bearer}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def _job(store: Store, owner: accounts.Account) -> str:
    with store.write_engine.begin() as conn:
        conn.execute(
            schema.job.insert().values(
                name="theirs", created_at=datetime.now(UTC), state="running",
                owner=owner.email, owner_id=owner.id, settings={},
            )
        )  # fmt: skip
    return "theirs"


def test_an_admin_made_a_user_stops_reading_anothers_transfer(store: Store) -> None:
    owner = accounts.create_account(store, "owner@example.com", "owner password", USER)
    admin = accounts.create_account(store, "admin@example.com", "admin password", ADMIN)
    accounts.create_account(store, "other@example.com", "other password", ADMIN)
    job = _job(store, owner)
    cookie, _ = sessions.open_session(store, admin)
    token, _made = apitokens.create_token(store, admin, "script")
    assert still_allowed(_request(cookie=cookie), store, job)
    assert still_allowed(_request(bearer=token), store, job)
    accounts.set_role(store, admin, admin.id, USER)
    assert not still_allowed(_request(cookie=cookie), store, job)
    assert not still_allowed(_request(bearer=token), store, job)
    # The owner's own session still reads it; no session or a revoked token does not.
    owner_cookie, _ = sessions.open_session(store, owner)
    assert still_allowed(_request(cookie=owner_cookie), store, job)
    assert not still_allowed(_request(), store, job)
    owner_token, owner_made = apitokens.create_token(store, owner, "script")
    assert still_allowed(_request(bearer=owner_token), store, job)
    apitokens.revoke_token(store, owner, owner_made.id)
    assert not still_allowed(_request(bearer=owner_token), store, job)
