"""IMAP dates: RFC 3501 ``date-time`` (INTERNALDATE, APPEND) and ``date`` (SEARCH)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

# English and fixed, whatever the process locale (RFC 3501 date-month).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name.upper(): number for number, name in enumerate(_MONTHS, start=1)}

# RFC 3501: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year
#                       SP time SP zone DQUOTE; date-day-fixed = (SP DIGIT) / 2DIGIT
_DATE_TIME = re.compile(
    r"""\x20?(?P<day>[0-9]{1,2})-(?P<month>[A-Za-z]{3})-(?P<year>[0-9]{4})
    \x20(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})
    \x20(?P<sign>[+-])(?P<zh>[0-9]{2})(?P<zm>[0-9]{2})""",
    re.VERBOSE | re.ASCII,
)


def imap_datetime(value: datetime) -> str:
    """``17-Jul-1996 02:44:25 -0700`` (RFC 3501 date-time, without quotes); naive means UTC.

    The day is always two digits; seconds below one are dropped.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    offset = value.utcoffset() or timedelta()
    if offset % timedelta(minutes=1):
        # The zone has only hours and minutes: say the same instant in UTC.
        value = value.astimezone(UTC)
        offset = timedelta()
    sign = "-" if offset < timedelta() else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return (
        f"{value.day:02d}-{_MONTHS[value.month - 1]}-{value.year:04d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def imap_date(value: date) -> str:
    """``17-Jul-1996`` for SEARCH SINCE/BEFORE (a datetime gives its own calendar day)."""
    return f"{value.day}-{_MONTHS[value.month - 1]}-{value.year:04d}"


def parse_imap_datetime(text: str) -> datetime:
    """An aware datetime from an RFC 3501 date-time such as INTERNALDATE.

    Accepts the day as `` 1``, ``01`` or ``1``, any case of month name, with or
    without the surrounding double quotes. ValueError when it is not a date-time.
    """
    inner = text.strip()
    if len(inner) >= 2 and inner[0] == inner[-1] == '"':
        inner = inner[1:-1]
    match = _DATE_TIME.fullmatch(inner)
    month = _MONTH_NUMBER.get(match.group("month").upper()) if match else None
    if match is None or month is None:
        raise ValueError(f"not an IMAP date-time: {text!r}")
    zone_minutes = int(match.group("zh")) * 60 + int(match.group("zm"))
    if int(match.group("zm")) >= 60 or zone_minutes >= 24 * 60:
        raise ValueError(f"bad time zone in IMAP date-time: {text!r}")
    offset = timedelta(minutes=zone_minutes if match.group("sign") == "+" else -zone_minutes)
    return datetime(
        int(match.group("year")),
        month,
        int(match.group("day")),
        int(match.group("hour")),
        int(match.group("minute")),
        int(match.group("second")),
        tzinfo=timezone(offset),
    )
