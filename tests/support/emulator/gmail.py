"""Gmail and Google Workspace, as IMAP clients meet them.

Emulated:

- Gmail's capabilities: ``X-GM-EXT-1``, ``APPENDLIMIT=35651584`` after login,
  ``LITERAL-`` for LITERAL+, COMPRESS=DEFLATE (done by the emulator), and
  none of Dovecot's that Gmail lacks (MULTIAPPEND, CATENATE, QRESYNC...);
  Gmail's greeting and ``+ go ahead``;
- the folders ``[Gmail]/All Mail`` (\\All), ``Sent Mail`` (\\Sent), ``Drafts``,
  ``Spam`` (\\Junk), ``Trash``, ``Starred`` (\\Flagged) and ``Important``
  (\\Important), created at login, and user labels as folders;
- one message in several label folders (see labels.py): ``FETCH`` of
  ``X-GM-MSGID``, ``X-GM-THRID`` and ``X-GM-LABELS``; ``STORE`` of
  ``+X-GM-LABELS``, ``-X-GM-LABELS`` and ``X-GM-LABELS`` (``.SILENT`` too),
  which copy the message into, or remove it from, the labels' folders (a new
  user label's folder is created); APPEND to a label's folder also puts the
  message in All Mail, with that label;
- the size limit: a larger APPEND gets Gmail's ``BAD [TOOBIG] Message too
  large. https://support.google.com/mail/answer/6584#limit`` (offlineimap #724)
  before its literal is sent;
- optionally the daily bandwidth caps (``download_per_day``, ``upload_per_day``
  in bytes, per account, any of its connections): once one is passed, the next
  command gets ``NO [OVERQUOTA] Account exceeded command or bandwidth limits.
  (Failure)`` and ``* BYE``, and logins are refused the same way until the
  "day" (``day_seconds``) ends or ``reset_day()`` is called.

Not emulated: X-GM-THRID threads (it equals X-GM-MSGID), X-GM-RAW and X-GM-*
SEARCH keys, flags shared between a message's copies (a STORE of FLAGS
changes the selected folder's copy only), \\Flagged ⇔ Starred, deleting from
All Mail or Trash deleting everywhere, Gmail merging APPENDs of the same
Message-ID, localised ``[Gmail]`` names, XLIST. Needs a Dovecot whose hierarchy
separator is ``/`` (``layout="fs"``), and a LOGIN or AUTHENTICATE PLAIN/XOAUTH2
whose credentials it can replay for its own connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from support.emulator.command import Command, Refusal
from support.emulator.direct import DirectError
from support.emulator.framing import Atom, Frame, quoted, text, tokenize
from support.emulator.labels import ALL_MAIL, GmailAccount, guid_in, msgid, uid_in
from support.emulator.messages import append_mailbox, appended, store_args
from support.emulator.profile import Direction
from support.emulator.provider import Provider
from support.emulator.quota import Bandwidth
from support.emulator.session import Session

_GMAIL_CAPABILITIES = frozenset(
    {
        "IMAP4REV1", "UNSELECT", "IDLE", "NAMESPACE", "QUOTA", "ID", "CHILDREN", "UIDPLUS",
        "ENABLE", "MOVE", "CONDSTORE", "ESEARCH", "UTF8=ACCEPT", "LIST-EXTENDED",
        "LIST-STATUS", "SPECIAL-USE", "SASL-IR", "AUTH=PLAIN", "AUTH=XOAUTH2",
        "AUTH=OAUTHBEARER", "AUTH=XOAUTH",
    }
)  # fmt: skip
_OVERQUOTA = b"[OVERQUOTA] Account exceeded command or bandwidth limits."
_GM_ITEM = re.compile(rb" *\bX-GM-(MSGID|THRID|LABELS)\b", re.IGNORECASE)
_FETCH_HEAD = re.compile(rb"(\S+ +(?:UID +)?FETCH +\S+ +)(.*)\Z", re.IGNORECASE | re.DOTALL)
_GUID_ITEM = re.compile(rb' ?\bX-GUID "?[^\s")]+"?')
_APPENDUID = re.compile(rb"\[APPENDUID [0-9]+ ([0-9:,]+)\]", re.IGNORECASE)
_LABEL_ATOM = re.compile(r"\\?[A-Za-z0-9!#$&'+,\-./:;<=>?@^_`|~]+\Z")
_STORES = ("STORE", "UID STORE")
_OPENING = ("SELECT", "EXAMINE", "STATUS")


@dataclass(frozen=True)
class GmailOptions:
    """Limits of the emulated account (bytes, seconds)."""

    append_limit: int = 35_651_584
    download_per_day: int | None = None
    upload_per_day: int | None = None
    day_seconds: float = 86_400.0


class Gmail(Provider):
    """Gmail."""

    name = "gmail"
    Options = GmailOptions
    keep = _GMAIL_CAPABILITIES
    added = ("X-GM-EXT-1",)
    literal_minus = True
    compress = True
    greeting = b"Gimap ready for requests from 127.0.0.1"
    continuation = b"+ go ahead\r\n"
    folders: ClassVar[dict[str, str]] = {
        ALL_MAIL: "\\All",
        "[Gmail]/Drafts": "\\Drafts",
        "[Gmail]/Important": "\\Important",
        "[Gmail]/Sent Mail": "\\Sent",
        "[Gmail]/Spam": "\\Junk",
        "[Gmail]/Starred": "\\Flagged",
        "[Gmail]/Trash": "\\Trash",
    }

    @property
    def options(self) -> GmailOptions:
        options = self.emulator.options
        assert isinstance(options, GmailOptions)
        return options

    def account(self, user: str) -> GmailAccount:
        o = self.options
        return self.emulator.account(
            user,
            lambda: GmailAccount(Bandwidth(o.download_per_day, o.upload_per_day, o.day_seconds)),
        )

    def after_login_capabilities(self) -> list[str]:
        return [*super().after_login_capabilities(), f"APPENDLIMIT={self.options.append_limit}"]

    # -- commands ----------------------------------------------------------------------

    def buffers(self, session: Session, cmd: Command) -> bool:
        if session.user is not None and self.account(session.user).bandwidth.exceeded:
            cmd.state["overquota"] = True
            return True
        upper = cmd.first.upper()
        if cmd.name in ("FETCH", "UID FETCH") and b"X-GM-" in upper:
            return True
        if cmd.name in _STORES and b"X-GM-LABELS" in upper:
            return True
        if cmd.name in _OPENING and ALL_MAIL.upper().encode() in upper:
            return True
        return cmd.name == "APPEND" or super().buffers(session, cmd)

    def check(self, session: Session, cmd: Command) -> Refusal | None:
        if cmd.state.get("overquota"):
            return Refusal(b"NO " + _OVERQUOTA + b" (Failure)", _OVERQUOTA)
        if cmd.name in ("LOGIN", "AUTHENTICATE"):
            user = self._user_of(cmd)
            known = user is not None and user in self.emulator.accounts
            if known and user is not None and self.account(user).bandwidth.exceeded:
                return Refusal(b"NO " + _OVERQUOTA + b" (Failure)")
        limit = self.options.append_limit
        if cmd.name == "APPEND" and any(m.size > limit for m in appended(cmd)):
            return Refusal(
                b"BAD [TOOBIG] Message too large. https://support.google.com/mail/answer/6584#limit"
            )
        return None

    def _user_of(self, cmd: Command) -> str | None:
        args = cmd.tokens()
        if cmd.name == "LOGIN":
            return text(args[0]) if args and isinstance(args[0], bytes) else None
        if len(args) >= 2 and isinstance(args[0], Atom) and isinstance(args[1], Atom):
            self._learn_sasl(cmd, args[0], args[1])
        user = cmd.state.get("user")
        return user if isinstance(user, str) else None

    async def handle(self, session: Session, cmd: Command) -> None:
        if cmd.name in ("FETCH", "UID FETCH") and b"X-GM-" in cmd.first.upper():
            await self._fetch(session, cmd)
        elif cmd.name in _STORES and b"X-GM-LABELS" in cmd.first.upper():
            await self._store(session, cmd)
        elif cmd.name in _OPENING and session.user is not None:
            # All Mail must be complete before anyone looks at it
            await session.barrier()
            await self.account(session.user).refresh()
            await session.forward(cmd)
        else:
            if cmd.name == "APPEND":
                cmd.state["mailbox"] = append_mailbox(cmd)
            await super().handle(session, cmd)

    async def _fetch(self, session: Session, cmd: Command) -> None:
        line = b" ".join(cmd.lines)  # FETCH items carry no literals
        wanted = {m.upper() for m in re.findall(rb"X-GM-(MSGID|THRID|LABELS)", line, re.I)}
        head = _FETCH_HEAD.match(_GM_ITEM.sub(b"", line))
        if head is None:
            await session.forward(cmd)
            return
        prefix, items = head.groups()
        items = re.sub(rb"\( +", b"(", re.sub(rb" +\)", b")", items)).strip()
        cmd.state["gm"] = wanted
        cmd.state["strip_guid"] = b"X-GUID" not in items.upper()
        if cmd.state["strip_guid"] and items.startswith(b"("):
            items = b"(X-GUID" + (b" " if items[1:2] != b")" else b"") + items[1:]
        elif cmd.state["strip_guid"]:
            items = b"(X-GUID" + (b" " + items if items else b"") + b")"
        await session.barrier()
        if b"LABELS" in wanted and session.user is not None:
            await self.account(session.user).refresh()
        await session.forward_alone(cmd, prefix + items + b"\r\n")

    async def _store(self, session: Session, cmd: Command) -> None:
        store = store_args(cmd)
        if store is None or store.item != "X-GM-LABELS" or session.user is None:
            await session.forward(cmd)  # Dovecot says BAD
            return
        await session.barrier()
        uid = b"UID " if cmd.name == "UID STORE" else b""
        numbers = store.numbers.encode()
        done, fetched = await session.internal(uid + b"FETCH " + numbers + b" (UID X-GUID)")
        if done.status != "OK":
            await session.reply(cmd, done.lines[0].split(b" ", 1)[1])
            return
        targets = [(f, guid_in(f), uid_in(f)) for f in fetched if f.kind == "FETCH"]
        account = self.account(session.user)
        guids = [guid for _, guid, _ in targets if guid is not None]
        try:
            await account.relabel(guids, store.sign, list(store.values))
        except DirectError as exc:
            await session.reply(cmd, b"NO [CANNOT] " + str(exc).encode())
            return
        if not store.silent:
            for frame, guid, number in targets:
                if guid is None:
                    continue
                seq = frame.lines[0].split(b" ")[1]
                items = b"X-GM-LABELS (" + _labels(account.labels(guid)) + b")"
                if uid and number is not None:
                    items += b" UID %d" % number
                await session.send(b"* " + seq + b" FETCH (" + items + b")\r\n")
        await session.reply(cmd, b"OK Success")

    async def on_login(self, session: Session) -> None:
        _, listed = await session.internal(b'LIST "" ""')
        tokens = tokenize(listed[0].lines, listed[0].literals) if listed else []
        if len(tokens) < 4 or tokens[3] != b"/":
            error = RuntimeError("the gmail profile needs a Dovecot whose separator is '/'")
            self.emulator.errors.append(error)
            await session.bye(b"[UNAVAILABLE] " + str(error).encode())
            return
        await super().on_login(session)
        if session.user is None or self.login_replay is None:
            self.emulator.errors.append(RuntimeError("gmail: cannot replay this login"))
            await session.bye(b"[UNAVAILABLE] the emulator cannot replay this login")
            return
        host, port = self.emulator.target_host, self.emulator.target_port
        account = self.account(session.user)
        await account.connect(host, port, self.login_replay)
        await account.refresh()

    # -- responses ---------------------------------------------------------------------

    async def on_tagged(self, session: Session, cmd: Command, frame: Frame) -> bytes | None:
        mailbox = cmd.state.get("mailbox")
        if cmd.name == "APPEND" and frame.status == "OK" and isinstance(mailbox, str):
            match = _APPENDUID.search(frame.lines[0])
            if match and session.user is not None:
                await self.account(session.user).appended(mailbox, match.group(1))
        return await super().on_tagged(session, cmd, frame)

    async def on_untagged(self, session: Session, frame: Frame) -> bytes | None:
        fetch = next((c for c in session.inflight.values() if "gm" in c.state), None)
        if fetch is None or frame.kind != "FETCH" or session.user is None:
            return await super().on_untagged(session, frame)
        guid = guid_in(frame)
        if guid is None:
            return frame.raw
        wanted = fetch.state["gm"]
        items = []
        if b"THRID" in wanted:
            items.append(b"X-GM-THRID %d" % msgid(guid))
        if b"MSGID" in wanted:
            items.append(b"X-GM-MSGID %d" % msgid(guid))
        if b"LABELS" in wanted:
            labels = self.account(session.user).labels(guid)
            items.append(b"X-GM-LABELS (" + _labels(labels) + b")")
        lines = list(frame.lines)
        if fetch.state["strip_guid"]:
            at = next(i for i, line in enumerate(lines) if _GUID_ITEM.search(line))
            lines[at] = _GUID_ITEM.sub(b"", lines[at], count=1)
            lines[0] = lines[0].replace(b"FETCH ( ", b"FETCH (", 1)
        start = lines[0].index(b"(") + 1
        joiner = b"" if lines[0][start : start + 1] == b")" else b" "
        lines[0] = lines[0][:start] + b" ".join(items) + joiner + lines[0][start:]
        return frame.with_lines(lines).raw

    def count(self, session: Session, direction: Direction, nbytes: int) -> None:
        if session.user is not None:
            self.account(session.user).bandwidth.add(direction, nbytes)


def _labels(labels: list[str]) -> bytes:
    return b" ".join(
        label.encode() if _LABEL_ATOM.match(label) else quoted(label) for label in labels
    )
