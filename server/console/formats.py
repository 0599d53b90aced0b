"""How the console writes times, numbers and units: the site's time zone, three significant
digits, units in words people read ("mGy·cm", not dlp_mgy_cm)."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

from server.stats.figures import label
from server.stats.service import UNITS


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["KERMA_SETTINGS"].timezone)


def when(value: float | str | None, with_time: bool = True) -> str:
    """Epoch seconds or an ISO date-time, in the site's time zone: 2026-12-03 14:21."""
    if value in (None, "") or (isinstance(value, float) and math.isnan(value)):
        return ""  # no date known
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is None:
            return value[:16].replace("T", " ")
    else:
        moment = datetime.fromtimestamp(value, _zone())
    local = moment.astimezone(_zone())
    return local.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def number(value: float | None) -> str:
    """Three significant digits, no exponent for everyday magnitudes: 0.0123, 1.23, 1230."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}"


def unit(field: str) -> str:
    return UNITS.get(field, "")


def age(value: str, now: datetime) -> str:
    """How long ago an ISO date-time was: "3 hours", "2 days"."""
    try:
        seconds = (now - datetime.fromisoformat(value)).total_seconds()
    except (TypeError, ValueError):
        return ""
    for size, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {name}{'s' if n != 1 else ''}"
    return "moments"


def sentence(text: str) -> str:
    """The first letter upper case, the rest as written ("National DRL survey")."""
    return text[:1].upper() + text[1:]


FILTERS = {"when": when, "number": number, "unit": unit, "label": label, "age": age,
           "sentence": sentence}  # fmt: skip
