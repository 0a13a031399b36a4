"""Planning a mailbox pair: which folders, where they go, how big; shared by every pass.

``plan_mailbox`` is what copy, verify, check and a dry run all call, with the
presets of both sides, so that they agree on which folders exist and where
each one goes (including where an earlier run put it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from mailmover.engine.folders import FolderPlan, Side, plan_folders
from mailmover.engine.naming import create_folders
from mailmover.engine.profile import ServerProfile
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.errors import CommandFailed
from mailmover.imap.client import IMAPClient, SelectedMailbox
from mailmover.imap.proto.commands import Mailbox
from mailmover.imap.proto.responses import ListMailbox, Namespace
from mailmover.store.records import FolderRecord


@dataclass(frozen=True)
class Profiles:
    """What each side is (preset + what its server says); resolved once per pass."""

    source: ServerProfile
    dest: ServerProfile

    @classmethod
    def by_host(cls, pair: MailboxPair, settings: PassSettings) -> Profiles:
        """Before any connection: from the presets named, else from the host names."""
        return cls(
            ServerProfile.resolve(settings.source_preset, pair.source.host, None),
            ServerProfile.resolve(settings.dest_preset, pair.dest.host, None),
        )

    @classmethod
    def of(
        cls, pair: MailboxPair, settings: PassSettings, src: IMAPClient, dst: IMAPClient
    ) -> Profiles:
        """With the servers' capabilities (APPENDLIMIT, recognised providers)."""
        return cls(
            ServerProfile.resolve(settings.source_preset, pair.source.host, src),
            ServerProfile.resolve(settings.dest_preset, pair.dest.host, dst),
        )

    def connections(self, wanted: int) -> int:
        return self.source.connections(self.dest.connections(wanted))


@dataclass(frozen=True)
class MailboxPlan:
    """The folders of a pass, where each goes, and the servers' sides as listed."""

    plans: list[FolderPlan]
    sizes: dict[str, tuple[int, int]]  # source folder → (messages, bytes); bytes 0: not asked
    source: Side
    dest: Side
    #: source folder → its STATUS (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ where offered)
    status: dict[str, dict[str, int]] = field(default_factory=dict)
    #: destination folder → its UIDVALIDITY, as LIST-STATUS gave it (empty without)
    dest_status: dict[str, dict[str, int]] = field(default_factory=dict)


async def plan_mailbox(
    src: IMAPClient,
    dst: IMAPClient,
    settings: PassSettings,
    profiles: Profiles,
    recorded: Sequence[FolderRecord] | Awaitable[Sequence[FolderRecord]] = (),
    *,
    exact_sizes: bool = False,
) -> MailboxPlan:
    """List both sides, plan the folders (presets, filters, maps, earlier names), size them.

    ``recorded`` (the folders the job database knows) may still be on its way: the
    listing goes out meanwhile (a ``copy`` opens its database while it logs in).

    ``exact_sizes``: byte totals even without STATUS=SIZE (one FETCH per folder),
    for plans that show them; a copy only needs message counts to order folders.
    """
    items = ["MESSAGES", "UIDVALIDITY", "UIDNEXT"]
    items += ["HIGHESTMODSEQ"] if src.has("CONDSTORE") else []
    items += ["SIZE"] if src.has("STATUS=SIZE") else []
    # Both sides at once; where the servers offer LIST-STATUS, each folder's STATUS
    # comes with the LIST: what a rerun needs to tell which folders changed.
    (src_side, src_status), (dst_side, dst_status), earlier = await asyncio.gather(
        read_side(src, items), read_side(dst, ["UIDVALIDITY"]), _ready(recorded)
    )
    plans = plan_folders(
        src_side,
        dst_side,
        include=settings.include,
        exclude=settings.exclude,
        mapping=settings.mapping,
        source_preset=profiles.source.preset,
        dest_profile=profiles.dest,
    )
    plans = keep_earlier_names(plans, earlier, dst_side, settings.mapping)
    # What LIST-STATUS did not give: one pipelined round trip.
    names = [p.source_name for p in plans]
    missing = [n for n in names if n not in src_status]
    asked = await statuses(src, missing, items) if missing else {}
    status = {n: src_status[n] if n in src_status else asked[n] for n in names}
    if exact_sizes and not src.has("STATUS=SIZE"):
        sizes = await folder_sizes(src, plans)
    else:
        sizes = {n: (s.get("MESSAGES", 0), s.get("SIZE", 0)) for n, s in status.items()}
    return MailboxPlan(plans, sizes, src_side, dst_side, status, dst_status)


async def _ready(
    records: Sequence[FolderRecord] | Awaitable[Sequence[FolderRecord]],
) -> Sequence[FolderRecord]:
    return await records if isinstance(records, Awaitable) else records


async def statuses(
    client: IMAPClient, names: Sequence[str], items: Sequence[str]
) -> dict[str, dict[str, int]]:
    """STATUS of every folder in ``names``, pipelined; ``{}`` for one the server will not
    open (deleted since LIST, or refused: its copy says what became of it)."""
    asked = [client.status(name, list(items)) for name in names]
    out: dict[str, dict[str, int]] = {}
    for name, status in zip(
        names, await asyncio.gather(*asked, return_exceptions=True), strict=True
    ):
        if isinstance(status, BaseException):
            _folder_only(status)
            status = {}
        out[name] = status
    return out


