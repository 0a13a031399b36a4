"""Gmail's labels (X-GM-EXT-1): one message, several folders.

Gmail shows a message once per label, and every message once more in
[Gmail]/All Mail. Two ways to move that to a destination:

- ``folders`` (the default for other servers): a copy in every label's
  folder; All Mail contributes only the messages no label folder holds.
- ``primary``: each message once, in the folder of its most important label
  (Inbox, Sent, Drafts, then user labels by name, else the archive); its other
  labels become keywords. Gmail destinations always get this, with the other
  labels applied as X-GM-LABELS, so Gmail to Gmail keeps labels exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mailmover.engine.folders import FolderPlan
from mailmover.imap.client import IMAPClient
from mailmover.imap.proto import utf7
from mailmover.imap.proto.commands import Arg, Atom, Mailbox, ParenList
from mailmover.imap.proto.sequences import UidRange, sequence_set

Policy = Literal["folders", "primary"]
CHUNK = 5000
# Gmail labels that are not folders of their own: a message with only these is archived.
_NOT_FOLDERS = {"\\important", "\\starred"}
_ROLE_LABELS = {"\\Sent": "\\Sent", "\\Drafts": "\\Draft"}
_NOT_KEYWORD = re.compile(r"[^A-Za-z0-9!#&'+,\-./:;<=>?@^_`|~$]")


async def unlabelled(client: IMAPClient, uids: list[int]) -> list[int]:
    """The messages of Gmail's All Mail that no label folder holds (archived mail)."""
    keep: list[int] = []
    for uid, _, labels in await _labels(client, uids):
        if {label.lower() for label in labels} <= _NOT_FOLDERS:
            keep.append(uid)
    return sorted(keep)


async def _labels(client: IMAPClient, uids: list[int]) -> list[tuple[int, int, tuple[str, ...]]]:
    """(UID, X-GM-MSGID, X-GM-LABELS) of the selected folder's ``uids``."""
    chunks = [
        client.uid_fetch_nowait(uids[i : i + CHUNK], "(UID X-GM-MSGID X-GM-LABELS)")
        for i in range(0, len(uids), CHUNK)
    ]
    out = []
    for chunk in chunks:
        for fetch in (await chunk).fetches:
            if fetch.uid is not None and fetch.gm_msgid is not None:
                out.append((fetch.uid, fetch.gm_msgid, fetch.gm_labels or ()))
    return out


def label_of(plan: FolderPlan) -> str | None:
    """The Gmail label a source folder stands for (None for All Mail, Spam, Trash)."""
    if plan.unlabelled_only or plan.role in {"\\Junk", "\\Trash"}:
        return None
    if plan.path == ("INBOX",):
        return "\\Inbox"
    if plan.role in _ROLE_LABELS:
        return _ROLE_LABELS[plan.role]
    return plan.source_name


def keyword(label: str) -> str:
    """A label as an IMAP keyword: ``\\Important`` → ``$Important``, ``a b`` → ``a_b``."""
    if label.startswith("\\"):
        return "$" + label[1:]
    return _NOT_KEYWORD.sub("_", utf7.encode(label)) or "_"


