"""Load a corpus into an IMAP account and read an account back into a comparable snapshot.

Only the standard library's ``imaplib`` talks to the server here, so these tools
can judge mailmover's own IMAP client without depending on it. Folder names are
held as paths of decoded names, so a server with ``/`` as hierarchy delimiter
and one with ``.`` give equal snapshots of the same folders, and the personal
namespace's prefix (``INBOX.`` on Courier and Cyrus) is taken off, so that
``INBOX.Work`` there and ``Work`` elsewhere are the same folder.

``SourceGuard`` is the second half of the oracle: a snapshot of the source taken
before a run, to compare with the source after it (flags included, so a
``\\Seen`` set by reading a body shows).
"""

from __future__ import annotations

import hashlib
import imaplib
import re
import ssl
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import imapwire, mutf7
from .corpus import Corpus, CorpusMessage

#: (sha256 hex of the bytes, flags without \Recent, internal date in UTC)
MessageKey = tuple[str, frozenset[str], datetime]
FolderPath = tuple[str, ...]

FETCH_CHUNK = 200


@dataclass(frozen=True)
class MailboxSnapshot:
    """What an account holds: each selectable folder's messages, and the subscriptions."""

    folders: dict[FolderPath, Counter[MessageKey]]
    subscribed: frozenset[FolderPath] = field(default_factory=frozenset)

    def message_count(self) -> int:
        """How many messages in all folders, duplicates counted."""
        return sum(c.total() for c in self.folders.values())

    def differences(self, other: MailboxSnapshot, limit: int = 20) -> list[str]:
        """Readable lines on how ``other`` differs from this snapshot (empty when equal)."""
        out = []
        for path in sorted(self.folders.keys() | other.folders.keys()):
            mine, theirs = self.folders.get(path), other.folders.get(path)
            if mine is None or theirs is None:
                out.append(f"{'/'.join(path)}: only in {'other' if mine is None else 'self'}")
                continue
            for key, n in (mine - theirs).items():
                out.append(f"{'/'.join(path)}: {n} x {_describe(key)} missing from other")
            for key, n in (theirs - mine).items():
                out.append(f"{'/'.join(path)}: {n} x {_describe(key)} extra in other")
        for path in sorted(self.subscribed ^ other.subscribed):
            where = "self" if path in self.subscribed else "other"
            out.append(f"subscription {'/'.join(path)} only in {where}")
        return out[:limit]


def _describe(key: MessageKey) -> str:
    digest, flags, when = key
    return f"({digest[:12]}, {sorted(flags)}, {when.isoformat()})"


def message_key(raw: bytes, flags: Iterable[str], internaldate: datetime) -> MessageKey:
    """The comparable form of one message: \\Recent is dropped, the date made UTC."""
    kept = frozenset(f for f in flags if f.lower() != "\\recent")
    return hashlib.sha256(raw).hexdigest(), kept, internaldate.astimezone(UTC)


def messages_counter(messages: Iterable[CorpusMessage]) -> Counter[MessageKey]:
    """The expected contents of one folder holding ``messages``."""
    return Counter(message_key(m.raw, m.flags, m.internaldate) for m in messages)


def corpus_snapshot(corpus: Corpus) -> MailboxSnapshot:
    """The snapshot an account should give after ``load(corpus, ...)``; every account
    has an INBOX, so the snapshot has one even when the corpus does not."""
    folders: dict[FolderPath, Counter[MessageKey]] = {("INBOX",): Counter()}
    return MailboxSnapshot(
        folders=folders | {f.path: messages_counter(f.messages) for f in corpus},
        subscribed=frozenset(f.path for f in corpus if f.subscribed),
    )


@contextmanager
def session(
    host: str,
    port: int,
    user: str,
    password: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    starttls: bool = False,
    timeout: float = 60.0,
) -> Iterator[imaplib.IMAP4]:
    """A logged-in imaplib connection: implicit TLS when ``ssl_context`` is given
    without ``starttls``, plain otherwise (upgraded first when ``starttls``)."""
    conn: imaplib.IMAP4
    if ssl_context is not None and not starttls:
        conn = imaplib.IMAP4_SSL(host, port, ssl_context=ssl_context, timeout=timeout)
    else:
        conn = imaplib.IMAP4(host, port, timeout=timeout)
    try:
        if starttls:
            conn.starttls(ssl_context)
        if (user + password).isascii():
            conn.login(user, password)
        else:  # imaplib's LOGIN sends ASCII only; SASL PLAIN carries UTF-8 (RFC 4616)
            blob = b"\0" + user.encode() + b"\0" + password.encode()
            conn.authenticate("PLAIN", lambda _challenge: blob)
        yield conn
    except BaseException:
        conn.shutdown()
        raise
    conn.logout()


def hierarchy_delimiter(conn: imaplib.IMAP4) -> str:
    """The server's hierarchy delimiter, from ``LIST "" ""`` (RFC 3501 section 6.3.8)."""
    data = imapwire.check(conn.list('""', '""'), "LIST")
    for entry in imapwire.list_entries(data):
        if entry.delimiter:
            return entry.delimiter
    raise RuntimeError("server has a flat namespace: it cannot hold nested folders")


def personal_prefix(conn: imaplib.IMAP4) -> str:
    """The personal namespace's prefix (RFC 2342), ``""`` when none or no NAMESPACE."""
    # imaplib keeps the capabilities of before the login, which may lack NAMESPACE.
    typ, data = conn.namespace()
    if typ != "OK":
        return ""
    text = b" ".join(d for d in data if isinstance(d, bytes)).decode()
    found = re.match(r'\s*\(\("((?:[^"\\]|\\.)*)"', text)
    return found[1] if found else ""


