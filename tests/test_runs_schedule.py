"""Schedules: CRON and RRULE read in Europe/London, compared in UTC, across both DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeassist.core.enums import ScheduleType
from tradeassist.core.errors import ValidationError
from tradeassist.services.schedule import MAX_COUNTED_SLOTS, parse_schedule


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def iso(slots: list[datetime]) -> list[str]:
    return [s.strftime("%Y-%m-%d %H:%M") for s in slots]


# 2026: clocks go forward on Sunday 29 March (01:00 GMT -> 02:00 BST) and back on Sunday
# 25 October (02:00 BST -> 01:00 GMT).
SPRING, AUTUMN = utc(2026, 3, 29), utc(2026, 10, 25)


def test_a_weekly_cron_is_london_time_winter_and_summer() -> None:
    weekly = parse_schedule("CRON", "0 7 * * 1")
    assert weekly.timezone == "Europe/London"
    slots = weekly.slots_between(utc(2026, 3, 15), utc(2026, 4, 7))
    # 07:00 GMT is 07:00 UTC; 07:00 BST is 06:00 UTC.
    assert iso(slots) == ["2026-03-16 07:00", "2026-03-23 07:00", "2026-03-30 06:00", "2026-04-06 06:00"]
    autumn = weekly.slots_between(utc(2026, 10, 18), utc(2026, 11, 3))
    assert iso(autumn) == ["2026-10-19 06:00", "2026-10-26 07:00", "2026-11-02 07:00"]


def test_spring_forward_a_skipped_time_runs_once_at_the_jump() -> None:
    daily = parse_schedule("CRON", "30 1 * * *")
    slots = daily.slots_between(SPRING - timedelta(days=2), SPRING + timedelta(days=2))
    # 01:30 does not exist on 29 March: it runs when the clock jumps (01:00 UTC = 02:00 BST).
    assert iso(slots) == ["2026-03-27 01:30", "2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30"]
    half_hourly = parse_schedule("CRON", "*/30 * * * *")
    around = half_hourly.slots_between(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0))
    # 01:00 and 01:30 local are skipped times: one run at the jump, then 02:30 BST (01:30 UTC).
    assert iso(around) == ["2026-03-29 00:30", "2026-03-29 01:00", "2026-03-29 01:30", "2026-03-29 02:00"]


def test_fall_back_a_repeated_time_runs_once_at_its_first_occurrence() -> None:
    daily = parse_schedule("CRON", "30 1 * * *")
    slots = daily.slots_between(AUTUMN - timedelta(days=2), AUTUMN + timedelta(days=2))
    # 01:30 happens twice on 25 October; it runs at the first (01:30 BST = 00:30 UTC) only.
    assert iso(slots) == ["2026-10-23 00:30", "2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"]
    half_hourly = parse_schedule("CRON", "*/30 * * * *")
    around = half_hourly.slots_between(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 2, 30))
    assert iso(around) == [
        "2026-10-24 23:30",
        "2026-10-25 00:00",
        "2026-10-25 00:30",
        "2026-10-25 02:00",
        "2026-10-25 02:30",
    ]


def test_rrule_across_both_changes() -> None:
    weekly = parse_schedule("RRULE", "FREQ=WEEKLY;BYDAY=MO;BYHOUR=7;BYMINUTE=0;BYSECOND=0")
    assert iso(weekly.slots_between(utc(2026, 3, 20), utc(2026, 4, 1))) == [
        "2026-03-23 07:00",
        "2026-03-30 06:00",
    ]
    assert iso(weekly.slots_between(utc(2026, 10, 20), utc(2026, 10, 28))) == ["2026-10-26 07:00"]
    gap = parse_schedule("RRULE", "RRULE:FREQ=DAILY;BYHOUR=1;BYMINUTE=30;BYSECOND=0")
    assert iso(gap.slots_between(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))) == ["2026-03-29 01:00"]
    assert iso(gap.slots_between(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))) == ["2026-10-25 00:30"]


def test_rrule_anchor_and_dtstart() -> None:
    # No DTSTART: anchored at Monday 2024-01-01 00:00 London.
    weekly = parse_schedule("RRULE", "FREQ=WEEKLY")
    assert iso(weekly.slots_between(utc(2026, 1, 1), utc(2026, 1, 13))) == [
        "2026-01-05 00:00",
        "2026-01-12 00:00",
    ]
    quarterly = parse_schedule("RRULE", "FREQ=MONTHLY;INTERVAL=3")
    assert iso(quarterly.slots_between(utc(2026, 1, 2), utc(2026, 12, 31))) == [
        "2026-03-31 23:00",  # 1 April 00:00 BST
        "2026-06-30 23:00",
        "2026-09-30 23:00",
    ]
    started = parse_schedule("RRULE", "DTSTART:20260105T093000\nRRULE:FREQ=WEEKLY;COUNT=2")
    assert iso(started.slots_between(utc(2026, 1, 1), utc(2027, 1, 1))) == [
        "2026-01-05 09:30",
        "2026-01-12 09:30",
    ]
    assert started.next_after(utc(2026, 2, 1)) is None


def test_another_time_zone() -> None:
    new_york = parse_schedule(ScheduleType.CRON, "0 9 * * *", "America/New_York")
    assert iso(new_york.slots_between(utc(2026, 3, 6), utc(2026, 3, 10))) == [
        "2026-03-06 14:00",
        "2026-03-07 14:00",
        "2026-03-08 13:00",  # US DST began that morning
        "2026-03-09 13:00",
    ]


def test_due_is_the_latest_slot_and_counts_the_collapsed_ones() -> None:
    daily = parse_schedule("CRON", "0 7 * * *")
    after = utc(2026, 1, 5, 7)  # the last slot claimed
    assert daily.due(after=after, now=utc(2026, 1, 5, 12)) is None
    assert daily.due(after=after, now=after) is None
    exactly = daily.due(after=after, now=utc(2026, 1, 6, 7))
    assert exactly is not None and exactly.slot_at == utc(2026, 1, 6, 7) and exactly.collapsed == 0
    missed = daily.due(after=after, now=utc(2026, 1, 9, 8))
    assert missed is not None and missed.slot_at == utc(2026, 1, 9, 7) and missed.collapsed == 3
    assert missed.collapsed_exact


def test_a_long_outage_still_finds_the_latest_slot_quickly() -> None:
    every_minute = parse_schedule("CRON", "* * * * *")
    due = every_minute.due(after=utc(2026, 1, 1), now=utc(2026, 6, 1, 12, 30, 30))
    assert due is not None
    assert due.slot_at == utc(2026, 6, 1, 12, 30)
    assert not due.collapsed_exact and due.collapsed == MAX_COUNTED_SLOTS


@pytest.mark.parametrize(
    ("kind", "expr", "zone", "reason"),
    [
        ("CRON", "0 7 * *", None, "expected 5 fields"),
        ("CRON", "0 7 * * * 2026", None, "expected 5 fields"),
        ("CRON", "61 7 * * *", None, "not a valid cron"),
        ("CRON", "", None, "empty"),
        ("RRULE", "FREQ=SOMETIMES", None, "rrule"),
        ("RRULE", "DTSTART:20260105T093000Z\nRRULE:FREQ=WEEKLY", None, "local time"),
        ("RRULE", "DTSTART;TZID=Europe/Paris:20260105T093000\nRRULE:FREQ=WEEKLY", None, "local time"),
        ("CRON", "0 7 * * *", "Mars/Olympus", "not an IANA zone"),
        ("HOURLY", "0 7 * * *", None, "expected CRON or RRULE"),
    ],
)
def test_bad_schedules_say_why(kind: str, expr: str, zone: str | None, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        parse_schedule(kind, expr, zone)


@settings(max_examples=60, deadline=None)
@given(
    minute=st.sampled_from(["*/15", "0", "30", "5,35"]),
    hour=st.sampled_from(["*", "0-3", "1", "2", "7", "*/2"]),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 25)),
)
def test_slots_strictly_increase_and_fall_on_the_schedule(minute: str, hour: str, start: datetime) -> None:
    schedule = parse_schedule("CRON", f"{minute} {hour} * * *")
    after = start.replace(tzinfo=UTC)
    slots = schedule.slots_between(after, after + timedelta(days=3))
    assert all(s > after for s in slots)
    assert all(b > a for a, b in itertools.pairwise(slots))
    london = schedule.zone
    for slot in slots:
        wall = slot.astimezone(london)
        # Every slot is a scheduled wall time, or the instant a spring jump skipped one.
        assert (
            wall.minute in {0, 15, 30, 45, 5, 35}
            or wall.utcoffset() != (wall - timedelta(hours=1)).utcoffset()
        )
