"""Wrong-password budgets, counted in the job database so every process shares them.

A wrong password is a row of ``signin_failure``: one for the account (or person) it
was tried for and one for the address it came from. ``account_limit`` wrong passwords
for one account, or ``address_limit`` from one address, within ``window`` seconds
close sign-in for it until the oldest leaves the window. Every web worker process
(``uvicorn --workers``, several machines in a fleet) and every runner reads and writes
the same rows, so running more processes does not multiply the budget. A sign-in is
counted before its password is checked (``begin``; given back when it was right), one
transaction at a time per key, so sign-ins checked at once do not multiply it either.

The same budget guards the mail passwords a person has tried for: the wizard, the
API and a batch's pre-flight (``service.preflight``) under ``person_key``, and the
passes of that person's jobs (``service.loginguard``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Connection, and_, delete, func, or_, select

from mailmover.store import schema
from mailmover.store.database import Store

#: Wrong passwords for one account (or person) in a window, by default.
ACCOUNT_LIMIT: Final = 10
#: Wrong passwords from one address in a window, by default.
ADDRESS_LIMIT: Final = 30
#: The window, in seconds, by default.
WINDOW: Final = 60.0
#: Rows older than this (seconds), or than the window if longer, are deleted.
KEEP: Final = 3600.0

failure_t = schema.signin_failure


def person_key(account_id: int) -> str:
    """The budget's key for the mail logins a person tries (wizard, API, batches, jobs)."""
    return f"wizard:{account_id}"


def count_recent(conn: Connection, keys: dict[str, str], since: datetime) -> dict[str, int]:
    """Wrong passwords since ``since``, by kind, for ``keys`` (kind -> key)."""
    if not keys:
        return {}
    match = or_(*(and_(failure_t.c.kind == k, failure_t.c.key == v) for k, v in keys.items()))
    rows = conn.execute(
        select(failure_t.c.kind, func.count())
        .where(match, failure_t.c.at > since)
        .group_by(failure_t.c.kind)
    ).all()
    found = {str(kind): int(n) for kind, n in rows}
    return {kind: found.get(kind, 0) for kind in keys}


def oldest_recent(conn: Connection, kind: str, key: str, since: datetime) -> datetime | None:
    """The oldest wrong password since ``since`` for ``key``, if any."""
    return conn.execute(
        select(func.min(failure_t.c.at)).where(
            failure_t.c.kind == kind, failure_t.c.key == key, failure_t.c.at > since
        )
    ).scalar()


def record_failure(conn: Connection, keys: dict[str, str], at: datetime, keep: float) -> None:
    """Count one wrong password for each of ``keys``; forget rows older than ``keep`` seconds."""
    conn.execute(failure_t.insert(), [{"kind": k, "key": v, "at": at} for k, v in keys.items()])
    conn.execute(delete(failure_t).where(failure_t.c.at < at - timedelta(seconds=keep)))


class SigninLimiter:
    """Refuses a sign-in, without checking the password, after too many wrong ones."""

    def __init__(
        self,
        store: Store,
        account_limit: int = ACCOUNT_LIMIT,
        address_limit: int = ADDRESS_LIMIT,
        window: float = WINDOW,
        clock: Callable[[], float] = time.time,
        secret: bytes = b"",
    ) -> None:
        self.store = store
        self.limits = {"account": account_limit, "address": address_limit}
        self.window = window
        self.clock = clock
        self._secret = secret  # keys the hash of what people type as their email

    def account_key(self, email: str) -> str:
        """The budget's key for sign-ins as ``email`` (normalised when it is an address):
        a keyed hash, so what is typed (a password in the wrong box, say) is never stored,
        and no typed text can name another budget (``person_key``, an invitation's)."""
        digest = hmac.new(self._secret, email.encode()[:1024], hashlib.sha256).hexdigest()
        return f"signin:{digest}"

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    @staticmethod
    def _keys(account: str, address: str | None) -> dict[str, str]:
        keys = {"account": account}
        if address is not None:
            keys["address"] = address
        return keys

    def allowed(self, account: str, address: str | None = None) -> bool:
        """True when a sign-in for ``account`` from ``address`` may be checked now."""
        return self.remaining(account, address) > 0

    def remaining(self, account: str, address: str | None = None) -> int:
        """How many more wrong passwords for ``account`` from ``address`` may be checked now."""
        since = self._now() - timedelta(seconds=self.window)
        with self.store.engine.connect() as conn:
            counts = count_recent(conn, self._keys(account, address), since)
        return min(self.limits[kind] - n for kind, n in counts.items())

    def begin(self, account: str, address: str | None = None) -> Attempt | None:
        """A sign-in about to be checked, counted as a wrong password before the check, so
        that checks running at once (other requests, processes, machines) see each other
        and together never pass the limits; None, and nothing counted, when no budget is
        left. ``Attempt.succeeded`` takes it back when the password was right."""
        keys = self._keys(account, address)
        now = self._now()
        with self.store.write_engine.begin() as conn:
            serialize(conn, keys)
            counts = count_recent(conn, keys, now - timedelta(seconds=self.window))
            if any(n >= self.limits[kind] for kind, n in counts.items()):
                return None
            ids = [
                conn.execute(
                    failure_t.insert().values(kind=kind, key=key, at=now).returning(failure_t.c.id)
                ).scalar_one()
                for kind, key in keys.items()
            ]
            keep = timedelta(seconds=max(self.window, KEEP))
            conn.execute(delete(failure_t).where(failure_t.c.at < now - keep))
        return Attempt(self.store, tuple(ids))

    def begin_all(self, budgets: list[tuple[str, str | None]]) -> Attempt | None:
        """``begin`` on several budgets (account and address each): None, and nothing
        counted, when any of them is spent."""
        taken: list[Attempt] = []
        for account, address in budgets:
            attempt = self.begin(account, address)
            if attempt is None:
                for earlier in taken:
                    earlier.succeeded()
                return None
            taken.append(attempt)
        return Attempt(self.store, tuple(i for t in taken for i in t.ids))

    def failed(self, account: str, address: str | None = None) -> None:
        """Count a wrong password for ``account`` from ``address``."""
        with self.store.write_engine.begin() as conn:
            keys = self._keys(account, address)
            record_failure(conn, keys, self._now(), max(self.window, KEEP))

    def bound(self, account: str, address: str) -> BoundLimit:
        """The limit of ``account`` from ``address``, as ``service.preflight`` counts it."""
        return BoundLimit(self, account, address)


@dataclass(frozen=True)
class Attempt:
    """A sign-in counted as wrong until ``succeeded`` says otherwise."""

    store: Store
    ids: tuple[int, ...]

    def succeeded(self) -> None:
        """The password was right: the attempt no longer counts."""
        with self.store.write_engine.begin() as conn:
            conn.execute(delete(failure_t).where(failure_t.c.id.in_(self.ids)))


def serialize(conn: Connection, keys: dict[str, str]) -> None:
    """Until ``conn``'s transaction ends, no other one counts and adds for ``keys``: on
    PostgreSQL a transaction lock per key, in one order; SQLite's write transactions
    are one at a time already."""
    if conn.dialect.name != "postgresql":
        return
    for name in sorted(f"{kind}:{key}" for kind, key in keys.items()):
        conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))


@dataclass(frozen=True)
class BoundLimit:
    """One account's and address's limit (``service.preflight.LoginBudget``)."""

    limiter: SigninLimiter
    account: str
    address: str

    def remaining(self) -> int:
        return self.limiter.remaining(self.account, self.address)

    def failed(self) -> None:
        self.limiter.failed(self.account, self.address)
