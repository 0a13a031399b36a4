"""Credentials at rest: the key's origin, the key file's mode, rotation and erasure."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from mailmover.engine.ports import SideName
from mailmover.errors import AuthenticationFailed
from mailmover.service import secrets
from mailmover.service.credentials import AdminLogin, StoredCredentials, password_spec
from mailmover.service.secrets import SecretBox, SecretsUnreadable
from mailmover.store import Store, schema


def test_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    box = SecretBox.open(tmp_path / "data", env={})
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = box.encrypt({"kind": "password", "password": "hunter2"})
    assert b"hunter2" not in token
    again = SecretBox.open(tmp_path / "data", env={})
    assert again.decrypt(token) == {"kind": "password", "password": "hunter2"}
    assert list(tmp_path.joinpath("data").iterdir()) == [path]


def test_key_from_the_environment_wins_and_a_wrong_key_is_named(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    box = SecretBox.open(tmp_path, env={"MAILMOVER_SECRET_KEY": key})
    assert not (tmp_path / "secret.key").exists()
    token = box.encrypt({"a": 1})
    other = SecretBox.open(tmp_path, env={"MAILMOVER_SECRET_KEY": Fernet.generate_key().decode()})
    with pytest.raises(SecretsUnreadable, match="MAILMOVER_SECRET_KEY"):
        other.decrypt(token)


def stored(store: Store) -> list[tuple[int, bytes | None, bytes | None]]:
    mb = schema.mailbox
    with store.engine.connect() as conn:
        rows = conn.execute(select(mb.c.id, mb.c.source_secret, mb.c.dest_secret)).all()
    return [(r.id, r.source_secret, r.dest_secret) for r in rows]


def test_rotate_reencrypts_everything_under_a_new_key_and_erase_forgets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    box = SecretBox.open(data, env={})
    with Store.open(f"sqlite:///{tmp_path}/s.db") as store:
        ids = []
        for user in ("a", "b"):
            state = store.mailbox(f"imap://{user}@src", f"imap://{user}@dst", "j")
            ids.append(state.id)
            with store.write_engine.begin() as conn:
                conn.execute(
                    schema.mailbox.update()
                    .where(schema.mailbox.c.id == state.id)
                    .values(
                        source_secret=box.encrypt(password_spec(f"pw-{user}")),
                        dest_secret=box.encrypt(password_spec(f"pw2-{user}")),
                    )
                )
        before = stored(store)
        old_key = (data / "secret.key").read_bytes()
        assert secrets.rotate(store, data, env={}) == 4
        new_key = (data / "secret.key").read_bytes()
        assert new_key != old_key and len(new_key.splitlines()) == 1
        assert stat.S_IMODE((data / "secret.key").stat().st_mode) == 0o600
        after = stored(store)
        new_box = SecretBox.open(data, env={})
        for (_, s0, d0), (_, s1, d1) in zip(before, after, strict=True):
            assert s1 != s0 and d1 != d0
            assert s0 is not None and s1 is not None
            assert new_box.decrypt(s1) == box.decrypt(s0)
        with pytest.raises(SecretsUnreadable):
            box.decrypt(after[0][1] or b"")
        secrets.erase(store, ids[:1])
        assert stored(store)[0][1:] == (None, None)
        assert stored(store)[1][1] is not None


async def test_stored_credentials_decrypt_at_each_ask(tmp_path: Path) -> None:
    box = SecretBox.open(tmp_path, env={})
    rows: dict[SideName, bytes | None] = {
        "source": box.encrypt(password_spec("user-pw")),
        "dest": box.encrypt(AdminLogin("master", "admin", "admin-pw").spec()),
    }

    async def read(side: SideName) -> bytes | None:
        return rows[side]

    creds = StoredCredentials(box, read, {"source": "alice", "dest": "alice@new"})
    source = await creds.secret("source")
    assert (source.value, source.login, source.authzid) == ("user-pw", None, None)
    dest = await creds.secret("dest")
    assert (dest.value, dest.login) == ("admin-pw", "alice@new*admin")
    assert "admin-pw" not in repr(dest)
    rows["dest"] = box.encrypt(AdminLogin("authzid", "admin", "admin-pw").spec())
    dest = await creds.secret("dest")
    assert (dest.login, dest.authzid) == ("admin", "alice@new")
    rows["source"] = None  # erased while the pass ran
    with pytest.raises(AuthenticationFailed, match="erased"):
        await creds.secret("source")
