"""Compare two mailboxes message by message: bytes, flags and internal date.

Each folder is read on both sides as a multiset of (SHA-256 of the bytes,
internal date as an instant), each with its flags. What the source has more
of is missing, what the destination has more of is extra; a message on both
sides whose flags differ is a flag difference.

Some differences are the job's policy, not a fault, and are reported apart:
a folder the destination refused to name as the source does (found where the
copy put it: the job state's record, else the ladder of engine.naming), and
flags the copy mapped, dropped or found refused. A flag difference counts as
policy when every flag lost is one the destination holds on no message at
all while the source has it, and every flag gained one the source holds
nowhere and that replaced a lost one: what a flag map, a dropped flag or a
destination that refuses a flag does to the whole mailbox, and not what losing
(or gaining) one message's flag does. When the job state says which flags the
copy stored on a message (``stored``), the destination must also hold exactly
those.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from mailmover.engine.flags import FlagPolicy
from mailmover.engine.folders import FolderPlan, Side
from mailmover.engine.gmail import unlabelled
from mailmover.engine.naming import find_renamed
from mailmover.engine.planning import Profiles, plan_mailbox
from mailmover.engine.ports import Credentials
from mailmover.engine.session import Connector, SessionOptions
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.errors import MailboxMissing
from mailmover.imap.client import IMAPClient
from mailmover.store.records import FolderRecord

_Key = tuple[bytes, datetime]
Flags = tuple[str, ...]
#: source folder → (SHA-256, internal date) → the flag sets the copy stored for them
Stored = Mapping[str, Mapping[_Key, Sequence[Flags]]]
CHUNK = 200
_NOSELECT = frozenset({"\\noselect", "\\nonexistent"})


@dataclass(frozen=True)
class Difference:
    folder: str
    kind: str  # "missing" | "extra" | "flags"
    size: int
    internaldate: datetime
    flags: Flags  # the source's (the destination's for "extra")
    dest_flags: Flags = ()  # "flags": what the destination holds


@dataclass
class FolderCheck:
    source_name: str
    dest_name: str
    source_messages: int = 0
    dest_messages: int = 0
    differences: list[Difference] = field(default_factory=list)  # real ones
    policy: list[Difference] = field(default_factory=list)  # the job's choices
    dest_missing: bool = False
    note: str | None = None  # why the destination name differs
    # messages on both sides whose flags differ: (size, date, source flags, destination's)
    flag_pairs: list[tuple[_Key, int, Flags, Flags]] = field(default_factory=list, repr=False)


@dataclass
class VerifyReport:
    folders: list[FolderCheck] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """No real difference (policy differences allowed)."""
        return all(not f.differences and not f.dest_missing for f in self.folders)


@dataclass
class _Folder:
    """One side of a folder: each distinct message's flag sets, and its size."""

    flags: dict[_Key, list[Flags]] = field(default_factory=lambda: defaultdict(list))
    sizes: dict[_Key, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.flags.values())

    def all_flags(self) -> set[str]:
        return {f for sets in self.flags.values() for flags in sets for f in flags}


async def _read(client: IMAPClient, name: str, *, unlabelled_only: bool = False) -> _Folder:
    """One side of a folder. ``unlabelled_only``: Gmail's All Mail, of which a copy
    takes only the messages in no other label."""
    selected = await client.examine(name)
    policy = FlagPolicy(None)  # every flag a client can set; \Recent left out
    folder = _Folder()
    if not selected.exists:
        return folder
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
            key = (hashlib.sha256(body).digest(), when)
            folder.flags[key].append(flags)
            folder.sizes[key] = len(body)
    return folder


def _compare(check: FolderCheck, ours: _Folder, theirs: _Folder) -> None:
    """Missing and extra messages, and the messages whose flags differ."""
    name = check.source_name
    for key in ours.flags.keys() | theirs.flags.keys():
        mine, other = sorted(ours.flags.get(key, [])), sorted(theirs.flags.get(key, []))
        unmatched_other = list(other)
        left = []
        for flags in mine:  # same message, same flags: nothing to say
            if flags in unmatched_other:
                unmatched_other.remove(flags)
            else:
                left.append(flags)
        size = ours.sizes.get(key, theirs.sizes.get(key, 0))
        for flags, dest_flags in zip(left, unmatched_other, strict=False):
            check.flag_pairs.append((key, size, flags, dest_flags))
        for flags in left[len(unmatched_other) :]:
            check.differences.append(Difference(name, "missing", size, key[1], flags))
        for flags in unmatched_other[len(left) :]:
            check.differences.append(Difference(name, "extra", size, key[1], flags))


