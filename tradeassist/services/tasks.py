"""Task definitions: add, list, enable and disable them, and say which slot of each is due.

* A task is PORTFOLIO-scoped (``--portfolio``) or GLOBAL. The kinds that recommend
  (``core.enums.TRADING_KINDS``) need a portfolio; only the bootstrap admin adds or changes
  GLOBAL tasks.
* The schedule (CRON or RRULE, read in the task's time zone, Europe/London by default) and
  the kind's ``module_config`` are checked when the task is added.
* **Due**: the latest slot at or before ``now`` that is after the task's last *scheduled*
  claim (or, never run, after its creation). Earlier missed slots collapse into it; how many
  is reported with the slot. Manual runs (``tasks run``) do not move the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..core.enums import ScheduleType, TaskKind, TaskScope
from ..core.errors import AccessDenied, AlreadyExists, NotFound, ValidationError
from ..core.timeutil import ensure_utc
from ..db.models import Portfolio, TaskDefinition, TaskRunClaim, User
from . import audit, household, task_kinds
from .access import accessible_portfolios, portfolio_for, require_access
from .schedule import DueSlot, Schedule, parse_schedule
from .strategy_versions import get_version, scope_of


@dataclass(frozen=True)
class DueTask:
    task: TaskDefinition
    due: DueSlot


def schedule_of(task: TaskDefinition) -> Schedule:
    return parse_schedule(task.schedule_type, task.schedule_expr, task.timezone)


def get_task(session: Session, name: str) -> TaskDefinition:
    task = session.exec(select(TaskDefinition).where(TaskDefinition.name == name.strip())).first()
    if task is None:
        raise NotFound(f"no task named {name!r}")
    return task


def _require_may_change(session: Session, actor: User, task: TaskDefinition, operation: str) -> None:
    if task.portfolio_id is not None:
        portfolio = session.get(Portfolio, task.portfolio_id)
        assert portfolio is not None
        require_access(session, actor, portfolio, operation)
    elif task_kinds.is_household(task.module_config) and not actor.is_bootstrap_admin:
        # A household's task is its owner's: whoever may use every account of its strategy.
        household_access(session, actor, str(task.module_config["strategy"]), operation)
    elif not actor.is_bootstrap_admin:
        raise AccessDenied(
            f"{actor.email} may not {operation}: GLOBAL tasks belong to the bootstrap admin",
            actor_user_id=actor.user_id,
            entity_type="task",
            entity_id=task.task_id,
            operation=operation,
        )


def task_for(session: Session, actor: User, name: str, operation: str) -> TaskDefinition:
    """Look a task up by name and check the actor may act on it."""
    task = get_task(session, name)
    _require_may_change(session, actor, task, operation)
    return task


def household_access(session: Session, actor: User, strategy: str, operation: str) -> None:
    """The actor may use every portfolio of strategy ``strategy``'s scope (else
    ``AccessDenied`` naming the first it may not, audited)."""
    for portfolio in scope_of(session, get_version(session, strategy)):
        require_access(session, actor, portfolio, operation)


def _household_config(
    session: Session, actor: User, kind: TaskKind, strategy: str, config: dict[str, Any] | str | None
) -> dict[str, Any]:
    """A household task's module_config: ``config`` (JSON text or a dict) with the strategy
    named; the strategy must make household recommendations for the actor, and every
    contribution must name one of its accounts."""
    raw = task_kinds.parse_raw(config)
    if raw.get("strategy", strategy) != strategy:
        raise ValidationError(
            f"--config names strategy {raw['strategy']!r}, --strategy {strategy!r}: give it once"
        )
    stored = task_kinds.validate_config(kind, {**raw, "strategy": strategy})
    found = household.household_of(session, actor, strategy, "add tasks")
    household.contributions_for(found, household.parse_contributions(stored.get("contributions")))
    return stored


def _scope(
    session: Session, actor: User, kind: TaskKind, portfolio: str | None
) -> tuple[TaskScope, int | None]:
    """A new task's scope: the portfolio named (the actor needs access to it), else GLOBAL,
    which a kind that recommends cannot be and only the bootstrap admin may add."""
    if portfolio is not None and portfolio.strip():
        chosen = portfolio_for(session, actor, portfolio.strip(), "add tasks")
        return TaskScope.PORTFOLIO, chosen.portfolio_id
    if task_kinds.SPECS[kind].needs_portfolio:
        raise ValidationError(f"a {kind.value} task needs --portfolio")
    if not actor.is_bootstrap_admin:
        raise AccessDenied(
            f"{actor.email} may not add GLOBAL tasks (name a --portfolio)",
            actor_user_id=actor.user_id,
            entity_type="task",
            operation="add tasks",
        )
    return TaskScope.GLOBAL, None


def add_task(
    session: Session,
    *,
    actor: User,
    name: str,
    kind: TaskKind | str,
    schedule_type: ScheduleType | str,
    schedule_expr: str,
    portfolio: str | None = None,
    config: dict[str, Any] | str | None = None,
    timezone: str | None = None,
    enabled: bool = True,
    strategy: str | None = None,
) -> TaskDefinition:
    """Add a task. ``strategy`` (a strategy version's label) makes it a household's task: a
    GLOBAL MONTHLY_ALLOC or QUARTERLY_REBAL over every account of the strategy, solved together
    (``services.household``), which the owner of those accounts may add."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError("task name: 1 to 200 characters")
    task_kind = task_kinds.parse_kind(kind)
    if strategy is not None and strategy.strip():
        if portfolio is not None and portfolio.strip():
            raise ValidationError(
                "give --portfolio (one account's task) or --strategy (a household's), not both"
            )
        scope, portfolio_id = TaskScope.GLOBAL, None
        schedule = parse_schedule(schedule_type, schedule_expr, timezone)
        module_config = _household_config(session, actor, task_kind, strategy.strip(), config)
    else:
        scope, portfolio_id = _scope(session, actor, task_kind, portfolio)  # refuse before anything else
        schedule = parse_schedule(schedule_type, schedule_expr, timezone)
        module_config = task_kinds.validate_config(task_kind, config)
    if session.exec(select(TaskDefinition).where(TaskDefinition.name == name)).first() is not None:
        raise AlreadyExists(f"a task named {name!r} exists already")
    assert actor.user_id is not None  # read from the database
    task = TaskDefinition(
        scope=scope,
        portfolio_id=portfolio_id,
        name=name,
        schedule_type=schedule.schedule_type,
        schedule_expr=schedule.expr,
        timezone=schedule.timezone,
        task_kind=task_kind,
        module_config=module_config,
        is_enabled=enabled,
        created_by_user_id=actor.user_id,
    )
    session.add(task)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="TASK_ADDED",
        entity_type="task",
        entity_id=task.task_id,
        details={
            "name": name,
            "kind": task_kind.value,
            "scope": scope.value,
            "portfolio_id": portfolio_id,
            "schedule_type": schedule.schedule_type.value,
            "schedule_expr": schedule.expr,
            "timezone": schedule.timezone,
            "module_config": module_config,
        },
    )
    return task


