"""The London Stock Exchange's trading days (issue #18 item 7), checked against an independent
calendar (``exchange_calendars``' XLON) for every weekday from 1995 to 2035, and what they change:
price staleness counts trading days, and a PRICE_REFRESH slot on a closed day is SKIPPED."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from tradeassist.core.enums import RunStatus
from tradeassist.core.timeutil import LONDON, ensure_utc, london_date
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import Alert, Notification, TaskRun, User
from tradeassist.engine.market_calendar import (
    closed_because,
    easter_sunday,
    holidays_between,
    is_trading_day,
    xlon_holidays,
)
from tradeassist.engine.price_quality import staleness
from tradeassist.runs import runner
from tradeassist.services import tasks as task_service


def test_every_weekday_from_1995_to_2035_agrees_with_exchange_calendars() -> None:
    xc = pytest.importorskip("exchange_calendars")
    calendar = xc.get_calendar("XLON", start="1994-12-01", end="2035-12-31")
    sessions = {ts.date() for ts in calendar.sessions}
    day, differ, weekdays = date(1995, 1, 3), [], 0
    while day <= date(2035, 12, 31):
        if day.weekday() < 5:
            weekdays += 1
            if (day in sessions) != is_trading_day(day):
                differ.append(day)
        day += timedelta(days=1)
    assert weekdays > 10_000 and differ == []


def test_the_rules_and_the_one_off_closures_are_named() -> None:
    assert easter_sunday(2024) == date(2024, 3, 31) and easter_sunday(2038) == date(2038, 4, 25)
    assert closed_because(date(2022, 9, 19)) == "the state funeral of Queen Elizabeth II"
    assert closed_because(date(2021, 12, 28)) == "Boxing Day (substitute day)"
    assert closed_because(date(2021, 12, 27)) == "Christmas Day (substitute day)"
    assert closed_because(date(2020, 5, 8)) == "the early May bank holiday"
    assert closed_because(date(2024, 6, 1)) == "a Saturday"
    assert closed_because(date(2024, 12, 24)) is None  # Christmas Eve: a half day, open
    assert closed_because(date(2024, 12, 25), "XNAS") is None  # other exchanges: weekdays only
    assert len(xlon_holidays(2024)) == 8


def test_staleness_counts_the_exchanges_trading_days() -> None:
    # Last close Tuesday 24 December 2024; Friday 3 January 2025 is 8 weekdays on, 5 trading days.
    closed = holidays_between(date(2024, 12, 24), date(2025, 1, 3))
    assert closed == [date(2024, 12, 25), date(2024, 12, 26), date(2025, 1, 1)]
    assert staleness(date(2024, 12, 24), date(2025, 1, 3), 5) is True
    assert staleness(date(2024, 12, 24), date(2025, 1, 3), 5, holidays=closed) is False


# --------------------------------------------------------------------------------------------
# A PRICE_REFRESH slot on a day the exchange is shut is SKIPPED
# --------------------------------------------------------------------------------------------
def test_a_price_refresh_slot_on_an_exchange_holiday_is_skipped_with_its_reason(
    engine: Engine, db_url: str, admin: User, tmp_path: Path
) -> None:
    with unit_of_work(engine) as s:
        task = task_service.add_task(
            s,
            actor=s.get(User, admin.user_id),
            name="evening prices",
            kind="PRICE_REFRESH",
            schedule_type="CRON",
            schedule_expr="0 18 * * *",
            portfolio=None,
            config=None,
        )
        created = ensure_utc(task.created_at)
    holiday = london_date(created) + timedelta(days=1)
    while closed_because(holiday) is None or holiday.weekday() >= 5:
        holiday += timedelta(days=1)
    evening = datetime.combine(holiday, time(19), tzinfo=LONDON)
    outcomes = runner.run_due(engine, now=evening, db_url=db_url, reports=tmp_path / "reports")
    assert [o.status for o in outcomes] == [RunStatus.SKIPPED]
    [outcome] = outcomes
    assert outcome.notebook_path is None and not (tmp_path / "reports").exists()
    with unit_of_work(engine, readonly=True) as s:
        run = s.get(TaskRun, outcome.run_id)
        reason = run.output_summary["skipped_because"]
        assert run.status is RunStatus.SKIPPED and run.error_message is None
        assert reason.startswith(f"no new prices to fetch: the London Stock Exchange is closed on {holiday}")
        assert closed_because(holiday) in reason
        assert s.exec(select(Alert)).all() == [] and s.exec(select(Notification)).all() == []
    assert runner.run_due(engine, now=evening, db_url=db_url, reports=tmp_path / "reports") == []  # done
    # Asked for by hand, the task runs that day all the same: the skip is the schedule's only.
    with unit_of_work(engine, readonly=True) as s:
        actor = s.get(User, admin.user_id)
    by_hand = runner.run_task(
        engine, actor=actor, name="evening prices", db_url=db_url, at=evening, reports=tmp_path / "reports"
    )
    assert by_hand.status is RunStatus.SUCCESS, by_hand.error
