"""Ctrl-C and SIGTERM: the first asks the run to stop cleanly, the second stops it at once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by the first SIGINT/SIGTERM; the second exits the process (code 130)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def handler() -> None:
        if stop.is_set():
            print("\nmailmover: stopped at once; the next run goes on", file=sys.stderr)
            os._exit(130)  # what was recorded stays recorded; pending APPENDs are looked up
        print(
            "\nmailmover: stopping after the messages in flight (Ctrl-C again to stop now)",
            file=sys.stderr,
        )
        stop.set()

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