def set_enabled(session: Session, *, actor: User, name: str, enabled: bool) -> TaskDefinition:
    task = task_for(session, actor, name, "enable tasks" if enabled else "disable tasks")
    if task.is_enabled == enabled:
        return task
    task.is_enabled = enabled
    session.add(task)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="TASK_ENABLED" if enabled else "TASK_DISABLED",
        entity_type="task",
        entity_id=task.task_id,
        details={"name": task.name},
    )
    return task


# --------------------------------------------------------------------------------------------
# Due slots
# --------------------------------------------------------------------------------------------
def last_scheduled_slot(session: Session, task_id: int) -> datetime | None:
    """The latest slot the schedule claimed for the task (manual runs left out)."""
    value = session.exec(
        select(func.max(TaskRunClaim.slot_at)).where(
            TaskRunClaim.task_id == task_id,
            TaskRunClaim.manual == False,  # noqa: E712 (SQL, not Python)
        )
    ).one()
    return ensure_utc(value) if value is not None else None


def due_slot(session: Session, task: TaskDefinition, now: datetime) -> DueSlot | None:
    """The slot of ``task`` to run at ``now`` (None: nothing due). Disabled tasks are never due."""
    if not task.is_enabled:
        return None
    assert task.task_id is not None  # read from the database
    last = last_scheduled_slot(session, task.task_id)
    after = last if last is not None else ensure_utc(task.created_at)
    return schedule_of(task).due(after=after, now=ensure_utc(now))


