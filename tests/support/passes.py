"""Running the engine in-process the way the CLI does: ``run_pass`` on a job database."""

from __future__ import annotations

from typing import Any

from mailmover.config import Endpoint
from mailmover.engine.events import Event
from mailmover.engine.passes import run_pass
from mailmover.engine.ports import Control
from mailmover.engine.report import PassReport
from mailmover.engine.session import EndpointCredentials
from mailmover.engine.settings import MailboxPair, PassKind, PassSettings
from mailmover.store import Store, StoreJournal


async def copy_pass(
    src: Endpoint,
    dst: Endpoint,
    db: str,
    events: list[Event] | None = None,
    *,
    kind: PassKind = "full",
    control: Control | None = None,
    **settings: Any,
) -> PassReport:
    """One pass from ``src`` to ``dst`` (endpoints with their secrets), state in ``db``."""
    store = Store.open(f"sqlite:///{db}")
    try:
        journal = await StoreJournal.open(store, src.url, dst.url)
        return await run_pass(
            MailboxPair(src.without_secret(), dst.without_secret()),
            PassSettings(**settings),
            kind,
            journal=journal,
            credentials=EndpointCredentials(src, dst),
            control=control,
            events=events.append if events is not None else None,
        )
    finally:
        store.close()
