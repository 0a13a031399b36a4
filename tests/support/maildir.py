"""Put messages straight into a Maildir folder, for benchmarks that need a big mailbox fast.

Writing files skips IMAP entirely: 200,000 small messages take seconds instead of
the minutes one APPEND each would need. What Dovecot reads back:

* the bytes of each file (written with CRLF; Dovecot serves a CRLF file as is);
* flags from the ``:2,<letters>`` suffix (maildir spec: D F R S T, in ASCII order)
  and keywords from lowercase letters ``a``..``z`` whose names are listed in the
  folder's ``dovecot-keywords`` file (Dovecot's maildir keyword extension);
* the INTERNALDATE from each file's mtime.

Dovecot must not be using the user's mail while files are written: stop the
server, or write before anything opens the folder. Dovecot rescans a Maildir
when it sees the ``cur/`` directory change, so the next SELECT or EXAMINE (or
``doveadm force-resync``) after writing assigns UIDs to the new files.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

from . import mutf7
from .corpus import CorpusMessage

#: maildir info letters for the IMAP system flags (cr.yp.to/proto/maildir.html)
FLAG_LETTERS = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
KEYWORDS_FILE = "dovecot-keywords"
MAX_KEYWORDS = 26


def folder_dir(root: Path, path: tuple[str, ...], *, layout: str = "maildir++") -> Path:
    """Where Dovecot keeps folder ``path`` of a mail root (``maildir:<root>``).

    ``maildir++``: INBOX is the root, ``Projects/Q1`` is ``<root>/.Projects.Q1``;
    ``fs`` (``LAYOUT=fs``): INBOX is the root, ``Projects/Q1`` is ``<root>/Projects/Q1``.
    Names are in modified UTF-7, as Dovecot stores them by default.
    """
    if path == ("INBOX",):
        return root
    names = [mutf7.encode(part) for part in path]
    if layout == "maildir++":
        if any("." in name or "/" in name for name in names):
            raise ValueError(f"{path!r} cannot be stored in a maildir++ layout")
        return root / ("." + ".".join(names))
    if layout == "fs":
        return root.joinpath(*names)
    raise ValueError(f"layout must be 'maildir++' or 'fs', not {layout!r}")


def write_maildir(
    messages: Iterable[CorpusMessage],
    maildir_path: Path,
    uid_owner: tuple[int, int] | None = None,
) -> int:
    """Write ``messages`` into the Maildir folder at ``maildir_path``; return how many.

    Creates the folder (and missing parents) when needed and adds to what is
    there. ``uid_owner`` is the (uid, gid) the mail server runs as for this user:
    every directory and file written is given to it.
    """
    _make_dirs(maildir_path, uid_owner)
    for sub in ("cur", "new", "tmp"):
        _make_dirs(maildir_path / sub, uid_owner)
    keywords = _read_keywords(maildir_path / KEYWORDS_FILE)
    known = len(keywords)
    cur = maildir_path / "cur"
    stamp, token, pid = int(time.time()), secrets.token_hex(4), os.getpid()
    count = 0
    for count, msg in enumerate(messages, 1):
        letters = _letters(msg.flags, keywords)
        size = len(msg.raw)
        name = f"{stamp}.M{count:07d}P{pid}R{token}.corpus,S={size},W={size}:2,{letters}"
        _write_file(cur / name, msg.raw, int(msg.internaldate.timestamp()), uid_owner)
    if len(keywords) > known or not (maildir_path / KEYWORDS_FILE).exists():
        ordered = sorted(keywords.items(), key=lambda item: item[1])
        text = "".join(f"{index} {name}\n" for name, index in ordered)
        _write_file(maildir_path / KEYWORDS_FILE, text.encode(), int(time.time()), uid_owner)
    return count


def _letters(flags: frozenset[str], keywords: dict[str, int]) -> str:
    letters = []
    for flag in sorted(flags):
        if flag.startswith("\\"):
            if flag not in FLAG_LETTERS:
                raise ValueError(f"maildir cannot store the flag {flag}")
            letters.append(FLAG_LETTERS[flag])
            continue
        if flag not in keywords:
            index = max(keywords.values(), default=-1) + 1
            if index >= MAX_KEYWORDS:
                raise ValueError(f"a Maildir folder holds at most {MAX_KEYWORDS} keywords")
            keywords[flag] = index
        letters.append(chr(ord("a") + keywords[flag]))
    return "".join(sorted(letters))


def _read_keywords(path: Path) -> dict[str, int]:
    keywords: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            index, _, name = line.partition(" ")
            if name:
                keywords[name] = int(index)
    return keywords


def _make_dirs(path: Path, owner: tuple[int, int] | None) -> None:
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700)
        if owner is not None:
            os.chown(directory, *owner)


def _write_file(path: Path, data: bytes, mtime: int, owner: tuple[int, int] | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if owner is not None:
            os.fchown(fd, *owner)
        os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)