def next_due(session: Session, task: TaskDefinition, now: datetime) -> datetime | None:
    """When the task is next due: its due slot if one is waiting, else its next slot after
    ``now``; None for a disabled task or an ended schedule."""
    if not task.is_enabled:
        return None
    waiting = due_slot(session, task, now)
    if waiting is not None:
        return waiting.slot_at
    return schedule_of(task).next_after(ensure_utc(now))


def enabled_task_ids(session: Session) -> list[int]:
    query = select(TaskDefinition.task_id).where(TaskDefinition.is_enabled == True)  # noqa: E712
    return [i for i in session.exec(query.order_by(col(TaskDefinition.task_id))).all() if i is not None]


def due_tasks(session: Session, *, now: datetime) -> list[DueTask]:
    """Every enabled task with a slot due at ``now``, by task id."""
    found = []
    for task in session.exec(
        select(TaskDefinition)
        .where(TaskDefinition.is_enabled == True)  # noqa: E712
        .order_by(col(TaskDefinition.task_id))
    ).all():
        due = due_slot(session, task, now)
        if due is not None:
            found.append(DueTask(task, due))
    return found


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------
def visible_tasks(session: Session, actor: User) -> list[tuple[TaskDefinition, str | None]]:
    """Tasks of the portfolios the actor may use, and every GLOBAL task, with portfolio names."""
    names = {p.portfolio_id: p.name for p in accessible_portfolios(session, actor)}
    tasks = session.exec(select(TaskDefinition).order_by(col(TaskDefinition.task_id))).all()
    return [
        (t, names.get(t.portfolio_id) if t.portfolio_id is not None else None)
        for t in tasks
        if t.portfolio_id is None or t.portfolio_id in names
    ]


def task_row(task: TaskDefinition, portfolio: str | None, next_due_at: datetime | None) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "name": task.name,
        "kind": task.task_kind.value,
        "portfolio": portfolio,
        "schedule_type": task.schedule_type.value,
        "schedule_expr": task.schedule_expr,
        "is_enabled": task.is_enabled,
        "next_due": next_due_at,
    }


def list_tasks(session: Session, *, actor: User, now: datetime) -> list[dict[str, Any]]:
    """Every task the actor may see: ``task_id``, ``name``, ``kind``, ``portfolio``,
    ``schedule_type``, ``schedule_expr``, ``is_enabled``, ``next_due`` (UTC)."""
    return [task_row(t, name, next_due(session, t, now)) for t, name in visible_tasks(session, actor)]


def list_due(session: Session, *, actor: User, now: datetime) -> list[dict[str, Any]]:
    """The tasks (of those the actor may see) with a slot due at ``now``."""
    visible = {t.task_id: name for t, name in visible_tasks(session, actor)}
    rows = []
    for item in due_tasks(session, now=now):
        if item.task.task_id not in visible:
            continue
        rows.append(
            {
                "task_id": item.task.task_id,
                "name": item.task.name,
                "kind": item.task.task_kind.value,
                "portfolio": visible[item.task.task_id],
                "slot_at": item.due.slot_at,
                "collapsed": item.due.collapsed,
            }
        )
    return rows
