"""Command serialisation: exact bytes for the commands mailmover sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailmover.imap.proto.commands import (
    Announced,
    Arg,
    Atom,
    FlagList,
    Literal,
    Mailbox,
    ParenList,
    flag_list,
    quote,
    serialize,
)
from mailmover.imap.proto.sequences import sequence_set

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
WHEN = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7)))

# -- exact bytes ---------------------------------------------------------------------


APPEND_ARGS: list[Arg] = [
    Mailbox("Sent Items"),
    ParenList([Atom("\\Seen"), Atom("$Forwarded")]),
    WHEN,
    MESSAGE,
]
APPEND_LINE = b'A7 APPEND "Sent Items" (\\Seen $Forwarded) "17-Jul-1996 02:44:25 -0700" '


def test_append_synchronising() -> None:
    assert serialize("A7", "APPEND", APPEND_ARGS) == [
        APPEND_LINE + b"{%d}\r\n" % len(MESSAGE),
        MESSAGE + b"\r\n",
    ]


def test_append_literal_plus() -> None:
    assert serialize("A7", "APPEND", APPEND_ARGS, literal_plus=True) == [
        APPEND_LINE + b"{%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n"
    ]


@pytest.mark.parametrize("plus", [False, True])
def test_append_announced_literal_ends_a_part(plus: bool) -> None:
    """A relayed message: the announcement ends the first part, synchronising or not, and
    the sender writes the data between the parts."""
    args = [*APPEND_ARGS[:-1], Announced(len(MESSAGE))]
    parts = serialize("A7", "APPEND", args, literal_plus=plus)
    announcement = b"{%d+}\r\n" if plus else b"{%d}\r\n"
    assert parts == [APPEND_LINE + announcement % len(MESSAGE), b"\r\n"]
    assert b"".join([parts[0], MESSAGE, parts[1]]) == b"".join(
        serialize("A7", "APPEND", APPEND_ARGS, literal_plus=plus)
    )


@pytest.mark.parametrize("size", [0, 1, 4095, 4096])
def test_append_literal_minus_small(size: int) -> None:
    body = b"x" * size
    args: list[Arg] = [*APPEND_ARGS[:3], body]
    assert serialize("A7", "APPEND", args, literal_minus=True) == [
        APPEND_LINE + b"{%d+}\r\n" % size + body + b"\r\n"
    ]


@pytest.mark.parametrize("size", [4097, 100_000])
def test_append_literal_minus_large_is_synchronising(size: int) -> None:
    body = b"x" * size
    args: list[Arg] = [*APPEND_ARGS[:3], body]
    assert serialize("A7", "APPEND", args, literal_minus=True) == [
        APPEND_LINE + b"{%d}\r\n" % size,
        body + b"\r\n",
    ]
    # LITERAL+ has no size limit and wins over LITERAL-.
    assert serialize("A7", "APPEND", args, literal_minus=True, literal_plus=True) == [
        APPEND_LINE + b"{%d+}\r\n" % size + body + b"\r\n"
    ]


def test_append_binary_literal() -> None:
    body = b"a\x00b"
    assert serialize("A1", "APPEND", ["INBOX", Literal(body, binary=True)]) == [
        b"A1 APPEND INBOX ~{3}\r\n",
        b"a\x00b\r\n",
    ]
    assert serialize("A1", "APPEND", ["INBOX", Literal(body, binary=True)], literal_plus=True) == [
        b"A1 APPEND INBOX ~{3+}\r\na\x00b\r\n"
    ]


def test_multiappend_has_one_part_per_synchronising_literal() -> None:
    args: list[Arg] = [Mailbox("INBOX"), b"one", ParenList([Atom("\\Seen")]), b"two"]
    assert serialize("A2", "APPEND", args) == [
        b"A2 APPEND INBOX {3}\r\n",
        b"one (\\Seen) {3}\r\n",
        b"two\r\n",
    ]
    assert serialize("A2", "APPEND", args, literal_plus=True) == [
        b"A2 APPEND INBOX {3+}\r\none (\\Seen) {3+}\r\ntwo\r\n"
    ]


def test_uid_fetch_with_a_set() -> None:
    items = ParenList([Atom("UID"), Atom("FLAGS"), Atom("INTERNALDATE"), Atom("BODY.PEEK[]")])
    uids = sequence_set([9, 1, 2, 3, 7, 10, 2])
    assert serialize("A3", "UID FETCH", [Atom(uids), items]) == [
        b"A3 UID FETCH 1:3,7,9:10 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
    ]
    # A plain str sequence set is atom-safe too.
    assert serialize("A3", "UID FETCH", [uids, Atom("(FLAGS)")]) == [
        b"A3 UID FETCH 1:3,7,9:10 (FLAGS)\r\n"
    ]


def test_login_quotes_specials() -> None:
    assert serialize("A1", "LOGIN", ["joe@example.org", 'p a"ss\\word']) == [
        b'A1 LOGIN joe@example.org "p a\\"ss\\\\word"\r\n'
    ]


def test_login_non_ascii_password_is_a_literal() -> None:
    password = 'pässwörd "x"'
    data = password.encode("utf-8")
    assert serialize("A1", "LOGIN", ["joe", password]) == [
        b"A1 LOGIN joe {%d}\r\n" % len(data),
        data + b"\r\n",
    ]
    assert serialize("A1", "LOGIN", ["joe", password], literal_plus=True) == [
        b"A1 LOGIN joe {%d+}\r\n" % len(data) + data + b"\r\n"
    ]
    # With UTF8=ACCEPT it can be quoted.
    assert serialize("A1", "LOGIN", ["joe", password], utf8=True) == [
        b'A1 LOGIN joe "p\xc3\xa4ssw\xc3\xb6rd \\"x\\""\r\n'
    ]


@pytest.mark.parametrize(
    ("name", "utf8", "line"),
    [
        ("~peter/mail/台北/日本語", False, b"A4 SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n"),
        ("Entwürfe", False, b"A4 SELECT Entw&APw-rfe\r\n"),
        ("Gelöschte Elemente", False, b'A4 SELECT "Gel&APY-schte Elemente"\r\n'),
        ("Tom & Jerry", False, b'A4 SELECT "Tom &- Jerry"\r\n'),
        ("Entwürfe", True, b'A4 SELECT "Entw\xc3\xbcrfe"\r\n'),
        ("Tom & Jerry", True, b'A4 SELECT "Tom & Jerry"\r\n'),
        ("INBOX", False, b"A4 SELECT INBOX\r\n"),
        ("inbox", True, b"A4 SELECT inbox\r\n"),
        ("", False, b'A4 SELECT ""\r\n'),
        ("Archive/2020", False, b"A4 SELECT Archive/2020\r\n"),
        ("50%", False, b'A4 SELECT "50%"\r\n'),
        ("Star*", False, b'A4 SELECT "Star*"\r\n'),
        ("a]b", False, b'A4 SELECT "a]b"\r\n'),
        ('Say "hi"', False, b'A4 SELECT "Say \\"hi\\""\r\n'),
        ("NIL", False, b'A4 SELECT "NIL"\r\n'),
        ("Tab\there", True, b"A4 SELECT {8}\r\n"),
    ],
)
def test_select_mailbox(name: str, utf8: bool, line: bytes) -> None:
    assert serialize("A4", "SELECT", [Mailbox(name)], utf8=utf8)[0] == line


@pytest.mark.parametrize(
    ("arg", "encoded"),
    [
        ("", b'""'),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        (None, b"NIL"),
        (0, b"0"),
        (4294967295, b"4294967295"),
        (18446744073709551615, b"18446744073709551615"),
        ("FLAGS", b"FLAGS"),
        ("a(b", b'"a(b"'),
        ("a{b", b'"a{b"'),
        ("\\Seen", b'"\\\\Seen"'),
        (Atom("\\Seen"), b"\\Seen"),
        (Atom("BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"), b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"),
        (ParenList([]), b"()"),
        (FlagList(()), b"()"),
        (flag_list(("\\Seen", "$Forwarded", "\\Seen")), b"(\\Seen $Forwarded \\Seen)"),
        (ParenList([ParenList([1, "a b"]), None]), b'((1 "a b") NIL)'),
        (datetime(2020, 2, 3, 4, 5, 6), b'"03-Feb-2020 04:05:06 +0000"'),
        (datetime(2020, 2, 3, 4, 5, 6, tzinfo=UTC), b'"03-Feb-2020 04:05:06 +0000"'),
        ("\x7f", b"{1}\r\n\x7f"),
    ],
)
def test_single_arguments(arg: Arg, encoded: bytes) -> None:
    assert b"".join(serialize("T", "X", [arg])) == b"T X " + encoded + b"\r\n"


def test_a_flag_list_is_a_list_of_atoms() -> None:
    flags = ("\\Seen", "$Forwarded", "\\Answered")
    assert serialize("T", "X", [FlagList(flags)]) == serialize(
        "T", "X", [ParenList([Atom(f) for f in flags])]
    )
    assert flag_list(flags) is flag_list(tuple(list(flags)))


def test_no_arguments() -> None:
    assert serialize("A0001", "NOOP") == [b"A0001 NOOP\r\n"]


def test_strings_with_line_breaks_are_literals() -> None:
    assert serialize("T", "SEARCH", [Atom("SUBJECT"), "a\r\nb"]) == [
        b"T SEARCH SUBJECT {4}\r\n",
        b"a\r\nb\r\n",
    ]


@pytest.mark.parametrize(("size", "literal"), [(999, False), (1000, True), (5000, True)])
def test_long_strings_become_literals(size: int, literal: bool) -> None:
    for text in ("a" * size, "a " * (size // 2) + "a" * (size % 2)):
        first = serialize("T", "X", [text])[0]
        assert first.endswith(b"{%d}\r\n" % size) is literal


@pytest.mark.parametrize(
    "bad",
    [
        [-1],
        ["a\x00b"],
        [Atom("")],
        [Atom("A\r\nB")],
        [Atom("A\nB")],
        [Atom("Ünïcode")],
        [ParenList([Atom("x\r")])],
        [FlagList(("\\Seen", "x\r"))],
        [FlagList(("",))],
        [FlagList(("\\Séen",))],
    ],
)
def test_rejected_values(bad: list[Arg]) -> None:
    with pytest.raises(ValueError):
        serialize("T", "X", bad)


def test_mailbox_with_nul_needs_utf7() -> None:
    assert serialize("T", "SELECT", [Mailbox("a\x00")]) == [b"T SELECT a&AAA-\r\n"]
    with pytest.raises(ValueError):
        serialize("T", "SELECT", [Mailbox("a\x00")], utf8=True)


@pytest.mark.parametrize("bad", [[True], [1.5], [[1, 2]], [object()]])
def test_rejected_types(bad: list[object]) -> None:
    with pytest.raises(TypeError):
        serialize("T", "X", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("", "NOOP"),
        ("A+1", "NOOP"),
        ("A 1", "NOOP"),
        ("A(", "NOOP"),
        ("A1", ""),
        ("A1", "NOOP\r\n"),
    ],
)
def test_rejected_tag_or_name(tag: str, name: str) -> None:
    with pytest.raises(ValueError):
        serialize(tag, name)


# -- quote ---------------------------------------------------------------------------


def test_quote() -> None:
    assert quote("") == b'""'
    assert quote('a"b\\c') == b'"a\\"b\\\\c"'
    assert quote("ä", utf8=True) == b'"\xc3\xa4"'


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "ä"])
def test_quote_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        quote(bad)


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b"])
def test_quote_rejects_even_with_utf8(bad: str) -> None:
    with pytest.raises(ValueError):
        quote(bad, utf8=True)
