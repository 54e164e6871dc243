"""Task definitions: checked on entry, scoped, audited; which slot of each is due."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from tradeassist.core.enums import TaskScope
from tradeassist.core.errors import AccessDenied, AlreadyExists, ValidationError
from tradeassist.core.timeutil import ensure_utc
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, TaskDefinition, TaskRunClaim, User
from tradeassist.services import identity, portfolios
from tradeassist.services import tasks as task_service


@pytest.fixture
def ann(engine: Engine, admin: User) -> User:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        user = identity.add_user(s, actor=actor, email="ann@example.com", password="ann-password-1")
        portfolios.add_portfolio(s, actor=user, name="Ann ISA", broker="AJBell", tax_treatment="ISA")
        portfolios.add_portfolio(s, actor=actor, name="SIPP", broker="AJBell", tax_treatment="SIPP")
        return user


def _add(engine: Engine, user_id: int, **kwargs) -> TaskDefinition:  # type: ignore[no-untyped-def]
    args = {"name": "t", "kind": "ALERT_ONLY", "schedule_type": "CRON", "schedule_expr": "0 7 * * *"} | kwargs
    with unit_of_work(engine) as s:
        return task_service.add_task(s, actor=s.get(User, user_id), **args)


def test_add_checks_and_normalises_and_audits(engine: Engine, admin: User, ann: User) -> None:
    monthly = _add(
        engine,
        ann.user_id,
        name="ann monthly",
        kind="monthly_alloc",
        schedule_type="rrule",
        schedule_expr="FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9",
        portfolio="Ann ISA",
        config='{"contribution": 500.50}',
    )
    assert monthly.scope is TaskScope.PORTFOLIO and monthly.timezone == "Europe/London"
    assert monthly.module_config == {"contribution": "500.50"}  # exact, as text
    glob = _add(engine, admin.user_id, name="prices", kind="PRICE_REFRESH", schedule_expr="30  18 * * 1-5")
    assert glob.scope is TaskScope.GLOBAL and glob.portfolio_id is None
    assert glob.schedule_expr == "30 18 * * 1-5"
    with unit_of_work(engine, readonly=True) as s:
        stored = s.get(TaskDefinition, monthly.task_id)
        assert stored is not None and stored.module_config == {"contribution": "500.50"}
        audits = s.exec(select(AuditEvent).where(AuditEvent.action == "TASK_ADDED")).all()
        assert sorted(a.details["name"] for a in audits) == ["ann monthly", "prices"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "DAILY_MAGIC"}, ValidationError, "task kind"),
        ({"schedule_expr": "0 7 * *"}, ValidationError, "5 fields"),
        ({"schedule_type": "RRULE", "schedule_expr": "FREQ=NEVER"}, ValidationError, "rrule"),
        ({"kind": "WEEKLY_REVIEW", "portfolio": None}, ValidationError, "needs --portfolio"),
        ({"kind": "MONTHLY_ALLOC", "portfolio": "Ann ISA"}, ValidationError, "contribution: Field required"),
        (
            {"kind": "MONTHLY_ALLOC", "portfolio": "Ann ISA", "config": {"contribution": "-5"}},
            ValidationError,
            "greater than 0",
        ),
        ({"config": {"max_age_business_days": 3, "colour": "red"}}, ValidationError, "colour"),
        ({"config": "{not json"}, ValidationError, "not JSON"),
        ({"timezone": "Europe/Londres"}, ValidationError, "IANA"),
        ({"portfolio": "SIPP"}, AccessDenied, "may not add tasks"),
        ({"portfolio": None}, AccessDenied, "GLOBAL"),
        ({"portfolio": "Ann ISA", "name": "taken"}, AlreadyExists, "exists already"),
    ],
)
def test_bad_tasks_are_refused_and_nothing_is_written(
    engine: Engine, admin: User, ann: User, kwargs, error, message
):  # type: ignore[no-untyped-def]
    _add(engine, ann.user_id, name="taken", portfolio="Ann ISA")
    with pytest.raises(error, match=message):
        _add(engine, ann.user_id, **({"name": "new", "portfolio": "Ann ISA"} | kwargs))
    with unit_of_work(engine, readonly=True) as s:
        assert [t.name for t in s.exec(select(TaskDefinition)).all()] == ["taken"]


def test_due_slots_collapse_and_follow_the_claims(engine: Engine, admin: User) -> None:
    task = _add(engine, admin.user_id, name="daily", schedule_expr="0 7 * * *")
    created = ensure_utc(task.created_at)
    schedule = task_service.schedule_of(task)
    now = created + timedelta(days=4, hours=1)
    expected = schedule.slots_between(created, now)
    with unit_of_work(engine, readonly=True) as s:
        stored = s.get(TaskDefinition, task.task_id)
        assert task_service.due_slot(s, stored, created) is None  # nothing before creation
        due = task_service.due_slot(s, stored, now)
        assert due is not None and due.slot_at == expected[-1] and due.collapsed == len(expected) - 1
        rows = task_service.list_due(s, actor=s.get(User, admin.user_id), now=now)
        assert [(r["name"], r["slot_at"], r["collapsed"]) for r in rows] == [
            ("daily", expected[-1], len(expected) - 1)
        ]
    # A manual run (tasks run) does not move the schedule; a scheduled claim does.
    with unit_of_work(engine) as s:
        s.add(TaskRunClaim(task_id=task.task_id, slot_at=now, manual=True))
    with unit_of_work(engine, readonly=True) as s:
        assert task_service.due_slot(s, s.get(TaskDefinition, task.task_id), now).slot_at == expected[-1]
    with unit_of_work(engine) as s:
        s.add(TaskRunClaim(task_id=task.task_id, slot_at=expected[-1]))
    with unit_of_work(engine, readonly=True) as s:
        stored = s.get(TaskDefinition, task.task_id)
        assert task_service.last_scheduled_slot(s, task.task_id) == expected[-1]
        assert task_service.due_slot(s, stored, now) is None
        later = task_service.due_slot(s, stored, now + timedelta(days=1))
        assert (
            later is not None and later.slot_at == expected[-1] + timedelta(days=1) and later.collapsed == 0
        )
        assert task_service.next_due(s, stored, now) == schedule.next_after(now)


def test_disabled_tasks_are_never_due_and_listing_respects_access(
    engine: Engine, admin: User, ann: User
) -> None:
    _add(engine, admin.user_id, name="global alerts")
    _add(engine, admin.user_id, name="sipp alerts", portfolio="SIPP")
    _add(engine, ann.user_id, name="ann alerts", portfolio="Ann ISA")
    with unit_of_work(engine) as s:
        task_service.set_enabled(s, actor=s.get(User, ann.user_id), name="ann alerts", enabled=False)
    with pytest.raises(AccessDenied), unit_of_work(engine) as s:
        task_service.set_enabled(s, actor=s.get(User, ann.user_id), name="global alerts", enabled=False)
    with unit_of_work(engine, readonly=True) as s:
        task = task_service.get_task(s, "ann alerts")
        far = ensure_utc(task.created_at) + timedelta(days=30)
        assert task_service.due_slot(s, task, far) is None
        rows = task_service.list_tasks(s, actor=s.get(User, ann.user_id), now=far)
        assert [(r["name"], r["portfolio"], r["is_enabled"], r["next_due"]) for r in rows][1] == (
            "ann alerts",
            "Ann ISA",
            False,
            None,
        )
        assert [r["name"] for r in rows] == ["global alerts", "ann alerts"]  # not the SIPP's
        assert set(rows[0]) == {
            "task_id",
            "name",
            "kind",
            "portfolio",
            "schedule_type",
            "schedule_expr",
            "is_enabled",
            "next_due",
        }
        everything = task_service.list_tasks(s, actor=s.get(User, admin.user_id), now=far)
        assert [r["name"] for r in everything] == ["global alerts", "sipp alerts", "ann alerts"]
        assert [t.task.name for t in task_service.due_tasks(s, now=far)] == ["global alerts", "sipp alerts"]
        actions = [a.action for a in s.exec(select(AuditEvent).order_by(AuditEvent.audit_event_id)).all()]
        assert actions.count("TASK_DISABLED") == 1
