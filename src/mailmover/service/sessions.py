"""Signed-in sessions: a random cookie whose SHA-256 is stored with its account and its
CSRF token; signing out or disabling the account ends it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, select

from mailmover.service.accounts import Account, account_columns, account_from_row
from mailmover.service.secrets import token_digest
from mailmover.store import schema
from mailmover.store.database import Store

#: How long a session lasts after sign-in.
LIFETIME: Final = timedelta(hours=12)

ses = schema.web_session
acc = schema.account


@dataclass(frozen=True)
class Session:
    """A signed-in session: who, and the token every form it posts must carry."""

    account: Account
    csrf: str


def open_session(store: Store, account: Account) -> tuple[str, Session]:
    """A new session for ``account``: the cookie's value (shown once) and the session."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with store.write_engine.begin() as conn:
        conn.execute(ses.delete().where(ses.c.expires_at < now))
        conn.execute(
            ses.insert().values(
                token_hash=token_digest(token),
                account_id=account.id,
                csrf=csrf,
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
    return token, Session(account, csrf)


def find_session(store: Store, token: str) -> Session | None:
    """The live session of this cookie, with an active account; None otherwise."""
    if not token:
        return None
    query = (
        select(*account_columns(), ses.c.csrf)
        .join(ses, ses.c.account_id == acc.c.id)
        .where(
            ses.c.token_hash == token_digest(token),
            ses.c.expires_at > datetime.now(UTC),
            acc.c.active.is_(True),
        )
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    return None if row is None else Session(account_from_row(row), row.csrf)


def close_session(store: Store, token: str) -> None:
    """End the session of this cookie (signing out)."""
    with store.write_engine.begin() as conn:
        conn.execute(delete(ses).where(ses.c.token_hash == token_digest(token)))
