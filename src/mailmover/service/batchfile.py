"""The input of ``mailmover batch FILE``: three formats, recognised by their first line.

* mailmover's CSV: ``source,source_password,dest,dest_password`` (any order), where
  ``source`` and ``dest`` are endpoint URLs (``imaps://alice@host``) or bare user names
  completed by ``--source-server`` / ``--dest-server``; optional columns
  ``source_preset``, ``dest_preset``, ``include`` and ``exclude`` (folder patterns
  separated by ``|``), ``since`` and ``before`` (YYYY-MM-DD), ``email`` (where an
  invitation goes). A password column may be left out for a side that logs in with an
  admin login, or whose users are asked for their own password.
* Microsoft 365's IMAP migration CSV: ``EmailAddress,UserName,Password``. ``UserName``
  and ``Password`` log in at the source; ``EmailAddress`` is the destination user,
  reached with the destination's admin login.
* imapsync's lists: ``host1;user1;password1;host2;user2;password2`` per line (an
  optional header line of those words, ``#`` comments). Extra fields are refused.

The whole file is checked before anything is made of it: ``BatchInvalid`` lists every
bad line with its number and the reason, and never quotes a password.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import quote

from mailmover.config import Endpoint, parse_endpoint
from mailmover.errors import UsageError
from mailmover.providers import load_presets

BatchFormat = Literal["mailmover", "microsoft365", "imapsync"]

MAILMOVER_COLUMNS = ("source", "source_password", "dest", "dest_password")
OPTION_COLUMNS = (
    "source_preset", "dest_preset", "include", "exclude", "since", "before", "email",
)  # fmt: skip
M365_COLUMNS = ("EmailAddress", "UserName", "Password")
IMAPSYNC_FIELDS = ("host1", "user1", "password1", "host2", "user2", "password2")


@dataclass(frozen=True)
class BatchRow:
    """One mailbox pair of a batch file, with the passwords it gave (None: an admin login)."""

    line: int
    source: Endpoint
    dest: Endpoint
    source_password: str | None = field(default=None, repr=False)
    dest_password: str | None = field(default=None, repr=False)
    #: per-row settings, as ``PassSettings`` fields (presets, include, exclude, since, before)
    options: dict[str, Any] = field(default_factory=dict)
    #: where the user's invitation goes (the email column, else a user name that is one)
    email: str | None = None
    #: a credentials spec given instead of a password (an OAuth2 sign-in in the web wizard)
    source_login: dict[str, Any] | None = field(default=None, repr=False)
    dest_login: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def unknown_sides(self) -> tuple[Literal["source", "dest"], ...]:
        """The sides with no password: an admin login's, or the user's to give."""
        sides: list[Literal["source", "dest"]] = []
        if self.source_password is None and self.source_login is None:
            sides.append("source")
        if self.dest_password is None and self.dest_login is None:
            sides.append("dest")
        return tuple(sides)


@dataclass(frozen=True)
class BadLine:
    """A line of the file that cannot be used, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class BatchInvalid(UsageError):
    """The batch file has bad lines; nothing was created."""

    def __init__(self, problems: list[BadLine]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"the batch file has {len(problems)} bad line(s):\n{lines}")


@dataclass(frozen=True)
class BatchOptions:
    """What completes the file: servers for bare user names, and which sides use an admin."""

    source_server: str | None = None  # imaps://host[:port][?tls=none], no user
    dest_server: str | None = None
    source_admin: bool = False  # the source side logs in with the job's admin login
    dest_admin: bool = False
    verify: bool = True
    ca_file: str | None = None
    #: a password left empty is asked of the mailbox's user (an emailed one-time link)
    ask_users: bool = False

    def asked(self, row: BatchRow) -> tuple[Literal["source", "dest"], ...]:
        """The sides of ``row`` whose user is asked for a password (no admin login there)."""
        return tuple(s for s in row.unknown_sides if not getattr(self, f"{s}_admin"))


def detect_format(first_line: str) -> BatchFormat:
    """The format the file's first meaningful line announces."""
    stripped = first_line.strip()
    fields = [f.strip() for f in next(csv.reader([stripped]))] if stripped else []
    if set(M365_COLUMNS) <= set(fields):
        return "microsoft365"
    if {"source", "dest"} <= {f.lower() for f in fields}:
        return "mailmover"
    if stripped.count(";") >= 5:
        return "imapsync"
    raise BatchInvalid(
        [
            BadLine(
                1,
                "unknown format: the first line must be the header "
                f"{','.join(MAILMOVER_COLUMNS)} (mailmover), {','.join(M365_COLUMNS)} "
                f"(Microsoft 365), or a line {';'.join(IMAPSYNC_FIELDS)} (imapsync)",
            )
        ]
    )


