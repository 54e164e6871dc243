"""When a task is due: CRON (croniter) and RRULE (dateutil) schedules, pure (no clock, no DB).

A schedule is read as wall-clock times in its time zone (Europe/London by default); every
instant it yields is an aware UTC ``datetime``, which is how slots are stored and compared.

Daylight saving, the same way classic cron treats it:

* **Spring forward** (London 01:00 GMT jumps to 02:00 BST): a time inside the skipped hour runs
  at the jump itself (01:00 UTC), once, even if several skipped times fell in it.
* **Fall back** (02:00 BST returns to 01:00 GMT): each wall-clock time runs once, at its first
  occurrence; the repeated hour is not run a second time.

So a ``0 7 * * 1`` task runs at 07:00 London every Monday: 07:00 UTC in winter, 06:00 UTC in
summer, and two slots are never the same instant.

An RRULE without a ``DTSTART`` is anchored at 2024-01-01 00:00 (a Monday, the first of a
month, quarter and year) in the schedule's zone: ``FREQ=WEEKLY`` alone means Mondays at
midnight, ``FREQ=MONTHLY;INTERVAL=3`` the first of January, April, July and October. A
``DTSTART`` must be a local time (no ``Z``, no ``TZID``): the schedule's zone applies.

Missed slots collapse: ``Schedule.due(after, now)`` is the latest slot in ``(after, now]``,
with the number of earlier slots in that interval that it stands for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from dateutil.rrule import rrulestr

from ..core.enums import ScheduleType
from ..core.errors import ValidationError

DEFAULT_TIMEZONE = "Europe/London"
RRULE_ANCHOR = datetime(2024, 1, 1)
# Slots counted one by one when collapsing missed ones; beyond this the count is a lower bound.
MAX_COUNTED_SLOTS = 10_000
# Wall-clock time and UTC differ by well under a day anywhere, DST included.
_MARGIN = timedelta(days=1)
_CRON_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


@dataclass(frozen=True)
class DueSlot:
    """The slot to run now, and how many earlier missed slots it stands for."""

    slot_at: datetime
    collapsed: int
    collapsed_exact: bool = True


@dataclass(frozen=True)
class Schedule:
    schedule_type: ScheduleType
    expr: str
    timezone: str = DEFAULT_TIMEZONE

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # ----------------------------------------------------------------------------------------
    def _wall_times(self, start: datetime) -> Iterator[datetime]:
        """Naive local times of the schedule, strictly after naive ``start``, in order."""
        if self.schedule_type is ScheduleType.CRON:
            it = croniter(self.expr, start)
            while True:
                yield it.get_next(datetime)
        else:
            rule = rrulestr(self.expr, dtstart=RRULE_ANCHOR)
            current = rule.after(start)
            while current is not None:
                yield current
                current = rule.after(current)

    def _to_utc(self, wall: datetime) -> datetime:
        zone = self.zone
        first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if first.astimezone(zone).replace(tzinfo=None) == wall:
            return first  # exists (an ambiguous time takes its first occurrence)
        # A time in a spring-forward gap: the instant the clock jumps past it.
        low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the jump
        high = first  # after the jump
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(zone).replace(tzinfo=None) >= wall:
                high = middle
            else:
                low = middle
        return high.replace(microsecond=0)

    def slots_after(self, after: datetime) -> Iterator[datetime]:
        """Every slot strictly after ``after`` (aware), in UTC, strictly increasing."""
        after = _aware(after)
        start = after.astimezone(self.zone).replace(tzinfo=None) - _MARGIN
        previous: datetime | None = None
        for wall in self._wall_times(start):
            slot = self._to_utc(wall)
            if slot <= after or slot == previous:
                continue
            previous = slot
            yield slot

    def next_after(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``; None when the schedule has ended."""
        return next(self.slots_after(after), None)

    def slots_between(self, after: datetime, until: datetime) -> list[datetime]:
        """Slots in ``(after, until]``."""
        until = _aware(until)
        found = []
        for slot in self.slots_after(after):
            if slot > until:
                break
            found.append(slot)
        return found

    def latest_at_or_before(self, now: datetime, *, not_before: datetime) -> datetime | None:
        """The latest slot in ``(not_before, now]``, looking back in widening windows."""
        now, not_before = _aware(now), _aware(not_before)
        window = timedelta(days=2)
        while True:
            start = max(not_before, now - window)
            latest = None
            for slot in self.slots_after(start):
                if slot > now:
                    break
                latest = slot
            if latest is not None or start == not_before:
                return latest
            window *= 8

    def due(self, *, after: datetime, now: datetime) -> DueSlot | None:
        """The latest slot in ``(after, now]`` standing for every earlier one; None if none."""
        after, now = _aware(after), _aware(now)
        if now <= after:
            return None
        latest: datetime | None = None
        count = 0
        for slot in self.slots_after(after):
            if slot > now:
                break
            latest = slot
            count += 1
            if count > MAX_COUNTED_SLOTS:
                latest = self.latest_at_or_before(now, not_before=after)
                assert latest is not None
                return DueSlot(slot_at=latest, collapsed=MAX_COUNTED_SLOTS, collapsed_exact=False)
        if latest is None:
            return None
        return DueSlot(slot_at=latest, collapsed=count - 1)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    return value.astimezone(UTC)


def parse_schedule(schedule_type: ScheduleType | str, expr: str, timezone: str | None = None) -> Schedule:
    """A checked schedule, or a ``ValidationError`` saying what is wrong with it."""
    try:
        kind = ScheduleType(str(schedule_type).upper())
    except ValueError:
        raise ValidationError(f"schedule type {schedule_type!r}: expected CRON or RRULE") from None
    expr = (expr or "").strip()
    if not expr:
        raise ValidationError(f"{kind.value} schedule: empty expression")
    zone_name = (timezone or DEFAULT_TIMEZONE).strip()
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"time zone {zone_name!r}: not an IANA zone such as Europe/London") from None
    if kind is ScheduleType.CRON:
        expr = " ".join(expr.split())
        fields = expr.split(" ")
        if not (len(fields) == 5 or (len(fields) == 1 and fields[0].lower() in _CRON_ALIASES)):
            raise ValidationError(
                f"cron {expr!r}: expected 5 fields (minute hour day-of-month month day-of-week) "
                "or an alias such as @daily"
            )
        if not croniter.is_valid(expr):
            raise ValidationError(f"cron {expr!r}: not a valid cron expression")
    else:
        _check_rrule(expr)
    schedule = Schedule(kind, expr, zone_name)
    probe = datetime(2024, 1, 1, tzinfo=UTC)
    try:
        schedule.next_after(probe)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValidationError(f"{kind.value} {expr!r}: {exc}") from None
    return schedule


def _check_rrule(expr: str) -> None:
    upper = expr.upper()
    if "TZID" in upper or any(
        line.strip().upper().startswith("DTSTART") and line.strip().upper().endswith("Z")
        for line in expr.splitlines()
    ):
        raise ValidationError(
            f"rrule {expr!r}: DTSTART must be a local time (no Z, no TZID); the task's time zone applies"
        )
    try:
        rule = rrulestr(expr, dtstart=RRULE_ANCHOR)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"rrule {expr!r}: {exc}") from None
    if rule.after(RRULE_ANCHOR - timedelta(days=1), inc=True) is None:
        raise ValidationError(f"rrule {expr!r}: never occurs")
