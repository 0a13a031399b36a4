"""What every emulated provider does: its capabilities, greeting and special-use folders.

A :class:`Provider` session buffers LOGIN and AUTHENTICATE (to learn who logs
in, and how to log in again for the Gmail bookkeeping connection), rewrites
CAPABILITY lists wherever they appear, gives its own folders their SPECIAL-USE
attributes in LIST and LSUB replies (and takes Dovecot's away from any other
folder), and creates those folders at the first login. STARTTLS is not offered
(the emulator could not see inside TLS); COMPRESS=DEFLATE is offered only by
providers that have it, and then the emulator itself compresses the client's
side while its link to Dovecot stays plain.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import ClassVar

from support.emulator.command import Command
from support.emulator.framing import (
    Atom,
    Frame,
    String,
    quoted,
    rewrite_capability_code,
    text,
    tokenize,
)
from support.emulator.profile import Profile
from support.emulator.session import Session

SPECIAL_USE = frozenset(
    {"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash", "\\important"}
)
_LIST_SELECT = re.compile(rb"(\S+ +LIST +)\(([^)]*)\) *", re.IGNORECASE)
_XOAUTH2_USER = re.compile(rb"user=([^\x01]*)\x01")


class Provider(Profile):
    """Base of the provider profiles (not usable on its own)."""

    #: capability names (upper-case) kept from Dovecot's; None keeps them all
    keep: ClassVar[frozenset[str] | None] = None
    #: capabilities added before and after login
    added: ClassVar[tuple[str, ...]] = ()
    added_after_login: ClassVar[tuple[str, ...]] = ()
    #: LITERAL+ shown as LITERAL- (RFC 7888): non-synchronising literals up to 4096 bytes
    literal_minus: ClassVar[bool] = False
    #: COMPRESS=DEFLATE offered after login (the emulator compresses, not Dovecot)
    compress: ClassVar[bool] = False
    #: folders created at login, with the SPECIAL-USE attribute each carries (or "")
    folders: ClassVar[dict[str, str]] = {}
    #: whether LIST/LSUB attributes are rewritten to this provider's special-use folders
    own_special_use: ClassVar[bool] = True
    #: text of the greeting after its response code
    greeting: ClassVar[bytes | None] = None

    def __init__(self, emulator: object) -> None:
        super().__init__(emulator)  # type: ignore[arg-type]
        self.login_replay: bytes | None = None
        self._greeted = False

    # -- capabilities ------------------------------------------------------------------

    def capabilities(self, session: Session, caps: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for cap in caps:
            upper = cap.upper().decode("ascii", "replace")
            if upper in ("STARTTLS", "LOGINDISABLED") or upper.startswith("COMPRESS="):
                continue
            if upper == "LITERAL+" and self.literal_minus:
                cap = b"LITERAL-"
            elif self.keep is not None and upper not in self.keep:
                continue
            out.append(cap)
        extra = list(self.added)
        if session.authenticated:
            extra += self.after_login_capabilities()
        have = {c.upper() for c in out}
        out += [e.encode() for e in extra if e.upper().encode() not in have]
        return out

    def after_login_capabilities(self) -> list[str]:
        caps = list(self.added_after_login)
        if self.compress:
            caps.append("COMPRESS=DEFLATE")
        return caps

    # -- commands ----------------------------------------------------------------------

    def buffers(self, session: Session, cmd: Command) -> bool:
        return cmd.name in ("LOGIN", "AUTHENTICATE", "COMPRESS", "LIST", "LSUB")

    async def handle(self, session: Session, cmd: Command) -> None:
        if cmd.name == "LOGIN":
            args = cmd.tokens()
            if len(args) >= 2 and isinstance(args[0], bytes) and isinstance(args[1], bytes):
                cmd.state["user"] = text(args[0])
                cmd.state["replay"] = b"LOGIN " + quoted(args[0]) + b" " + quoted(args[1])
        elif cmd.name == "AUTHENTICATE":
            args = cmd.tokens()
            if len(args) >= 2 and isinstance(args[0], Atom) and isinstance(args[1], Atom):
                self._learn_sasl(cmd, args[0], args[1])
        elif cmd.name == "COMPRESS" and self.compress and session.authenticated:
            await session.barrier()
            await session.send(cmd.tag.encode() + b" OK DEFLATE active\r\n", then_deflate=True)
            session.cin.start_inflate()
            return
        elif cmd.name == "LIST" and (select := _LIST_SELECT.match(cmd.lines[0])):
            options = [o for o in select.group(2).split() if o.upper() != b"SPECIAL-USE"]
            if len(options) < len(select.group(2).split()):
                # Dovecot would pick its own special-use folders: pick ours instead.
                kept = b"(" + b" ".join(options) + b") " if options else b""
                cmd.lines[0] = select.group(1) + kept + cmd.lines[0][select.end() :]
                cmd.state["special_only"] = True
                await session.forward_alone(cmd)
                return
        await session.forward(cmd)

    def on_sasl(self, session: Session, cmd: Command, line: bytes) -> None:
        if cmd.name == "AUTHENTICATE" and "replay" not in cmd.state:
            words = cmd.lines[0].split() if cmd.lines else []
            mechanism = Atom(words[2]) if len(words) > 2 else Atom(b"PLAIN")
            self._learn_sasl(cmd, mechanism, Atom(line.strip()))

    def _learn_sasl(self, cmd: Command, mechanism: Atom, response: Atom) -> None:
        try:
            raw = base64.b64decode(response, validate=True) if response != b"=" else b""
        except (binascii.Error, ValueError):
            return
        user: bytes | None = None
        if mechanism.upper() == b"PLAIN" and raw.count(b"\0") == 2:
            user = raw.split(b"\0")[1]
        elif mechanism.upper() == b"XOAUTH2" and (match := _XOAUTH2_USER.search(raw)):
            user = match.group(1)
        if user is not None:
            cmd.state["user"] = user.decode("utf-8", "surrogateescape")
            cmd.state["replay"] = b"AUTHENTICATE " + mechanism + b" " + response

    async def on_login(self, session: Session) -> None:
        for name in self.folders:
            await session.internal(b"CREATE " + quoted(name))

    # -- responses ---------------------------------------------------------------------

    async def on_tagged(self, session: Session, cmd: Command, frame: Frame) -> bytes | None:
        if cmd.name in ("LOGIN", "AUTHENTICATE") and frame.status == "OK":
            session.user = cmd.state.get("user")
            self.login_replay = cmd.state.get("replay")
        return self._rewrite_codes(session, frame).raw

    async def on_untagged(self, session: Session, frame: Frame) -> bytes | None:
        kind = frame.kind
        if kind == "CAPABILITY":
            words = frame.lines[0].split()
            line = b"* CAPABILITY " + b" ".join(self.capabilities(session, words[2:]))
            return frame.with_lines([line, *frame.lines[1:]]).raw
        if kind in ("LIST", "LSUB"):
            return self._list_reply(session, frame)
        if not self._greeted and frame.status in ("OK", "PREAUTH", "BYE"):
            self._greeted = True
            frame = self._rewrite_codes(session, frame)
            if self.greeting is not None:
                end = frame.lines[0].find(b"]")
                head = frame.lines[0][: end + 1] if end > 0 else b"* OK"
                frame = frame.with_lines([head + b" " + self.greeting])
            return frame.raw
        return self._rewrite_codes(session, frame).raw

    def _rewrite_codes(self, session: Session, frame: Frame) -> Frame:
        if frame.status is None or b"[CAPABILITY" not in frame.lines[0].upper():
            return frame
        line = rewrite_capability_code(frame.lines[0], lambda c: self.capabilities(session, c))
        return frame.with_lines([line, *frame.lines[1:]])

    def special_use(self, name: str) -> str:
        """The SPECIAL-USE attribute of folder ``name`` (wire form) here, or ""."""
        return self.folders.get(name, "")

    def _list_reply(self, session: Session, frame: Frame) -> bytes | None:
        if not self.own_special_use:
            return frame.raw
        tokens = tokenize(frame.lines, frame.literals)
        if len(tokens) < 5 or not isinstance(tokens[2], list):
            return frame.raw
        name_token = tokens[4]
        if not isinstance(name_token, (Atom, String)):
            return frame.raw
        attrs: list[bytes] = [a for a in tokens[2] if isinstance(a, bytes)]
        kept = [a for a in attrs if a.decode("ascii", "replace").lower() not in SPECIAL_USE]
        role = self.special_use(text(name_token))
        if role:
            kept.append(role.encode())
        if not role and any(c.state.get("special_only") for c in session.inflight.values()):
            return None
        if kept == attrs:
            return frame.raw
        line = frame.lines[0]
        start, end = line.index(b"("), line.index(b")")
        line = line[: start + 1] + b" ".join(kept) + line[end:]
        return frame.with_lines([line, *frame.lines[1:]]).raw
