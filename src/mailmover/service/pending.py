"""Short-lived records a web request leaves for a later one, in the job database.

An OAuth2 sign-in on its way (``service.signin``) and what a user signed in with on an
invitation page are read back by a later request, which any web process may answer;
so they are rows of ``web_pending``, each under the SHA-256 of its random key (the key
itself lives only in the browser's URL), its data encrypted with the credentials' key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, delete, select, update

from mailmover.service.secrets import SecretBox, SecretsUnreadable
from mailmover.store import schema
from mailmover.store.connect import insert_for
from mailmover.store.database import Store

pending_t = schema.web_pending
#: the longest a kind of record may be kept (``service.retention`` deletes older ones)
KEEP_AT_MOST: Final = timedelta(hours=1)


class PendingRecords:
    """Records of one kind (``kind``), kept ``keep`` after they were last written."""

    def __init__(self, store: Store, box: SecretBox, kind: str, keep: timedelta) -> None:
        if keep > KEEP_AT_MOST:
            raise ValueError(f"records are kept {KEEP_AT_MOST} at most")
        self.store = store
        self.box = box
        self.kind = kind
        self.keep = keep

    def _key(self, key: str) -> str:
        return f"{self.kind}:{hashlib.sha256(key.encode()).hexdigest()}"

    def put(self, key: str, data: dict[str, Any]) -> None:
        """Keep ``data`` under ``key`` (replacing what was there)."""
        now = datetime.now(UTC)
        row = {"key": self._key(key), "data": self.box.encrypt(data), "touched_at": now}
        with self.store.write_engine.begin() as conn:
            conn.execute(delete(pending_t).where(pending_t.c.touched_at < now - self.keep))
            insert = insert_for(conn, pending_t).values(row)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[pending_t.c.key],
                    set_={"data": insert.excluded.data, "touched_at": now},
                )
            )

    def get(self, key: str) -> dict[str, Any] | None:
        """What is kept under ``key``, if it is still kept."""
        since = datetime.now(UTC) - self.keep
        with self.store.engine.connect() as conn:
            blob = conn.execute(
                select(pending_t.c.data).where(
                    pending_t.c.key == self._key(key), pending_t.c.touched_at >= since
                )
            ).scalar()
        return None if blob is None else self.box.decrypt(blob)

    def pop(self, key: str) -> dict[str, Any] | None:
        """What is kept under ``key``, taken away: only one request ever gets it."""
        since = datetime.now(UTC) - self.keep
        with self.store.write_engine.begin() as conn:
            blob = conn.execute(
                delete(pending_t)
                .where(pending_t.c.key == self._key(key))
                .returning(pending_t.c.data, pending_t.c.touched_at)
            ).one_or_none()
        if blob is None or blob.touched_at < since:
            return None
        return self.box.decrypt(blob.data)

    def forget(self, key: str) -> None:
        with self.store.write_engine.begin() as conn:
            conn.execute(delete(pending_t).where(pending_t.c.key == self._key(key)))


def reseal_all(conn: Connection, box: SecretBox) -> None:
    """Every record encrypted again under ``box``'s current key (a key rotation); one no
    key opens is deleted (it could not be used)."""
    for row in conn.execute(select(pending_t.c.key, pending_t.c.data)).all():
        where = pending_t.c.key == row.key
        try:
            conn.execute(update(pending_t).where(where).values(data=box.reencrypt(row.data)))
        except SecretsUnreadable:
            conn.execute(delete(pending_t).where(where))