def mailbox_name(path: FolderPath, delimiter: str, prefix: str = "") -> str:
    """The quoted, modified UTF-7 wire name of ``path`` (under the personal namespace's
    ``prefix``, INBOX excepted); refuses a name holding the delimiter."""
    for part in path:
        if delimiter in part:
            raise ValueError(
                f"folder name {part!r} contains the server's delimiter {delimiter!r}; "
                "generate the corpus with dots=False for such a server"
            )
    if path == ("INBOX",) or not prefix:
        return imapwire.quote(mutf7.encode(delimiter.join(path)))
    return imapwire.quote(prefix + mutf7.encode(delimiter.join(path)))


def load(
    corpus: Corpus,
    host: str,
    port: int,
    user: str,
    password: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    starttls: bool = False,
) -> None:
    """Create the corpus folders, subscribe the subscribed ones, and APPEND every message
    with its flags and internal date. The account should start empty.

    Raises ValueError, before changing anything, when a folder name contains the
    server's hierarchy delimiter (``v1.2 release`` on a ``.`` server: use
    ``corpus.generate(..., dots=False)`` there).
    """
    with session(host, port, user, password, ssl_context=ssl_context, starttls=starttls) as conn:
        delimiter = hierarchy_delimiter(conn)
        prefix = personal_prefix(conn)
        existing = set(_selectable_folders(conn, delimiter, prefix))
        folders = sorted(corpus, key=lambda f: len(f.path))
        names = [mailbox_name(folder.path, delimiter, prefix) for folder in folders]
        for folder, name in zip(folders, names, strict=True):
            if _normalise(folder.path) not in existing:
                imapwire.check(conn.create(name), f"CREATE {name}")
            if folder.subscribed:
                imapwire.check(conn.subscribe(name), f"SUBSCRIBE {name}")
            for msg in folder.messages:
                flags = "(" + " ".join(sorted(msg.flags)) + ")" if msg.flags else None
                when = imaplib.Time2Internaldate(msg.internaldate)
                imapwire.check(conn.append(name, flags, when, msg.raw), f"APPEND {name}")


def snapshot(
    host: str,
    port: int,
    user: str,
    password: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    starttls: bool = False,
    chunk: int = FETCH_CHUNK,
) -> MailboxSnapshot:
    """Read every selectable folder (read-only) and the subscriptions of an account."""
    with session(host, port, user, password, ssl_context=ssl_context, starttls=starttls) as conn:
        delimiter = hierarchy_delimiter(conn)
        prefix = personal_prefix(conn)
        folders = {
            path: _read_folder(conn, mailbox_name(path, delimiter, prefix), chunk)
            for path in _selectable_folders(conn, delimiter, prefix)
        }
        lsub = imapwire.check(conn.lsub('""', "*"), "LSUB")
        subscribed = frozenset(
            _split(entry.name, entry.delimiter or delimiter, prefix)
            for entry in imapwire.list_entries(lsub)
            if "\\noselect" not in entry.flags
        )
    return MailboxSnapshot(folders, subscribed)


def _selectable_folders(conn: imaplib.IMAP4, delimiter: str, prefix: str) -> list[FolderPath]:
    data = imapwire.check(conn.list('""', "*"), "LIST")
    out = []
    for entry in imapwire.list_entries(data):
        if entry.flags & {"\\noselect", "\\nonexistent"}:
            continue
        out.append(_split(entry.name, entry.delimiter or delimiter, prefix))
    return out


def _split(wire_name: str, delimiter: str, prefix: str = "") -> FolderPath:
    if prefix and wire_name.upper().startswith(prefix.upper()) and len(wire_name) > len(prefix):
        wire_name = wire_name[len(prefix) :]
    return _normalise(tuple(mutf7.decode(wire_name).split(delimiter)))


def _normalise(path: FolderPath) -> FolderPath:
    # RFC 3501 section 5.1: INBOX is case-insensitive.
    if path and path[0].upper() == "INBOX":
        return ("INBOX", *path[1:])
    return path


def _read_folder(conn: imaplib.IMAP4, name: str, chunk: int) -> Counter[MessageKey]:
    # FETCH by sequence ranges, not UID SEARCH: imaplib refuses reply lines over
    # 1 MB, which a SEARCH of a 200,000-message folder is.
    exists = int(imapwire.check(conn.select(name, readonly=True), f"EXAMINE {name}")[0])
    found: Counter[MessageKey] = Counter()
    for first in range(1, exists + 1, chunk):
        last = min(exists, first + chunk - 1)
        items = "(UID FLAGS INTERNALDATE BODY.PEEK[])"
        data = imapwire.check(conn.fetch(f"{first}:{last}", items), "FETCH")
        messages = imapwire.fetched_messages(data)
        if len(messages) != last - first + 1:
            raise RuntimeError(f"{name}: {len(messages)} bodies for messages {first}:{last}")
        for msg in messages.values():
            found[message_key(msg.body, msg.flags, msg.internaldate)] += 1
    return found


class SourceGuard:
    """The source account as it was before a run, to hold against it afterwards."""

    def __init__(self, host: str, port: int, user: str, password: str, **tls: object) -> None:
        self._read = lambda: snapshot(host, port, user, password, **tls)  # type: ignore[arg-type]
        self.before: MailboxSnapshot = self._read()

    def changes(self) -> list[str]:
        """How the source now differs from before (empty when untouched)."""
        return self.before.differences(self._read(), 50)
