"""Servers that refuse flags: a groupware that lies about PERMANENTFLAGS, and Yahoo.

``groupware`` (Scalix-like): PERMANENTFLAGS lists ``\\*`` (Dovecot's, passed on
unchanged), yet an APPEND or STORE carrying any keyword, or a backslash flag
RFC 3501 does not define, gets ``BAD``. Scalix's wording is not documented;
the texts are ones other servers send for the same refusal (imapsync's
FAQ.Flags: "BAD Invalid system flag \\FORWARDED", "Invalid flag list").

``yahoo``: APPEND with ``\\Deleted`` gets ``NO [CANNOT] APPEND Contains Deleted
flag`` (imapsync issue #420, Yahoo's exact reply). Setting ``\\Deleted`` with
STORE is refused the same way while ``refuse_store_deleted`` is on (the
default); that half is an assumption, not a documented Yahoo reply. Folders:
Yahoo's names (Sent, Draft, Trash, Bulk Mail, Archive) without SPECIAL-USE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from support.emulator.command import Command, Refusal
from support.emulator.framing import literal_marker
from support.emulator.messages import (
    appended,
    keywords,
    store_args,
    unknown_system_flags,
)
from support.emulator.provider import Provider
from support.emulator.session import Session

_STORES = ("STORE", "UID STORE")


@dataclass(frozen=True)
class GroupwareOptions:
    """``refuse_store``: STORE with a refused flag gets BAD too (APPEND always does)."""

    refuse_store: bool = True


class Groupware(Provider):
    """A groupware server that announces ``\\*`` but refuses keywords."""

    name = "groupware"
    Options = GroupwareOptions
    own_special_use = False

    def buffers(self, session: Session, cmd: Command) -> bool:
        return cmd.name == "APPEND" or cmd.name in _STORES or super().buffers(session, cmd)

    def check(self, session: Session, cmd: Command) -> Refusal | None:
        if cmd.name == "APPEND":
            for message in appended(cmd):
                refusal = _refused_flags(message.flags)
                if refusal is not None:
                    return refusal
        options = self.emulator.options
        assert isinstance(options, GroupwareOptions)
        if cmd.name in _STORES and options.refuse_store and _complete(cmd):
            store = store_args(cmd)
            if store is not None and store.item == "FLAGS":
                return _refused_flags(store.values)
        return None


def _refused_flags(flags: tuple[str, ...]) -> Refusal | None:
    unknown = unknown_system_flags(flags)
    if unknown:
        return Refusal(b"BAD Invalid system flag " + unknown[0].encode())
    if keywords(flags):
        return Refusal(b"BAD Invalid flag list")
    return None


def _complete(cmd: Command) -> bool:
    return literal_marker(cmd.lines[-1]) is None


@dataclass(frozen=True)
class YahooOptions:
    """``refuse_store_deleted``: STORE +FLAGS/FLAGS with ``\\Deleted`` is refused too."""

    refuse_store_deleted: bool = True


class Yahoo(Provider):
    """Yahoo Mail: no ``\\Deleted`` on APPEND (nor, by default, on STORE)."""

    name = "yahoo"
    Options = YahooOptions
    keep: ClassVar[frozenset[str] | None] = frozenset(
        {
            "IMAP4REV1", "ID", "MOVE", "NAMESPACE", "UIDPLUS", "LITERAL+", "CHILDREN",
            "UNSELECT", "IDLE", "SASL-IR", "AUTH=PLAIN", "AUTH=LOGIN", "AUTH=XOAUTH2",
        }
    )  # fmt: skip
    folders: ClassVar[dict[str, str]] = {
        "Sent": "",
        "Draft": "",
        "Trash": "",
        "Bulk Mail": "",
        "Archive": "",
    }

    def buffers(self, session: Session, cmd: Command) -> bool:
        return cmd.name == "APPEND" or cmd.name in _STORES or super().buffers(session, cmd)

    def check(self, session: Session, cmd: Command) -> Refusal | None:
        if cmd.name == "APPEND" and any(_has_deleted(m.flags) for m in appended(cmd)):
            return Refusal(b"NO [CANNOT] APPEND Contains Deleted flag")
        options = self.emulator.options
        assert isinstance(options, YahooOptions)
        if cmd.name in _STORES and options.refuse_store_deleted and _complete(cmd):
            store = store_args(cmd)
            setting = store is not None and store.item == "FLAGS" and store.sign != "-"
            if setting and store is not None and _has_deleted(store.values):
                return Refusal(b"NO [CANNOT] STORE Contains Deleted flag")
        return None


def _has_deleted(flags: tuple[str, ...]) -> bool:
    return any(f.lower() == "\\deleted" for f in flags)
