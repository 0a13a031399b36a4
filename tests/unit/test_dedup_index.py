"""Dedup (``engine.dedup.DestinationIndex``): by size, then SHA-256; each claimed once."""

from __future__ import annotations

import hashlib
from typing import cast

from mailmover.engine.dedup import DestinationIndex
from mailmover.imap.client import IMAPClient
from support.fakes import SelectedFolder, Stored

BODIES = "(UID BODY.PEEK[])"


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


async def index_of(folder: SelectedFolder, claimed: set[int] | None = None) -> DestinationIndex:
    return await DestinationIndex.build(cast(IMAPClient, folder), claimed or set())


async def test_an_empty_folder_is_not_fetched() -> None:
    folder = SelectedFolder()
    index = await index_of(folder)
    assert len(index) == 0
    assert await index.claim(10, sha(b"x" * 10)) is None
    assert folder.fetched == []


async def test_the_same_bytes_are_claimed() -> None:
    folder = SelectedFolder.holding(b"Subject: a\r\n\r\none", b"Subject: b\r\n\r\ntwo")
    index = await index_of(folder)
    assert len(index) == 2
    data = b"Subject: b\r\n\r\ntwo"
    assert await index.claim(len(data), sha(data)) == 2
    assert len(index) == 1


async def test_same_size_other_bytes_is_not_the_same_message() -> None:
    folder = SelectedFolder.holding(b"Subject: a\r\n\r\nxyz")
    index = await index_of(folder)
    other = b"Subject: a\r\n\r\nxyZ"
    assert await index.claim(len(other), sha(other)) is None
    assert len(index) == 1  # still there for its own twin


async def test_a_message_of_another_size_is_never_fetched() -> None:
    folder = SelectedFolder.holding(b"short", b"a bit longer")
    index = await index_of(folder)
    assert await index.claim(100, sha(b"z" * 100)) is None
    assert [items for items, _ in folder.fetched] == ["(UID RFC822.SIZE FLAGS)"]


async def test_only_candidates_of_that_size_are_fetched_and_each_once() -> None:
    folder = SelectedFolder.holding(b"aaaa", b"bbbb", b"cc", b"dddd")
    index = await index_of(folder)
    assert await index.claim(4, sha(b"bbbb")) == 2
    assert await index.claim(4, sha(b"dddd")) == 4
    assert await index.claim(4, sha(b"eeee")) is None
    bodies = [uids for items, uids in folder.fetched if items == BODIES]
    assert bodies == [[1, 2, 4]]  # UID 3 (2 bytes) never; the digests are kept


async def test_each_destination_message_answers_for_one_source_message() -> None:
    folder = SelectedFolder.holding(b"same", b"same", b"diff")
    index = await index_of(folder)
    claims = [await index.claim(4, sha(b"same")) for _ in range(3)]
    assert sorted(c for c in claims if c is not None) == [1, 2]
    assert claims[2] is None  # a third copy in the source is copied
    assert await index.claim(4, sha(b"diff")) == 3
    assert len(index) == 0


async def test_exact_duplicates_in_the_source_are_copied_as_often_as_they_occur() -> None:
    """Source: the same message three times; destination already has it once."""
    folder = SelectedFolder.holding(b"dup!", b"solo")
    index = await index_of(folder)
    source = [b"dup!", b"dup!", b"solo", b"dup!"]
    to_copy = [body for body in source if await index.claim(len(body), sha(body)) is None]
    assert to_copy == [b"dup!", b"dup!"]


async def test_claimed_uids_are_left_out() -> None:
    folder = SelectedFolder.holding(b"same", b"same")
    index = await index_of(folder, claimed={1})
    assert len(index) == 1
    assert await index.claim(4, sha(b"same")) == 2
    assert await index.claim(4, sha(b"same")) is None


async def test_flags_of_unclaimed_messages_are_read() -> None:
    folder = SelectedFolder({5: Stored(b"one", ("\\Seen",)), 9: Stored(b"two", ())})
    index = await index_of(folder, claimed={9})
    assert index.flags == {5: ("\\Seen",)}


async def test_a_message_that_vanished_before_its_body_was_read_is_not_claimed() -> None:
    folder = SelectedFolder.holding(b"gone", b"kept")
    index = await index_of(folder)
    del folder.messages[1]  # expunged by another session
    assert await index.claim(4, sha(b"gone")) is None
    assert await index.claim(4, sha(b"kept")) == 2


async def test_digests_kept_by_the_caller_are_not_read_again() -> None:
    """A link that drops while destination bodies are read: the next attempt's index
    reads only those it has no digest of."""
    folder = SelectedFolder.holding(b"aaaa", b"bbbb")
    digests: dict[tuple[int, int], bytes] = {}
    first = await DestinationIndex.build(cast(IMAPClient, folder), set(), digests=digests)
    assert await first.claim(4, sha(b"bbbb")) == 2
    again = await DestinationIndex.build(cast(IMAPClient, folder), {2}, digests=digests)
    assert await again.claim(4, sha(b"aaaa")) == 1
    assert [uids for items, uids in folder.fetched if items == BODIES] == [[1, 2]]
