"""The asyncio IMAP client: connect, authenticate, and run commands pipelined.

Every method that sends one command has a ``*_nowait`` twin or returns quickly
enough to be gathered: several calls without awaiting in between are sent
back to back, within the connection's window, without a round trip each.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterable, Sequence

from mailmover.errors import (
    AuthenticationFailed,
    CapabilityMissing,
    MailmoverError,
    ProtocolError,
)
from mailmover.imap import sasl
from mailmover.imap.connection import Command, Connection, LiteralStream, Result
from mailmover.imap.handshake import greet
from mailmover.imap.proto.commands import (
    Arg,
    Atom,
    Mailbox,
    ParenList,
    flag_list,
    serialize,
)
from mailmover.imap.proto.parser import ResponseParser
from mailmover.imap.proto.responses import (
    Capability,
    Enabled,
    Exists,
    Fetch,
    Flags,
    ListMailbox,
    MailboxStatus,
    Namespace,
    Recent,
    Search,
    Untagged,
    UntaggedOther,
    UntaggedStatus,
)
from mailmover.imap.proto.sequences import UidRange, uid_set
from mailmover.imap.results import (
    AppendResult,
    Message,
    SelectedMailbox,
    append_result,
    append_results,
)
from mailmover.imap.trace import ProtocolTrace
from mailmover.imap.transport import Security, TLSSettings, open_stream

DEFAULT_PORTS = {"tls": 993, "starttls": 143, "plain": 143}
# Above this size a message goes as a synchronising literal so that a refusal
# costs one round trip instead of the whole upload (mbsync does the same).
SYNC_LITERAL_ABOVE = 4 * 1024 * 1024


class IMAPClient:
    """One authenticated-or-not IMAP session. Build it with :meth:`connect`."""

    def __init__(self, connection: Connection, parser: ResponseParser, host: str, port: int):
        self._conn = connection
        self._parser = parser
        self.host = host
        self.port = port
        self.capabilities: frozenset[str] = frozenset()
        self.selected: SelectedMailbox | None = None
        self.utf8 = False
        self._tags = (f"M{n}" for n in itertools.count(1))

    # -- connecting --------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int | None = None,
        *,
        security: Security = "tls",
        tls: TLSSettings | None = None,
        connect_timeout: float = 20.0,
        read_timeout: float = 120.0,
        window: int = 256,
        trace: ProtocolTrace | None = None,
    ) -> IMAPClient:
        """Connect, read the greeting, do STARTTLS when asked, learn the capabilities."""
        port = port or DEFAULT_PORTS[security]
        tls = tls or TLSSettings()
        reader, writer = await open_stream(
            host, port, security=security, tls=tls, timeout=connect_timeout
        )
        parser = ResponseParser()
        # A greeting that does not come (plain text spoken to a TLS port) is a
        # silent server: give up as soon as a command would.
        caps = await greet(
            reader, writer, parser, host, port,
            security=security, tls=tls, timeout=min(connect_timeout, read_timeout), trace=trace,
        )  # fmt: skip
        client = cls(
            Connection(
                reader, writer, parser, window=window, read_timeout=read_timeout, trace=trace
            ),
            parser,
            host,
            port,
        )
        if caps is not None:
            client.capabilities = caps
            return client
        try:
            await client.capability()
        except BaseException:  # its reader and writer tasks end with it
            await client.close()
            raise
        return client

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    # -- running commands --------------------------------------------------------------

    def submit(
        self,
        name: str,
        args: Sequence[Arg] = (),
        *,
        collects: Iterable[type] = (),
        literal_plus: bool | None = None,
        uids: UidRange | None = None,
        status_mailbox: str | None = None,
        barrier: bool = False,
        opens: bool = False,
        behind: bool = False,
        secret: bool = False,
        on_continuation: Callable[[str], bytes | None] | None = None,
        on_fetch: Callable[[Fetch], None] | None = None,
        after_ok: Callable[[], None] | None = None,
        stream: LiteralStream | None = None,
    ) -> asyncio.Future[Result]:
        """Serialise and queue one command; returns its future without waiting. ``stream``
        gives the data of its last argument, an ``Announced`` literal."""
        tag = next(self._tags)
        if literal_plus is None:
            literal_plus = self.has("LITERAL+")
        parts = serialize(
            tag,
            name,
            args,
            literal_plus=literal_plus,
            literal_minus=not literal_plus and self.has("LITERAL-"),
            utf8=self.utf8,
        )
        command = Command(
            tag,
            name.removeprefix("UID "),
            parts,
            collects=frozenset(collects),
            uids=uids,
            status_mailbox=status_mailbox,
            barrier=barrier,
            opens=opens,
            behind=behind,
            secret=secret,
            on_continuation=on_continuation,
            on_fetch=on_fetch,
            after_ok=after_ok,
            stream=stream,
        )
        return self._conn.submit(command)

    async def run(
        self,
        name: str,
        args: Sequence[Arg] = (),
        *,
        collects: Iterable[type] = (),
        status_mailbox: str | None = None,
        barrier: bool = False,
        opens: bool = False,
        behind: bool = False,
        secret: bool = False,
        on_continuation: Callable[[str], bytes | None] | None = None,
        after_ok: Callable[[], None] | None = None,
    ) -> Result:
        """Run one command and wait for its completion."""
        return await self.submit(
            name,
            args,
            collects=collects,
            status_mailbox=status_mailbox,
            barrier=barrier,
            opens=opens,
            behind=behind,
            secret=secret,
            on_continuation=on_continuation,
            after_ok=after_ok,
        )

    async def capability(self) -> frozenset[str]:
        result = await self.run("CAPABILITY", collects=[Capability])
        caps = [r.capabilities for r in result.untagged if isinstance(r, Capability)]
        if not caps:
            raise ProtocolError("CAPABILITY returned no capabilities")
        self.capabilities = caps[-1]
        return self.capabilities

    async def _after_auth(self, result: Result) -> None:
        code = result.tagged.code
        if code is not None and code.name == "CAPABILITY" and isinstance(code.value, frozenset):
            self.capabilities = code.value
        else:
            await self.capability()

    async def login(self, user: str, password: str) -> None:
        """LOGIN (the password is never traced)."""
        if self.has("LOGINDISABLED"):
            raise AuthenticationFailed(
                f"{self.host} refuses LOGIN on an unencrypted connection; use TLS"
            )
        await self._after_auth(await self.run("LOGIN", [user, password], secret=True, barrier=True))

    async def authenticate(
        self, mechanism: str, user: str, secret: str, *, authzid: str = ""
    ) -> None:
        """AUTHENTICATE PLAIN, XOAUTH2 or OAUTHBEARER (``secret`` is the password or token)."""
        mechanism = mechanism.upper()
        if mechanism == "PLAIN":
            response = sasl.plain(user, secret, authzid)
        elif mechanism == "XOAUTH2":
            response = sasl.xoauth2(user, secret)
        elif mechanism == "OAUTHBEARER":
            response = sasl.oauthbearer(user, secret, self.host, self.port)
        else:
            raise CapabilityMissing(f"unsupported SASL mechanism {mechanism}")
        if not self.has(f"AUTH={mechanism}"):
            raise CapabilityMissing(f"{self.host} does not offer AUTH={mechanism}")
        initial = self.has("SASL-IR")
        sent = [initial]
        errors: list[str] = []

        def reply(challenge: str) -> bytes | None:
            if not sent[0]:
                sent[0] = True
                return response
            # A challenge after our response is an error report (RFC 7628 3.2.3);
            # answer with an empty line so the server completes with NO.
            errors.append(sasl.error_reply(challenge))
            return b""

        args: list[Arg] = [Atom(mechanism)]
        if initial:
            args.append(Atom(response.decode() or "="))
        try:
            result = await self.run(
                "AUTHENTICATE", args, secret=True, barrier=True, on_continuation=reply
            )
        except AuthenticationFailed as exc:
            detail = f" ({errors[0]})" if errors else ""
            raise AuthenticationFailed(f"{exc.message}{detail}") from None
        await self._after_auth(result)

    def id_nowait(self, **fields: str) -> asyncio.Future[Result]:
        """Queue ID (RFC 2971); later commands need not wait for its answer."""
        items: list[Arg] = [part for pair in fields.items() for part in pair]
        return self.submit("ID", [ParenList(items) if items else None], collects=[UntaggedOther])

    async def id(self, **fields: str) -> bytes | None:
        """ID (RFC 2971): tell the server who we are; returns its raw answer."""
        result = await self.id_nowait(**fields)
        for r in result.untagged:
            if isinstance(r, UntaggedOther) and r.name == "ID":
                return r.raw
        return None

    async def enable(self, *capabilities: str) -> frozenset[str]:
        result = await self.run("ENABLE", [Atom(c) for c in capabilities], collects=[Enabled])
        enabled = frozenset().union(
            *(r.capabilities for r in result.untagged if isinstance(r, Enabled))
        )
        if "UTF8=ACCEPT" in enabled:
            self.utf8 = self._parser.utf8_names = True
        return enabled

    async def namespace(self) -> Namespace | None:
        result = await self.run("NAMESPACE", collects=[Namespace])
        found = [r for r in result.untagged if isinstance(r, Namespace)]
        return found[-1] if found else None

    async def compress(self) -> bool:
        """COMPRESS=DEFLATE when offered; returns whether compression is on."""
        if not self.has("COMPRESS=DEFLATE"):
            return False
        await self.run(
            "COMPRESS", [Atom("DEFLATE")], barrier=True, after_ok=self._conn.start_compression
        )
        return True

    async def noop(self) -> None:
        await self.run("NOOP")

    async def logout(self) -> None:
        """LOGOUT and close (even when cancelled meanwhile); never raises for a connection
        that is already gone."""
        try:
            if self._conn.broken is None:
                self._conn.expect_close()
                logout = self.run("LOGOUT", barrier=True, collects=[UntaggedStatus])
                with contextlib.suppress(MailmoverError, TimeoutError):  # leaving: no matter
                    await asyncio.wait_for(logout, 10)
        finally:
            await self._conn.close()

    async def close(self) -> None:
        """Drop the connection without LOGOUT."""
        await self._conn.close()

    @property
    def broken(self) -> bool:
        return self._conn.broken is not None

    # -- mailboxes ---------------------------------------------------------------------

    async def list_mailboxes(
        self, reference: str = "", pattern: str = "*", *, lsub: bool = False
    ) -> list[ListMailbox]:
        """LIST (or LSUB); with SPECIAL-USE and LIST-EXTENDED the roles come back too."""
        name = "LSUB" if lsub else "LIST"
        args: list[Arg] = [Mailbox(reference), Mailbox(pattern)]
        if not lsub and self.has("SPECIAL-USE") and self.has("LIST-EXTENDED"):
            args.append(Atom("RETURN (SPECIAL-USE)"))
        result = await self.run(name, args, collects=[ListMailbox])
        return [r for r in result.untagged if isinstance(r, ListMailbox)]

    async def list_status(
        self, items: Sequence[str]
    ) -> tuple[list[ListMailbox], dict[str, dict[str, int]]]:
        """Every folder and the STATUS ``items`` the server gave of each, in one LIST
        (LIST-STATUS, RFC 5819; it may leave out a folder it cannot open)."""
        returned = f"STATUS ({' '.join(items)})"
        if self.has("SPECIAL-USE"):  # LIST-STATUS implies LIST-EXTENDED
            returned = f"SPECIAL-USE {returned}"
        args: list[Arg] = [Mailbox(""), Mailbox("*"), Atom(f"RETURN ({returned})")]
        result = await self.run("LIST", args, collects=[ListMailbox, MailboxStatus])
        found = [r for r in result.untagged if isinstance(r, ListMailbox)]
        status = {r.name: r.items for r in result.untagged if isinstance(r, MailboxStatus)}
        return found, status

    async def status(self, mailbox: str, items: Sequence[str]) -> dict[str, int]:
        result = await self.run(
            "STATUS",
            [Mailbox(mailbox), ParenList([Atom(i) for i in items])],
            collects=[MailboxStatus],
            status_mailbox=mailbox,
        )
        found = [r for r in result.untagged if isinstance(r, MailboxStatus)]
        return found[-1].items if found else {}

    async def select(
        self, mailbox: str, *, readonly: bool = False, pipelined: bool = False, behind: bool = False
    ) -> SelectedMailbox:
        """SELECT, or EXAMINE when ``readonly`` (sources are always examined).

        It waits for every command before it; with ``pipelined``, commands queued
        after it are sent without waiting for its answer, so they act on ``mailbox``
        (or fail, when the server refuses to open it). With ``behind`` as well, it
        does not wait for the commands before it either: the server answers those
        first. ``selected`` is then only what the last SELECT answered.
        """
        self.selected = None
        args: list[Arg] = [Mailbox(mailbox)]
        if self.has("CONDSTORE"):
            args.append(ParenList([Atom("CONDSTORE")]))
        result = await self.run(
            "EXAMINE" if readonly else "SELECT",
            args,
            barrier=True,
            opens=pipelined or behind,
            behind=behind,
            collects=[Flags, Exists, Recent, UntaggedStatus],
        )
        codes = {
            r.code.name: r.code.value
            for r in result.untagged
            if isinstance(r, UntaggedStatus) and r.code is not None
        }
        if "UIDVALIDITY" not in codes:
            raise ProtocolError(f"SELECT {mailbox!r} gave no UIDVALIDITY")
        exists = [r.count for r in result.untagged if isinstance(r, Exists)]
        flags = [r.flags for r in result.untagged if isinstance(r, Flags)]
        perm = codes.get("PERMANENTFLAGS")
        modseq = codes.get("HIGHESTMODSEQ")
        uidnext = codes.get("UIDNEXT")
        tagged_code = result.tagged.code.name if result.tagged.code else ""
        self.selected = SelectedMailbox(
            name=mailbox,
            readonly=readonly or tagged_code == "READ-ONLY",
            uidvalidity=int(codes["UIDVALIDITY"]),  # type: ignore[call-overload]
            uidnext=uidnext if isinstance(uidnext, int) else None,
            exists=exists[-1] if exists else 0,
            flags=flags[-1] if flags else (),
            permanentflags=perm if isinstance(perm, tuple) else None,
            highestmodseq=modseq if isinstance(modseq, int) else None,
        )
        return self.selected

    async def examine(
        self, mailbox: str, *, pipelined: bool = False, behind: bool = False
    ) -> SelectedMailbox:
        return await self.select(mailbox, readonly=True, pipelined=pipelined, behind=behind)

    async def create(self, mailbox: str) -> None:
        await self.run("CREATE", [Mailbox(mailbox)])

    async def subscribe(self, mailbox: str) -> None:
        await self.run("SUBSCRIBE", [Mailbox(mailbox)])

    async def delete(self, mailbox: str) -> None:
        await self.run("DELETE", [Mailbox(mailbox)])

    # -- messages ----------------------------------------------------------------------

    async def uid_search(self, *criteria: Arg) -> list[int]:
        result = await self.run("UID SEARCH", list(criteria) or [Atom("ALL")], collects=[Search])
        return [n for r in result.untagged if isinstance(r, Search) for n in r.numbers]

    def uid_fetch_nowait(
        self,
        uids: Sequence[int] | range,
        items: str,
        *,
        on_fetch: Callable[[Fetch], None] | None = None,
    ) -> asyncio.Future[Result]:
        """Queue ``UID FETCH uids (items)``; responses are routed here by UID."""
        return self.submit(
            "UID FETCH",
            [Atom(uid_set(uids)), Atom(items)],
            uids=UidRange.of(uids),
            on_fetch=on_fetch,
        )

    async def uid_fetch(self, uids: Sequence[int] | range, items: str) -> list[Fetch]:
        return (await self.uid_fetch_nowait(uids, items)).fetches

    def uid_store_nowait(
        self, uids: Sequence[int], operation: str, flags: Sequence[str]
    ) -> asyncio.Future[Result]:
        """``UID STORE uids operation (flags)``, e.g. operation ``FLAGS.SILENT``."""
        return self.submit(
            "UID STORE",
            [Atom(uid_set(uids)), Atom(operation), flag_list(tuple(flags))],
            uids=UidRange.of(uids),
        )

    def append_nowait(self, mailbox: str, message: Message) -> asyncio.Future[Result]:
        """Queue an APPEND; pipelined with LITERAL+, one round trip each otherwise."""
        args: list[Arg] = [Mailbox(mailbox), flag_list(tuple(message.flags))]
        if message.internaldate is not None:
            args.append(message.internaldate)
        args.append(message.data)  # bytes: a literal
        plus = self.has("LITERAL+") and len(message.data) <= SYNC_LITERAL_ABOVE
        return self.submit("APPEND", args, literal_plus=plus)

    async def append(self, mailbox: str, message: Message) -> AppendResult:
        return append_result(await self.append_nowait(mailbox, message))

    def multiappend_nowait(
        self, mailbox: str, messages: Sequence[Message]
    ) -> asyncio.Future[Result]:
        """Queue one MULTIAPPEND (RFC 3502): all of ``messages`` are stored, or none."""
        if not self.has("MULTIAPPEND"):
            raise CapabilityMissing(f"{self.host} does not offer MULTIAPPEND")
        args: list[Arg] = [Mailbox(mailbox)]
        for message in messages:
            args.append(flag_list(tuple(message.flags)))
            if message.internaldate is not None:
                args.append(message.internaldate)
            args.append(message.data)  # bytes: a literal
        plus = self.has("LITERAL+") and all(len(m.data) <= SYNC_LITERAL_ABOVE for m in messages)
        return self.submit("APPEND", args, literal_plus=plus)

    async def multiappend(self, mailbox: str, messages: Sequence[Message]) -> list[AppendResult]:
        """One MULTIAPPEND; the UIDs the server gave, in order (None without UIDPLUS)."""
        return append_results(await self.multiappend_nowait(mailbox, messages), len(messages))


__all__ = [  # re-exported from imap.results and imap.connection
    "AppendResult", "IMAPClient", "Message", "Result", "SelectedMailbox", "Untagged",
    "append_result", "append_results",
]  # fmt: skip
