"""The test mail corpus holds what it promises, and its helpers read and write correctly."""

from __future__ import annotations

import email
import email.policy
import os
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from support import corpus, imapwire, maildir, mutf7, snapshot
from support.corpus import CorpusMessage
from support.rawmail import crlf_problems

MB20 = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def full() -> corpus.Corpus:
    return corpus.generate(0)


@pytest.fixture(scope="module")
def small() -> corpus.Corpus:
    return corpus.generate(0, huge=False)


def headers_of(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")


def test_folder_tree_has_the_awkward_names(small: corpus.Corpus) -> None:
    paths = {f.path for f in small}
    for wanted in [("INBOX",), ("Projects", "2019", "Q1"), ("Entwürfe",), ("日本語",)]:
        assert wanted in paths
    assert ("Ελληνικά",) in paths
    assert any("." in part for path in paths for part in path)
    assert any("&" in part for path in paths for part in path)
    assert any(not f.messages for f in small)
    assert {f.subscribed for f in small} == {True, False}
    for path in paths:  # parents come before children and exist themselves
        assert all(path[:n] in paths for n in range(1, len(path)))


def test_dots_false_renames_only_the_dotted_folder(small: corpus.Corpus) -> None:
    dotless = corpus.generate(0, huge=False, dots=False)
    assert not any("." in part for f in dotless for part in f.path)
    assert [f.messages for f in dotless] == [f.messages for f in small]
    assert [f.path for f in dotless] != [f.path for f in small]


def test_size_and_scale(small: corpus.Corpus) -> None:
    count = len(corpus.all_messages(small))
    assert 150 <= count <= 300
    assert len(corpus.all_messages(corpus.generate(0, huge=False, scale=2.0))) > 1.6 * count
    tiny = corpus.all_messages(corpus.generate(0, huge=False, scale=0.0))
    assert 0 < len(tiny) < count / 3
    assert any("\\Deleted" in m.flags for m in tiny)


def test_every_flag_appears(small: corpus.Corpus) -> None:
    seen = set().union(*(m.flags for m in corpus.all_messages(small)))
    assert set(corpus.SYSTEM_FLAGS) | set(corpus.KEYWORDS) <= seen
    assert "\\Recent" not in seen


def test_crlf_throughout(full: corpus.Corpus) -> None:
    for msg in corpus.all_messages(full):
        assert crlf_problems(msg.raw) == []
        assert msg.raw.endswith(b"\r\n")
        assert b"\n" not in msg.raw.replace(b"\r\n", b"")


def test_crlf_problems_are_reported() -> None:
    assert crlf_problems(b"a\r\nb\nc\r\n") == ["has a bare LF"]
    assert crlf_problems(b"a\r\nb") == ["does not end with CRLF"]
    assert crlf_problems(b"a\rb\r\n") == ["has a bare CR"]


def test_internal_dates_are_aware_old_enough_and_differ_from_date_header(
    small: corpus.Corpus,
) -> None:
    far_apart = 0
    for msg in corpus.all_messages(small):
        assert msg.internaldate.tzinfo is not None
        assert msg.internaldate.microsecond == 0
        assert msg.internaldate >= datetime(2005, 1, 1, tzinfo=UTC)
        date = headers_of(msg.raw)["Date"]
        if date is not None:
            assert parsedate_to_datetime(str(date)) != msg.internaldate
            far_apart += abs(parsedate_to_datetime(str(date)) - msg.internaldate) > timedelta(365)
    assert far_apart >= 1
    offsets = {m.internaldate.utcoffset() for m in corpus.all_messages(small)}
    assert len(offsets) > 3


def test_raw_8bit_headers_in_latin1_and_utf8(small: corpus.Corpus) -> None:
    heads = [m.raw.split(b"\r\n\r\n", 1)[0] for m in corpus.all_messages(small)]
    eight_bit = [h for h in heads if any(b >= 0x80 for b in h)]
    assert any(b"Subject: " in h for h in eight_bit)

    def is_utf8(data: bytes) -> bool:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    assert any(is_utf8(h) for h in eight_bit)
    assert any(not is_utf8(h) for h in eight_bit)


def test_long_lines(small: corpus.Corpus) -> None:
    longest = max(len(line) for m in corpus.all_messages(small) for line in m.raw.split(b"\r\n"))
    assert longest > 1000
    heads = [m.raw.split(b"\r\n\r\n", 1)[0] for m in corpus.all_messages(small)]
    assert any(len(line) > 1000 for head in heads for line in head.split(b"\r\n"))


def test_message_ids_missing_and_shared_with_different_bodies(small: corpus.Corpus) -> None:
    bodies: dict[str, set[bytes]] = defaultdict(set)
    missing = 0
    for msg in corpus.all_messages(small):
        mid = headers_of(msg.raw)["Message-ID"]
        if mid is None:
            missing += 1
        else:
            bodies[str(mid)].add(msg.raw)
    assert missing >= 2
    shared = {mid: raws for mid, raws in bodies.items() if len(raws) >= 2}
    assert len(shared) >= 2
    # the hardest case: same headers, same size, same date and flags, different bytes
    same_size = [raws for raws in shared.values() if len({len(r) for r in raws}) < len(raws)]
    assert same_size


def test_exact_duplicates_within_a_folder(small: corpus.Corpus) -> None:
    for folder in small:
        counts = Counter((m.raw, m.flags, m.internaldate) for m in folder.messages)
        if max(counts.values(), default=0) >= 2:
            break
    else:
        pytest.fail("no folder holds an exact duplicate")


def test_multipart_with_base64_attachments(small: corpus.Corpus) -> None:
    attachments = 0
    for msg in corpus.all_messages(small):
        parsed = email.message_from_bytes(msg.raw, policy=email.policy.compat32)
        for part in parsed.walk():
            if part.get("Content-Transfer-Encoding") == "base64" and part.get_filename():
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes) and payload
                attachments += 1
    assert attachments >= 5
    kinds = {email.message_from_bytes(m.raw).get_content_type() for m in corpus.all_messages(small)}
    assert {"multipart/mixed", "text/plain"} <= kinds


