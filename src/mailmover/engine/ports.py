"""What the engine needs from whoever drives it, as Protocols implemented elsewhere.

* ``Journal``: what each folder has copied (``mailmover.store.journal`` implements it
  on the job database). A pass reads it to skip what is done and writes it as
  batches are confirmed.
* ``Credentials``: asked at every connect, so a secret is held only while a
  connection is being opened, can be erased by its owner, and reaches a worker
  process as data.
* ``Control``: pause and cancel, checked wherever waiting or sending begins.
* ``EventSink``: receives frozen, JSON-serialisable events (``engine.events``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from mailmover.engine.events import Event
from mailmover.store.records import FolderRecord, MessageRecord

SideName = Literal["source", "dest"]
Stop = Literal["pause", "cancel"]
EventSink = Callable[[Event], None]


class Journal(Protocol):
    """The record of one mailbox pair's folders and of the messages copied into them."""

    async def folders(self) -> list[FolderRecord]:
        """Every folder recorded for the pair."""
        ...

    async def folder(self, source_name: str) -> FolderRecord | None:
        """The record of one source folder, if any."""
        ...

    async def save_folder(self, rec: FolderRecord) -> FolderRecord:
        """Insert or update a folder record; returns it with its id."""
        ...

    async def record_messages(self, folder_id: int, records: Sequence[MessageRecord]) -> None:
        """Insert or replace message records of a folder, in one transaction."""
        ...

    async def update_flags(
        self, folder_id: int, changes: Sequence[tuple[int, int, tuple[str, ...]]]
    ) -> None:
        """Set (uidvalidity, uid) → flags as last brought to the destination."""
        ...

    def iter_messages(
        self,
        folder_id: int,
        *,
        states: Collection[str] | None = None,
        uidvalidity: int | None = None,
        chunk: int = 5000,
    ) -> AsyncIterator[list[MessageRecord]]:
        """The folder's message records in pages, by (uidvalidity, uid)."""
        ...


@dataclass(frozen=True)
class Secret:
    """How to log in to one side, for one connection."""

    value: str = field(repr=False)
    #: log in as this user instead of the endpoint's (a master user, ``alice*admin``)
    login: str | None = None
    #: SASL PLAIN authorization identity (RFC 4616): act as this user
    authzid: str | None = None


class Credentials(Protocol):
    """Secrets for each side, asked for at every (re)connect."""

    async def secret(self, side: SideName) -> Secret:
        """The secret to log in to ``side`` now (a token is refreshed here when due)."""
        ...


class Control(Protocol):
    """Pause and cancel requests for a running pass."""

    @property
    def requested(self) -> Stop | None:
        """``pause`` or ``cancel`` once asked, else None."""
        ...

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as a pause or cancel is requested."""
        ...
