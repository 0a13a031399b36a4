"""Sign-in rate limits: wrong passwords counted per account and per address in a window."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class SigninLimiter:
    """Refuses a sign-in, without checking the password, after too many wrong ones.

    ``account_limit`` wrong passwords for one account, or ``address_limit`` from one
    address, within ``window`` seconds close sign-in for it until the oldest leaves
    the window.
    """

    def __init__(
        self,
        account_limit: int,
        address_limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"account": account_limit, "address": address_limit}
        self.window = window
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def allowed(self, account: str, address: str) -> bool:
        """True when a sign-in for ``account`` from ``address`` may be checked now."""
        return self.remaining(account, address) > 0

    def remaining(self, account: str, address: str) -> int:
        """How many more wrong passwords for ``account`` from ``address`` may be checked now."""
        now = self.clock()
        with self._lock:
            return min(
                self.limits[kind] - len(self._recent((kind, value), now))
                for kind, value in (("account", account), ("address", address))
            )

    def bound(self, account: str, address: str) -> BoundLimit:
        """The limit of ``account`` from ``address``, as ``service.preflight`` counts it."""
        return BoundLimit(self, account, address)

    def failed(self, account: str, address: str) -> None:
        """Count a wrong password for ``account`` from ``address``."""
        now = self.clock()
        with self._lock:
            for key in (("account", account), ("address", address)):
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # forget idle keys, so memory stays bounded
                for key in [k for k, v in self._failures.items() if not self._recent(k, now)]:
                    del self._failures[key]


@dataclass(frozen=True)
class BoundLimit:
    """One account's and address's limit (``service.preflight.LoginBudget``)."""

    limiter: SigninLimiter
    account: str
    address: str

    def remaining(self) -> int:
        return self.limiter.remaining(self.account, self.address)

    def failed(self) -> None:
        self.limiter.failed(self.account, self.address)
