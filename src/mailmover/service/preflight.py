"""The pre-flight pass (``batch --check``, the web wizard) before anything is created.

Each row's two sides are logged in to and planned by ``run_pass(kind="preflight")`` (no
mail moved), against a throwaway in-memory job database; a row that fails is named by
its line with the reason in words.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class RowCheck:
    """What the pre-flight pass found for one row."""

    line: int
    reason: str | None  # None: both sides logged in and planned
    folders: int = 0
    messages: int = 0
    bytes: int = 0


async def check_rows(
    rows: list[BatchRow],
    settings: PassSettings | None,
    source_admin: AdminLogin | None,
    dest_admin: AdminLogin | None,
    *,
    concurrency: int = 4,
) -> list[RowCheck]:
    """The pre-flight result of every row, in line order (``settings`` None: the defaults)."""
    settings = settings or PassSettings()
    store = Store.open("sqlite:///:memory:")
    limit = asyncio.Semaphore(concurrency)

    async def one(row: BatchRow) -> RowCheck:
        specs: dict[SideName, dict[str, Any]] = {
            "source": source_admin.spec()
            if source_admin
            else password_spec(row.source_password or ""),
            "dest": dest_admin.spec() if dest_admin else password_spec(row.dest_password or ""),
        }
        async with limit:
            report = await preflight_pass(
                with_admin_auth(row.source, source_admin),
                with_admin_auth(row.dest, dest_admin),
                PassSettings.from_dict(settings.to_dict() | row.options),
                specs,
                store=store,
                label=f"check-{row.line}",
            )
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

    own = store is None
    db = store or Store.open("sqlite:///:memory:")
    try:
        state = db.mailbox(source.url, dest.url, label)
        return await run_pass(
            MailboxPair(source, dest),
            settings,
            "preflight",
            journal=StoreJournal(db, state.id),
            credentials=StoredCredentials(box, read, {"source": source.user, "dest": dest.user}),
            control=PassControl(),
            events=_ignore,
        )
    finally:
        if own:
            db.close()


def failures(checks: list[RowCheck]) -> list[BadLine]:
    """The rows that failed, as bad lines."""
    return [BadLine(c.line, f"pre-flight failed: {c.reason}") for c in checks if c.reason]


def _ignore(_event: Any) -> None:
    pass
