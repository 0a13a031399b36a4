"""A protocol trace for debugging that never holds a password, token or message body.

Client lines come from the serialiser, so the client knows which command
carries a secret and hands :meth:`ProtocolTrace.sent` a redacted summary for
it; literals are shown as their size only. Server responses are traced as
their parsed form with message data replaced by its length.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Protocol

from mailmover.imap.proto.responses import Fetch, Response

logger = logging.getLogger("mailmover.imap.trace")


class TraceSink(Protocol):
    def __call__(self, line: str) -> None: ...


def _log_sink(line: str) -> None:
    logger.debug("%s", line)


class ProtocolTrace:
    """Writes one line per command sent and per response received."""

    def __init__(self, label: str, sink: TraceSink | None = None) -> None:
        self.label = label
        self.sink: TraceSink = sink or _log_sink
        self._start = time.monotonic()

    def _emit(self, arrow: str, text: str) -> None:
        self.sink(f"{time.monotonic() - self._start:9.3f} {self.label} {arrow} {text}")

    def sent(self, summary: str) -> None:
        self._emit("C:", summary)

    def received(self, response: Response) -> None:
        self._emit("S:", describe(response))


def summarize_part(part: bytes, limit: int = 300) -> str:
    """One command part as text: literal data shortened to its size."""
    head, sep, _ = part.partition(b"\r\n")
    text = head.decode("utf-8", "replace")
    if len(text) > limit:
        text = text[:limit] + f"…(+{len(text) - limit} chars)"
    return text if sep else text + "…"


def describe(response: Response) -> str:
    """A response as a short line, body data replaced by its length."""
    if isinstance(response, Fetch):
        fields = {
            f.name: getattr(response, f.name)
            for f in dataclasses.fields(response)
            if getattr(response, f.name) not in (None, {}) and f.name != "body"
        }
        bodies = {key or "BODY[]": f"<{len(data)} bytes>" for key, data in response.body.items()}
        return f"FETCH {fields} {bodies}" if bodies else f"FETCH {fields}"
    text = repr(response)
    return text if len(text) <= 500 else text[:500] + "…"
