"""A deterministic test mail corpus holding the mail that real migrations trip on.

``generate`` builds a few hundred small messages in a folder tree with awkward
names, flags, dates and bytes (see ``FOLDERS`` and the ``_special_*`` builders);
``bulk`` builds many plain messages with a realistic size mix for benchmarks.

Every message is CRLF throughout and ends with CRLF, because IMAP servers store
CRLF and Dovecot would rewrite a bare LF, which would break byte comparison.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header

from .rawmail import (
    CRLF,
    Headers,
    base64_body,
    base64_raw_size,
    header_block,
    message,
    multipart,
    rfc5322_date,
    sentence,
    slice_lines,
    text_body,
    text_pool,
)


@dataclass(frozen=True, slots=True)
class CorpusMessage:
    """One message as a server should store it: exact bytes, flags, internal date."""

    raw: bytes
    flags: frozenset[str]
    internaldate: datetime  # aware, whole seconds


@dataclass(slots=True)
class CorpusFolder:
    """A folder by its hierarchy path (``("Projects", "2019", "Q1")``), messages in order."""

    path: tuple[str, ...]
    messages: list[CorpusMessage]
    subscribed: bool


Corpus = list[CorpusFolder]

#: folder path, subscribed, ordinary messages at scale 1.0, internal-date range (years)
FOLDERS: tuple[tuple[tuple[str, ...], bool, int, tuple[int, int]], ...] = (
    (("INBOX",), True, 40, (2018, 2024)),
    (("Sent",), True, 20, (2010, 2024)),
    (("Entwürfe",), True, 8, (2015, 2024)),
    (("Archive",), True, 25, (2005, 2012)),
    (("Archive", "2005"), False, 10, (2005, 2005)),
    (("Projects",), True, 6, (2016, 2022)),
    (("Projects", "2019"), True, 6, (2019, 2019)),
    (("Projects", "2019", "Q1"), True, 12, (2019, 2019)),
    (("日本語",), True, 8, (2012, 2024)),
    (("Ελληνικά",), False, 8, (2012, 2024)),
    (("v1.2 release",), True, 6, (2020, 2021)),
    (("Sales & Marketing",), True, 8, (2014, 2024)),
    (("Empty",), True, 0, (2005, 2024)),
    (("Attachments",), True, 10, (2008, 2024)),
    (("Junk",), False, 6, (2020, 2024)),
)

#: what ``generate(dots=False)`` calls the folder whose name holds a ``.``
DOTLESS_NAMES = {"v1.2 release": "v1_2 release"}

KEYWORDS = ("$Forwarded", "$label1", "Work", "NonJunk")
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted")
HUGE_ATTACHMENT_BYTES = 16_000_000  # base64 makes this ~21.9 MB on the wire

_ZONES = tuple(
    timezone(timedelta(minutes=m)) for m in (0, 60, 120, -300, -480, 540, 330, 600, -180)
)
_JAPANESE = ("日本語のテキストです。", "会議の議事録を添付します。", "よろしくお願いします。")
_GREEK = ("Καλημέρα σας.", "Το μήνυμα αυτό είναι δοκιμαστικό.", "Ευχαριστώ πολύ.")


def generate(seed: int = 0, *, scale: float = 1.0, huge: bool = True, dots: bool = True) -> Corpus:
    """The corpus for ``seed``: same seed and options, same bytes.

    ``scale`` multiplies the ordinary messages of each folder; the awkward ones
    are always there. ``huge`` adds one message over 20 MB to ``Attachments``.
    ``dots=False`` renames the folder ``v1.2 release`` to ``v1_2 release`` for
    servers whose hierarchy delimiter is ``.`` (Dovecot's maildir++ layout),
    where a name cannot contain one; nothing else changes.
    """
    maker = _Maker(random.Random(seed))
    corpus: Corpus = []
    for path, subscribed, base_count, years in FOLDERS:
        messages = [maker.ordinary(path, years) for _ in range(round(base_count * scale))]
        messages += _SPECIALS.get(path, _no_specials)(maker)
        maker.rng.shuffle(messages)
        if not dots:
            path = tuple(DOTLESS_NAMES.get(part, part) for part in path)
        corpus.append(CorpusFolder(path, messages, subscribed))
    if huge:
        folder = next(f for f in corpus if f.path == ("Attachments",))
        folder.messages.append(_huge(random.Random(f"huge-{seed}")))
    return corpus


def all_messages(corpus: Corpus) -> list[CorpusMessage]:
    """Every message of every folder, in folder order."""
    return [m for folder in corpus for m in folder.messages]


class _Maker:
    """Draws dates, flags, ids and bodies from one random stream."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.serial = 0

    def moment(self, years: tuple[int, int]) -> datetime:
        start = int(datetime(years[0], 1, 1, tzinfo=UTC).timestamp())
        end = int(datetime(years[1], 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
        return datetime.fromtimestamp(self.rng.randint(start, end), self.rng.choice(_ZONES))

    def date_header(self, internaldate: datetime) -> str:
        """A Date earlier than the internal date, as when mail is delivered or imported."""
        earlier = internaldate - timedelta(seconds=self.rng.randint(30, 3 * 86400))
        return rfc5322_date(earlier.astimezone(self.rng.choice(_ZONES)))

    def message_id(self) -> str:
        self.serial += 1
        return f"<{self.rng.getrandbits(64):016x}.{self.serial}@corpus.example.com>"

    def flags(self, *extra: str) -> frozenset[str]:
        rng = self.rng
        chosen = {
            f
            for f, p in (("\\Seen", 0.7), ("\\Answered", 0.15), ("\\Flagged", 0.1))
            if rng.random() < p
        }
        chosen |= {k for k in KEYWORDS if rng.random() < 0.06}
        return frozenset(chosen | set(extra))

    def headers(self, internaldate: datetime, subject: str | bytes, *, mid: bool = True) -> Headers:
        person = self.rng.choice(("Alice Example", "Bob Sample", "Carol Test", "Dave Demo"))
        login = person.split()[0].lower()
        out: Headers = [
            ("Return-Path", f"<{login}@example.org>"),
            ("From", f"{person} <{login}@example.org>"),
            ("To", "Migration User <user@example.com>"),
            ("Subject", subject),
            ("Date", self.date_header(internaldate)),
        ]
        if mid:
            out.append(("Message-ID", self.message_id()))
        return [*out, ("MIME-Version", "1.0")]

    def ordinary(self, path: tuple[str, ...], years: tuple[int, int]) -> CorpusMessage:
        when = self.moment(years)
        top = path[0]
        if top == "日本語":
            return self._localised(when, _JAPANESE, "base64")
        if top == "Ελληνικά":
            return self._localised(when, _GREEK, "8bit")
        if top == "Attachments":
            return self.with_attachment(when, self.rng.randint(1_000, 30_000))
        headers = self.headers(when, sentence(self.rng, self.rng.randint(2, 8)))
        headers.append(("Content-Type", "text/plain; charset=us-ascii"))
        extra = {"Sent": ("\\Seen",), "Entwürfe": ("\\Draft",), "Junk": ("$Junk",)}.get(top, ())
        body = text_body(self.rng, self.rng.randint(3, 30))
        return CorpusMessage(message(headers, body), self.flags(*extra), when)

    def _localised(self, when: datetime, phrases: tuple[str, ...], cte: str) -> CorpusMessage:
        subject = Header(self.rng.choice(phrases), "utf-8").encode(linesep="\r\n")
        headers = self.headers(when, subject)
        text = "\r\n".join(self.rng.choice(phrases) for _ in range(self.rng.randint(2, 12)))
        data = (text + "\r\n").encode("utf-8")
        body = base64_body(data) if cte == "base64" else data
        headers += [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", cte),
        ]
        return CorpusMessage(message(headers, body), self.flags(), when)

    def with_attachment(self, when: datetime, size: int, *, mid: bool = True) -> CorpusMessage:
        boundary = f"=_corpus_{self.rng.getrandbits(48):012x}"
        headers = self.headers(when, "Files: " + sentence(self.rng, 3), mid=mid)
        headers.append(("Content-Type", f'multipart/mixed; boundary="{boundary}"'))
        name = f"file{self.serial}.bin"
        parts = [
            ([("Content-Type", "text/plain; charset=us-ascii")], text_body(self.rng, 4)),
            (
                [
                    ("Content-Type", f'application/octet-stream; name="{name}"'),
                    ("Content-Transfer-Encoding", "base64"),
                    ("Content-Disposition", f'attachment; filename="{name}"'),
                ],
                base64_body(self.rng.randbytes(size)),
            ),
        ]
        body = multipart(boundary, parts, b"This is a multi-part message in MIME format." + CRLF)
        return CorpusMessage(message(headers, body), self.flags(), when)


def _no_specials(maker: _Maker) -> list[CorpusMessage]:
    return []


def _special_inbox(maker: _Maker) -> list[CorpusMessage]:
    """Raw 8-bit headers, long lines, missing headers, shared ids, duplicates, all flags."""
    rng, out = maker.rng, []
    when = maker.moment((2018, 2024))
    latin1 = maker.headers(when, "Gr\u00fc\u00dfe aus K\u00f6ln".encode("latin-1"))
    latin1[1] = ("From", "J\u00fcrgen M\u00fcller <jm@example.org>".encode("latin-1"))
    latin1.append(("Content-Type", "text/plain; charset=iso-8859-1"))
    out.append(
        CorpusMessage(
            message(latin1, "Sch\u00f6ne Gr\u00fc\u00dfe\r\n".encode("latin-1")), frozenset(), when
        )
    )

    when = maker.moment((2018, 2024))
    utf8 = maker.headers(when, "Überweisung — 日本語 ✓".encode())
    utf8 += [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")]
    out.append(
        CorpusMessage(message(utf8, "Grüße, Ελληνικά, 日本語\r\n".encode()), maker.flags(), when)
    )

    when = maker.moment((2018, 2024))
    long_headers = maker.headers(when, "A very long line")
    refs = " ".join(maker.message_id() for _ in range(40))
    long_headers += [("References", refs), ("Content-Type", "text/plain; charset=us-ascii")]
    long_line = " ".join(rng.choice(("lorem", "ipsum", "dolor", "sit", "amet")) for _ in range(900))
    body = text_body(rng, 3) + long_line.encode() + CRLF + b"x" * 10_000 + CRLF
    out.append(CorpusMessage(message(long_headers, body), maker.flags(), when))

    when = maker.moment((2018, 2024))
    no_id = maker.headers(when, "No Message-ID here", mid=False)
    out.append(CorpusMessage(message(no_id, text_body(rng, 5)), maker.flags(), when))

    when = maker.moment((2018, 2024))
    bare = [("From", "bare@example.net"), ("Subject", "Only two headers, no Date, no id")]
    out.append(CorpusMessage(message(bare, b""), frozenset({"\\Seen"}), when))

    when = maker.moment((2018, 2024))
    tricky = maker.headers(when, "From-lines and dots")
    body = b"From the start of a line\r\n.\r\n..two dots\r\n>From quoted\r\n\r\n  \r\n"
    out.append(CorpusMessage(message(tricky, body), maker.flags(), when))

    when = maker.moment((2018, 2024))
    shared = maker.headers(when, "Minutes (same id, same size)")
    for version in (b"A", b"B"):
        body = b"Version " + version + b" of the minutes.\r\n"
        out.append(CorpusMessage(message(shared, body), frozenset({"\\Seen"}), when))
    longer = b"Version C of the minutes, which is longer.\r\n"
    out.append(CorpusMessage(message(shared, longer), frozenset({"\\Seen"}), when))

    dup = maker.with_attachment(maker.moment((2018, 2024)), 3_000)
    out += [dup, dup, dup]

    when = maker.moment((2018, 2024))
    everything = frozenset({"\\Seen", "\\Answered", "\\Flagged", *KEYWORDS})
    out.append(
        CorpusMessage(message(maker.headers(when, "All flags"), b"Hi\r\n"), everything, when)
    )
    when = maker.moment((2018, 2024))
    deleted = frozenset({"\\Seen", "\\Deleted"})
    out.append(
        CorpusMessage(
            message(maker.headers(when, "Deleted, not expunged"), b"Bye\r\n"), deleted, when
        )
    )
    return out


def _special_archive(maker: _Maker) -> list[CorpusMessage]:
    """Same Message-ID, different bodies and dates; a Date header years before arrival."""
    shared = maker.headers(maker.moment((2005, 2006)), "Resent with changes")
    out = []
    for n in range(2):
        when = maker.moment((2006, 2012))
        out.append(CorpusMessage(message(shared, text_body(maker.rng, 4 + n)), maker.flags(), when))
    when = maker.moment((2012, 2012))
    imported = maker.headers(when, "Imported long after it was written")
    imported[4] = ("Date", rfc5322_date(datetime(2005, 3, 1, 9, 30, tzinfo=UTC)))
    out.append(CorpusMessage(message(imported, text_body(maker.rng, 3)), maker.flags(), when))
    return out


def _special_drafts(maker: _Maker) -> list[CorpusMessage]:
    when = maker.moment((2020, 2024))
    draft = maker.headers(when, "Unfinished", mid=False)
    return [CorpusMessage(message(draft, b"Dear \r\n"), frozenset({"\\Draft"}), when)]


def _special_sent(maker: _Maker) -> list[CorpusMessage]:
    dup = maker.ordinary(("Sent",), (2015, 2020))
    return [dup, dup]


def _special_attachments(maker: _Maker) -> list[CorpusMessage]:
    """Nested multipart (alternative inside mixed) with an attached message/rfc822."""
    when = maker.moment((2015, 2024))
    inner = maker.with_attachment(maker.moment((2014, 2014)), 500).raw
    outer, alt = f"=_outer_{maker.serial}", f"=_alt_{maker.serial}"
    html = b"<html><body>" + b"<p>" + b"long html line " * 300 + b"</p></body></html>" + CRLF
    alternative = multipart(
        alt,
        [
            ([("Content-Type", "text/plain; charset=us-ascii")], text_body(maker.rng, 5)),
            ([("Content-Type", "text/html; charset=us-ascii")], html),
        ],
    )
    body = multipart(
        outer,
        [
            ([("Content-Type", f'multipart/alternative; boundary="{alt}"')], alternative),
            ([("Content-Type", "message/rfc822")], inner),
        ],
    )
    headers = maker.headers(when, "Forwarded with a nested message")
    headers.append(("Content-Type", f'multipart/mixed; boundary="{outer}"'))
    return [CorpusMessage(message(headers, body), frozenset({"\\Seen", "$Forwarded"}), when)]


_SPECIALS: dict[tuple[str, ...], Callable[[_Maker], list[CorpusMessage]]] = {
    ("INBOX",): _special_inbox,
    ("Archive",): _special_archive,
    ("Entwürfe",): _special_drafts,
    ("Sent",): _special_sent,
    ("Attachments",): _special_attachments,
}


def _huge(rng: random.Random) -> CorpusMessage:
    maker = _Maker(rng)
    return maker.with_attachment(maker.moment((2023, 2023)), HUGE_ATTACHMENT_BYTES)


# -- bulk messages for benchmarks -------------------------------------------------------

SIZE_DISTS = ("realistic", "small")
_BULK_FLAGS: tuple[frozenset[str], ...] = (
    frozenset({"\\Seen"}),
    frozenset({"\\Seen"}),
    frozenset({"\\Seen"}),
    frozenset({"\\Seen", "\\Answered"}),
    frozenset({"\\Seen", "\\Flagged"}),
    frozenset({"\\Seen", "$Forwarded"}),
    frozenset(),
)
_MIN_BULK_SIZE = 600


def bulk_sizes(
    count: int, *, seed: int, size_dist: str = "realistic", total_bytes: int | None = None
) -> list[int]:
    """Target sizes in bytes for ``bulk``.

    ``realistic``: 85 % between 2 and 20 KB, 14 % between 50 and 500 KB, 1 % between
    1 and 5 MB (log-uniform within each band). ``small``: 1 to 3 KB. With
    ``total_bytes`` the sizes are scaled so that they add up to about that.
    """
    if size_dist not in SIZE_DISTS:
        raise ValueError(f"size_dist must be one of {SIZE_DISTS}, not {size_dist!r}")
    rng = random.Random(f"sizes-{seed}-{size_dist}")
    sizes = []
    for _ in range(count):
        if size_dist == "small":
            sizes.append(rng.randint(1_000, 3_000))
            continue
        band = rng.random()
        low, high = (2e3, 2e4) if band < 0.85 else (5e4, 5e5) if band < 0.99 else (1e6, 5e6)
        sizes.append(int(low * (high / low) ** rng.random()))
    if total_bytes is not None and sizes:
        factor = total_bytes / sum(sizes)
        sizes = [max(_MIN_BULK_SIZE, int(s * factor)) for s in sizes]
    return sizes


def bulk(
    count: int, *, seed: int, size_dist: str = "realistic", total_bytes: int | None = None
) -> list[CorpusMessage]:
    """``count`` distinct plain messages for benchmarks, sized by ``bulk_sizes``.

    Messages up to 20 KB are text; larger ones carry a base64 attachment. Every
    message has its own Message-ID, a Date before its internal date (2005-2024)
    and an everyday mix of flags. For 2,000 messages of about 100 MB in all, ask
    for ``bulk(2000, seed=s, total_bytes=100_000_000)``.
    """
    sizes = bulk_sizes(count, seed=seed, size_dist=size_dist, total_bytes=total_bytes)
    rng = random.Random(f"bulk-{seed}-{size_dist}")
    maker = _Maker(rng)
    pool = text_pool(rng, 256 * 1024)
    out = []
    for index, size in enumerate(sizes):
        when = maker.moment((2005, 2024))
        headers: Headers = [
            ("From", f"Sender {index % 97} <sender{index % 97}@example.org>"),
            ("To", "Bench User <bench@example.com>"),
            ("Subject", f"Bulk message {index} of {count}"),
            ("Date", maker.date_header(when)),
            ("Message-ID", f"<bulk.{seed}.{index}@corpus.example.com>"),
            ("MIME-Version", "1.0"),
        ]
        room = size - len(header_block(headers)) - 60
        if size <= 20_000:
            headers.append(("Content-Type", "text/plain; charset=us-ascii"))
            body = slice_lines(pool, rng.randrange(len(pool)), max(2, room))
        else:
            boundary = f"=_bulk_{index}"
            headers.append(("Content-Type", f'multipart/mixed; boundary="{boundary}"'))
            text = slice_lines(pool, rng.randrange(len(pool)), 400)
            attachment_headers: Headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Transfer-Encoding", "base64"),
            ]
            data = rng.randbytes(base64_raw_size(room - len(text) - 220))
            text_headers: Headers = [("Content-Type", "text/plain")]
            parts = [
                (text_headers, text),
                (attachment_headers, base64_body(data)),
            ]
            body = multipart(boundary, parts)
        out.append(CorpusMessage(message(headers, body), rng.choice(_BULK_FLAGS), when))
    return out
