"""A byte budget: how much message data may be held in memory at once."""

from __future__ import annotations

import asyncio


class ByteBudget:
    """``acquire(n)`` waits until n bytes fit; a request larger than the whole
    budget waits until nothing else is held, then goes alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._changed = asyncio.Condition()

    def fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.limit

    def try_acquire(self, size: int) -> bool:
        """Take ``size`` bytes now if they fit; never waits."""
        if not self.fits(size):
            return False
        self.held += size
        return True

    async def acquire(self, size: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.fits(size))
            self.held += size

    async def release(self, size: int) -> None:
        async with self._changed:
            self.held -= size
            self._changed.notify_all()