def unchanged(
    rec: FolderRecord | None, source: Mapping[str, int | None], dest: Mapping[str, int | None]
) -> bool:
    """Whether a folder copied before needs no work: same UIDVALIDITY on both sides,
    nothing new (UIDNEXT) and no flag changed (HIGHESTMODSEQ, so CONDSTORE only)."""
    return (
        rec is not None
        and rec.state == "done"
        and rec.source_uidvalidity == source.get("UIDVALIDITY")
        and rec.dest_uidvalidity == dest.get("UIDVALIDITY")
        and rec.source_uidnext is not None
        and rec.source_uidnext == source.get("UIDNEXT")
        and source.get("HIGHESTMODSEQ") is not None
        and rec.highestmodseq == source.get("HIGHESTMODSEQ")
    )


def opened_unchanged(rec: FolderRecord, src: SelectedMailbox, dst: SelectedMailbox) -> bool:
    """``unchanged``, by what the source's EXAMINE and the destination's SELECT said."""
    seen = {"UIDNEXT": src.uidnext, "HIGHESTMODSEQ": src.highestmodseq}
    return unchanged(
        rec, {"UIDVALIDITY": src.uidvalidity, **seen}, {"UIDVALIDITY": dst.uidvalidity}
    )


async def read_side(
    client: IMAPClient, status: Sequence[str] = ()
) -> tuple[Side, dict[str, dict[str, int]]]:
    """LIST, LSUB and NAMESPACE of one server, pipelined; with LIST-STATUS, the
    ``status`` items of the folders too (by name; a folder missing there must be
    asked for)."""

    async def namespace() -> Namespace | None:
        return await client.namespace() if client.has("NAMESPACE") else None

    async def listing() -> tuple[list[ListMailbox], dict[str, dict[str, int]]]:
        if status and client.has("LIST-STATUS"):
            return await client.list_status(status)
        return await client.list_mailboxes(), {}

    found_namespace, (mailboxes, found), lsub = await asyncio.gather(
        namespace(), listing(), client.list_mailboxes(lsub=True)
    )
    return Side(mailboxes, frozenset(m.name for m in lsub), found_namespace), found


async def folder_sizes(
    client: IMAPClient, plans: Sequence[FolderPlan], *, exact: bool = True
) -> dict[str, tuple[int, int]]:
    """Messages and bytes per source folder.

    One pipelined STATUS for all folders (with SIZE when offered); without
    STATUS=SIZE, bytes are counted by a FETCH per folder only when ``exact``,
    else left at 0. A folder the server will not open (deleted since LIST, or
    refused) counts as empty here; its copy says what became of it.
    """
    sizes: dict[str, tuple[int, int]] = {}
    if client.has("STATUS=SIZE") or not exact:  # STATUS replies name their folder
        items = ["MESSAGES", "SIZE"] if client.has("STATUS=SIZE") else ["MESSAGES"]
        asked = [client.status(p.source_name, items) for p in plans]
        answers = await asyncio.gather(*asked, return_exceptions=True)
        for plan, status in zip(plans, answers, strict=True):
            if isinstance(status, BaseException):
                _folder_only(status)
                status = {}
            sizes[plan.source_name] = (status.get("MESSAGES", 0), status.get("SIZE", 0))
        return sizes
    for plan in plans:
        try:
            selected = await client.examine(plan.source_name)
        except CommandFailed as exc:
            _folder_only(exc)
            sizes[plan.source_name] = (0, 0)
            continue
        total = 0
        if selected.exists:
            fetches = await client.uid_fetch(range(1, 2**32), "(UID RFC822.SIZE)")
            total = sum(f.size or 0 for f in fetches)
        sizes[plan.source_name] = (selected.exists, total)
    return sizes


def _folder_only(exc: BaseException) -> None:
    """Raise ``exc`` unless it is a refusal that concerns one folder alone."""
    if not isinstance(exc, CommandFailed) or exc.retryable:
        raise exc


async def prepare_destination(
    client: IMAPClient,
    plans: Sequence[FolderPlan],
    dest: Side,
    delimiter: str | None = None,
    later: Collection[str] = frozenset(),
) -> list[FolderPlan]:
    """Create the folders the destination lacks (empty ones too) and subscribe them.

    A name the destination refuses is replaced by the next that works (see
    engine.naming); the plans come back with the names used. The commands are
    pipelined: a hundred folders cost one round trip, not a hundred. Names in
    ``later`` are left alone: taken as there, neither created nor subscribed.
    """
    plans = await create_folders(client, plans, dest, delimiter or dest.delimiter or "/", later)
    wanted = [
        p.dest_name
        for p in plans
        if p.subscribed
        and p.refused is None
        and p.dest_name not in dest.subscribed
        and p.dest_name not in later
    ]
    sent = [client.submit("SUBSCRIBE", [Mailbox(n)]) for n in dict.fromkeys(wanted)]
    for outcome in await asyncio.gather(*sent, return_exceptions=True):
        if isinstance(outcome, BaseException):
            _folder_only(outcome)  # a refused SUBSCRIBE costs the subscription only
    return plans


def keep_earlier_names(
    plans: list[FolderPlan],
    recorded: Sequence[FolderRecord],
    dest: Side,
    mapping: dict[str, str],
) -> list[FolderPlan]:
    """A folder goes where an earlier run put it, even if the plan would now differ.

    The destination changes under a migration (a Sent folder appears, a preset
    is added); a folder whose target moved would be copied a second time.
    Only ``--map`` moves a folder on purpose.
    """
    earlier = {r.source_name: r.dest_name for r in recorded}
    names = {m.name for m in dest.mailboxes}
    kept = []
    for plan in plans:
        before = earlier.get(plan.source_name)
        if before is None or before == plan.dest_name or "/".join(plan.path) in mapping:
            kept.append(plan)
            continue
        kept.append(
            replace(
                plan,
                dest_name=before,
                dest_exists=before in names,
                note=f"kept where an earlier run put it (now it would go to {plan.dest_name})",
            )
        )
    return kept
