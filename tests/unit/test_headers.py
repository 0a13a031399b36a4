"""The header fields the engine records: the fast Message-ID reader agrees with email.parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmover.engine.headers import message_id, summary


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
def test_agrees_with_email_parser(fields: list[tuple[str, str]]) -> None:
    raw = b"".join(f"{k}: {v}\r\n".encode() for k, v in fields) + b"\r\nbody\r\n"
    assert message_id(raw) == summary(raw)[0]
