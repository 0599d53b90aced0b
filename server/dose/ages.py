"""Ages: the exact age Kerma keeps, and the whole-year age pseudonymised outputs give.

A whole-year age that is the completed years at each examination lets anyone holding several
examinations of one patient narrow the birthday down (63 in March, 64 in September: born
between the two). The age in the calendar year of the examination (exam year - birth year)
says the birth year and nothing more, however many examinations there are.
"""

from __future__ import annotations

from datetime import date, timedelta

_YEAR_DAYS = 365.2425


def exact_age(birth: date, on: date) -> float:
    """Age in years: whole calendar years, plus the fraction of the year since the last birthday.

    >>> exact_age(date(1954, 3, 22), date(2015, 3, 22)), exact_age(date(2000, 1, 1), date(2000, 7, 2))
    (61.0, 0.5)
    """
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    last = _birthday(birth, birth.year + years)
    following = _birthday(birth, birth.year + years + 1)
    return round(years + (on - last).days / (following - last).days, 4)


def calendar_age(age_years: float, on: date) -> int:
    """The age in the calendar year of `on`: its year minus the birth year. The birth date is
    found again from an exact age (exact_age is inverted to the day); an age in whole years
    from an Age String (no birth date known) gives the year of `on` minus that age.

    >>> calendar_age(exact_age(date(1960, 12, 31), date(2026, 3, 1)), date(2026, 3, 1))
    66
    >>> calendar_age(exact_age(date(1961, 1, 1), date(2026, 12, 31)), date(2026, 12, 31))
    65
    >>> calendar_age(63.0, date(2026, 3, 1))  # "063Y"
    63
    """
    estimate = on - timedelta(days=round(age_years * _YEAR_DAYS))
    for shift in (0, -1, 1, -2, 2):
        birth = estimate + timedelta(days=shift)
        if birth <= on and exact_age(birth, on) == round(age_years, 4):
            return on.year - birth.year
    return on.year - estimate.year


def _birthday(birth: date, year: int) -> date:
    try:
        return birth.replace(year=year)
    except ValueError:  # born on 29 February
        return date(year, 3, 1)
