"""Recognise messages the destination already holds, exactly, before copying them.

Used when the destination folder holds messages the state does not account
for: a copy made by another tool or run, or an APPEND sent before a crash and
never confirmed. Candidates are found by size; a candidate counts as the same
message only when its bytes hash to the same SHA-256. Each destination message
answers for one source message at most, so exact duplicates in the source are
copied as many times as they occur.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from mailmover.imap.client import IMAPClient
from mailmover.imap.proto.responses import Fetch

#: SHA-256 of destination messages by (UIDVALIDITY, UID)
Digests = dict[tuple[int, int], bytes]


class DestinationIndex:
    """Unclaimed destination messages of the selected destination folder, by size."""

    def __init__(self, client: IMAPClient, digests: Digests | None = None) -> None:
        self._client = client
        self._by_size: dict[int, list[int]] = {}
        #: by (UIDVALIDITY, UID); the caller may keep them from one attempt to the next
        self._digests: Digests = {} if digests is None else digests
        self._validity = client.selected.uidvalidity if client.selected else 0
        self.flags: dict[int, tuple[str, ...]] = {}

    @classmethod
    async def build(
        cls,
        client: IMAPClient,
        claimed: Collection[int],
        *,
        look: bool = False,
        digests: Digests | None = None,
    ) -> DestinationIndex:
        """Read sizes and flags of the selected folder, leaving out ``claimed`` UIDs;
        with ``look``, even when the SELECT found it empty (others may have stored since).
        ``digests``: the SHA-256 of destination messages read before (a link that keeps
        dropping while they are read does not make them read again), kept up to date."""
        index = cls(client, digests)
        if client.selected is None or (client.selected.exists == 0 and not look):
            return index
        for fetch in await client.uid_fetch(range(1, 2**32), "(UID RFC822.SIZE FLAGS)"):
            if fetch.uid is None or fetch.size is None or fetch.uid in claimed:
                continue
            index._by_size.setdefault(fetch.size, []).append(fetch.uid)
            index.flags[fetch.uid] = fetch.flags or ()
        return index

    def __len__(self) -> int:
        return sum(len(uids) for uids in self._by_size.values())

    def has_size(self, size: int) -> bool:
        """Whether an unclaimed destination message is ``size`` bytes long."""
        return bool(self._by_size.get(size))

    async def claim(self, size: int, digest: bytes) -> int | None:
        """The UID of an unclaimed destination message with exactly these bytes, if any."""
        candidates = self._by_size.get(size)
        if not candidates:
            return None
        v = self._validity
        unknown = [uid for uid in candidates if (v, uid) not in self._digests]
        if unknown:

            def keep(fetch: Fetch) -> None:  # each as it arrives, kept if the link drops
                if fetch.uid is not None and "" in fetch.body:
                    self._digests[v, fetch.uid] = hashlib.sha256(fetch.body[""]).digest()

            await self._client.uid_fetch_nowait(unknown, "(UID BODY.PEEK[])", on_fetch=keep)
        for uid in candidates:
            if self._digests.get((v, uid)) == digest:
                candidates.remove(uid)
                return uid
        return None
