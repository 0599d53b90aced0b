"""FHIR primitive values as the closed ranges that indexing and search compare.

A date covers its whole precision (2024-03 is all of March); a decimal covers its implicit
precision (1.50 is [1.495, 1.505]). Both indexer and search parser use these functions, so a
stored value and a searched value are always cut the same way.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_MICRO = 1e-6


def date_range(text: str) -> tuple[float, float]:
    """[first, last] instant of a FHIR date/dateTime/instant, in epoch seconds (UTC if no zone).

    >>> date_range("2024-02")
    (1706745600.0, 1709251199.999999)
    >>> date_range("2024-02-29T10:00:00+01:00")
    (1709197200.0, 1709197200.999999)
    >>> date_range("2024-13")
    Traceback (most recent call last):
    ...
    ValueError: not a FHIR date: '2024-13'
    """
    match = _DATE.match(text)
    if match is None:
        raise ValueError(f"not a FHIR date: {text!r}")
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        elif g["d"] is None:
            month = int(g["m"])
            start = datetime(year, month, 1, tzinfo=UTC)
            end = start + timedelta(days=calendar.monthrange(year, month)[1])
        elif g["H"] is None:
            start = datetime(year, int(g["m"]), int(g["d"]), tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            start, end = _instant(g)
    except ValueError:
        raise ValueError(f"not a FHIR date: {text!r}") from None
    return start.timestamp(), round(end.timestamp() - _MICRO, 6)


def _instant(g: dict[str, str | None]) -> tuple[datetime, datetime]:
    tz = g["tz"]
    offset = timedelta(0)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    second = int(g["S"]) if g["S"] is not None else 0
    fraction = g["f"] or ""
    micro = int((fraction + "000000")[:6])
    local = datetime(
        int(g["y"] or 0),
        int(g["m"] or 1),
        int(g["d"] or 1),
        int(g["H"] or 0),
        int(g["M"] or 0),
        second,
        micro,
    )
    start = (local - offset).replace(tzinfo=UTC)
    if g["S"] is None:
        step = timedelta(minutes=1)
    elif fraction:
        step = timedelta(microseconds=max(1, 10 ** (6 - min(len(fraction), 6))))
    else:
        step = timedelta(seconds=1)
    return start, start + step


def period_range(period: dict[str, str]) -> tuple[float, float]:
    """A Period; an open end is unbounded.

    >>> period_range({"start": "2024"})[1] > 1e15
    True
    """
    low = date_range(period["start"])[0] if "start" in period else -1e18
    high = date_range(period["end"])[1] if "end" in period else 1e18
    return low, high


def decimal_range(text: str) -> tuple[float, float, float]:
    """The value of a decimal and its implicit precision range.

    >>> decimal_range("1.50")
    (1.5, 1.495, 1.505)
    >>> decimal_range("100")
    (100.0, 99.5, 100.5)
    >>> decimal_range("1e2")
    (100.0, 50.0, 150.0)
    """
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a number: {text!r}")
    half = Decimal(5).scaleb(number.as_tuple().exponent - 1)  # type: ignore[operator]
    return float(number), float(number - half), float(number + half)


def instant(epoch: float) -> str:
    """An epoch time as a FHIR instant with millisecond precision.

    >>> instant(1709197200.25)
    '2024-02-29T09:00:00.250Z'
    """
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def day_start(day: date, timezone: tzinfo) -> datetime:
    """The first instant of a calendar day in a time zone (a site's periods run from one
    local midnight to another, daylight saving included)."""
    return datetime.combine(day, time(), timezone)