def test_huge_message_only_when_asked(full: corpus.Corpus, small: corpus.Corpus) -> None:
    big = [m for m in corpus.all_messages(full) if len(m.raw) > MB20]
    assert len(big) == 1
    assert not [m for m in corpus.all_messages(small) if len(m.raw) > MB20]
    rest = [[m for m in f.messages if len(m.raw) <= MB20] for f in full]
    assert rest == [f.messages for f in small]


def test_same_seed_same_bytes(small: corpus.Corpus) -> None:
    again = corpus.generate(0, huge=False)
    assert [m.raw for m in corpus.all_messages(again)] == [
        m.raw for m in corpus.all_messages(small)
    ]
    assert again == small
    other = corpus.generate(1, huge=False)
    assert [m.raw for m in corpus.all_messages(other)] != [
        m.raw for m in corpus.all_messages(small)
    ]


@pytest.mark.parametrize(("count", "total"), [(2000, 100_000_000), (300, 5_000_000), (50, 400_000)])
def test_bulk_hits_the_requested_total(count: int, total: int) -> None:
    messages = corpus.bulk(count, seed=7, total_bytes=total)
    assert len(messages) == count
    assert abs(sum(len(m.raw) for m in messages) - total) <= total * 0.10


def test_bulk_realistic_mix_is_mostly_small() -> None:
    messages = corpus.bulk(1000, seed=3)
    sizes = sorted(len(m.raw) for m in messages)
    assert sum(2_000 <= s <= 21_000 for s in sizes) > 0.75 * len(sizes)
    assert sum(50_000 <= s <= 510_000 for s in sizes) > 0.05 * len(sizes)
    assert sizes[-1] > 900_000
    assert all(crlf_problems(m.raw) == [] for m in messages)
    assert len({m.raw for m in messages}) == len(messages)


def test_bulk_small_and_deterministic() -> None:
    messages = corpus.bulk(2000, seed=5, size_dist="small")
    assert all(900 <= len(m.raw) <= 3_300 for m in messages)
    assert all(crlf_problems(m.raw) == [] for m in messages)
    assert len({headers_of(m.raw)["Message-ID"] for m in messages}) == len(messages)
    assert corpus.bulk(2000, seed=5, size_dist="small") == messages
    assert corpus.bulk(2000, seed=6, size_dist="small") != messages
    with pytest.raises(ValueError, match="size_dist"):
        corpus.bulk(1, seed=0, size_dist="huge")