def parse_batch(text: str, options: BatchOptions | None = None) -> list[BatchRow]:
    """Every mailbox pair of the file; ``BatchInvalid`` with every bad line otherwise."""
    options = options or BatchOptions()
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    fmt = detect_format(first)
    parser = _Parser(options)
    if fmt == "imapsync":
        parser.imapsync(lines)
    else:
        parser.csv(text, fmt)
    if not parser.rows and not parser.problems:
        parser.problems.append(BadLine(1, "the file names no mailbox"))
    if parser.problems:
        raise BatchInvalid(sorted(parser.problems, key=lambda p: p.line))
    return parser.rows


def check_batch(
    data: bytes | str, options: BatchOptions | None = None
) -> tuple[list[BatchRow], list[BadLine]]:
    """An uploaded file's rows, or every bad line (then no rows): the page's preview."""
    text = data
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            return [], [BadLine(line, "not UTF-8 text: save the file as CSV UTF-8")]
    assert isinstance(text, str)
    try:
        return parse_batch(text, options), []
    except BatchInvalid as exc:
        return [], exc.problems


class _Parser:
    def __init__(self, options: BatchOptions) -> None:
        self.options = options
        self.rows: list[BatchRow] = []
        self.problems: list[BadLine] = []
        self.seen: dict[tuple[str, str], int] = {}
        self.presets = set(load_presets())

    # -- formats -----------------------------------------------------------------------

    def csv(self, text: str, fmt: BatchFormat) -> None:
        reader = csv.reader(io.StringIO(text))
        header: list[str] | None = None
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record) or record[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [c.strip() for c in record]
                if fmt == "mailmover":
                    header = [c.lower() for c in header]
                    self._check_header(header, line)
                continue
            if len(record) != len(header):
                self.bad(line, f"{len(record)} fields where the header has {len(header)}")
                continue
            cells = {name: value.strip() for name, value in zip(header, record, strict=True)}
            if fmt == "mailmover":
                self.mailmover_row(line, cells)
            else:
                self.m365_row(line, cells)

    def imapsync(self, lines: Iterable[str]) -> None:
        for number, raw in enumerate(lines, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split(";")
            if fields[-1] == "" and len(fields) == len(IMAPSYNC_FIELDS) + 1:
                fields.pop()  # imapsync's own examples end each line with ';'
            if [f.strip().lower() for f in fields] == list(IMAPSYNC_FIELDS):
                continue
            if len(fields) < len(IMAPSYNC_FIELDS):
                missing = IMAPSYNC_FIELDS[len(fields)]
                self.bad(number, f"missing column {missing} (need {';'.join(IMAPSYNC_FIELDS)})")
                continue
            if len(fields) > len(IMAPSYNC_FIELDS):
                self.bad(
                    number,
                    f"{len(fields) - len(IMAPSYNC_FIELDS)} extra field(s) after password2: "
                    "imapsync options are not passed through; give mailmover's options instead",
                )
                continue
            host1, user1, pw1, host2, user2, pw2 = (f.strip() for f in fields)
            source = self.endpoint(number, "host1", _server(host1), user1)
            dest = self.endpoint(number, "host2", _server(host2), user2)
            self.add(number, source, dest, self.password(number, "password1", pw1, False),
                     self.password(number, "password2", pw2, False), {})  # fmt: skip

    def mailmover_row(self, line: int, cells: dict[str, str]) -> None:
        opts = self.row_options(line, cells)
        source = self.side(line, "source", cells["source"], self.options.source_server)
        dest = self.side(line, "dest", cells["dest"], self.options.dest_server)
        src_pw = self.password(line, "source_password", cells.get("source_password"), "source")
        dst_pw = self.password(line, "dest_password", cells.get("dest_password"), "dest")
        email = cells.get("email") or None
        if email is not None and "@" not in email:
            self.bad(line, f"email is not an address: {email!r}")
        self.add(line, source, dest, src_pw, dst_pw, opts, email)

    def m365_row(self, line: int, cells: dict[str, str]) -> None:
        if not self.options.dest_admin and not self.options.ask_users:
            self.bad(
                line,
                "EmailAddress is reached with the destination's admin login: give one "
                "(or ask each user)",
            )
            return
        source = self.side(line, "UserName", cells["UserName"], self.options.source_server)
        dest = self.side(line, "EmailAddress", cells["EmailAddress"], self.options.dest_server)
        src_pw = self.password(line, "Password", cells["Password"], "source")
        self.add(line, source, dest, src_pw, None, {}, cells["EmailAddress"])

    # -- pieces ------------------------------------------------------------------------

    def _check_header(self, header: list[str], line: int) -> None:
        unknown = [c for c in header if c not in MAILMOVER_COLUMNS + OPTION_COLUMNS]
        if unknown:
            known = ", ".join(MAILMOVER_COLUMNS + OPTION_COLUMNS)
            self.bad(line, f"unknown column {unknown[0]!r} (known: {known})")
        for name in set(header):
            if header.count(name) > 1:
                self.bad(line, f"column {name!r} appears twice")
        for side in ("source", "dest"):
            column = f"{side}_password"
            if column not in header and not self.asked(side):
                self.bad(line, f"missing column {column} (needed unless that side is an admin "
                               "login's or its users are asked)")  # fmt: skip

    def row_options(self, line: int, cells: dict[str, str]) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        for side in ("source_preset", "dest_preset"):
            name = cells.get(side, "").lower()
            if name and name not in self.presets:
                self.bad(line, f"unknown preset {name!r} in {side}")
            elif name:
                opts[side] = name
        for key in ("include", "exclude"):
            patterns = [p.strip() for p in cells.get(key, "").split("|") if p.strip()]
            if patterns:
                opts[key] = patterns
        for key in ("since", "before"):
            if cells.get(key):
                try:
                    opts[key] = date.fromisoformat(cells[key]).isoformat()
                except ValueError:
                    self.bad(line, f"{key} must be a date YYYY-MM-DD, not {cells[key]!r}")
        return opts

    def side(self, line: int, column: str, value: str, server: str | None) -> Endpoint | None:
        if not value:
            self.bad(line, f"missing {column}")
            return None
        if "://" in value:
            return self.endpoint(line, column, value, None)
        if server is None:
            which = "dest" if column in ("dest", "EmailAddress") else "source"
            self.bad(
                line,
                f"{column} is a bare user name: give a URL or a {which} server (--{which}-server)",
            )
            return None
        return self.endpoint(line, column, server, value)

    def endpoint(self, line: int, column: str, url: str, user: str | None) -> Endpoint | None:
        if user is not None:
            if not user:
                self.bad(line, f"missing user in {column}")
                return None
            scheme, sep, rest = url.partition("://")
            if not sep or "@" in rest.split("?")[0]:
                self.bad(line, f"bad URL in {column}: a server URL is imap[s]://HOST[:PORT]")
                return None
            url = f"{scheme}://{quote(user, safe='')}@{rest}"
        try:
            return parse_endpoint(url, ca_file=self.options.ca_file, verify=self.options.verify)
        except UsageError as exc:
            self.bad(line, f"bad URL in {column}: {exc}")
            return None

    def password(
        self, line: int, column: str, value: str | None, side: Literal["source", "dest", False]
    ) -> str | None:
        if value is None:  # no such column: the header's problem, or nobody's
            return None
        admin = side and getattr(self.options, f"{side}_admin")
        if value and admin:
            self.bad(line, f"{column} is given but the {side} side logs in with the admin login")
        elif not value and not admin and not self.options.ask_users:
            self.bad(line, f"empty password in {column}")
        return value or None

    def asked(self, side: Literal["source", "dest"]) -> bool:
        """Whether a side needs no password column: an admin login, or asked users."""
        return self.options.ask_users or bool(getattr(self.options, f"{side}_admin"))

    def add(
        self,
        line: int,
        source: Endpoint | None,
        dest: Endpoint | None,
        src_pw: str | None,
        dst_pw: str | None,
        opts: dict[str, Any],
        email: str | None = None,
    ) -> None:
        if source is None or dest is None:
            return
        email = email or next((u for u in (source.user, dest.user) if "@" in u), None)
        unknown = (src_pw is None and not self.options.source_admin) or (
            dst_pw is None and not self.options.dest_admin
        )
        if unknown and self.options.ask_users and email is None:
            self.bad(line, "no address to send the user's link to: add an email column")
        key = (source.url, dest.url)
        if key in self.seen:
            self.bad(
                line, f"duplicate pair {source.url} -> {dest.url} (first on line {self.seen[key]})"
            )
            return
        self.seen[key] = line
        if any(p.line == line for p in self.problems):
            return
        self.rows.append(BatchRow(line, source, dest, src_pw, dst_pw, opts, email))

    def bad(self, line: int, reason: str) -> None:
        self.problems.append(BadLine(line, reason))


def _server(host: str) -> str:
    """imapsync's host field as a server URL: a bare ``host[:port]`` means imaps."""
    return host if "://" in host else f"imaps://{host}"
