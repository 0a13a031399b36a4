"""Accounts of the web app: people with a role (administrator or user) and a password.

Passwords are hashed with argon2id (argon2-cffi) and never stored or logged; every
change is written to the audit log by the same transaction.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, func, select, update

from mailmover.errors import UsageError
from mailmover.service import audit
from mailmover.store import schema
from mailmover.store.database import Store

ADMIN: Final = "administrator"
USER: Final = "user"
ROLES: Final = (ADMIN, USER)
#: Shortest password an account may have.
MIN_PASSWORD: Final = 10

acc = schema.account
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_hasher = PasswordHasher()
#: Verified against when no account has the email, so that both cost the same.
_DUMMY_HASH: Final = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(UsageError):
    """An account cannot be made or changed as asked (the message says why)."""


class WrongPassword(AccountError):
    """The current password given to change it is not right (sign-in limits count it)."""


@dataclass(frozen=True)
class Account:
    """A person who signs in; never carries the password or its hash."""

    id: int
    email: str
    role: str
    active: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def account_from_row(row: Any) -> Account:
    """An Account from a row selected with ``account_columns()``."""
    return Account(row.id, row.email, row.role, row.active, row.created_at)


def account_columns() -> tuple[Any, ...]:
    """The columns an Account is made of (never the hash)."""
    return (acc.c.id, acc.c.email, acc.c.role, acc.c.active, acc.c.created_at)


def normal_email(email: str) -> str:
    """The email as accounts are keyed: trimmed and lower-case; AccountError when malformed."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise AccountError("an account's name is an email address, like alice@example.com")
    return email


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"a role is {' or '.join(ROLES)}, not {role!r}")


def create_account(
    store: Store, email: str, password: str, role: str = USER, actor: audit.Actor | None = None
) -> Account:
    """A new account; AccountError when the email is taken or the input is bad."""
    email = normal_email(email)
    _check_password(password)
    _check_role(role)
    now = datetime.now(UTC)
    digest = _hasher.hash(password)
    with store.write_engine.begin() as conn:
        if conn.execute(select(acc.c.id).where(acc.c.email == email)).first():
            raise AccountError(f"an account {email} exists already")
        row = conn.execute(
            acc.insert()
            .values(
                email=email,
                password_hash=digest,
                role=role,
                active=True,
                created_at=now,
                updated_at=now,
            )
            .returning(*account_columns())
        ).one()
        audit.record(conn, actor, "created user", email, f"role {role}")
    return account_from_row(row)


def authenticate(store: Store, email: str, password: str) -> Account | None:
    """The active account with this email and password; None otherwise (same cost either way)."""
    try:
        email = normal_email(email)
    except AccountError:
        email = ""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(*account_columns(), acc.c.password_hash).where(acc.c.email == email)
        ).one_or_none()
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or not row.active:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        with store.write_engine.begin() as conn:
            conn.execute(
                update(acc).where(acc.c.id == row.id).values(password_hash=_hasher.hash(password))
            )
    return account_from_row(row)


def get_account(store: Store, account_id: int) -> Account | None:
    """The account with this id, or None."""
    with store.engine.connect() as conn:
        row = conn.execute(select(*account_columns()).where(acc.c.id == account_id)).one_or_none()
    return None if row is None else account_from_row(row)


def list_accounts(store: Store) -> list[Account]:
    """Every account, by email."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(*account_columns()).order_by(acc.c.email)).all()
    return [account_from_row(r) for r in rows]


def count_accounts(store: Store) -> int:
    """How many accounts there are."""
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(acc)).scalar_one())


def set_role(store: Store, actor: audit.Actor, account_id: int, role: str) -> Account:
    """Change an account's role; the last active administrator stays one."""
    _check_role(role)
    with store.write_engine.begin() as conn:
        target = _locked(conn, account_id)
        if target.role == ADMIN and role != ADMIN and target.active:
            _keep_an_admin(conn, account_id)
        conn.execute(
            update(acc)
            .where(acc.c.id == account_id)
            .values(role=role, updated_at=datetime.now(UTC))
        )
        audit.record(conn, actor, "changed role", target.email, f"{target.role} → {role}")
    return Account(target.id, target.email, role, target.active, target.created_at)


