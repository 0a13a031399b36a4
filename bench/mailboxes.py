"""Filling a throwaway Dovecot fast and checking what an account holds, for the benchmarks.

Messages are written straight into the user's Maildir (seconds for 200,000
files instead of minutes of APPENDs); Dovecot then indexes them on the first
EXAMINE, which ``index`` does, timed, so that this cost is not counted against
the tool measured next. Checks use the standard library's imaplib only.
"""

from __future__ import annotations

import imaplib
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mailmover.devserver import DevServer
from mailmover.devserver_conf import mail_ids
from support import imapwire, mutf7, snapshot
from support.corpus import CorpusMessage
from support.maildir import folder_dir, write_maildir

FolderPath = tuple[str, ...]

#: the header line mbsync 1.4 adds to every message it stores (to find it again)
_TUID = re.compile(rb"^X-TUID: [^\r\n]*\r\n", re.M)


def write_folders(
    server: DevServer, user: str, folders: Mapping[FolderPath, Sequence[CorpusMessage]]
) -> int:
    """Write each folder's messages into ``user``'s Maildir; return how many in all."""
    root = server.maildir(user)
    owner = mail_ids()
    total = 0
    for path, messages in folders.items():
        target = folder_dir(root, path, layout=server.options.layout)
        total += write_maildir(messages, target, owner)
    return total


def folder_names(conn: imaplib.IMAP4) -> list[str]:
    """Wire names of the selectable folders of a logged-in imaplib connection."""
    entries = imapwire.list_entries(imapwire.check(conn.list('""', "*"), "LIST"))
    return [e.name for e in entries if not e.flags & {"\\noselect", "\\nonexistent"}]


def index(port: int, user: str, password: str) -> tuple[float, dict[str, int]]:
    """EXAMINE and FETCH 1:* (FLAGS) every folder, so Dovecot builds its indexes;
    return the seconds it took and the message count per folder."""
    counts: dict[str, int] = {}
    start = time.perf_counter()
    with snapshot.session("127.0.0.1", port, user, password, timeout=600) as conn:
        for name in folder_names(conn):
            quoted = imapwire.quote(name)
            exists = int(imapwire.check(conn.select(quoted, readonly=True), "EXAMINE")[0])
            if exists:
                imapwire.check(conn.fetch("1:*", "(FLAGS)"), "FETCH")
            counts[name] = exists
    return time.perf_counter() - start, counts


MetaKey = tuple[int, str, datetime]


def meta_key(size: int, flags: Iterable[str], internaldate: datetime) -> MetaKey:
    """(size, flags without \\Recent, internal date in UTC): a message without its bytes."""
    kept = " ".join(sorted(f for f in flags if f.lower() != "\\recent"))
    return size, kept, internaldate.astimezone(UTC)


def metadata(port: int, user: str, password: str) -> dict[str, Counter[MetaKey]]:
    """Per folder, the multiset of ``meta_key``: a check without reading bodies."""
    out: dict[str, Counter[MetaKey]] = {}
    with snapshot.session("127.0.0.1", port, user, password, timeout=600) as conn:
        for name in folder_names(conn):
            exists = int(imapwire.check(conn.select(imapwire.quote(name), readonly=True), "")[0])
            found: Counter[MetaKey] = Counter()
            for first in range(1, exists + 1, 20_000):
                last = min(exists, first + 19_999)
                items = "(RFC822.SIZE FLAGS INTERNALDATE)"
                for line in imapwire.check(conn.fetch(f"{first}:{last}", items), "FETCH"):
                    if isinstance(line, bytes) and b"RFC822.SIZE" in line:
                        found[_meta_key(line)] += 1
            out[_logical(name)] = found
    return out


def _meta_key(line: bytes) -> MetaKey:
    text = line.decode()
    size = int(text.split("RFC822.SIZE ")[1].split()[0].rstrip(")"))
    flags = text.split("FLAGS (")[1].split(")")[0].split()
    date = text.split('INTERNALDATE "')[1].split('"')[0].strip()
    return meta_key(size, flags, datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z"))


def _logical(name: str) -> str:
    return "INBOX" if name.upper() == "INBOX" else name.replace(".", "/")


def without_keywords(snap: snapshot.MailboxSnapshot) -> snapshot.MailboxSnapshot:
    """The snapshot with keywords removed from every message (system flags kept)."""
    folders = {}
    for path, messages in snap.folders.items():
        stripped: Counter[snapshot.MessageKey] = Counter()
        for (digest, flags, when), n in messages.items():
            stripped[(digest, frozenset(f for f in flags if f.startswith("\\")), when)] += n
        folders[path] = stripped
    return snapshot.MailboxSnapshot(folders, snap.subscribed)


def read_account(
    port: int, user: str, password: str, *, strip_tuid: bool = False, chunk: int = 500
) -> tuple[snapshot.MailboxSnapshot, int]:
    """Every folder's multiset of (SHA-256 of the bytes, flags, internal date), as
    ``snapshot.snapshot`` reads it (subscriptions left out); with ``strip_tuid`` an
    ``X-TUID`` header line is removed before hashing. Also returns how many
    messages had one."""
    folders: dict[FolderPath, Counter[snapshot.MessageKey]] = {}
    tuids = 0
    with snapshot.session("127.0.0.1", port, user, password, timeout=600) as conn:
        delimiter = snapshot.hierarchy_delimiter(conn)
        for name in folder_names(conn):
            found: Counter[snapshot.MessageKey] = Counter()
            exists = int(imapwire.check(conn.select(imapwire.quote(name), readonly=True), "")[0])
            for first in range(1, exists + 1, chunk):
                last = min(exists, first + chunk - 1)
                items = "(UID FLAGS INTERNALDATE BODY.PEEK[])"
                data = imapwire.check(conn.fetch(f"{first}:{last}", items), "FETCH")
                for msg in imapwire.fetched_messages(data).values():
                    body = msg.body
                    if strip_tuid:
                        head, sep, rest = body.partition(b"\r\n\r\n")
                        head, n = _TUID.subn(b"", head + b"\r\n", count=1)
                        body, tuids = head[:-2] + sep + rest, tuids + n
                    found[snapshot.message_key(body, msg.flags, msg.internaldate)] += 1
            path = tuple(mutf7.decode(name).split(delimiter))
            folders[("INBOX", *path[1:]) if path[0].upper() == "INBOX" else path] = found
    return snapshot.MailboxSnapshot(folders), tuids
