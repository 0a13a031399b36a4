"""Compare two mailboxes message by message: bytes, flags and internal date.

Each folder is read on both sides as a multiset of (SHA-256 of the bytes,
flags the destination can keep, internal date as an instant); what the source
has more of is missing, what the destination has more of is extra. An altered
message shows up as one of each.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailmover.engine.flags import FlagPolicy
from mailmover.engine.folders import FolderPlan
from mailmover.engine.gmail import unlabelled
from mailmover.engine.planning import Profiles, plan_mailbox
from mailmover.engine.ports import Credentials
from mailmover.engine.session import Connector, SessionOptions
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.errors import MailboxMissing
from mailmover.imap.client import IMAPClient
from mailmover.store.records import FolderRecord

_Key = tuple[bytes, tuple[str, ...], datetime]
CHUNK = 200


@dataclass(frozen=True)
class Difference:
    folder: str
    kind: str  # "missing" | "extra"
    size: int
    internaldate: datetime
    flags: tuple[str, ...]


@dataclass
class FolderCheck:
    source_name: str
    dest_name: str
    source_messages: int = 0
    dest_messages: int = 0
    differences: list[Difference] = field(default_factory=list)
    dest_missing: bool = False


@dataclass
class VerifyReport:
    folders: list[FolderCheck] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return all(not f.differences and not f.dest_missing for f in self.folders)


async def _read(
    client: IMAPClient, name: str, *, unlabelled_only: bool = False
) -> tuple[Counter[_Key], dict[_Key, int]]:
    """The multiset of a folder, and the size of each distinct message.

    ``unlabelled_only``: Gmail's All Mail, of which a copy takes only the
    messages in no other label.
    """
    selected = await client.examine(name)
    policy = FlagPolicy(None)  # every flag a client can set; \Recent left out
    keys: Counter[_Key] = Counter()
    sizes: dict[_Key, int] = {}
    if not selected.exists:
        return keys, sizes
    uids = await client.uid_search()
    if unlabelled_only and client.has("X-GM-EXT-1"):
        uids = await unlabelled(client, uids)
    futures = [
        client.uid_fetch_nowait(uids[i : i + CHUNK], "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        for i in range(0, len(uids), CHUNK)
    ]
    for future in futures:
        for fetch in (await future).fetches:
            body = fetch.body.get("", b"")
            flags, _ = policy.keep(fetch.flags or ())
            when = (fetch.internaldate or datetime.min.replace(tzinfo=UTC)).astimezone(UTC)
            key = (hashlib.sha256(body).digest(), flags, when)
            keys[key] += 1
            sizes[key] = len(body)
    return keys, sizes


async def verify_folder(src: IMAPClient, dst: IMAPClient, plan: FolderPlan) -> FolderCheck:
    check = FolderCheck(plan.source_name, plan.dest_name)
    try:
        (theirs, sizes_d), (ours, sizes_s) = await asyncio.gather(
            _read(dst, plan.dest_name),
            _read(src, plan.source_name, unlabelled_only=plan.unlabelled_only),
        )
    except MailboxMissing:
        check.dest_missing = True
        return check
    check.source_messages, check.dest_messages = sum(ours.values()), sum(theirs.values())
    for kind, left, right, sizes in (
        ("missing", ours, theirs, sizes_s),
        ("extra", theirs, ours, sizes_d),
    ):
        for key, count in (left - right).items():
            for _ in range(count):
                check.differences.append(
                    Difference(plan.source_name, kind, sizes[key], key[2], key[1])
                )
    return check


async def verify(
    pair: MailboxPair,
    settings: PassSettings,
    credentials: Credentials,
    recorded: Sequence[FolderRecord] = (),
) -> VerifyReport:
    """Compare every folder the copy would plan (same presets, filters and maps) with
    its destination folder; ``recorded``: where the copy put each folder."""
    connector = Connector(pair, credentials, SessionOptions.of(settings))
    src, dst = await connector.open_pair(0)
    try:
        profiles = Profiles.of(pair, settings, src, dst)
        planned = await plan_mailbox(src, dst, settings, profiles, recorded)
        report = VerifyReport()
        for plan in planned.plans:
            report.folders.append(await verify_folder(src, dst, plan))
        return report
    finally:
        await asyncio.gather(src.logout(), dst.logout())
