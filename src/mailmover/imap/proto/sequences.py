"""Sequence sets (RFC 3501 ``sequence-set``, without ``*``): built for commands, expanded
from responses (APPENDUID and COPYUID of RFC 4315, ESEARCH ALL of RFC 4731)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_SEQ_ITEM = re.compile(r"([0-9]+)(?::([0-9]+))?", re.ASCII)
_MAX_NZ = 0xFFFFFFFF
#: Expanding more numbers than this from one set is refused (a server cannot mean it).
MAX_SET_SIZE = 1 << 24


def sequence_set(numbers: Iterable[int]) -> str:
    """Compress numbers into an IMAP sequence set: ``[1,2,3,7,9,10]`` → ``1:3,7,9:10``.

    Sorted, without duplicates. ValueError when empty or a number is not 1..2**32-1.
    """
    ordered = sorted(set(numbers))
    if not ordered:
        raise ValueError("an IMAP sequence set cannot be empty")
    if ordered[0] < 1 or ordered[-1] > _MAX_NZ:
        raise ValueError(f"sequence numbers are 1..{_MAX_NZ}: {ordered[0]}, {ordered[-1]}")
    ranges: list[str] = []
    start = previous = ordered[0]
    for number in [*ordered[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        if number is not None:
            start = previous = number
    return ",".join(ranges)


def uid_set(uids: Sequence[int] | range) -> str:
    """The set of a command's UIDs; a range reaching 2**32 or beyond ends in ``*``."""
    if isinstance(uids, range):
        stop = "*" if uids.stop >= 2**32 else str(uids.stop - 1)
        return f"{uids.start}:{stop}"
    return sequence_set(uids)


def parse_sequence_set(text: str | bytes, *, limit: int = MAX_SET_SIZE) -> list[int]:
    """Expand ``1:3,7`` into ``[1, 2, 3, 7]`` (``*`` is not allowed).

    Items keep the order they are written in (COPYUID pairs UIDs by position);
    a range is ascending whichever way it is written (RFC 4315: ``4:2`` is
    ``2:4``). ValueError on anything else, or beyond ``limit`` numbers.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii")  # UnicodeDecodeError is a ValueError
    numbers: list[int] = []
    for item in text.split(","):
        match = _SEQ_ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"not an IMAP sequence set: {text!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        low, high = min(first, last), max(first, last)
        if low < 1 or high > _MAX_NZ:
            raise ValueError(f"sequence numbers are 1..{_MAX_NZ}: {item!r}")
        if len(numbers) + high - low + 1 > limit:
            raise ValueError(f"sequence set expands beyond {limit} numbers")
        numbers.extend(range(low, high + 1))
    return numbers


@dataclass(frozen=True, slots=True)
class UidRange:
    """The UIDs (or sequence numbers) a FETCH-producing command asked for."""

    low: int
    high: int
    members: frozenset[int] | None = None  # None: every number in [low, high]

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int) or not self.low <= n <= self.high:
            return False
        return self.members is None or n in self.members

    def overlaps(self, other: UidRange) -> bool:
        return self.low <= other.high and other.low <= self.high

    @classmethod
    def of(cls, numbers: Sequence[int] | range) -> UidRange:
        if isinstance(numbers, range):
            return cls(numbers.start, numbers.stop - 1)
        lo, hi = min(numbers), max(numbers)
        dense = hi - lo + 1 == len(set(numbers))
        return cls(lo, hi, None if dense else frozenset(numbers))
