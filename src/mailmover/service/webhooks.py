"""Webhooks: an HTTP POST of a JSON event on every mailbox state change, signed, retried.

Every state change is written to the event log as a ``state`` line (by ``leases`` and
``jobs``); the runner's ``Webhooks`` reads the new ones and posts each to every URL:

    POST <url>
    Content-Type: application/json
    Mailmover-Timestamp: 1733234567
    Mailmover-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in
constant time, and refuses old timestamps. A failed post (network, HTTP 5xx or 429) is
retried with backoff; the body never carries a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import httpx
from sqlalchemy import select

from mailmover.service.eventlog import EventCursor
from mailmover.store import schema
from mailmover.store.database import Store

#: Seconds before each retry of a failed post.
BACKOFF: Final = (1.0, 2.0, 4.0, 8.0, 16.0)
SIGNATURE_HEADER: Final = "Mailmover-Signature"
TIMESTAMP_HEADER: Final = "Mailmover-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is ``sign(secret, timestamp, body)`` (constant-time)."""
    try:
        expected = sign(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    attempt: int = 0


class Webhooks:
    """Reads new state changes from the event log and posts them from a thread of its own."""

    def __init__(
        self, store: Store, urls: Sequence[str], secret: str, *, timeout: float = 10.0
    ) -> None:
        self.store = store
        self.urls = list(urls)
        self.secret = secret
        self.timeout = timeout
        self.cursor = EventCursor(store)
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._deliver, daemon=True)
        self._thread.start()

    def poll(self) -> int:
        """Queue a post for every state change since the last poll; how many changes."""
        ev, mb, job = schema.event, schema.mailbox, schema.job
        query = (
            select(
                ev.c.id,
                ev.c.at,
                ev.c.text.label("state"),
                mb.c.id.label("mailbox_id"),
                mb.c.line,
                mb.c.source,
                mb.c.dest,
                mb.c.reason,
                mb.c.messages_copied,
                mb.c.bytes_copied,
                mb.c.messages_failed,
                job.c.name.label("job"),
            )
            .join(mb, mb.c.id == ev.c.mailbox_id)
            .join(job, job.c.id == mb.c.job_id)
            .order_by(ev.c.id)
        )
        with self.store.engine.connect() as conn:
            top = self.cursor.horizon(conn)
            window = (ev.c.id > self.cursor.position, ev.c.id <= top, ev.c.kind == "state")
            rows = conn.execute(query.where(*window)).all()
        self.cursor.advance(top)
        for row in rows:
            payload = {
                "event": "mailbox.state",
                "id": row.id,
                "at": row.at.isoformat(),
                "job": row.job,
                "mailbox": {"id": row.mailbox_id, "line": row.line,
                            "source": row.source, "dest": row.dest},
                "state": row.state,
                "reason": row.reason,
                "messages_copied": row.messages_copied,
                "bytes_copied": row.bytes_copied,
                "messages_failed": row.messages_failed,
            }  # fmt: skip
            body = json.dumps(payload, separators=(",", ":")).encode()
            for url in self.urls:
                self._put(Delivery(url, body))
        return len(rows)

    def _put(self, delivery: Delivery) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(delivery)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued post was delivered or given up; whether it finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _deliver(self) -> None:
        with httpx.Client(timeout=self.timeout) as http:
            while (delivery := self._queue.get()) is not None:
                ok = self._post(http, delivery)
                if not ok and delivery.attempt < len(BACKOFF):
                    delay = BACKOFF[delivery.attempt]
                    retry = Delivery(delivery.url, delivery.body, delivery.attempt + 1)
                    threading.Timer(delay, self._queue.put, args=(retry,)).start()
                    continue  # still pending
                with self._lock:
                    self._pending -= 1
                    if ok:
                        self.sent += 1
                    else:
                        self.failed += 1

    def _post(self, http: httpx.Client, delivery: Delivery) -> bool:
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(self.secret, stamp, delivery.body),
        }
        try:
            response = http.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.HTTPError:
            return False
        return response.status_code < 300
