"""Ctrl-C and SIGTERM: the first asks the run to stop cleanly, the second stops it at once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from mailmover.engine.control import PassControl


@contextmanager
def stop_on_signals() -> Iterator[PassControl]:
    """A control paused by the first SIGINT/SIGTERM; the second exits the process (code 130)."""
    loop = asyncio.get_running_loop()
    stop = PassControl()

    def handler() -> None:
        if stop.requested is not None:
            print("\nmailmover: stopped at once; the next run goes on", file=sys.stderr)
            os._exit(130)  # what was recorded stays recorded; pending APPENDs are looked up
        print(
            "\nmailmover: stopping after the messages in flight (Ctrl-C again to stop now)",
            file=sys.stderr,
        )
        stop.pause()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no such signal
            pass
    try:
        yield stop
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
