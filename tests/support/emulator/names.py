"""A server that refuses some characters in folder names, as Cyrus IMAP refuses ``"``.

``cyrus-names``: CREATE (and RENAME to) a name holding any of ``refuse``
(``"`` by default) gets Cyrus's bare ``NO Invalid mailbox name``, which names
no character; so does a name holding any of the words in ``reserved``
(case ignored; none by default), which no substitute can avoid.

``strip_trailing`` (none by default): CREATE takes a name ending in these
characters but creates it without them, so that the name asked for cannot be
opened afterwards (Dovecot: ``NO Mailbox doesn't exist``), as servers that
normalise names do with trailing dots and spaces.

Nothing else changes: every other command goes to Dovecot and comes back byte
for byte, as in the ``passthrough`` profile. The rest of Cyrus (its ``INBOX.``
namespace, its ACLs) is not emulated.
"""

from __future__ import annotations

from dataclasses import dataclass

from support.emulator.command import Command, Refusal
from support.emulator.framing import Atom, String, literal_marker, quoted
from support.emulator.profile import Profile
from support.emulator.session import Session

REPLY = b"NO Invalid mailbox name"


@dataclass(frozen=True)
class NameOptions:
    """``refuse``: the characters no folder name may hold; ``reserved``: nor these words;
    ``strip_trailing``: characters CREATE quietly drops from the end of a name."""

    refuse: str = '"'
    reserved: tuple[str, ...] = ()
    strip_trailing: str = ""


class CyrusNames(Profile):
    """Refuses names holding the configured characters with a bare NO."""

    name = "cyrus-names"
    Options = NameOptions

    def buffers(self, session: Session, cmd: Command) -> bool:
        return cmd.name in ("CREATE", "RENAME")

    def check(self, session: Session, cmd: Command) -> Refusal | None:
        if literal_marker(cmd.lines[-1]) is not None:
            return None  # the name is in a literal still to come
        tokens = cmd.tokens()
        target = tokens[0] if cmd.name == "CREATE" else tokens[1] if len(tokens) > 1 else None
        if not isinstance(target, (Atom, String)):
            return None
        options = self.emulator.options
        assert isinstance(options, NameOptions)
        name = target.decode("utf-8", "surrogateescape")
        if set(name) & set(options.refuse) or any(
            word.lower() in name.lower() for word in options.reserved
        ):
            return Refusal(REPLY)
        return None

    async def handle(self, session: Session, cmd: Command) -> None:
        options = self.emulator.options
        assert isinstance(options, NameOptions)
        tokens = cmd.tokens()
        if cmd.name == "CREATE" and options.strip_trailing and tokens:
            name = tokens[0]
            if isinstance(name, (Atom, String)) and name.rstrip(options.strip_trailing.encode()):
                kept = name.rstrip(options.strip_trailing.encode())
                if kept != name:
                    await session.forward(
                        cmd, cmd.tag.encode() + b" CREATE " + quoted(kept) + b"\r\n"
                    )
                    return
        await session.forward(cmd)
