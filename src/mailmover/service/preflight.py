"""The pre-flight pass (``batch --check``, the web wizard) before anything is created.

Each row's two sides are logged in to and planned by ``run_pass(kind="preflight")`` (no
mail moved), against a throwaway in-memory job database; a row that fails is named by
its line with the reason in words.

A batch file is many logins: given a ``LoginBudget`` (the web app's limit on wrong mail
passwords, shared with the wizard), a row refused a login counts as one wrong password
and no row is tried once the budget is spent, so a file cannot guess passwords.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cryptography.fernet import Fernet

from mailmover.config import Endpoint
from mailmover.engine.control import PassControl
from mailmover.engine.ports import SideName
from mailmover.engine.report import PassReport
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.service.batchfile import BadLine, BatchRow
from mailmover.service.credentials import AdminLogin, StoredCredentials, password_spec
from mailmover.service.jobs import with_admin_auth
from mailmover.service.secrets import SecretBox
from mailmover.store.database import Store

#: the reason of a row not tried because the budget of wrong passwords was spent
NOT_CHECKED: Final = "not checked: too many wrong passwords"


class LoginBudget(Protocol):
    """How many more wrong passwords may be tried, and counting one."""

    def remaining(self) -> int: ...

    def failed(self) -> None: ...


@dataclass(frozen=True)
class RowCheck:
    """What the pre-flight pass found for one row."""

    line: int
    reason: str | None  # None: both sides logged in and planned
    folders: int = 0
    messages: int = 0
    bytes: int = 0

    @property
    def checked(self) -> bool:
        return self.reason != NOT_CHECKED


class _Attempts:
    """Logins under a budget: never more in flight than wrong passwords may still be tried."""

    def __init__(self, budget: LoginBudget | None) -> None:
        self.budget = budget
        self.in_flight = 0
        self.turn = asyncio.Condition()

    async def start(self) -> bool:
        """True when a row may be tried now (waits for one in flight); False: budget spent."""
        if self.budget is None:
            return True
        async with self.turn:
            while self.budget.remaining() - self.in_flight <= 0:
                if not self.in_flight:
                    return False
                await self.turn.wait()
            self.in_flight += 1
            return True

    async def end(self, refused: bool) -> None:
        if self.budget is None:
            return
        if refused:
            self.budget.failed()
        async with self.turn:
            self.in_flight -= 1
            self.turn.notify_all()


async def check_rows(
    rows: list[BatchRow],
    settings: PassSettings | None,
    source_admin: AdminLogin | None,
    dest_admin: AdminLogin | None,
    *,
    concurrency: int = 4,
    budget: LoginBudget | None = None,
) -> list[RowCheck]:
    """The pre-flight result of every row, in line order (``settings`` None: the defaults).

    With a ``budget``, rows left when it is spent are ``NOT_CHECKED``.
    """
    settings = settings or PassSettings()
    store = Store.open("sqlite:///:memory:")
    limit = asyncio.Semaphore(concurrency)
    attempts = _Attempts(budget)

    async def one(row: BatchRow) -> RowCheck:
        specs: dict[SideName, dict[str, Any]] = {
            "source": source_admin.spec()
            if source_admin
            else password_spec(row.source_password or ""),
            "dest": dest_admin.spec() if dest_admin else password_spec(row.dest_password or ""),
        }
        async with limit:
            if not await attempts.start():
                return RowCheck(row.line, NOT_CHECKED)
            refused = True
            try:
                report = await preflight_pass(
                    with_admin_auth(row.source, source_admin),
                    with_admin_auth(row.dest, dest_admin),
                    PassSettings.from_dict(settings.to_dict() | row.options),
                    specs,
                    store=store,
                    label=f"check-{row.line}",
                )
                refused = report.failure_kind == "authentication"
            finally:
                await attempts.end(refused)
        if report.outcome == "failed":
            return RowCheck(row.line, report.reason or "the pre-flight pass failed")
        sizes = report.sizes.values()
        return RowCheck(
            row.line, None, len(report.plans), sum(m for m, _ in sizes), sum(b for _, b in sizes)
        )

    try:
        return list(await asyncio.gather(*(one(row) for row in rows)))
    finally:
        store.close()


async def preflight_pass(
    source: Endpoint,
    dest: Endpoint,
    settings: PassSettings,
    specs: dict[SideName, dict[str, Any]],
    *,
    store: Store | None = None,
    label: str = "check",
) -> PassReport:
    """The pre-flight pass (log in, plan, size; no mail moved) with credentials specs."""
    from mailmover.engine.passes import run_pass
    from mailmover.store.journal import StoreJournal

    box = SecretBox([Fernet.generate_key()])
    blobs = {side: box.encrypt(spec) for side, spec in specs.items()}

    async def read(side: SideName) -> bytes | None:
        return blobs.get(side)

    async def save(side: SideName, rotated: bytes) -> None:  # the caller stores ``specs``
        blobs[side] = rotated
        specs[side].update(box.decrypt(rotated))

    own = store is None
    db = store or Store.open("sqlite:///:memory:")
    try:
        state = db.mailbox(source.url, dest.url, label)
        return await run_pass(
            MailboxPair(source, dest),
            settings,
            "preflight",
            journal=StoreJournal(db, state.id),
            credentials=StoredCredentials(
                box, read, {"source": source.user, "dest": dest.user}, save=save
            ),
            control=PassControl(),
            events=_ignore,
        )
    finally:
        if own:
            db.close()


def failures(checks: list[RowCheck]) -> list[BadLine]:
    """The rows that were tried and failed, as bad lines."""
    return [
        BadLine(c.line, f"pre-flight failed: {c.reason}") for c in checks if c.reason and c.checked
    ]


def _ignore(_event: Any) -> None:
    pass
