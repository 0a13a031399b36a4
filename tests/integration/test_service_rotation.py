"""A key rotation re-encrypts what the web keeps between requests too: drafts (with the
passwords inside them) and pending sign-ins stay readable under the new key alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Table, func, select

from mailmover.service import secrets
from mailmover.service.accounts import USER, create_account
from mailmover.service.credentials import password_spec
from mailmover.service.drafts import Drafts
from mailmover.service.pending import PendingRecords
from mailmover.service.secrets import SecretBox, SecretsUnreadable
from mailmover.store import Store, schema


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


def test_drafts_and_pending_records_are_readable_after_a_rotation(
    store: Store, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    box = SecretBox.open(data, env={})
    owner = create_account(store, "ann@example.com", "a long enough password", USER).id
    drafts = Drafts(store, box)
    draft = drafts.new(owner, name="wizard")
    draft.secrets["source"] = box.encrypt(password_spec("old-mail-pw"))
    drafts.save(draft)
    pending = PendingRecords(store, box, "oauth", timedelta(minutes=10))
    pending.put("state", {"verifier": "v-123"})
    lost = SecretBox([Fernet.generate_key()])  # a key nobody holds any more
    with store.write_engine.begin() as conn:
        conn.execute(
            schema.web_pending.insert().values(
                key="oauth:gone", data=lost.encrypt({"x": 1}), touched_at=datetime.now(UTC)
            )
        )

    secrets.rotate(store, data, env={})

    new_box = SecretBox.open(data, env={})
    with pytest.raises(SecretsUnreadable):  # the old key is gone: only the new one reads
        box.decrypt(store_blob(store, schema.web_draft))
    kept = Drafts(store, new_box).get(draft.id, owner)
    assert kept.name == "wizard"
    assert kept.specs(new_box)["source"] == password_spec("old-mail-pw")
    assert PendingRecords(store, new_box, "oauth", timedelta(minutes=10)).get("state") == {
        "verifier": "v-123"
    }
    with store.engine.connect() as conn:  # what no key opened is gone, not left to fail
        assert conn.execute(select(func.count()).select_from(schema.web_pending)).scalar() == 1


def store_blob(store: Store, table: Table) -> bytes:
    with store.engine.connect() as conn:
        return bytes(conn.execute(select(table.c.data)).scalar_one())
