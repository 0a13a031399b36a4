"""Batches taken under a size that shrinks after a failed attempt and grows after success."""

from __future__ import annotations

from datetime import UTC, datetime

from mailmover.engine.attempt import BatchSize
from mailmover.engine.batches import Meta, next_batch, take

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


def test_the_end_of_a_folder_is_cut_into_shrinking_batches() -> None:
    """Batches of the most until the end nears, then a quarter of what is left each."""
    ms = metas(*[100_000] * 200)  # 20 MB
    size = BatchSize(4_000_000, 250, bytes=4_000_000)
    start, left, sizes = 0, sum(m.size for m in ms), []
    while start < len(ms):
        batch = next_batch(ms, start, left, size)
        start += len(batch)
        left -= sum(m.size for m in batch)
        sizes.append(len(batch))
    assert sum(sizes) == 200
    assert sizes[:3] == [40, 40, 30]  # 4 MB, then a quarter of the 12 MB left
    assert sizes[-7:] == [3, 2, 2, 2, 2, 2, 1]  # 256 KiB at least (two), then what is left
