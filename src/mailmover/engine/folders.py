"""Plan the folders: which source folders move, and under which destination names.

A source name is turned into a logical path (its personal-namespace prefix
removed, split on its hierarchy separator), then joined again with the
destination's separator and prefix. SPECIAL-USE roles (RFC 6154) are matched
so that Sent lands in the destination's Sent whatever each side calls it. A
part that holds the destination's separator (Dovecot's Maildir++ refuses
``.`` in a name) is given a deterministic substitute, and names that clash
case-insensitively are told apart; the plan records why a name changed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from mailmover.engine.profile import ServerProfile
from mailmover.errors import UsageError
from mailmover.imap.proto.responses import ListMailbox, Namespace
from mailmover.providers import Preset

ROLES = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive")
# Names servers use when they do not announce SPECIAL-USE (lower-cased last part).
_ROLE_NAMES = {
    "\\Sent": {"sent", "sent items", "sent messages", "sent mail", "gesendet"},
    "\\Drafts": {"drafts", "draft", "entwürfe"},
    "\\Trash": {"trash", "deleted items", "deleted messages", "bin", "papierkorb"},
    "\\Junk": {"junk", "spam", "junk email", "junk e-mail", "bulk mail"},
    "\\Archive": {"archive", "archives"},
}
_NOSELECT = {"\\noselect", "\\nonexistent"}


@dataclass(frozen=True)
class Side:
    """What LIST and NAMESPACE said about one server."""

    mailboxes: Sequence[ListMailbox]
    subscribed: frozenset[str]
    namespace: Namespace | None

    @property
    def delimiter(self) -> str | None:
        for mailbox in self.mailboxes:
            if mailbox.delimiter:
                return mailbox.delimiter
        if self.namespace and self.namespace.personal:
            return self.namespace.personal[0].delimiter
        return None

    @property
    def prefix(self) -> str:
        if self.namespace and self.namespace.personal:
            return self.namespace.personal[0].prefix
        return ""


@dataclass(frozen=True)
class FolderPlan:
    """One source folder and where it goes."""

    source_name: str
    path: tuple[str, ...]
    dest_name: str
    dest_exists: bool
    subscribed: bool
    role: str | None = None
    note: str | None = None  # why the destination name differs from the source's
    unlabelled_only: bool = False  # Gmail's All Mail: only messages with no other label
    refused: str | None = None  # no name worked on the destination: the server's words
    renamed_from: str | None = None  # the planned name, when the destination refused it


def logical_path(name: str, side: Side) -> tuple[str, ...]:
    """``INBOX.Work.2019`` on a Courier server → ``("Work", "2019")``."""
    if name.upper() == "INBOX":
        return ("INBOX",)
    prefix = side.prefix
    if prefix and name.startswith(prefix) and name != prefix.rstrip(side.delimiter or ""):
        name = name[len(prefix) :]
    delimiter = side.delimiter
    parts = tuple(name.split(delimiter)) if delimiter else (name,)
    if parts[0].upper() == "INBOX" and len(parts) == 1:
        return ("INBOX",)
    return parts


def role_of(
    mailbox: ListMailbox, path: tuple[str, ...], preset: Preset | None = None
) -> str | None:
    attributes = {a.lower() for a in mailbox.attributes}
    for role in ROLES:
        if role.lower() in attributes:
            return role
    if preset is not None and (named := preset.role_of(mailbox.name)):
        return named
    if len(path) == 1:
        for role, names in _ROLE_NAMES.items():
            if path[0].lower() in names:
                return role
    return None


def _foreign(name: str, namespace: Namespace | None) -> bool:
    """Whether ``name`` lies in another user's or the shared namespace (RFC 2342).

    Cyrus lists what others share with the account (``Other Users/bob/...``) and
    public folders next to the account's own; a copy moves the account's own mail.
    """
    if namespace is None:
        return False
    personal = max((len(e.prefix) for e in namespace.personal if name.startswith(e.prefix)),
                   default=-1)  # fmt: skip
    return any(
        e.prefix and name.startswith(e.prefix) and len(e.prefix) > personal
        for e in (*namespace.other, *namespace.shared)
    )


def _selectable(mailbox: ListMailbox) -> bool:
    return not ({a.lower() for a in mailbox.attributes} & _NOSELECT)


def _matches(path: tuple[str, ...], patterns: Sequence[str]) -> bool:
    text = "/".join(path)
    return any(
        fnmatch.fnmatchcase(text, p) or fnmatch.fnmatchcase(text, p + "/*") for p in patterns
    )


def plan_folders(
    source: Side,
    dest: Side,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    mapping: dict[str, str] | None = None,
    source_preset: Preset | None = None,
    dest_profile: ServerProfile | None = None,
) -> list[FolderPlan]:
    """The folders to move, in a stable order; UsageError for a ``--map`` that names nothing.

    Virtual folders of the source (Gmail's Important, Starred) are views of
    mail held elsewhere and are left out; Gmail's All Mail is kept for the
    messages that have no other label (``FolderPlan.unlabelled_only``).
    """
    mapping = dict(mapping or {})
    dest_preset = dest_profile.preset if dest_profile else None
    dest_delim = dest.delimiter or (dest_preset.folders.separator if dest_preset else None) or "/"
    dest_by_role: dict[str, str] = {}
    dest_names = {m.name for m in dest.mailboxes}
    dest_all = next(
        (m.name for m in dest.mailboxes if "\\all" in {a.lower() for a in m.attributes}), None
    )
    for mailbox in dest.mailboxes:
        role = role_of(mailbox, logical_path(mailbox.name, dest), dest_preset)
        if role and role not in dest_by_role and _selectable(mailbox):
            dest_by_role[role] = mailbox.name

    found: dict[str, tuple[str, ...]] = {}
    plans: list[FolderPlan] = []
    taken: dict[str, str] = {}  # casefolded destination name → source name
    for mailbox in sorted(source.mailboxes, key=lambda m: (m.name.upper() != "INBOX", m.name)):
        if not _selectable(mailbox) or _foreign(mailbox.name, source.namespace):
            continue
        virtual = source_preset.virtual_folder(mailbox.name, mailbox.attributes) if (
            source_preset
        ) else None  # fmt: skip
        all_mail = virtual is not None and (virtual.special_use or "").lower() == "\\all"
        if virtual is not None and not all_mail:
            continue
        path = logical_path(mailbox.name, source)
        text = "/".join(path)
        found[text] = path
        if include and not _matches(path, include):
            continue
        if exclude and _matches(path, exclude):
            continue
        role = role_of(mailbox, path, source_preset)
        if all_mail:
            role = "\\Archive"  # what is left in All Mail is archived mail
        note = None
        if text in mapping:
            target = tuple(mapping[text].split("/"))
            dest_name, note = _join(target, dest, dest_delim), f"mapped by --map to {mapping[text]}"
        elif path == ("INBOX",):
            dest_name = "INBOX"
        elif all_mail and dest_all is not None:
            dest_name = dest_all  # Gmail to Gmail: archived mail stays archived
        elif role and role in dest_by_role:
            dest_name = dest_by_role[role]
            if dest_name != mailbox.name:
                note = f"{role[1:]} folder of the destination"
        else:
            fixed = path
            if len(path) > 1 and path[0] == "[Gmail]" and not (dest_preset and dest_preset.labels):
                fixed = path[1:]  # Gmail's system folders are top-level folders elsewhere
            if all_mail:
                fixed = ("Archive",)
                note = "archived Gmail mail (in no other label)"
            if dest_profile is not None:
                pairs = [dest_profile.folder_name(part) for part in fixed]
                fixed = tuple(name for name, _ in pairs)
                note = next((why for _, why in pairs if why), note)
            dest_name = _join(fixed, dest, dest_delim)
            if any(dest_delim in part for part in path):
                note = f"renamed: {dest_delim!r} separates levels on the destination"
        folded = dest_name.casefold()
        if folded in taken and taken[folded] != mailbox.name:
            base, n = dest_name, 2
            while f"{base}-{n}".casefold() in taken:
                n += 1
            dest_name = f"{base}-{n}"
            note = f"its name clashes with {taken[folded]!r} when case is ignored"
            folded = dest_name.casefold()
        taken[folded] = mailbox.name
        plans.append(
            FolderPlan(
                source_name=mailbox.name,
                path=path,
                dest_name=dest_name,
                dest_exists=dest_name in dest_names,
                subscribed=mailbox.name in source.subscribed,
                role=role,
                note=note,
                unlabelled_only=all_mail,
            )
        )
    missing = [old for old in mapping if old not in found]
    if missing:
        raise UsageError(
            f"--map names a folder the source does not have: {missing[0]!r} "
            f"(folders: {', '.join(sorted(found)[:10])})"
        )
    return plans


def _join(path: tuple[str, ...], dest: Side, delimiter: str) -> str:
    substitute = "_" if delimiter != "_" else "-"
    parts = [part.replace(delimiter, substitute) for part in path]
    if parts == ["INBOX"]:
        return "INBOX"
    return dest.prefix + delimiter.join(parts)
