"""How the pages say numbers, mailboxes and a transfer's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mailmover.service.jobs import MailboxStatus
from mailmover.web.formats import duration, mailbox, percent, size, tone, when
from mailmover.web.transfers import totals


def _box(state: str, words: str, **counts: Any) -> MailboxStatus:
    values: dict[str, Any] = dict(
        id=1, job="j", line=2, source="imap://a@h", dest="imap://a@d", state=state, words=words,
        reason=None, waiting_until=None, requested=None, messages_total=10, bytes_total=1000,
        messages_copied=5, bytes_copied=500, messages_failed=0, messages_left=5, bytes_left=500,
        rate=None, eta_seconds=None, worker=None, crashes=0, has_credentials=True,
    )  # fmt: skip
    return MailboxStatus(**(values | counts))


def test_numbers_and_times_in_words() -> None:
    assert [size(n) for n in (0, 999, 1000, 1_234_567, None)] == [
        "0 bytes", "999 bytes", "1.0 KB", "1.2 MB", "–",
    ]  # fmt: skip
    assert [duration(s) for s in (5, 61, 7380, None)] == ["5 s", "1 min", "2 h 3 min", "–"]
    assert when(datetime(2026, 12, 3, 14, 5, tzinfo=UTC)) == "2026-12-03 14:05 UTC"
    assert (percent(1, 3), percent(5, 0), percent(9, 4)) == (33, 100, 100)


def test_mailboxes_are_named_as_people_say_them() -> None:
    assert mailbox("imaps://alice%40example.com@imap.example.com:993") == (
        "alice@example.com on imap.example.com"
    )
    assert mailbox("not a url") == "not a url"


def test_states_have_one_colour_each_and_a_transfer_its_words() -> None:
    assert (tone("completed"), tone("failed"), tone("waiting"), tone("unknown")) == (
        "good", "bad", "warn", "idle",
    )  # fmt: skip
    one = totals([_box("waiting", "waiting until 2026-12-03 14:05 UTC, Gmail's daily limit")])
    assert one.words == "waiting until 2026-12-03 14:05 UTC, Gmail's daily limit"
    many = totals([
        _box("completed", "completed"), _box("failed", "failed (bad password)"),
        _box("running", "running", rate=100.0, bytes_left=300),
        _box("running", "running", rate=50.0, bytes_left=150),
    ])  # fmt: skip
    assert many.words == "1 failed, 2 running, 1 completed"
    assert many.tone_state == "failed"
    # Time left: what the mailboxes still to run have left (whole folders not begun
    # included), at the rate of those running.
    assert (many.rate, many.eta_seconds) == (150.0, (500 + 500) / 150.0)
