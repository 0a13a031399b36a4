"""Microsoft 365 / Exchange Online as an IMAP client meets it.

Emulated:

- Exchange Online's capability list (no SPECIAL-USE, CONDSTORE, MULTIAPPEND,
  COMPRESS), its greeting, and ``+ Ready for additional command text.``;
- the folders ``Sent Items``, ``Deleted Items``, ``Junk Email``, ``Drafts`` and
  ``Archive``, created at login, with their SPECIAL-USE attributes in LIST;
- case-insensitive names for CREATE: a name that differs from an existing one
  only in case is refused with Exchange's ``NO Mailbox already exists.``
  (imapsync FAQ.Exchange, offlineimap #645; no response code);
- a size limit: a larger APPEND gets ``NO Maximum size of appendable message has
  been exceeded`` before its literal is sent (imapsync FAQ.Exchange);
- throttling: with ``throttle_every=N``, after every N commands of an account
  (all its connections together, LOGOUT excepted) the next one gets
  ``NO Request is throttled. Suggested Backoff Time: 500 milliseconds``
  (the wording of imap_tools #135 and imapsync's FAQ); with ``throttle_bye``,
  Exchange's ``* BYE Connection closed. 14`` follows and the connection closes.

Not emulated: case-insensitive SELECT/STATUS/APPEND, the hidden ``Files``
folder, the 10,500-character line limit, the connection limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from support.emulator.command import Command, Refusal
from support.emulator.framing import Atom, String, text, tokenize
from support.emulator.messages import appended
from support.emulator.provider import Provider
from support.emulator.session import Session

#: Exchange Online's capabilities that Dovecot also has
_EXCHANGE_CAPABILITIES = frozenset(
    {
        "IMAP4", "IMAP4REV1", "AUTH=PLAIN", "AUTH=XOAUTH2", "SASL-IR", "UIDPLUS", "MOVE",
        "ID", "UNSELECT", "CHILDREN", "IDLE", "NAMESPACE", "LITERAL+",
    }
)  # fmt: skip


@dataclass(frozen=True)
class MicrosoftOptions:
    """Limits of the emulated tenant (sizes in bytes)."""

    #: "35 MB (36,700,160 bytes)" as Exchange counts its default MaxReceiveSize
    max_message_size: int = 36_700_160
    #: after this many commands the next is throttled (None: never)
    throttle_every: int | None = None
    throttle_backoff_ms: int = 500
    throttle_bye: bool = False


@dataclass
class CommandCount:
    """Commands an account sent since its last throttled one."""

    since_throttle: int = 0


class Microsoft(Provider):
    """Exchange Online."""

    name = "microsoft"
    Options = MicrosoftOptions
    keep = _EXCHANGE_CAPABILITIES
    added = ("IMAP4",)
    greeting = b"The Microsoft Exchange IMAP4 service is ready."
    continuation = b"+ Ready for additional command text.\r\n"
    folders: ClassVar[dict[str, str]] = {
        "Sent Items": "\\Sent",
        "Deleted Items": "\\Trash",
        "Junk Email": "\\Junk",
        "Drafts": "\\Drafts",
        "Archive": "\\Archive",
    }

    @property
    def options(self) -> MicrosoftOptions:
        options = self.emulator.options
        assert isinstance(options, MicrosoftOptions)
        return options

    def buffers(self, session: Session, cmd: Command) -> bool:
        if self._throttled(session, cmd):
            cmd.state["throttled"] = True
            return True
        return cmd.name in ("APPEND", "CREATE") or super().buffers(session, cmd)

    def _throttled(self, session: Session, cmd: Command) -> bool:
        every = self.options.throttle_every
        if every is None or session.user is None or cmd.name == "LOGOUT":
            return False
        count = self.emulator.account(session.user, CommandCount)
        count.since_throttle += 1
        if count.since_throttle <= every:
            return False
        count.since_throttle = 0
        return True

    def check(self, session: Session, cmd: Command) -> Refusal | None:
        if cmd.state.get("throttled"):
            backoff = self.options.throttle_backoff_ms
            reply = b"NO Request is throttled. Suggested Backoff Time: %d milliseconds" % backoff
            return Refusal(reply, b"Connection closed. 14" if self.options.throttle_bye else None)
        limit = self.options.max_message_size
        if cmd.name == "APPEND" and any(m.size > limit for m in appended(cmd)):
            return Refusal(b"NO Maximum size of appendable message has been exceeded")
        return None

    async def handle(self, session: Session, cmd: Command) -> None:
        if cmd.name != "CREATE":
            await super().handle(session, cmd)
            return
        args = cmd.tokens()
        if not args or not isinstance(args[0], String | Atom):
            await session.forward(cmd)
            return
        wanted = text(args[0]).rstrip("/")
        await session.barrier()
        _, listed = await session.internal(b'LIST "" *')
        for frame in listed:
            tokens = tokenize(frame.lines, frame.literals)
            name = tokens[4] if len(tokens) >= 5 else None
            if isinstance(name, bytes) and text(name).lower() == wanted.lower():
                await session.reply(cmd, b"NO Mailbox already exists.")
                return
        await session.forward(cmd)
