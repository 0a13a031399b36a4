"""Batches taken under a size that shrinks after a failed attempt and grows after success."""

from __future__ import annotations

from datetime import UTC, datetime

from mailmover.engine.attempt import BatchSize
from mailmover.engine.batches import Meta, take

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def metas(*sizes: int) -> list[Meta]:
    return [Meta(uid, (), WHEN, size) for uid, size in enumerate(sizes, 1)]


def test_take_fills_up_to_the_bytes_and_the_count() -> None:
    ms = metas(100, 200, 300, 400, 50)
    assert [m.uid for m in take(ms, 0, 600, 10)] == [1, 2, 3]
    assert [m.uid for m in take(ms, 3, 600, 10)] == [4, 5]
    assert [m.uid for m in take(ms, 0, 10_000, 2)] == [1, 2]
    assert take(ms, 5, 600, 10) == []


def test_take_always_takes_one_message_even_too_large() -> None:
    ms = metas(5_000, 10)
    assert [m.uid for m in take(ms, 0, 100, 10)] == [1]
    assert [m.uid for m in take(ms, 0, 1, 1)] == [1]


def test_batch_size_starts_small_and_grows_to_the_most() -> None:
    size = BatchSize(4 * 1024 * 1024, 250)
    assert size.bytes == 256 * 1024  # the first APPEND leaves after a small fetch
    for _ in range(4):
        size.grow()
    assert size.bytes == 4 * 1024 * 1024


def test_batch_size_shrinks_to_one_message_and_grows_back() -> None:
    size = BatchSize(4 * 1024 * 1024, 250, bytes=4 * 1024 * 1024)
    for _ in range(12):
        size.shrink()
    assert (size.bytes, size.messages) == (1, 1)
    ms = metas(3_000_000, 20, 20)
    assert len(take(ms, 0, size.bytes, size.messages)) == 1  # one message at a time
    for _ in range(30):
        size.grow()
    assert (size.bytes, size.messages) == (4 * 1024 * 1024, 250)  # never past the most
    size.shrink()
    assert (size.bytes, size.messages) == (1024 * 1024, 62)
