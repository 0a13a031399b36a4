"""``--trace FILE``: protocol trace lines written by a thread, never on the event loop."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from types import TracebackType
from typing import Self


class TraceFile:
    """A trace sink whose lines a writer thread appends to ``path``, flushing when idle."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("a", encoding="utf-8")
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name="mailmover-trace", daemon=True)

    def __call__(self, line: str) -> None:
        self._lines.put(line)

    def _write(self) -> None:
        while True:
            line = self._lines.get()
            if line is None:
                break
            self._handle.write(line + "\n")
            if self._lines.empty():
                self._handle.flush()
        self._handle.close()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lines.put(None)
        self._thread.join()
