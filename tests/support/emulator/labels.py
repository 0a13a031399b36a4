"""Gmail's labels kept in Dovecot: one folder per label, holding copies.

Every message lives in ``[Gmail]/All Mail`` and, once per label, in the label's
folder (system labels in their ``[Gmail]/...`` folders, ``\\Inbox`` in INBOX).
The copies are made with COPY, so they share Dovecot's message GUID (X-GUID):
that GUID is the message's identity, and X-GM-MSGID is derived from it. The
labels of a message are the folders that hold its GUID; the emulator reads
them from Dovecot (re-listing only folders whose STATUS changed), so mail put
into Dovecot behind the emulator's back is labelled correctly too. A labelled
message missing from All Mail gets its copy there at the next refresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field

from mailmover.imap.proto.sequences import parse_sequence_set
from support.emulator.direct import Direct
from support.emulator.framing import Frame, quoted, text, tokenize
from support.emulator.quota import Bandwidth

ALL_MAIL = "[Gmail]/All Mail"
SPAM = "[Gmail]/Spam"
TRASH = "[Gmail]/Trash"
#: system labels and the folders that stand for them
SYSTEM_LABELS = {
    "\\Inbox": "INBOX",
    "\\Sent": "[Gmail]/Sent Mail",
    "\\Draft": "[Gmail]/Drafts",
    "\\Important": "[Gmail]/Important",
    "\\Starred": "[Gmail]/Starred",
    "\\Spam": SPAM,
    "\\Trash": TRASH,
}
_LABEL_OF = {folder: label for label, folder in SYSTEM_LABELS.items()}
_BY_LOWER = {label.lower(): label for label in SYSTEM_LABELS}
_UID = re.compile(rb"\bUID ([0-9]+)")
_GUID = re.compile(rb'\bX-GUID "?([^\s")]+)"?')
_STATUS_ITEM = re.compile(rb"(UIDVALIDITY|UIDNEXT|MESSAGES) ([0-9]+)")


def folder_of(label: str) -> str:
    """The folder that holds the messages with ``label``."""
    if label.lower() in _BY_LOWER:
        return SYSTEM_LABELS[_BY_LOWER[label.lower()]]
    return "INBOX" if label.upper() == "INBOX" else label


def label_of(folder: str) -> str | None:
    """The label a folder stands for (None for All Mail and ``[Gmail]`` itself)."""
    if folder.upper() == "INBOX":
        return "\\Inbox"
    if folder in (ALL_MAIL, "[Gmail]"):
        return None
    return _LABEL_OF.get(folder, folder)


def msgid(guid: str) -> int:
    """X-GM-MSGID (and X-GM-THRID) of the message with Dovecot GUID ``guid``: 63 bits."""
    digest = hashlib.sha256(guid.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1 or 1


def guid_in(frame: Frame) -> str | None:
    """The X-GUID item of a FETCH response, if it has one."""
    for line in frame.lines:
        match = _GUID.search(line)
        if match:
            return match.group(1).decode("ascii", "replace")
    return None


def uid_in(frame: Frame) -> int | None:
    match = _UID.search(frame.lines[0])
    return int(match.group(1)) if match else None


@dataclass
class FolderView:
    """What Dovecot holds in one folder: its STATUS then, and GUID → UID."""

    key: tuple[int, ...]
    uids: dict[str, int] = field(default_factory=dict)


class GmailAccount:
    """The label index and bandwidth of one Gmail account, shared by its sessions."""

    def __init__(self, bandwidth: Bandwidth) -> None:
        self.bandwidth = bandwidth
        self.lock = asyncio.Lock()
        self.folders: dict[str, FolderView] = {}
        self._direct: Direct | None = None

    def reset_day(self) -> None:
        self.bandwidth.reset_day()

    async def connect(self, host: str, port: int, login: bytes) -> None:
        """Open the account's own connection to Dovecot (once)."""
        async with self.lock:
            if self._direct is None or not self._direct.connected:
                self._direct = Direct(host, port)
                await self._direct.open(login)

    async def aclose(self) -> None:
        if self._direct is not None:
            await self._direct.close()

    @property
    def direct(self) -> Direct:
        if self._direct is None:
            raise RuntimeError("the Gmail account has no connection of its own yet")
        return self._direct

    # -- reading -----------------------------------------------------------------------

    def labels(self, guid: str) -> list[str]:
        """The labels of a message, system labels first."""
        found = [label_of(name) for name, view in self.folders.items() if guid in view.uids]
        labels = {label for label in found if label is not None}
        return sorted(labels, key=lambda label: (not label.startswith("\\"), label))

    async def refresh(self) -> None:
        """Bring the index up to date with Dovecot, and All Mail up to date with the labels."""
        async with self.lock:
            await self._relist()
            if await self._fill_all_mail():
                await self._relist()

    async def _relist(self) -> None:
        _, listed = await self.direct.run(b'LIST "" "*"')
        names = []
        for frame in listed:
            tokens = tokenize(frame.lines, frame.literals)
            if len(tokens) >= 5 and isinstance(tokens[2], list) and isinstance(tokens[4], bytes):
                attrs = {a.lower() for a in tokens[2] if isinstance(a, bytes)}
                if not attrs & {b"\\noselect", b"\\nonexistent"}:
                    names.append(text(tokens[4]))
        for gone in set(self.folders) - set(names):
            del self.folders[gone]
        for name in names:
            _, status = await self.direct.run(
                b"STATUS " + quoted(name) + b" (UIDVALIDITY UIDNEXT MESSAGES)"
            )
            items = dict(_STATUS_ITEM.findall(status[0].lines[0])) if status else {}
            key = tuple(int(items.get(k, b"0")) for k in (b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"))
            view = self.folders.get(name)
            if view is not None and view.key == key:
                continue
            view = FolderView(key)
            if key[2]:
                await self.direct.run(b"EXAMINE " + quoted(name))
                _, fetched = await self.direct.run(b"UID FETCH 1:* (UID X-GUID)")
                for frame in fetched:
                    guid, uid = guid_in(frame), uid_in(frame)
                    if guid is not None and uid is not None:
                        view.uids.setdefault(guid, uid)
            self.folders[name] = view

    async def _fill_all_mail(self) -> bool:
        everywhere = self.folders.get(ALL_MAIL)
        if everywhere is None:
            return False
        missing: dict[str, list[int]] = {}
        seen = set(everywhere.uids)
        for name, view in self.folders.items():
            if name in (ALL_MAIL, SPAM, TRASH):
                continue
            for guid, uid in view.uids.items():
                if guid not in seen:
                    seen.add(guid)
                    missing.setdefault(name, []).append(uid)
        for name, uids in missing.items():
            await self._copy(name, uids, ALL_MAIL)
        return bool(missing)

    # -- changing ----------------------------------------------------------------------

    async def appended(self, folder: str, appenduid: bytes) -> None:
        """Messages appended to a label's folder get their copy in All Mail."""
        if folder in (ALL_MAIL, SPAM, TRASH) or label_of(folder) is None:
            return
        async with self.lock:
            await self._copy(folder, parse_sequence_set(appenduid), ALL_MAIL)

    async def relabel(self, guids: list[str], sign: str, labels: list[str]) -> None:
        """STORE ``+``/``-``/(replace, sign ``""``) X-GM-LABELS on the messages ``guids``."""
        async with self.lock:
            await self._relist()
            wanted = {folder_of(label) for label in labels}
            for guid in guids:
                current = {folder_of(label) for label in self.labels(guid)}
                add = wanted - current if sign in ("+", "") else set()
                remove = wanted & current if sign == "-" else set()
                if sign == "":
                    remove = current - wanted
                for folder in sorted(add):
                    await self._add(guid, folder)
                for folder in sorted(remove):
                    await self._remove(guid, folder)
            await self._relist()

    async def _add(self, guid: str, target: str) -> None:
        if target not in self.folders:
            await self.direct.run(b"CREATE " + quoted(target), check=False)
        holders = [ALL_MAIL, *self.folders]
        source = next((n for n in holders if guid in self._uids(n)), None)
        if source is not None:
            await self._copy(source, [self._uids(source)[guid]], target)

    async def _remove(self, guid: str, target: str) -> None:
        uid = self._uids(target).get(guid)
        if uid is None:
            return
        await self.direct.run(b"SELECT " + quoted(target))
        await self.direct.run(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
        await self.direct.run(b"UID EXPUNGE %d" % uid)

    def _uids(self, folder: str) -> dict[str, int]:
        view = self.folders.get(folder)
        return view.uids if view is not None else {}

    async def _copy(self, source: str, uids: list[int], target: str) -> None:
        numbers = ",".join(str(uid) for uid in uids).encode()
        await self.direct.run(b"EXAMINE " + quoted(source))
        await self.direct.run(b"UID COPY " + numbers + b" " + quoted(target))
