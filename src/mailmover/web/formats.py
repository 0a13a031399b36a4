"""How numbers, times and states look on the pages (Jinja filters)."""

from __future__ import annotations

from datetime import datetime
from typing import Final
from urllib.parse import unquote, urlsplit

from jinja2 import Environment

#: Each state's colour class; states in words and colours agree.
STATE_TONES: Final = {
    "queued": "idle",
    "running": "busy",
    "paused": "idle",
    "waiting": "warn",
    "awaiting_user": "warn",
    "synced": "good",
    "completing": "busy",
    "completed": "good",
    "completed_with_errors": "warn",
    "failed": "bad",
    "cancelled": "idle",
    "new": "idle",
}


def size(n: float | None) -> str:
    """Bytes in words: 1.2 MB."""
    if n is None:
        return "–"
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def rate(bps: float | None) -> str:
    """A rate in words: 3.4 MB/s."""
    return "–" if bps is None else f"{size(bps)}/s"


def duration(seconds: float | None) -> str:
    """A duration in words: 5 s, 3 min, 2 h 10 min."""
    if seconds is None:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def when(at: datetime | None) -> str:
    """A time in words: 2026-12-03 14:05 UTC."""
    return "–" if at is None else f"{at:%Y-%m-%d %H:%M} UTC"


def percent(done: float, total: float) -> int:
    """Whole percent of ``done`` in ``total`` (100 for an empty total)."""
    if total <= 0:
        return 100
    return max(0, min(100, int(100 * done / total)))


def mailbox(url: str) -> str:
    """An endpoint URL as a person names the mailbox: ``alice@example.com on imap.example.com``."""
    try:
        parts = urlsplit(url)
        user, host = unquote(parts.username or ""), parts.hostname or ""
    except ValueError:
        return url
    return f"{user} on {host}" if user and host else url


def tone(state: str) -> str:
    return STATE_TONES.get(state, "idle")


def install(env: Environment) -> None:
    """Make the filters and ``percent`` known to the templates."""
    env.filters.update(
        size=size, rate=rate, duration=duration, when=when, tone=tone, mailbox=mailbox
    )
    env.globals["percent"] = percent
