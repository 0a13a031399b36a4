"""The in-process implementation of ``ports.Control``: pause and cancel a pass."""

from __future__ import annotations

import asyncio
import contextlib

from mailmover.engine.ports import Stop


class PassControl:
    """Set by whoever drives the pass (a signal handler, a runner polling its database)."""

    def __init__(self) -> None:
        self._requested: Stop | None = None
        self._event = asyncio.Event()

    @property
    def requested(self) -> Stop | None:
        return self._requested

    def pause(self) -> None:
        """Finish what is in flight, record it, return ``paused``; a later pass goes on."""
        if self._requested is None:
            self._requested = "pause"
        self._event.set()

    def cancel(self) -> None:
        """Like ``pause``, but the pass returns ``cancelled`` (cancel wins over pause)."""
        self._requested = "cancel"
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        if self._event.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        return self._event.is_set()
