"""Sequence sets: compressing UID lists and expanding them again."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmover.imap.proto.sequences import parse_sequence_set, sequence_set


@pytest.mark.parametrize(
    ("numbers", "text"),
    [
        ([1, 2, 3, 7, 9, 10], "1:3,7,9:10"),
        ([5], "5"),
        ([3, 1, 2, 2, 3], "1:3"),
        ([10, 1, 5], "1,5,10"),
        (range(1, 1001), "1:1000"),
        ([4294967295, 4294967294, 1], "1,4294967294:4294967295"),
    ],
)
def test_sequence_set(numbers: list[int], text: str) -> None:
    assert sequence_set(numbers) == text


@pytest.mark.parametrize("bad", [[], [0], [-1, 2], [4294967296]])
def test_sequence_set_rejects(bad: list[int]) -> None:
    with pytest.raises(ValueError):
        sequence_set(bad)


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("1:3,7", [1, 2, 3, 7]),
        ("5:3", [3, 4, 5]),
        ("7,1:2", [7, 1, 2]),  # COPYUID pairs by position: order as written
        ("3,3", [3, 3]),
        ("4294967295", [4294967295]),
    ],
)
def test_parse_sequence_set(text: str, numbers: list[int]) -> None:
    assert parse_sequence_set(text) == numbers


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "*",
        "1:*",
        "*:3",
        "1,",
        ",1",
        "1,,2",
        "1:",
        ":1",
        "1:2:3",
        "0",
        "0:3",
        " 1",
        "1 ,2",
        "a",
        "1-3",
        "+1",
        "١",
        "4294967296",
    ],
)
def test_parse_sequence_set_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_sequence_set(bad)


def test_parse_sequence_set_limit() -> None:
    assert len(parse_sequence_set("1:10", limit=10)) == 10
    with pytest.raises(ValueError):
        parse_sequence_set("1:10,12", limit=10)
    with pytest.raises(ValueError):
        parse_sequence_set("1:4294967295")


uid_lists = st.lists(
    st.one_of(st.integers(1, 40), st.integers(4294967200, 4294967295)), min_size=1, max_size=60
)


@settings(max_examples=200)
@given(uid_lists)
def test_sequence_set_round_trip(numbers: list[int]) -> None:
    text = sequence_set(numbers)
    assert parse_sequence_set(text) == sorted(set(numbers))
    # Compressed: no two items could be merged.
    items = [parse_sequence_set(item) for item in text.split(",")]
    for before, after in itertools.pairwise(items):
        assert after[0] > before[-1] + 1
