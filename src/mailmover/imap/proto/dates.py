"""IMAP dates: RFC 3501 ``date-time`` (INTERNALDATE, APPEND) and ``date`` (SEARCH)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

# English and fixed, whatever the process locale (RFC 3501 date-month).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name.upper(): number for number, name in enumerate(_MONTHS, start=1)}

# RFC 3501: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year
#                       SP time SP zone DQUOTE; date-day-fixed = (SP DIGIT) / 2DIGIT
# Groups: day, month, year, hour, minute, second, zone.
_DATE_TIME = re.compile(
    r"""\x20?([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})
    \x20([0-9]{2}):([0-9]{2}):([0-9]{2})
    \x20([+-][0-9]{4})""",
    re.VERBOSE | re.ASCII,
)
#: time zones by their text (``+0200``) and back; a mailbox has few
_ZONES: dict[str, timezone] = {}
_ZONE_TEXTS: dict[timedelta, str] = {}
_NO_OFFSET = timedelta()


def imap_datetime(value: datetime) -> str:
    """``17-Jul-1996 02:44:25 -0700`` (RFC 3501 date-time, without quotes); naive means UTC.

    The day is always two digits; seconds below one are dropped.
    """
    offset = value.utcoffset()
    if offset is None:
        value, offset = value.replace(tzinfo=UTC), _NO_OFFSET
    zone = _ZONE_TEXTS.get(offset)
    if zone is None:
        if offset % timedelta(minutes=1):
            # The zone has only hours and minutes: say the same instant in UTC.
            value, zone = value.astimezone(UTC), "+0000"
        else:
            zone = _zone_text(offset)
    # %-formatting: the fastest way here, and this runs for every message appended
    return "%02d-%s-%04d %02d:%02d:%02d %s" % (  # noqa: UP031
        value.day,
        _MONTHS[value.month - 1],
        value.year,
        value.hour,
        value.minute,
        value.second,
        zone,
    )


def _zone_text(offset: timedelta) -> str:
    """``+hhmm`` for a whole number of minutes, remembered."""
    sign = "-" if offset < timedelta() else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    zone = f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    if len(_ZONE_TEXTS) < 1024:
        _ZONE_TEXTS[offset] = zone
    return zone


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
    if match is None:
        raise ValueError(f"not an IMAP date-time: {text!r}")
    day, month_name, year, hour, minute, second, zone = match.groups()
    month = _MONTH_NUMBER.get(month_name.upper())
    if month is None:
        raise ValueError(f"not an IMAP date-time: {text!r}")
    tzinfo = _ZONES.get(zone)
    if tzinfo is None:
        tzinfo = _zone(zone, text)
    return datetime(int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=tzinfo)


def _zone(zone: str, text: str) -> timezone:
    """The time zone of ``+hhmm``/``-hhmm``, remembered; ValueError when out of range."""
    hours, minutes = int(zone[1:3]), int(zone[3:5])
    if minutes >= 60 or hours * 60 + minutes >= 24 * 60:
        raise ValueError(f"bad time zone in IMAP date-time: {text!r}")
    total = hours * 60 + minutes
    tzinfo = timezone(timedelta(minutes=total if zone[0] == "+" else -total))
    if len(_ZONES) < 1024:
        _ZONES[zone] = tzinfo
    return tzinfo
