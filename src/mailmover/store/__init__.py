"""Job state: jobs, mailbox pairs, folders, messages and the activity log.

SQLAlchemy Core tables migrated by Alembic; SQLite (WAL) by default, PostgreSQL
when workers run on several machines.
"""

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
