"""The client's turns on each connection, counted by a proxy tap: each costs a round trip."""

from __future__ import annotations

from support.emulator.framing import ResponseFramer, literal_marker, strip_eol
from support.proxy import Direction


class Turns:
    """The client's turns on one connection, from its bytes and the server's.

    A turn is a wait for the server: a command sent when every earlier command
    had been answered (nothing in flight to overlap with), or the bytes of a
    synchronising literal, which the client may send only after the server's
    ``+``. Commands are framed (literals skipped by their announced size), so the
    count does not depend on how the bytes were cut into chunks or on timing.
    """

    def __init__(self) -> None:
        self.count = 0
        self.in_flight = 0
        self.most = 0  # commands in flight at once, at most
        self._sent = bytearray()
        self._literal = 0  # literal bytes still to skip
        self._in_command = False
        self._answers = ResponseFramer()

    def client_sent(self, data: bytes) -> None:
        buf = self._sent
        buf += data
        while buf:
            if self._literal:
                taken = min(self._literal, len(buf))
                del buf[:taken]
                self._literal -= taken
                continue
            end = buf.find(b"\n")
            if end < 0:
                return
            line = strip_eol(bytes(buf[: end + 1]))
            del buf[: end + 1]
            if not self._in_command:
                if self.in_flight == 0:
                    self.count += 1
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            marker = literal_marker(line)
            self._in_command = marker is not None
            if marker is not None:
                size, non_synchronising = marker
                self._literal = size
                if not non_synchronising:
                    self.count += 1

    def server_sent(self, data: bytes) -> None:
        for frame in self._answers.feed(data):
            if frame.tag is not None:
                self.in_flight -= 1


class TurnCounter:
    """A proxy tap counting the client's turns on each connection (see ``Turns``).

    It can also take capabilities out of what the server says (``hide``), so the
    client meets a server without them (Gmail and Exchange have no MULTIAPPEND).
    """

    def __init__(self, hide: tuple[str, ...] = ()) -> None:
        self.hide = [b" " + name.encode() for name in hide]
        self.connections: dict[int, Turns] = {}
        self.sent = bytearray()  # every byte the client sent, for counting commands
        self.sent_on: dict[int, bytearray] = {}  # the same, by connection

    def __call__(self, connection: int, direction: Direction, data: bytes) -> bytes:
        turns = self.connections.setdefault(connection, Turns())
        if direction == "to_server":
            turns.client_sent(data)
            self.sent += data
            self.sent_on.setdefault(connection, bytearray()).extend(data)
            return data
        if b"CAPABILITY" in data:
            for name in self.hide:
                data = data.replace(name, b"")
        turns.server_sent(data)
        return data

    @property
    def turns(self) -> dict[int, int]:
        return {n: t.count for n, t in self.connections.items()}

    @property
    def total(self) -> int:
        return sum(t.count for t in self.connections.values())

    @property
    def most(self) -> int:
        """The most commands one connection had in flight at once."""
        return max((t.most for t in self.connections.values()), default=0)

    def commands(self, name: str) -> int:
        """How many commands named ``name`` (e.g. ``EXAMINE``) the client sent."""
        return self.sent.count(f" {name} ".encode())

    def lines(self, line: str) -> int:
        """How many times the client sent ``line`` after a tag (e.g. ``CREATE "A"``)."""
        return self.sent.count(f" {line}\r\n".encode())

    def connections_sending(self, lines: list[str]) -> int:
        """How many connections sent at least one of ``lines`` (as in ``lines``)."""
        wanted = [f" {line}\r\n".encode() for line in lines]
        return sum(any(w in sent for w in wanted) for sent in self.sent_on.values())
