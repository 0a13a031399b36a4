"""Credentials encrypted at rest: Fernet keys, encryption, rotation and erasure; and
the digest under which a bearer token (session, API token, invitation link) is stored.

The key comes from ``MAILMOVER_SECRET_KEY`` (one key, or several separated by commas:
the first encrypts, all decrypt, which is how a rotation is done with keys held
elsewhere), or else from ``secret.key`` in the data directory, created with mode 0600
on first use. What is encrypted is a JSON object (see ``service.credentials``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select, update

from mailmover.errors import UsageError
from mailmover.store import schema
from mailmover.store.database import Store

KEY_ENV: Final = "MAILMOVER_SECRET_KEY"
KEY_FILE: Final = "secret.key"


def token_digest(token: str) -> bytes:
    """The SHA-256 of a random bearer token: what is stored instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).digest()


class SecretsUnreadable(UsageError):
    """Stored credentials cannot be decrypted with the keys given."""


class SecretBox:
    """Encrypts and decrypts credentials with a list of Fernet keys (the first is current)."""

    def __init__(self, keys: list[bytes], key_file: Path | None = None) -> None:
        if not keys:
            raise UsageError("no secret key")
        try:
            self._fernets = [Fernet(k) for k in keys]
        except ValueError:
            raise UsageError(
                f"{KEY_ENV} or {KEY_FILE} holds something that is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
        self._multi = MultiFernet(self._fernets)
        self.keys = keys
        #: where the keys came from; None when from the environment
        self.key_file = key_file

    @classmethod
    def open(cls, data_dir: Path, env: Mapping[str, str] | None = None) -> SecretBox:
        """The keys from the environment, else from the data directory's key file (made if new)."""
        env = os.environ if env is None else env
        given = env.get(KEY_ENV, "").strip()
        if given:
            return cls([k.strip().encode() for k in given.split(",") if k.strip()])
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            _write_keys(path, [Fernet.generate_key()], create=True)
        return cls(_read_keys(path), path)

    def derived_key(self, purpose: str) -> bytes:
        """A key for ``purpose`` (signing, not credentials) made from the current key: the
        same in every process that holds this box's keys."""
        return hmac.new(self.keys[0], purpose.encode(), hashlib.sha256).digest()

    def encrypt(self, data: Mapping[str, Any]) -> bytes:
        """``data`` as JSON, encrypted under the current key."""
        return self._fernets[0].encrypt(json.dumps(dict(data), separators=(",", ":")).encode())

    def decrypt(self, token: bytes) -> dict[str, Any]:
        """What ``encrypt`` was given; ``SecretsUnreadable`` when no key opens it."""
        try:
            value = json.loads(self._multi.decrypt(bytes(token)))
        except InvalidToken:
            raise SecretsUnreadable(
                f"stored credentials cannot be decrypted: is {KEY_ENV} (or {KEY_FILE}) the key "
                "they were stored with?"
            ) from None
        if not isinstance(value, dict):
            raise SecretsUnreadable("stored credentials are not a JSON object")
        return value

    def reencrypt(self, token: bytes) -> bytes:
        """The same secret under the current key."""
        try:
            return self._multi.rotate(bytes(token))
        except InvalidToken:
            raise SecretsUnreadable(
                "stored credentials cannot be decrypted with these keys"
            ) from None


def rotate(store: Store, data_dir: Path, env: Mapping[str, str] | None = None) -> int:
    """Re-encrypt every stored credential under a new key (the web's drafts and pending
    records too); the number of credentials re-encrypted.

    With a key file: a new key is added first (so a crash leaves every secret
    readable), everything is re-encrypted in one transaction, then the old keys are
    dropped. With ``MAILMOVER_SECRET_KEY``: the first of its keys becomes the only one
    in use, and the others may then be removed from the environment.
    """
    box = SecretBox.open(data_dir, env)
    path = box.key_file
    if path is not None:
        box = SecretBox([Fernet.generate_key(), *box.keys], path)
        _write_keys(path, box.keys)
    count = reencrypt_all(store, box)
    if path is not None:
        _write_keys(path, box.keys[:1])
    return count


def reencrypt_all(store: Store, box: SecretBox) -> int:
    """Every mailbox's stored credentials re-encrypted under ``box``'s current key (the
    number returned), and the web's drafts and pending records with them."""
    from mailmover.service import drafts, pending  # they build on this module

    mb = schema.mailbox
    count = 0
    with store.write_engine.begin() as conn:
        drafts.reseal_all(conn, box)
        pending.reseal_all(conn, box)
        rows = conn.execute(select(mb.c.id, mb.c.source_secret, mb.c.dest_secret)).all()
        for row in rows:
            values = {
                name: box.reencrypt(token)
                for name, token in (("source_secret", row.source_secret),
                                    ("dest_secret", row.dest_secret))
                if token is not None
            }  # fmt: skip
            if values:
                conn.execute(update(mb).where(mb.c.id == row.id).values(values))
                count += len(values)
    return count


def erase(store: Store, mailbox_ids: list[int]) -> None:
    """Forget the credentials of these mailboxes."""
    if not mailbox_ids:
        return
    mb = schema.mailbox
    with store.write_engine.begin() as conn:
        conn.execute(
            update(mb).where(mb.c.id.in_(mailbox_ids)).values(source_secret=None, dest_secret=None)
        )


def _read_keys(path: Path) -> list[bytes]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the key file {str(path)!r}: {exc}") from None
    return [line.strip().encode() for line in text.splitlines() if line.strip()]


def _write_keys(path: Path, keys: list[bytes], *, create: bool = False) -> None:
    """Write the key file with mode 0600, replacing it whole (never half written)."""
    text = b"".join(k + b"\n" for k in keys)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text)
        os.fsync(fd)
    finally:
        os.close(fd)
    if not create:
        os.replace(tmp, path)
        return
    # Two processes starting at once: the first link wins, the other reads its key.
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
