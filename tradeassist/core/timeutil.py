"""Time conventions: stored and compared in UTC; dates a person types mean Europe/London."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .errors import ValidationError

_UK_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")

LONDON = ZoneInfo("Europe/London")


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def end_of_london_day(day: date) -> datetime:
    """The last instant of ``day`` in Europe/London, in UTC (what ``--as-of DATE`` means)."""
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON)
    return (next_midnight - timedelta(microseconds=1)).astimezone(UTC)


def parse_as_of(text: str | None) -> datetime:
    """``--as-of``: a date means the end of that day in London; a timestamp is taken as given.

    A date is ``YYYY-MM-DD`` or the UK's ``DD/MM/YYYY`` (as broker statements write it:
    ``30/04/2024`` is the 30th of April). None means now.
    """
    if text is None or not text.strip():
        return utcnow()
    text = text.strip()
    try:
        day = _typed_day(text)
        if day is not None:
            return end_of_london_day(day)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"--as-of: {text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY) or ISO timestamp"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LONDON)
    return parsed.astimezone(UTC)


def parse_day(text: str, option: str = "date") -> date:
    """A date typed by a person: ``YYYY-MM-DD`` or the UK's ``DD/MM/YYYY`` (``option`` names
    the option in the error)."""
    text = text.strip()
    try:
        day = _typed_day(text)
        return day if day is not None else date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{option}: {text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)") from None


def _typed_day(text: str) -> date | None:
    """``DD/MM/YYYY`` or ``YYYY-MM-DD`` as a date; None for other text; ``ValueError`` for an
    impossible date in either form."""
    uk = _UK_DATE.fullmatch(text)
    if uk:
        day, month, year = (int(part) for part in uk.groups())
        return date(year, month, day)
    return date.fromisoformat(text) if len(text) == 10 else None


def business_days_between(earlier: date, later: date) -> int:
    """Weekdays after ``earlier`` up to and including ``later`` (0 when not later)."""
    if later <= earlier:
        return 0
    days = (later - earlier).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(1, rest + 1):
        if (earlier + timedelta(days=weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def london_date(value: datetime) -> date:
    return ensure_utc(value).astimezone(LONDON).date()


def uk_date(day: date | datetime) -> str:
    """A day as people in the UK write it: ``30/08/2023`` (a timestamp: its London day)."""
    if isinstance(day, datetime):
        day = london_date(day)
    return f"{day:%d/%m/%Y}"


def uk_moment(value: datetime) -> str:
    """An instant as a person in the UK reads it, in London time: ``30 April 2024, end of day``
    for the last instant of a London day (what ``--as-of DATE`` means), else
    ``7 December 2026, 15:21``."""
    local = ensure_utc(value).astimezone(LONDON)
    day = f"{local.day} {local:%B %Y}"
    if ensure_utc(value) == end_of_london_day(local.date()):
        return f"{day}, end of day"
    return f"{day}, {local:%H:%M}"