# -- modified UTF-7 ---------------------------------------------------------------------


def test_mutf7_known_encodings() -> None:
    # RFC 3501 section 5.1.3's example, plus the corpus names
    assert mutf7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert mutf7.encode("Sales & Marketing") == "Sales &- Marketing"
    assert mutf7.encode("Entwürfe") == "Entw&APw-rfe"
    assert mutf7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"


def test_mutf7_round_trips_every_corpus_name(small: corpus.Corpus) -> None:
    for folder in small:
        for part in folder.path:
            encoded = mutf7.encode(part)
            assert encoded.isascii()
            assert mutf7.decode(encoded) == part
    assert mutf7.decode(mutf7.encode("𝄞 & \x7f ü")) == "𝄞 & \x7f ü"
    with pytest.raises(ValueError):
        mutf7.decode("&AAA")


# -- reading imaplib's replies ----------------------------------------------------------


def test_list_entries_quoted_nil_and_literal() -> None:
    entries = imapwire.list_entries(
        [
            b'(\\HasNoChildren) "/" "Sales &- Marketing"',
            b"(\\Noselect \\HasChildren) NIL Flat",
            (b'(\\HasNoChildren) "." {12}', b"Entw&APw-rfe"),
            b'() "\\\\" "a\\"b"',
        ]
    )
    assert [(e.delimiter, e.name) for e in entries] == [
        ("/", "Sales &- Marketing"),
        (None, "Flat"),
        (".", "Entw&APw-rfe"),
        ("\\", 'a"b'),
    ]
    assert entries[1].flags == {"\\noselect", "\\haschildren"}


def test_fetched_messages_with_items_on_both_sides_of_the_literal() -> None:
    data = [
        (
            b'1 (UID 7 FLAGS (\\Seen $label1) INTERNALDATE "17-Jul-1996 02:44:25 -0700" BODY[] {3}',
            b"abc",
        ),
        b")",
        (b"2 (UID 9 BODY[] {2}", b"xy"),
        b' FLAGS () INTERNALDATE " 1-Feb-2005 00:00:01 +0000")',
        b"3 (UID 9 FLAGS (\\Seen))",
    ]  # fmt: skip
    got = imapwire.fetched_messages(data)
    assert set(got) == {7, 9}
    assert got[7].body == b"abc"
    assert got[7].flags == {"\\Seen", "$label1"}
    assert got[7].internaldate == datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)
    assert got[9].body == b"xy"
    assert got[9].flags == frozenset()
    assert got[9].internaldate == datetime(2005, 2, 1, 0, 0, 1, tzinfo=UTC)


def test_quote_escapes() -> None:
    assert imapwire.quote('a"b\\c') == '"a\\"b\\\\c"'


# -- snapshots --------------------------------------------------------------------------


def test_corpus_snapshot_counts_duplicates_and_keeps_empty_folders(small: corpus.Corpus) -> None:
    snap = snapshot.corpus_snapshot(small)
    assert snap.message_count() == len(corpus.all_messages(small))
    assert any(n >= 2 for c in snap.folders.values() for n in c.values())
    assert any(not c for c in snap.folders.values())
    assert snap.subscribed == {f.path for f in small if f.subscribed}
    bench = snapshot.corpus_snapshot([corpus.CorpusFolder(("Bench",), [], False)])
    assert bench.folders == {("INBOX",): Counter(), ("Bench",): Counter()}


