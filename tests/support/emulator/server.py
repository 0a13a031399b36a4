"""The emulator: an asyncio IMAP proxy on 127.0.0.1 in front of a real Dovecot.

``async with Emulator(host, port, profile="gmail", **options) as em:`` listens on
``em.port``; ``run_emulator(...)`` does the same from synchronous code, with
the proxy's event loop in a thread of its own. State a provider keeps per
account (Gmail's label index and bandwidth, Microsoft's command count) is in
``em.accounts`` and shared by every connection of that account.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

from support.emulator.profile import Profile
from support.emulator.session import Session

T = TypeVar("T")


def _profiles() -> dict[str, type[Profile]]:
    from support.emulator.flagrules import Groupware, Yahoo
    from support.emulator.gmail import Gmail
    from support.emulator.microsoft import Microsoft
    from support.emulator.misreads import Misreads
    from support.emulator.names import CyrusNames

    profiles = (Profile, Gmail, Microsoft, Groupware, Yahoo, CyrusNames, Misreads)
    return {p.name: p for p in profiles}


class Emulator:
    """Accepts IMAP clients and connects each to ``target_host:target_port``."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        profile: str = "passthrough",
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> None:
        profiles = _profiles()
        if profile not in profiles:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(sorted(profiles))}")
        self.profile = profile
        self._profile_class = profiles[profile]
        #: the profile's options (a dataclass); unknown names raise TypeError here
        self.options = self._profile_class.Options(**options)
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self._port = port
        #: per-account state of the profile, by user name
        self.accounts: dict[str, Any] = {}
        #: unexpected exceptions raised in sessions (a test may assert it stays empty)
        self.errors: list[BaseException] = []
        self._server: asyncio.Server | None = None
        self._sessions: set[Session] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._accept, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every session."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.abort()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        for state in self.accounts.values():
            closing = getattr(state, "aclose", None)
            if closing is not None:
                await closing()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    def profile_for(self, session: Session) -> Profile:
        return self._profile_class(self)

    def account(self, user: str, factory: Callable[[], T]) -> T:
        """The state kept for ``user`` (made by ``factory`` the first time)."""
        if user not in self.accounts:
            self.accounts[user] = factory()
        state: T = self.accounts[user]
        return state

    def reset_day(self) -> None:
        """Start a new provider "day" now: daily counters and suspensions end."""
        for state in self.accounts.values():
            reset = getattr(state, "reset_day", None)
            if reset is not None:
                reset()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        session = Session(self, reader, writer)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self._handlers.discard(task)


class ThreadedEmulator:
    """An :class:`Emulator` whose event loop runs in a thread (see :func:`run_emulator`)."""

    def __init__(self, emulator: Emulator, loop: asyncio.AbstractEventLoop) -> None:
        self.emulator = emulator
        self.loop = loop

    @property
    def host(self) -> str:
        return self.emulator.host

    @property
    def port(self) -> int:
        return self.emulator.port

    @property
    def errors(self) -> list[BaseException]:
        return self.emulator.errors

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in the emulator's thread and return its result."""

        async def run() -> T:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def reset_day(self) -> None:
        self.call(self.emulator.reset_day)


@contextlib.contextmanager
def run_emulator(target_host: str, target_port: int, **kwargs: Any) -> Iterator[ThreadedEmulator]:
    """``with run_emulator(host, port, profile=..., **options) as em:`` for synchronous code."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="imap-emulator", daemon=True)
    thread.start()
    try:
        emulator = asyncio.run_coroutine_threadsafe(
            _started(target_host, target_port, kwargs), loop
        ).result(30)
        try:
            yield ThreadedEmulator(emulator, loop)
        finally:
            asyncio.run_coroutine_threadsafe(emulator.close(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


async def _started(host: str, port: int, kwargs: dict[str, Any]) -> Emulator:
    return await Emulator(host, port, **kwargs).start()
