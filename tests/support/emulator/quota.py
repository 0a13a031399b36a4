"""Gmail's daily IMAP bandwidth caps, per account, on a configurable clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Bandwidth:
    """Bytes moved in the current "day"; once a cap is passed the account is suspended.

    The suspension ends with the day: ``day_seconds`` after the day began, or at
    ``reset_day()``.
    """

    download_per_day: int | None
    upload_per_day: int | None
    day_seconds: float
    down: int = 0
    up: int = 0
    suspended: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    day_started: float = field(init=False)

    def __post_init__(self) -> None:
        self.day_started = self.clock()

    def add(self, direction: Literal["up", "down"], nbytes: int) -> None:
        self._roll()
        if direction == "down":
            self.down += nbytes
        else:
            self.up += nbytes
        over_down = self.download_per_day is not None and self.down > self.download_per_day
        over_up = self.upload_per_day is not None and self.up > self.upload_per_day
        self.suspended = self.suspended or over_down or over_up

    @property
    def exceeded(self) -> bool:
        self._roll()
        return self.suspended

    def reset_day(self) -> None:
        self.down = self.up = 0
        self.suspended = False
        self.day_started = self.clock()

    def _roll(self) -> None:
        if self.clock() - self.day_started >= self.day_seconds:
            self.reset_day()
