"""The London Stock Exchange's trading days (XLON): weekdays that are not bank holidays in
England and Wales, nor one of the one-off closures.

The rules, as the exchange has kept them since 1995:

* New Year's Day, Good Friday, Easter Monday, the first Monday of May (early May bank
  holiday), the last Monday of May (spring), the last Monday of August (summer), Christmas
  Day and Boxing Day. A holiday on a Saturday or Sunday moves to the next weekday that is not
  already one (Christmas on a Saturday: Monday 27 and Tuesday 28).
* Moved or added by proclamation: the early May holiday on 8 May in 1995 and 2020 (VE day
  anniversaries); the spring holiday on 4 June 2002 (with 3 June for the Golden Jubilee), on
  4 June 2012 (with 5 June, the Diamond Jubilee) and on 2 June 2022 (with 3 June, the Platinum
  Jubilee); 31 December 1999 (the millennium), 29 April 2011 (a royal wedding), 19 September
  2022 (a state funeral), 8 May 2023 (the coronation).

Christmas Eve and New Year's Eve are half days: the exchange is open. A future proclamation
is not known until it is made; add it to ``_ONE_OFF``. The test suite checks every year from
1995 to 2035 against ``exchange_calendars``' XLON, an independent calendar.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

XLON = "XLON"
_ONE_OFF = {
    date(1999, 12, 31): "the millennium",
    date(2002, 6, 3): "the Golden Jubilee",
    date(2011, 4, 29): "the royal wedding",
    date(2012, 6, 5): "the Diamond Jubilee",
    date(2022, 6, 3): "the Platinum Jubilee",
    date(2022, 9, 19): "the state funeral of Queen Elizabeth II",
    date(2023, 5, 8): "the coronation of King Charles III",
}
_EARLY_MAY_MOVED = {1995: date(1995, 5, 8), 2020: date(2020, 5, 8)}
_SPRING_MOVED = {2002: date(2002, 6, 4), 2012: date(2012, 6, 4), 2022: date(2022, 6, 2)}


def easter_sunday(year: int) -> date:
    """Easter Sunday in the Gregorian calendar (the anonymous algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _monday_on_or_after(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7)


def _last_monday(year: int, month: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=last.weekday())


def _next_free_weekday(day: date, taken: set[date]) -> date:
    while day.weekday() >= 5 or day in taken:
        day += timedelta(days=1)
    return day


@lru_cache(maxsize=256)
def xlon_holidays(year: int) -> dict[date, str]:
    """The weekdays of ``year`` on which the London Stock Exchange is closed, with their names."""
    easter = easter_sunday(year)
    fixed: dict[date, str] = {
        easter - timedelta(days=2): "Good Friday",
        easter + timedelta(days=1): "Easter Monday",
        _EARLY_MAY_MOVED.get(year, _monday_on_or_after(date(year, 5, 1))): "the early May bank holiday",
        _SPRING_MOVED.get(year, _last_monday(year, 5)): "the spring bank holiday",
        _last_monday(year, 8): "the summer bank holiday",
    }
    taken = set(fixed)
    for day, name in (
        (date(year, 1, 1), "New Year's Day"),
        (date(year, 12, 25), "Christmas Day"),
        (date(year, 12, 26), "Boxing Day"),
    ):
        observed = _next_free_weekday(day, taken)
        taken.add(observed)
        fixed[observed] = name if observed == day else f"{name} (substitute day)"
    fixed.update({day: name for day, name in _ONE_OFF.items() if day.year == year})
    return dict(sorted(fixed.items()))


def closed_because(day: date, exchange: str = XLON) -> str | None:
    """Why ``exchange`` does not trade on ``day`` (a weekend or a holiday), or None when it does.
    Exchanges other than XLON are taken to trade every weekday."""
    if day.weekday() >= 5:
        return "a Saturday" if day.weekday() == 5 else "a Sunday"
    if exchange.upper() == XLON:
        return xlon_holidays(day.year).get(day)
    return None


def is_trading_day(day: date, exchange: str = XLON) -> bool:
    return closed_because(day, exchange) is None


def holidays_between(earlier: date, later: date, exchange: str = XLON) -> list[date]:
    """The weekday holidays of ``exchange`` after ``earlier`` up to and including ``later``."""
    if exchange.upper() != XLON or later <= earlier:
        return []
    return [
        day
        for year in range(earlier.year, later.year + 1)
        for day in xlon_holidays(year)
        if earlier < day <= later
    ]
