"""What a profile can change in a session, and the pass-through profile.

The session asks its profile, for every command, whether to buffer it
(``buffers``), whether to refuse it as its parts arrive (``check``) and what to
do with it once complete (``handle``); for every response, what the client
gets instead (``on_tagged``/``on_untagged``). The base class changes nothing:
it is the ``passthrough`` profile, whose sessions stream commands and forward
responses byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from support.emulator.command import Command, Refusal
    from support.emulator.framing import Frame
    from support.emulator.server import Emulator
from support.emulator.session import Session

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class NoOptions:
    """The pass-through profile takes no options."""


class Profile:
    """The ``passthrough`` profile; provider profiles override the hooks."""

    name: ClassVar[str] = "passthrough"
    Options: ClassVar[type] = NoOptions
    #: the continuation request the emulator sends for literals of buffered commands
    continuation: ClassVar[bytes] = b"+ OK\r\n"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    # -- commands ----------------------------------------------------------------------

    def buffers(self, session: Session, cmd: Command) -> bool:
        """Whether the whole command is read before anything of it goes to Dovecot."""
        return False

    def check(self, session: Session, cmd: Command) -> Refusal | None:
        """Called as each line of a buffered command arrives (before its literal is read)."""
        return None

    async def handle(self, session: Session, cmd: Command) -> None:
        """A complete buffered command: forward it, rewrite it, or answer it."""
        await session.forward(cmd)

    def on_sasl(self, session: Session, cmd: Command, line: bytes) -> None:
        """A line the client sent in answer to ``+`` during AUTHENTICATE or IDLE."""

    async def on_login(self, session: Session) -> None:
        """LOGIN or AUTHENTICATE succeeded; nothing else is in flight."""

    # -- responses ---------------------------------------------------------------------

    async def on_tagged(self, session: Session, cmd: Command, frame: Frame) -> bytes | None:
        """What the client gets for the tagged completion of ``cmd``."""
        return frame.raw

    async def on_untagged(self, session: Session, frame: Frame) -> bytes | None:
        """What the client gets for untagged data (None: nothing)."""
        return frame.raw

    # -- accounting --------------------------------------------------------------------

    def count(self, session: Session, direction: Direction, nbytes: int) -> None:
        """Bytes moved for an authenticated session (``up``: from the client)."""
