"""The fleet's webhooks and emails, sent by one worker at a time.

Every worker given webhook URLs or SMTP settings is ready to notify, but only the one
holding a PostgreSQL advisory lock does: it reads the state changes from the event
log (``Webhooks``, ``Emails``, as the local runner does) from the moment it took the
lock. The lock lives with its connection: a worker that stops gives it back, one
that is killed gives it back when its connection closes, and one whose machine
vanishes when the server's keepalive (set short on that connection) gives up on it;
then another worker takes over, from the state changes of that moment on. What
changed in between (seconds) is not announced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError

from mailmover.service.emails import Emails, SmtpSettings
from mailmover.service.webhooks import Webhooks
from mailmover.store.database import Store

#: Advisory lock key of the fleet's notifier.
NOTIFY_LOCK: Final = 0x6D6D_0003
#: Server-side keepalive of the notifier's connection (idle, interval, count; seconds).
KEEPALIVE: Final = (10, 5, 3)


class FleetNotifier:
    """Polls webhooks and emails while this process holds the fleet's notifier lock."""

    def __init__(
        self,
        store: Store,
        urls: Sequence[str] = (),
        secret: str = "",
        smtp: SmtpSettings | None = None,
        *,
        notify_users: bool = False,
    ) -> None:
        self.store = store
        self.urls = tuple(urls)
        self.secret = secret
        self.smtp = smtp
        self.notify_users = notify_users
        self.webhooks: Webhooks | None = None
        self.emails: Emails | None = None
        self._conn: Connection | None = None

    @property
    def wanted(self) -> bool:
        """Whether this worker has anything to send."""
        return bool(self.urls) or self.smtp is not None

    @property
    def leading(self) -> bool:
        return self._conn is not None

    def poll(self) -> bool:
        """Take the lock if free, then send what changed; whether this worker notifies."""
        if not self.wanted:
            return False
        if self._conn is not None and not self._holds():
            self._let_go()  # what was read while leading still goes out; not one more
        if self._conn is None and not self._take():
            return False
        if self.webhooks is not None:
            self.webhooks.poll()
        if self.emails is not None:
            self.emails.poll()
        return True

    def close(self) -> tuple[int, int]:
        """Send what is queued, then give the lock back; (sent, failed) in all."""
        if self.webhooks is not None:
            self.webhooks.poll()
        if self.emails is not None:
            self.emails.poll()
        return self._let_go()

    def _holds(self) -> bool:
        """Whether the lock's connection still answers: the session, and the lock, live on.

        A connection the server ended (a restart, the keepalive gave up) took the lock
        with it, and another worker may be notifying already.
        """
        assert self._conn is not None
        try:
            self._conn.execute(select(1))
        except DBAPIError:
            return False
        return True

    def _let_go(self) -> tuple[int, int]:
        """Deliver what was read while leading, then drop the lock; (sent, failed)."""
        sent = failed = 0
        if self.webhooks is not None:
            self.webhooks.flush()
            self.webhooks.close()
            sent, failed = self.webhooks.sent, self.webhooks.failed
        if self.emails is not None:
            self.emails.flush()
            sent, failed = sent + self.emails.sent, failed + self.emails.failed
        if self._conn is not None:
            self._conn.invalidate()  # the connection, and the lock with it, goes
            self._conn.close()
            self._conn = None
        self.webhooks = self.emails = None
        return sent, failed

    def _take(self) -> bool:
        conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if not conn.execute(select(func.pg_try_advisory_lock(NOTIFY_LOCK))).scalar():
            conn.close()  # it holds nothing: back to the pool, not a new session every poll
            return False
        idle, interval, count = KEEPALIVE
        conn.execute(text(f"SET tcp_keepalives_idle = {idle}"))
        conn.execute(text(f"SET tcp_keepalives_interval = {interval}"))
        conn.execute(text(f"SET tcp_keepalives_count = {count}"))
        self._conn = conn
        if self.urls:
            self.webhooks = Webhooks(self.store, self.urls, self.secret)
        if self.smtp is not None:
            self.emails = Emails(self.store, self.smtp, notify_users=self.notify_users)
        return True
