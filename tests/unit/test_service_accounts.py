"""Accounts, sessions and the audit log in a real SQLite job database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailmover.service import accounts, audit, sessions
from mailmover.service.accounts import ADMIN, USER, AccountError
from mailmover.store import Store, schema


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


def test_passwords_are_hashed_and_checked(store: Store) -> None:
    made = accounts.create_account(store, " Alice@Example.COM ", "correct horse battery")
    assert (made.email, made.role, made.active) == ("alice@example.com", USER, True)
    with store.engine.connect() as conn:
        stored = conn.execute(select(schema.account.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert accounts.authenticate(store, "ALICE@example.com", "correct horse battery") == made
    assert accounts.authenticate(store, "alice@example.com", "wrong horse battery") is None
    assert accounts.authenticate(store, "nobody@example.com", "correct horse battery") is None
    assert accounts.authenticate(store, "not an email", "x") is None


@pytest.mark.parametrize(
    ("email", "password", "role", "says"),
    [
        ("bob", "long enough pw", USER, "an email address"),
        ("bob@x", "short", USER, "at least 10"),
        ("bob@x", "long enough pw", "root", "administrator or user"),
        ("alice@example.com", "long enough pw", USER, "exists already"),
    ],
)
def test_bad_accounts_are_refused_with_the_reason(
    store: Store, email: str, password: str, role: str, says: str
) -> None:
    accounts.create_account(store, "alice@example.com", "correct horse battery")
    with pytest.raises(AccountError, match=says):
        accounts.create_account(store, email, password, role)


def test_the_last_administrator_stays_one_and_changes_are_audited(store: Store) -> None:
    first, password = accounts.ensure_first_admin(store, None, None) or (None, None)
    assert first is not None and first.email == "admin@localhost" and password
    assert accounts.ensure_first_admin(store, None, None) is None  # only on first start
    assert accounts.authenticate(store, "admin@localhost", password) == first
    with pytest.raises(AccountError, match="last administrator"):
        accounts.set_role(store, first, first.id, USER)
    with pytest.raises(AccountError, match="last administrator"):
        accounts.set_active(store, first, first.id, False)
    other = accounts.create_account(store, "carol@example.com", "carol's password", ADMIN, first)
    accounts.set_role(store, other, first.id, USER)
    lines = [(e.actor, e.action, e.target, e.detail) for e in audit.entries(store)]
    assert lines == [
        ("carol@example.com", "changed role", "admin@localhost", "administrator → user"),
        ("admin@localhost", "created user", "carol@example.com", "role administrator"),
        ("system", "created user", "admin@localhost", "role administrator"),
    ]


def test_sessions_end_at_sign_out_when_disabled_and_when_old(store: Store) -> None:
    admin = accounts.create_account(store, "root@example.com", "root's password", ADMIN)
    user = accounts.create_account(store, "dan@example.com", "dan's password!")
    token, session = sessions.open_session(store, user)
    assert sessions.find_session(store, token) == session
    assert sessions.find_session(store, token + "x") is None
    with store.engine.connect() as conn:
        stored = conn.execute(select(schema.web_session.c.token_hash)).scalar_one()
    assert token.encode() not in stored
    sessions.close_session(store, token)
    assert sessions.find_session(store, token) is None

    token, _ = sessions.open_session(store, user)
    accounts.set_active(store, admin, user.id, False)
    assert sessions.find_session(store, token) is None
    assert accounts.authenticate(store, "dan@example.com", "dan's password!") is None
    accounts.set_active(store, admin, user.id, True)

    token, _ = sessions.open_session(store, user)
    with store.write_engine.begin() as conn:
        conn.execute(
            update(schema.web_session).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert sessions.find_session(store, token) is None

    token, _ = sessions.open_session(store, user)
    accounts.set_password(store, admin, user.id, "a new password")
    assert sessions.find_session(store, token) is None
    assert accounts.authenticate(store, "dan@example.com", "a new password") is not None


def test_only_a_wrong_current_password_is_a_wrong_password(store: Store) -> None:
    made = accounts.create_account(store, "hana@example.com", "hana's password")
    with pytest.raises(accounts.WrongPassword):
        accounts.change_own_password(store, made, "not hana's password", "a new password!")
    with pytest.raises(AccountError) as short:
        accounts.change_own_password(store, made, "hana's password", "short")
    assert not isinstance(short.value, accounts.WrongPassword)
    assert accounts.authenticate(store, made.email, "hana's password") == made