def test_message_key_ignores_recent_and_zone() -> None:
    when = datetime(2010, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    a = snapshot.message_key(b"x", {"\\Seen", "\\Recent"}, when)
    b = snapshot.message_key(b"x", {"\\Seen"}, when.astimezone(UTC))
    assert a == b
    assert a != snapshot.message_key(b"y", {"\\Seen"}, when)
    assert a != snapshot.message_key(b"x", {"\\Seen"}, when + timedelta(seconds=1))


def test_differences_name_what_changed(small: corpus.Corpus) -> None:
    expected = snapshot.corpus_snapshot(small)
    assert expected.differences(snapshot.corpus_snapshot(small)) == []
    changed = corpus.generate(0, huge=False)
    inbox = changed[0]
    first = inbox.messages[0]
    inbox.messages[0] = CorpusMessage(first.raw, first.flags ^ {"\\Flagged"}, first.internaldate)
    lines = expected.differences(snapshot.corpus_snapshot(changed))
    assert len(lines) == 2
    assert all(line.startswith("INBOX: 1 x") for line in lines)


def test_mailbox_name_refuses_the_delimiter_inside_a_name() -> None:
    assert snapshot.mailbox_name(("Projects", "2019"), ".") == '"Projects.2019"'
    assert snapshot.mailbox_name(("Entwürfe",), "/") == '"Entw&APw-rfe"'
    with pytest.raises(ValueError, match="dots=False"):
        snapshot.mailbox_name(("v1.2 release",), ".")


# -- Maildir writer ---------------------------------------------------------------------


def test_write_maildir_names_flags_and_dates(tmp_path: Path) -> None:
    when = datetime(2007, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-5)))
    messages = [
        CorpusMessage(b"A: 1\r\n\r\none\r\n", frozenset({"\\Seen", "Work", "\\Flagged"}), when),
        CorpusMessage(b"A: 2\r\n\r\ntwo\r\n", frozenset({"$Forwarded", "\\Deleted"}), when),
        CorpusMessage(b"A: 3\r\n\r\nthree\r\n", frozenset(), when),
    ]
    folder = maildir.folder_dir(tmp_path / "Maildir", ("Projects", "Entwürfe"))
    assert folder == tmp_path / "Maildir" / ".Projects.Entw&APw-rfe"
    assert maildir.write_maildir(messages, folder, None) == 3
    assert {p.name for p in folder.iterdir()} == {"cur", "new", "tmp", "dovecot-keywords"}
    first_lines = (folder / "dovecot-keywords").read_text().splitlines()
    keywords = {name: index for index, name in (line.split(" ", 1) for line in first_lines)}
    assert set(keywords) == {"Work", "$Forwarded"}
    files = sorted((folder / "cur").iterdir())
    by_body = {f.read_bytes(): f for f in files}
    assert set(by_body) == {m.raw for m in messages}
    work = chr(ord("a") + int(keywords["Work"]))
    fwd = chr(ord("a") + int(keywords["$Forwarded"]))
    assert by_body[messages[0].raw].name.endswith(":2,FS" + work)
    assert by_body[messages[1].raw].name.endswith(":2,T" + fwd)
    assert by_body[messages[2].raw].name.endswith(":2,")
    assert all(os.stat(f).st_mtime == when.timestamp() for f in files)
    assert all(f",S={f.stat().st_size}," in f.name for f in files)

    # a second batch reuses the keyword letters already assigned
    more = [CorpusMessage(b"A: 4\r\n\r\nfour\r\n", frozenset({"Work", "NonJunk"}), when)]
    maildir.write_maildir(more, folder, None)
    again = (folder / "dovecot-keywords").read_text().splitlines()
    assert again == [*first_lines, "2 NonJunk"]
    (newest,) = set((folder / "cur").iterdir()) - set(files)
    assert newest.name.endswith(":2," + "".join(sorted([work, "c"])))


def test_write_maildir_refuses_what_maildir_cannot_hold(tmp_path: Path) -> None:
    when = datetime(2007, 3, 4, tzinfo=UTC)
    with pytest.raises(ValueError, match="\\\\Recent"):
        maildir.write_maildir([CorpusMessage(b"x\r\n", frozenset({"\\Recent"}), when)], tmp_path)
    many = [CorpusMessage(b"x\r\n", frozenset({f"k{i}" for i in range(27)}), when)]
    with pytest.raises(ValueError, match="26"):
        maildir.write_maildir(many, tmp_path / "other")
    with pytest.raises(ValueError):
        maildir.folder_dir(tmp_path, ("v1.2 release",))
    assert maildir.folder_dir(tmp_path, ("v1.2 release",), layout="fs") == tmp_path / "v1.2 release"
    assert maildir.folder_dir(tmp_path, ("INBOX",), layout="fs") == tmp_path
