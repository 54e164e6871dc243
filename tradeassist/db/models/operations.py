"""§6 Operations: task definitions, slot claims, runs and their input snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Integer, SmallInteger, String, UniqueConstraint, false, text
from sqlmodel import Field, SQLModel

from ...core.enums import RunStatus, ScheduleType, TaskKind, TaskScope
from .base import enum_field, fk_field, id_field, json_field, text_field, ts_field


class TaskDefinition(SQLModel, table=True):
    """Added column: ``timezone``, the zone the schedule is read in (Europe/London by default)."""

    __tablename__ = "task_definitions"

    task_id: int | None = id_field()
    scope: TaskScope = enum_field(TaskScope)
    portfolio_id: int | None = fk_field("portfolios.portfolio_id", nullable=True)
    name: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    schedule_type: ScheduleType = enum_field(ScheduleType)
    schedule_expr: str = Field(sa_column=Column(String(500), nullable=False))
    timezone: str = Field(default="Europe/London", sa_column=Column(String(64), nullable=False))
    task_kind: TaskKind = enum_field(TaskKind)
    module_config: dict[str, Any] = json_field()
    is_enabled: bool = Field(default=True, nullable=False)
    created_by_user_id: int = fk_field("users.user_id")
    created_at: datetime = ts_field(now=True)


class TaskRunClaim(SQLModel, table=True):
    """Added table: one row per attempt at a (task, slot), taken by a runner; its id becomes
    the run id.

    The unique key (task, slot, attempt) makes a slot run at most once per attempt, whichever
    process or machine claims it first, on SQLite and on PostgreSQL alike. Added column
    ``manual``: the claim of a run a person asked for (``tasks run``), whose ``slot_at`` is the
    time asked for, not a schedule slot; the schedule's catch-up ignores manual claims.

    Leases (migration 0009): ``worker`` (``host:pid``) and ``worker_process`` (the process's
    boot, pid namespace, pid and start time, for the liveness check on the same machine) say
    who holds the claim; ``lease_expires_at`` is the one column that changes: the worker renews
    it while its run executes. A claim with no run whose lease has expired (or whose process is
    gone) is a dead run: it is recorded FAILED, and retried once as ``attempt`` 2 of the same
    slot, ``retry_of`` naming the dead run.

    Households (migration 0011): ``member`` is 0 for the claim a runner takes; a household
    task's run records one run per account, and the runs after the first are claims of the same
    (task, slot, attempt) with ``member`` 1, 2, ..., written with their runs (never taken by a
    runner, never RUNNING). The unique key is (task, slot, attempt, member).
    """

    __tablename__ = "task_run_claims"
    __table_args__ = (
        UniqueConstraint("task_id", "slot_at", "attempt", "member", name="uq_task_slot_attempt_member"),
    )

    run_id: int | None = id_field()
    task_id: int = fk_field("task_definitions.task_id")
    slot_at: datetime = ts_field()
    claimed_at: datetime = ts_field(now=True)
    worker: str | None = text_field(length=200)
    manual: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    attempt: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default=text("1")))
    retry_of: int | None = fk_field("task_run_claims.run_id", nullable=True)
    worker_process: str | None = text_field(length=200)
    lease_expires_at: datetime | None = ts_field(nullable=True)
    member: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, server_default=text("0")))


class TaskRun(SQLModel, table=True):
    """Written once, when the run ends. Added columns: ``slot_at`` and ``as_of`` (what was run),
    ``notebook_path`` and ``html_path`` (the artefacts), ``error_message`` (redacted).

    ``strategy_version_id`` (nullable; in the data model from the start, filled since strategy
    scopes, migration 0005) is the version that governed the run's portfolio when its inputs
    were read (``strategy.governing_strategy``), the same as the input snapshot's: the review
    of the run's recommendation is made against it, whatever is approved later. NULL for a run
    that read no strategy (prices, alerts, a frozen portfolio, a failure before its inputs).

    ``household_run_id`` (migration 0011): on each run of a household (one run per account of
    a strategy over several accounts, solved together), the id of the household's first run
    (on that run, its own id); NULL on every other run. The runs of a household share their
    task, slot, input hash and input snapshot (the joint one).
    """

    __tablename__ = "task_runs"

    run_id: int = fk_field("task_run_claims.run_id", primary_key=True)
    task_id: int = fk_field("task_definitions.task_id", index=True)
    portfolio_id: int | None = fk_field("portfolios.portfolio_id", nullable=True, index=True)
    strategy_version_id: int | None = fk_field("strategy_versions.strategy_version_id", nullable=True)
    started_at: datetime = ts_field()
    ended_at: datetime = ts_field()
    status: RunStatus = enum_field(RunStatus)
    input_hash: str | None = text_field(length=64)
    output_summary: dict[str, Any] = json_field()
    slot_at: datetime | None = ts_field(nullable=True)
    as_of: datetime | None = ts_field(nullable=True)
    notebook_path: str | None = text_field(length=1000)
    html_path: str | None = text_field(length=1000)
    error_message: str | None = text_field()
    household_run_id: int | None = fk_field("task_runs.run_id", nullable=True, index=True)


class RunInputSnapshot(SQLModel, table=True):
    __tablename__ = "run_input_snapshots"

    run_id: int = fk_field("task_runs.run_id", primary_key=True)
    snapshot_json: dict[str, Any] = json_field()
