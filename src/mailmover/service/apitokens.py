"""API tokens: for scripts that use the JSON API as an account, made and revoked by its
owner. Only the token's SHA-256 is stored; the token is shown once, when it is made."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update

from mailmover.service import audit
from mailmover.service.accounts import Account, AccountError, account_columns, account_from_row
from mailmover.service.secrets import token_digest
from mailmover.store import schema
from mailmover.store.database import Store

#: Every token starts so, which makes one easy to spot in a leaked file.
PREFIX: Final = "mmt_"
#: last_used_at is written at most this often per token.
TOUCH_EVERY: Final = timedelta(minutes=1)

tok = schema.api_token
acc = schema.account


@dataclass(frozen=True)
class ApiToken:
    """A token as its owner sees it later: its name and dates, never its value."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


def create_token(store: Store, account: Account, name: str) -> tuple[str, ApiToken]:
    """A new token for ``account``: its value (shown once) and its record."""
    name = name.strip()
    if not 0 < len(name) <= 100:
        raise AccountError("a token needs a name (what uses it), up to 100 characters")
    token = PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with store.write_engine.begin() as conn:
        token_id = conn.execute(
            tok.insert()
            .values(
                account_id=account.id, name=name, token_hash=token_digest(token), created_at=now
            )
            .returning(tok.c.id)
        ).scalar_one()
        audit.record(conn, account, "created an API token", name)
    return token, ApiToken(int(token_id), name, now, None)


def list_tokens(store: Store, account: Account) -> list[ApiToken]:
    """The account's tokens, newest first."""
    query = (
        select(tok.c.id, tok.c.name, tok.c.created_at, tok.c.last_used_at)
        .where(tok.c.account_id == account.id)
        .order_by(tok.c.id.desc())
    )
    with store.engine.connect() as conn:
        return [ApiToken(*row) for row in conn.execute(query).all()]


def revoke_token(store: Store, account: Account, token_id: int) -> None:
    """Revoke one of the account's own tokens; AccountError when it has no such token."""
    with store.write_engine.begin() as conn:
        name = conn.execute(
            delete(tok)
            .where(tok.c.id == token_id, tok.c.account_id == account.id)
            .returning(tok.c.name)
        ).scalar()
        if name is None:
            raise AccountError("no such token")
        audit.record(conn, account, "revoked an API token", name)


def token_account(store: Store, token: str) -> Account | None:
    """The active account whose token this is; None otherwise."""
    if not token.startswith(PREFIX):
        return None
    query = (
        select(*account_columns(), tok.c.id.label("token_id"), tok.c.last_used_at)
        .join(tok, tok.c.account_id == acc.c.id)
        .where(tok.c.token_hash == token_digest(token), acc.c.active.is_(True))
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    if row is None:
        return None
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        with store.write_engine.begin() as conn:
            conn.execute(update(tok).where(tok.c.id == row.token_id).values(last_used_at=now))
    return account_from_row(row)
