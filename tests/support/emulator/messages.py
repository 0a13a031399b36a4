"""Reading the arguments of APPEND and STORE commands that profiles judge."""

from __future__ import annotations

from dataclasses import dataclass

from support.emulator.command import Command
from support.emulator.framing import Atom, Lit, Pending, String, Token, text

#: RFC 3501 section 2.3.2 (\Recent cannot be set by a client)
SYSTEM_FLAGS = frozenset({"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"})


@dataclass(frozen=True)
class Appended:
    """One message of an APPEND (several with MULTIAPPEND, RFC 3502)."""

    flags: tuple[str, ...]
    size: int
    data: bytes | None  # None while the literal is still to come


def append_mailbox(cmd: Command) -> str | None:
    """The mailbox an APPEND goes to (wire form), once known."""
    tokens = cmd.tokens()
    if tokens and isinstance(tokens[0], String | Atom):
        return text(tokens[0])
    return None


def appended(cmd: Command) -> list[Appended]:
    """The messages of an APPEND so far, the last one possibly not received yet."""
    out: list[Appended] = []
    flags: tuple[str, ...] = ()
    for token in cmd.tokens()[1:]:
        if isinstance(token, list):
            flags = tuple(text(f) for f in token if isinstance(f, bytes))
        elif isinstance(token, Pending):
            out.append(Appended(flags, token.size, None))
        elif isinstance(token, Lit):
            out.append(Appended(flags, len(token), bytes(token)))
            flags = ()
    return out


@dataclass(frozen=True)
class Store:
    """``STORE set op flags`` (or UID STORE): ``op`` upper-cased, e.g. ``+FLAGS.SILENT``."""

    numbers: str
    op: str
    values: tuple[str, ...]

    @property
    def silent(self) -> bool:
        return self.op.endswith(".SILENT")

    @property
    def item(self) -> str:
        """``FLAGS`` or ``X-GM-LABELS``: the op without sign and ``.SILENT``."""
        return self.op.lstrip("+-").removesuffix(".SILENT")

    @property
    def sign(self) -> str:
        """``+``, ``-``, or ``""`` (replace)."""
        return self.op[0] if self.op[0] in "+-" else ""


def store_args(cmd: Command) -> Store | None:
    """The arguments of a complete STORE, or None if it has none we understand."""
    tokens = cmd.tokens()
    if len(tokens) > 1 and isinstance(tokens[1], list):
        del tokens[1]  # RFC 7162: (UNCHANGEDSINCE n) between the set and the op
    if len(tokens) < 3 or not isinstance(tokens[0], Atom) or not isinstance(tokens[1], Atom):
        return None
    values = tokens[2:]
    items: list[Token] = values[0] if len(values) == 1 and isinstance(values[0], list) else values
    return Store(
        text(tokens[0]),
        text(tokens[1]).upper(),
        tuple(text(v) for v in items if isinstance(v, bytes)),
    )


def keywords(flags: tuple[str, ...]) -> list[str]:
    """Flags that are keywords (no backslash)."""
    return [f for f in flags if not f.startswith("\\")]


def unknown_system_flags(flags: tuple[str, ...]) -> list[str]:
    """Backslash flags that RFC 3501 does not define."""
    return [f for f in flags if f.startswith("\\") and f.lower() not in SYSTEM_FLAGS]