def set_active(store: Store, actor: audit.Actor, account_id: int, active: bool) -> Account:
    """Enable or disable an account (a disabled one cannot sign in; its sessions end)."""
    with store.write_engine.begin() as conn:
        target = _locked(conn, account_id)
        if target.role == ADMIN and target.active and not active:
            _keep_an_admin(conn, account_id)
        conn.execute(
            update(acc)
            .where(acc.c.id == account_id)
            .values(active=active, updated_at=datetime.now(UTC))
        )
        if not active:
            conn.execute(
                schema.web_session.delete().where(schema.web_session.c.account_id == account_id)
            )
        audit.record(conn, actor, "enabled user" if active else "disabled user", target.email)
    return Account(target.id, target.email, target.role, active, target.created_at)


def set_password(store: Store, actor: audit.Actor | None, account_id: int, password: str) -> None:
    """Give an account a new password (``actor`` None: from the console); its sessions end."""
    _check_password(password)
    digest = _hasher.hash(password)
    with store.write_engine.begin() as conn:
        target = _locked(conn, account_id)
        conn.execute(
            update(acc)
            .where(acc.c.id == account_id)
            .values(password_hash=digest, updated_at=datetime.now(UTC))
        )
        conn.execute(
            schema.web_session.delete().where(schema.web_session.c.account_id == account_id)
        )
        audit.record(conn, actor, "changed password", target.email)


def ensure_first_admin(
    store: Store, email: str | None, password: str | None
) -> tuple[Account, str | None] | None:
    """Make the first administrator when there is no account yet.

    The password is ``password`` if given, else a new random one, returned (once) so
    that it can be shown on the console. None when accounts exist already.
    """
    if count_accounts(store):
        return None
    made = None if password else secrets.token_urlsafe(12)
    account = create_account(store, email or "admin@localhost", password or str(made), ADMIN)
    return account, made


def _locked(conn: Connection, account_id: int) -> Account:
    """The account, locked with every active administrator until the transaction ends.

    Two changes that could each leave the other's account the last administrator are
    so made one after the other, and ``_keep_an_admin`` counts what the first one left.
    The administrators are locked first, in id order, then the account, so two
    changes never wait for each other (PostgreSQL: ``SELECT ... FOR NO KEY UPDATE``, which
    a session's sign-in, checking its foreign key, does not wait for; SQLite writes one
    transaction at a time already, ``BEGIN IMMEDIATE``).
    """
    conn.execute(
        select(acc.c.id)
        .where(acc.c.role == ADMIN, acc.c.active.is_(True))
        .order_by(acc.c.id)
        .with_for_update(key_share=True)
    )
    row = conn.execute(
        select(*account_columns()).where(acc.c.id == account_id).with_for_update(key_share=True)
    ).one_or_none()
    if row is None:
        raise AccountError(f"no account with id {account_id}")
    return account_from_row(row)


def _keep_an_admin(conn: Connection, leaving: int) -> None:
    """``AccountError`` unless another active administrator stays (after ``_locked``)."""
    others = conn.execute(
        select(func.count())
        .select_from(acc)
        .where(acc.c.role == ADMIN, acc.c.active.is_(True), acc.c.id != leaving)
    ).scalar_one()
    if not others:
        raise AccountError("the last administrator stays one: make another administrator first")


def change_own_password(store: Store, account: Account, current: str, new: str) -> None:
    """The account's own password changed, given the current one; every session ends."""
    if authenticate(store, account.email, current) is None:
        raise WrongPassword("the current password is not right")
    set_password(store, account, account.id, new)
