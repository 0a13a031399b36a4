"""Modified UTF-7 (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmover.imap.proto.utf7 import decode, encode

# Lone surrogates cannot be a mailbox name: they have no UTF-16 encoding.
names = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
astral_heavy = st.text(
    st.one_of(
        st.sampled_from("&-,/+ A~"),
        st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
        st.characters(min_codepoint=0x80, max_codepoint=0xFFFF, exclude_categories=["Cs"]),
        st.characters(max_codepoint=0x1F),
    ),
    max_size=20,
)


@pytest.mark.parametrize(
    ("plain", "encoded"),
    [
        # RFC 3501 5.1.3 example
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("INBOX", "INBOX"),
        ("", ""),
        ("&", "&-"),
        ("A&B", "A&-B"),
        ("&&", "&-&-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
        ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
        ("Tab\there", "Tab&AAk-here"),
        ("\x7f", "&AH8-"),
        ("😀", "&2D3eAA-"),
        ("a😀€b", "a&2D3eACCs-b"),
        ("a😀b€", "a&2D3eAA-b&IKw-"),
        ("€&€", "&IKw-&-&IKw-"),
    ],
)
def test_known_encodings(plain: str, encoded: str) -> None:
    assert encode(plain) == encoded
    assert decode(encoded) == plain


@pytest.mark.parametrize(
    "invalid",
    [
        "&",  # unterminated shift
        "abc&U,BT",  # unterminated shift
        "&U,BTF-",  # base64 of an odd number of bytes
        "&A-",  # a single base64 character is no byte at all
        "&U/BTFw-",  # "/" is ordinary base64, not the modified one
        "&U,BTFw=-",  # padding is not used
        "&AGE-",  # printable ASCII ("a") must not be shifted
        "&ACY-",  # "&" must be "&-", not shifted
        "&U,A-&BTFw-",  # adjacent shifts must be one
        "&U,BTFx-",  # stray non-zero bits after the last character
        "&2D0-",  # lone high surrogate
        "&3gA-",  # lone low surrogate
        "&Jjo!-",  # not base64
        "Entwürfe",  # raw 8-bit from a server that does not speak UTF-7
        "Entw&APw-rfe ü",  # mixed
        "a\tb&-",  # raw control character
    ],
)
def test_invalid_input_is_returned_unchanged(invalid: str) -> None:
    assert decode(invalid) == invalid


def test_plain_ascii_without_ampersand_is_untouched() -> None:
    assert decode("Sent Items") == "Sent Items"
    assert decode("ü") == "ü"


@settings(max_examples=200)
@given(names)
def test_round_trip(name: str) -> None:
    assert decode(encode(name)) == name


@settings(max_examples=200)
@given(astral_heavy)
def test_round_trip_astral_and_specials(name: str) -> None:
    assert decode(encode(name)) == name


@settings(max_examples=200)
@given(names)
def test_encoded_is_printable_ascii(name: str) -> None:
    encoded = encode(name)
    assert all(0x20 <= ord(char) <= 0x7E for char in encoded)


@settings(max_examples=200)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_decode_is_canonical(text: str) -> None:
    # Whatever decode accepts encodes back to the same name, so a mailbox name
    # listed by the server always selects that same mailbox again.
    decoded = decode(text)
    if decoded != text:
        assert encode(decoded) == text


@settings(max_examples=200)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != "&")))
def test_printable_without_ampersand_is_identity(text: str) -> None:
    assert encode(text) == text
    assert decode(text) == text


def test_lone_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode("a\ud800b")


def test_decode_returns_non_ascii_input_unchanged() -> None:
    # A server that sends raw 8-bit bytes (decoded with surrogateescape) is not using UTF-7.
    for name in ("abc\udcff&AOk-", "Entwürfe&AOk-"):
        assert decode(name) == name
