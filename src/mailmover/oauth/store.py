"""Refresh tokens at rest: a JSON file whose secrets are encrypted with Fernet.

The key is ``MAILMOVER_SECRET_KEY`` (a Fernet key, e.g. from
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``)
when set, else a key file created beside the store with mode 0600.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.fernet import Fernet, InvalidToken

from mailmover.errors import UsageError
from mailmover.oauth.client import OAuthClient
from mailmover.oauth.grant import TokenSet

KEY_ENV = "MAILMOVER_SECRET_KEY"
_VERSION = 1


def default_store_path() -> Path:
    """``oauth-tokens.json`` in the user's data directory."""
    return Path(platformdirs.user_data_dir("mailmover")) / "oauth-tokens.json"


@dataclass(frozen=True)
class StoredToken:
    """One entry of a token store: the tokens and the client that can refresh them."""

    provider: str
    user: str
    tokens: TokenSet
    client_id: str | None = None
    token_url: str | None = None
    client_secret: str | None = field(default=None, repr=False)


class TokenStore:
    """Tokens keyed by (provider, user), secrets encrypted, file mode 0600."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise UsageError(
                f"the token store key (${KEY_ENV} or the key file) is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path | None = None, *, secret_key: str | None = None) -> TokenStore:
        """The store at ``path`` (default: the data directory).

        The key is ``secret_key``, else ``$MAILMOVER_SECRET_KEY``, else the key
        file beside the store, created on first use.
        """
        path = path or default_store_path()
        secret_key = secret_key or os.environ.get(KEY_ENV)
        if secret_key:
            return cls(path, secret_key.encode("ascii", "replace"))
        return cls(path, _key_file(path.with_suffix(".key")))

    # -- entries -----------------------------------------------------------------------

    def save(
        self, provider: str, user: str, tokens: TokenSet, client: OAuthClient | None = None
    ) -> None:
        """Store (or replace) the tokens of ``user`` at ``provider``."""
        secrets = {"refresh_token": tokens.refresh_token, "access_token": tokens.access_token}
        entry: dict[str, Any] = {
            "provider": provider,
            "user": user,
            "expires_at": tokens.expires_at.isoformat(),
            "scope": tokens.scope,
        }
        if client is not None:
            entry["client_id"] = client.client_id
            entry["token_url"] = client.token_url
            secrets["client_secret"] = client.client_secret
        entry["secrets"] = self._fernet.encrypt(json.dumps(secrets).encode()).decode("ascii")
        with self._lock:
            entries = self._read()
            entries[_key(provider, user)] = entry
            self._write(entries)

    async def asave(
        self, provider: str, user: str, tokens: TokenSet, client: OAuthClient | None = None
    ) -> None:
        """``save`` in a worker thread, so the event loop never waits on the disk.

        The file is still replaced atomically with mode 0600; a caller cancelled
        meanwhile does not stop the write.
        """
        await asyncio.to_thread(self.save, provider, user, tokens, client)

    def load(self, provider: str, user: str) -> StoredToken | None:
        """The entry of ``user`` at ``provider``, or None."""
        with self._lock:
            entry = self._read().get(_key(provider, user))
        if entry is None:
            return None
        try:
            secrets = json.loads(self._fernet.decrypt(entry["secrets"].encode("ascii")))
            expires_at = datetime.fromisoformat(entry["expires_at"])
        except InvalidToken:
            raise UsageError(
                f"the tokens in {self.path} were encrypted with another key; set the "
                f"{KEY_ENV} they were stored with, or run `mailmover auth {provider} {user}` again"
            ) from None
        except (KeyError, ValueError, AttributeError):
            raise UsageError(f"the entry for {user} in {self.path} is damaged") from None
        tokens = TokenSet(
            access_token=secrets.get("access_token") or "",
            expires_at=expires_at,
            refresh_token=secrets.get("refresh_token"),
            scope=entry.get("scope", ""),
        )
        return StoredToken(
            provider=entry["provider"],
            user=entry["user"],
            tokens=tokens,
            client_id=entry.get("client_id"),
            token_url=entry.get("token_url"),
            client_secret=secrets.get("client_secret"),
        )

    def delete(self, provider: str, user: str) -> bool:
        """Erase the entry of ``user`` at ``provider``; whether there was one."""
        with self._lock:
            entries = self._read()
            if entries.pop(_key(provider, user), None) is None:
                return False
            self._write(entries)
            return True

    def entries(self) -> list[tuple[str, str]]:
        """(provider, user) of every entry."""
        with self._lock:
            return [(e["provider"], e["user"]) for e in self._read().values()]

    def __repr__(self) -> str:
        return f"<TokenStore {self.path}>"

    # -- the file ----------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the token store {self.path}: {exc}") from None
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            raise UsageError(f"{self.path} is not a mailmover token store")
        return entries

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        text = json.dumps({"version": _VERSION, "entries": entries}, indent=1, sort_keys=True)
        _write_private(self.path, text.encode())


def _key(provider: str, user: str) -> str:
    return f"{provider}:{user.casefold()}"


def _key_file(path: Path) -> bytes:
    """The key in ``path``, created (mode 0600) when missing."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".new")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates it with mode 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