@dataclass
class LabelPlan:
    """Where each Gmail message goes when it is copied once (policy ``primary``)."""

    folder_of_label: dict[str, str]  # label → source folder that stands for it
    priority: list[str]  # labels, most important first
    gmail_dest: bool
    labels: dict[int, tuple[str, ...]] = field(default_factory=dict)  # X-GM-MSGID → labels

    @classmethod
    def for_plans(cls, plans: Sequence[FolderPlan], *, gmail_dest: bool) -> LabelPlan:
        folder_of_label = {label: p.source_name for p in plans if (label := label_of(p))}
        system = [lab for lab in ("\\Inbox", "\\Sent", "\\Draft") if lab in folder_of_label]
        users = sorted(lab for lab in folder_of_label if lab not in system)
        return cls(folder_of_label, system + users, gmail_dest)

    def primary(self, labels: Sequence[str]) -> str | None:
        """The source folder a message with these labels is copied from (None: All Mail)."""
        have = set(labels)
        for label in self.priority:
            if label in have:
                return self.folder_of_label[label]
        return None

    async def select(
        self, client: IMAPClient, plan: FolderPlan, uids: list[int]
    ) -> tuple[list[int], dict[int, tuple[str, ...]]]:
        """The UIDs this folder copies, and the other labels of each."""
        if label_of(plan) is None and not plan.unlabelled_only:
            return uids, {}  # Spam and Trash are not in All Mail: copy them as they are
        mine = label_of(plan)
        keep: list[int] = []
        extra: dict[int, tuple[str, ...]] = {}
        for uid, _msgid, labels in await _labels(client, uids):
            home = self.primary(labels)
            if home != (None if plan.unlabelled_only else plan.source_name):
                continue  # copied from the folder of a more important label
            others = tuple(sorted(lab for lab in labels if lab != mine))
            keep.append(uid)
            if others:
                extra[uid] = others
        return sorted(keep), extra

    def flags_for(self, flags: tuple[str, ...], labels: tuple[str, ...]) -> tuple[str, ...]:
        """A non-Gmail destination keeps the other labels as keywords."""
        if self.gmail_dest or not labels:
            return flags
        extra = {keyword(label) for label in labels if label.lower() != "\\starred"}
        return tuple(sorted(set(flags) | extra))


async def apply_labels(client: IMAPClient, labelled: dict[int, tuple[str, ...]]) -> None:
    """Gmail destination: add each appended message's other labels (X-GM-LABELS STORE)."""
    await _store_labels(client, "+X-GM-LABELS.SILENT", labelled)


async def sync_labels(
    client: IMAPClient,
    copied: dict[int, int],
    labels: dict[int, tuple[str, ...]],
    mine: str | None,
) -> int:
    """Gmail to Gmail on a later pass: give each copied message (source UID → destination
    UID in the selected destination folder) the source's labels now, adding and
    removing; ``mine`` is the folder's own label. Returns how many messages changed."""
    if not copied:
        return 0
    fetched = await client.uid_fetch(sorted(copied.values()), "(UID X-GM-LABELS)")
    have = {f.uid: set(f.gm_labels or ()) - {mine} for f in fetched if f.uid is not None}
    add: dict[int, tuple[str, ...]] = {}
    remove: dict[int, tuple[str, ...]] = {}
    for source_uid, dest_uid in copied.items():
        if dest_uid not in have:
            continue  # no longer there: nothing to label
        want = set(labels.get(source_uid, ())) - {mine}
        if want - have[dest_uid]:
            add[dest_uid] = tuple(sorted(want - have[dest_uid]))
        if have[dest_uid] - want:
            remove[dest_uid] = tuple(sorted(have[dest_uid] - want))
    await _store_labels(client, "+X-GM-LABELS.SILENT", add)
    await _store_labels(client, "-X-GM-LABELS.SILENT", remove)
    return len(add.keys() | remove.keys())


async def _store_labels(
    client: IMAPClient, operation: str, labelled: dict[int, tuple[str, ...]]
) -> None:
    groups: dict[tuple[str, ...], list[int]] = {}
    for uid, labels in labelled.items():
        groups.setdefault(labels, []).append(uid)
    futures = []
    for labels, uids in groups.items():
        args: list[Arg] = [
            Atom(sequence_set(uids)),
            Atom(operation),
            # Labels travel like mailbox names: modified UTF-7 (the parser decoded them).
            ParenList([Atom(lab) if lab.startswith("\\") else Mailbox(lab) for lab in labels]),
        ]
        futures.append(client.submit("UID STORE", args, uids=UidRange.of(sorted(uids))))
    for future in futures:
        await future
