"""IMAP date-time and date formatting and parsing (RFC 3501 formal syntax)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmover.imap.proto import commands
from mailmover.imap.proto.dates import imap_date, imap_datetime, parse_imap_datetime

PDT = timezone(timedelta(hours=-7))
IST = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT), "17-Jul-1996 02:44:25 -0700"),
        (datetime(2020, 1, 1, 0, 0, 0), "01-Jan-2020 00:00:00 +0000"),
        (datetime(2020, 1, 1, 0, 0, 0, tzinfo=UTC), "01-Jan-2020 00:00:00 +0000"),
        (
            datetime(
                2021, 12, 5, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            "05-Dec-2021 23:59:59 +0530",
        ),
        (
            datetime(2021, 3, 9, 8, 7, 6, tzinfo=timezone(-timedelta(hours=9, minutes=30))),
            "09-Mar-2021 08:07:06 -0930",
        ),
        (datetime(999, 5, 6, 7, 8, 9), "06-May-0999 07:08:09 +0000"),
        (
            datetime(2024, 7, 1, 12, 0, 0, tzinfo=ZoneInfo("Europe/Berlin")),
            "01-Jul-2024 12:00:00 +0200",
        ),
    ],
)
def test_imap_datetime(value: datetime, text: str) -> None:
    assert imap_datetime(value) == text


def test_offset_with_seconds_is_said_in_utc() -> None:
    # Zones before 1900 had offsets in seconds (Amsterdam: +00:19:32).
    value = datetime(1890, 1, 1, 12, 0, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert value.utcoffset() == timedelta(minutes=19, seconds=32)
    text = imap_datetime(value)
    assert text == "01-Jan-1890 11:40:28 +0000"
    assert parse_imap_datetime(text) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (date(1994, 2, 1), "1-Feb-1994"),
        (datetime(1996, 7, 17, 23, 0, tzinfo=PDT), "17-Jul-1996"),
        (date(2030, 12, 31), "31-Dec-2030"),
    ],
)
def test_imap_date(value: date, text: str) -> None:
    assert imap_date(value) == text


def test_all_month_names() -> None:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    for number, name in enumerate(months, start=1):
        assert imap_date(date(2020, number, 9)) == f"9-{name}-2020"
        assert imap_datetime(datetime(2020, number, 9)).startswith(f"09-{name}-2020 ")
        assert parse_imap_datetime(f"09-{name}-2020 00:00:00 +0000").month == number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17-Jul-1996 02:44:25 -0700", datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT)),
        (" 1-Jan-2020 00:00:00 +0000", datetime(2020, 1, 1, tzinfo=UTC)),
        ("01-Jan-2020 00:00:00 +0000", datetime(2020, 1, 1, tzinfo=UTC)),
        ("1-Jan-2020 00:00:00 +0000", datetime(2020, 1, 1, tzinfo=UTC)),
        ('" 1-Jan-2020 00:00:00 +0000"', datetime(2020, 1, 1, tzinfo=UTC)),
        ('"09-feb-2021 10:11:12 +0530"', datetime(2021, 2, 9, 4, 41, 12, tzinfo=UTC)),
        ("31-DEC-1999 23:59:59 -1200", datetime(2000, 1, 1, 11, 59, 59, tzinfo=UTC)),
        ("29-Feb-2024 12:00:00 +1400", datetime(2024, 2, 28, 22, 0, 0, tzinfo=UTC)),
    ],
)
def test_parse_imap_datetime(text: str, expected: datetime) -> None:
    parsed = parse_imap_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_parse_keeps_the_offset() -> None:
    assert parse_imap_datetime("17-Jul-1996 02:44:25 -0700").utcoffset() == timedelta(hours=-7)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "17-Jul-1996",
        "17-Jul-1996 02:44:25",  # no zone
        "17-Jux-1996 02:44:25 -0700",
        "17-Jul-96 02:44:25 -0700",
        "17-Jul-1996 2:44:25 -0700",
        "17-Jul-1996 02:44 -0700",
        "17-Jul-1996 02:44:25 0700",
        "17-Jul-1996 02:44:25 -07:00",
        "17-Jul-1996 02:44:25 -0760",  # minutes beyond 59
        "17-Jul-1996 02:44:25 +2400",  # a day or more
        "30-Feb-2021 00:00:00 +0000",
        "17-Jul-1996 24:00:00 +0000",
        "117-Jul-1996 02:44:25 -0700",
        '"17-Jul-1996 02:44:25 -0700',
        "17-Jul-1996  02:44:25 -0700",
        "17-Jul-1996 02:44:25 -0700 trailing",
        "١٧-Jul-1996 02:44:25 -0700",  # non-ASCII digits
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_imap_datetime(text)


aware = st.datetimes(
    min_value=datetime(1000, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.builds(
        timezone, st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timedelta(minutes=m))
    ),
)


@settings(max_examples=200)
@given(aware)
def test_round_trip(value: datetime) -> None:
    parsed = parse_imap_datetime(imap_datetime(value))
    assert parsed == value.replace(microsecond=0)
    assert parsed.utcoffset() == value.utcoffset()


@settings(max_examples=200)
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 12, 31)))
def test_naive_is_utc(value: datetime) -> None:
    assert parse_imap_datetime(imap_datetime(value)) == value.replace(microsecond=0, tzinfo=UTC)


def test_commands_reexports_the_date_helpers() -> None:
    assert commands.imap_datetime is imap_datetime
    assert commands.imap_date is imap_date
    assert commands.parse_imap_datetime is parse_imap_datetime
