"""DICOM text values: repaired character sets, dates, times, ages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

_DT = re.compile(
    r"^(?P<y>\d{4})(?P<m>\d{2})?(?P<d>\d{2})?(?P<H>\d{2})?(?P<M>\d{2})?(?P<S>\d{2})?(?:\.(?P<f>\d{1,6}))?"
    r"(?P<tz>[+-]\d{4})?$"
)
_AGE_UNIT_YEARS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}


def repair_text(text: str) -> str:
    """Undo UTF-8 text that was decoded as Latin-1 because a file declared the wrong charset.

    >>> repair_text("testÃ¦Ã¸Ã¥"), repair_text("Müller"), repair_text("plain")
    ('testæøå', 'Müller', 'plain')
    """
    if not any("\x80" <= ch <= "\xff" for ch in text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def parse_datetime(text: str) -> datetime | None:
    """A DICOM DT (YYYYMMDDHHMMSS.FFFFFF&ZZXX); None when empty or malformed.

    >>> parse_datetime("19970101000631.737+0000")
    datetime.datetime(1997, 1, 1, 0, 6, 31, 737000, tzinfo=datetime.timezone.utc)
    >>> parse_datetime("2024")
    datetime.datetime(2024, 1, 1, 0, 0)
    """
    match = _DT.match(text.strip())
    if match is None:
        return None
    g = match.groupdict()
    try:
        value = datetime(
            int(g["y"]),
            int(g["m"] or 1),
            int(g["d"] or 1),
            int(g["H"] or 0),
            int(g["M"] or 0),
            int(g["S"] or 0),
            int((g["f"] or "").ljust(6, "0")),
        )
    except ValueError:
        return None
    if g["tz"]:
        sign = 1 if g["tz"][0] == "+" else -1
        offset = timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][3:5]))
        value = value.replace(tzinfo=timezone(sign * offset) if offset else UTC)
    return value


def combine(da: str | None, tm: str | None) -> datetime | None:
    """Study Date + Study Time (DA + TM) as one datetime.

    >>> combine("20240229", "101530.5")
    datetime.datetime(2024, 2, 29, 10, 15, 30, 500000)
    """
    if not da:
        return None
    return parse_datetime(da.strip() + (tm or "").strip())


def parse_date(text: str | None) -> date | None:
    parsed = parse_datetime(text) if text and len(text.strip()) == 8 else None
    return parsed.date() if parsed else None


def age_years(text: str | None) -> float | None:
    """An Age String (AS) in years.

    An AS is three digits and a unit; modalities also send one or two digits ("37Y"), whose
    meaning is as clear.

    >>> age_years("067Y"), age_years("006M"), age_years("37Y"), age_years("bad"), age_years("Y")
    (67.0, 0.5, 37.0, None, None)
    """
    digits, unit = (text[:-1], text[-1]) if text else ("", "")
    if not (1 <= len(digits) <= 3 and digits.isascii() and digits.isdigit()):
        return None
    if unit not in _AGE_UNIT_YEARS:
        return None
    return round(int(digits) * _AGE_UNIT_YEARS[unit], 4)
