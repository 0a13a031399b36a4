"""The header fields the engine records: the fast Message-ID reader agrees with email.parser."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailmover.engine.headers import message_id, summary

# The reader as it was before it looked for the field in C: one multi-line regex search.
_REFERENCE = re.compile(rb"(?im)^message-id[ \t]*:((?:[^\r\n]*)(?:\r?\n[ \t][^\r\n]*)*)")


def reference(raw: bytes) -> str | None:
    end = raw.find(b"\r\n\r\n")
    found = _REFERENCE.search(raw[: end + 2] if end >= 0 else raw[:65536])
    if found is None:
        return None
    return b" ".join(found.group(1).split()).decode("utf-8", "replace").strip() or None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Subject: a\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n", "<a@b>"),
        (b"message-id:<x@y>\r\n\r\n", "<x@y>"),
        (b"Message-ID:\r\n <folded@host>\r\n\r\n", "<folded@host>"),
        (b"Subject: a\r\n\r\nMessage-ID: <in-body@x>\r\n", None),
        (b"X-Message-ID: <not-this@x>\r\n\r\n", None),
        (b"Subject: no id\r\n\r\n", None),
        (b"Message-ID: <8bit-\xff@x>\r\n\r\n", "<8bit-\ufffd@x>"),
        (b"", None),
        (b"Message-IDX: <no@x>\r\nMESSAGE-id \t: <yes@x>\r\n\r\n", "<yes@x>"),
        (b"Message-ID: \r\nMessage-ID: <second@x>\r\n\r\n", None),
        (b"Subject: a\nMessage-ID: <lf@x>\n\nbody\n", "<lf@x>"),
        (b"Subject: a\r\n Message-ID: <folded-in-subject@x>\r\n\r\n", None),
    ],
)
def test_message_id(raw: bytes, expected: str | None) -> None:
    assert message_id(raw) == expected


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Subject", "From", "Message-ID", "X-Other"]),
            st.from_regex(r"[ -~]{0,30}", fullmatch=True),
        ),
        max_size=6,
    )
)
@example([("Message-ID", "0  0")])  # whitespace inside: collapsed by both
def test_agrees_with_email_parser(fields: list[tuple[str, str]]) -> None:
    raw = b"".join(f"{k}: {v}\r\n".encode() for k, v in fields) + b"\r\nbody\r\n"
    assert message_id(raw) == summary(raw)[0]


LINES = st.sampled_from([
    b"Message-ID: <a@b>", b"message-id:<c@d>", b"MESSAGE-ID \t : <e@f>", b"Message-IDX: <g@h>",
    b"X-Message-ID: <i@j>", b"Message-ID:", b"Message-ID", b" <folded@x>", b"\t<tab@x>",
    b"Subject: message-id: <k@l>", b"Subject: x", b"", b"message-id: \xff<m@n>", b"Message-I",
])  # fmt: skip


@settings(max_examples=300)
@given(st.lists(st.tuples(LINES, st.sampled_from([b"\r\n", b"\n", b"\r"])), max_size=8))
def test_agrees_with_the_multi_line_search(lines: list[tuple[bytes, bytes]]) -> None:
    raw = b"".join(line + end for line, end in lines) + b"\r\nbody Message-ID: <no@x>\r\n"
    assert message_id(raw) == reference(raw)
