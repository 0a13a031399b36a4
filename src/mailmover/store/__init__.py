"""Job state: jobs, mailbox pairs, folders, messages and the activity log.

SQLAlchemy Core tables migrated by Alembic; SQLite (WAL) by default, PostgreSQL
when workers run on several machines.

Names are imported on first use: the engine reads ``mailmover.store.records``
(plain records) without loading SQLAlchemy, so that a copy's connections can
open while the job database is still being opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailmover.store.connect import default_url
    from mailmover.store.database import Store
    from mailmover.store.journal import StoreJournal
    from mailmover.store.records import (
        FAILURE_STATES,
        MAILBOX_STATES,
        MESSAGE_STATES,
        EventRecord,
        FolderRecord,
        MailboxInfo,
        MessageRecord,
    )
    from mailmover.store.state import MailboxState

#: where each name of the package lives
_HOMES = {
    "default_url": "connect",
    "Store": "database",
    "StoreJournal": "journal",
    "MailboxState": "state",
    **dict.fromkeys(
        [
            "FAILURE_STATES",
            "MAILBOX_STATES",
            "MESSAGE_STATES",
            "EventRecord",
            "FolderRecord",
            "MailboxInfo",
            "MessageRecord",
        ],
        "records",
    ),
}

__all__ = [
    "FAILURE_STATES",
    "MAILBOX_STATES",
    "MESSAGE_STATES",
    "EventRecord",
    "FolderRecord",
    "MailboxInfo",
    "MailboxState",
    "MessageRecord",
    "Store",
    "StoreJournal",
    "default_url",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