def classify_flags(
    checks: Sequence[FolderCheck], src_flags: set[str], dst_flags: set[str], stored: Stored
) -> None:
    """Sort each folder's flag differences into policy and real ones (see the module)."""
    dropped, added = src_flags - dst_flags, dst_flags - src_flags
    for check in checks:
        memory = stored.get(check.source_name, {})
        for key, size, flags, dest_flags in check.flag_pairs:
            lost, gained = set(flags) - set(dest_flags), set(dest_flags) - set(flags)
            diff = Difference(check.source_name, "flags", size, key[1], flags, dest_flags)
            # A flag gained alone is no map: something set it on the destination.
            policy = lost <= dropped and gained <= added and (bool(lost) or not gained)
            if policy and key in memory:
                policy = _folded(dest_flags) in {_folded(f) for f in memory[key]}
            (check.policy if policy else check.differences).append(diff)
        check.flag_pairs.clear()


def _folded(flags: Flags) -> frozenset[str]:
    return frozenset(f.casefold() for f in flags)


async def verify_folder(
    src: IMAPClient, dst: IMAPClient, plan: FolderPlan
) -> tuple[FolderCheck, set[str], set[str]]:
    """The folder's comparison, and the flags each side holds in it."""
    check = FolderCheck(plan.source_name, plan.dest_name, note=plan.note)
    try:
        theirs, ours = await asyncio.gather(
            _read(dst, plan.dest_name),
            _read(src, plan.source_name, unlabelled_only=plan.unlabelled_only),
        )
    except MailboxMissing:
        check.dest_missing = True
        return check, set(), set()
    check.source_messages, check.dest_messages = ours.count, theirs.count
    _compare(check, ours, theirs)
    return check, ours.all_flags(), theirs.all_flags()


def _where_copied(plans: list[FolderPlan], dest: Side) -> list[FolderPlan]:
    """Plans whose folder the destination lacks, pointed at the name the ladder gave it."""
    selectable = [
        m.name for m in dest.mailboxes if not {a.lower() for a in m.attributes} & _NOSELECT
    ]
    have = set(selectable)
    lacking = [p.dest_name for p in plans if p.dest_name not in have]
    if not lacking:
        return plans
    names = [p.dest_name for p in plans]
    found = find_renamed(names, selectable, dest.prefix, dest.delimiter or "/")
    return [
        replace(
            p,
            dest_name=found[p.dest_name],
            note=f"renamed: {p.dest_name!r} is {found[p.dest_name]!r} on the destination",
        )
        if p.dest_name in found
        else p
        for p in plans
    ]


async def verify(
    pair: MailboxPair,
    settings: PassSettings,
    credentials: Credentials,
    recorded: Sequence[FolderRecord] = (),
    stored: Stored | None = None,
) -> VerifyReport:
    """Compare every folder the copy would plan (same presets, filters and maps) with
    its destination folder; ``recorded``: where the copy put each folder; ``stored``:
    the flags it stored on each message, from the job state."""
    connector = Connector(pair, credentials, SessionOptions.of(settings))
    src, dst = await connector.open_pair(0)
    try:
        profiles = Profiles.of(pair, settings, src, dst)
        planned = await plan_mailbox(src, dst, settings, profiles, recorded)
        # Where the copy put each folder, as the job state recorded it (plan_mailbox);
        # failing that, where the ladder of substitute names would have put it.
        plans = _where_copied(planned.plans, planned.dest)
        report = VerifyReport()
        src_flags: set[str] = set()
        dst_flags: set[str] = set()
        for plan in plans:
            check, ours, theirs = await verify_folder(src, dst, plan)
            report.folders.append(check)
            src_flags |= ours
            dst_flags |= theirs
        classify_flags(report.folders, src_flags, dst_flags, stored or {})
        return report
    finally:
        await asyncio.gather(src.logout(), dst.logout())
