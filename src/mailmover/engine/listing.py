"""Listing a folder's messages so that every UID a search returned ends named.

A message deleted on the source by another session while it is copied shows as
size 0, ``BODY[] NIL`` or no FETCH reply at all (Dovecot); a UID SEARCH tells
it apart from a message the server merely failed to describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from mailmover.engine.batches import Item, Meta
from mailmover.engine.headers import summary
from mailmover.engine.ports import Journal
from mailmover.imap.client import IMAPClient
from mailmover.imap.proto.commands import Atom
from mailmover.imap.proto.dates import imap_date
from mailmover.imap.proto.sequences import sequence_set

META = "(UID FLAGS INTERNALDATE RFC822.SIZE)"
HEADER = "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])"
VANISHED = "deleted on the source during the copy"
UNDESCRIBED = "the source server did not give its size"


@dataclass
class Listing:
    """What the source said of a list of UIDs."""

    metas: list[Meta] = field(default_factory=list)  # by UID
    vanished: list[int] = field(default_factory=list)  # deleted meanwhile
    undescribed: list[int] = field(default_factory=list)  # still there, but no size given
    undated: int = 0  # messages without a readable date: appended without one


async def vanished(src: IMAPClient, uids: Sequence[int]) -> set[int]:
    """Those of ``uids`` the source no longer has: deleted by another session."""
    if not uids:
        return set()
    still = await src.uid_search(Atom(f"UID {sequence_set(uids)}"))
    return set(uids) - set(still)


async def list_messages(src: IMAPClient, uids: Sequence[int]) -> Listing:
    """Flags, date and size of each of ``uids`` (a folder selected on ``src``)."""
    fetched = {f.uid: f for f in await src.uid_fetch(list(uids), META) if f.uid is not None}
    listing = Listing()
    unsized = []
    for uid in sorted(uids):
        f = fetched.get(uid)
        if f is None or not f.size:  # Dovecot gives size 0 for an expunged message
            unsized.append(uid)
            continue
        listing.undated += f.internaldate is None
        listing.metas.append(Meta(uid, f.flags or (), f.internaldate, f.size))
    gone = await vanished(src, unsized)
    listing.vanished = [uid for uid in unsized if uid in gone]
    listing.undescribed = [uid for uid in unsized if uid not in gone]
    return listing


def date_criteria(since: date | None, before: date | None) -> list[Atom]:
    """UID SEARCH criteria for a date range (internal dates, RFC 3501 6.4.4)."""
    criteria = [Atom("ALL")]
    if since:
        criteria.append(Atom(f"SINCE {imap_date(since)}"))
    if before:
        criteria.append(Atom(f"BEFORE {imap_date(before)}"))
    return criteria


async def failed_before(
    journal: Journal, folder_id: int, uidvalidity: int, uids: Sequence[int]
) -> list[int]:
    """Those of ``uids`` that an earlier pass recorded as failed."""
    failed: set[int] = set()
    async for page in journal.iter_messages(folder_id, uidvalidity=uidvalidity, states=("failed",)):
        failed.update(row.source_uid for row in page)
    return [uid for uid in uids if uid in failed]


async def too_big(src: IMAPClient, metas: Sequence[Meta], limit: int) -> list[Item]:
    """Items for messages the destination cannot take: named, with subject, never sent."""
    fetches = await src.uid_fetch([m.uid for m in metas], HEADER)
    heads = {f.uid: next(iter(f.body.values()), b"") for f in fetches if f.uid is not None}
    items = []
    for meta in metas:
        message_id, subject = summary(heads.get(meta.uid, b""))
        reason = f"larger than the destination accepts ({meta.size:,} > {limit:,} bytes)"
        items.append(Item(meta, None, None, (), message_id, subject, reason, held=False))
    return items
