"""Run records: the rows a task run is made of, read and written for the runner.

* **Claims** (``task_run_claims``): ``lock_task`` locks the task's row (on PostgreSQL
  ``SELECT ... FOR UPDATE SKIP LOCKED``), ``add_claim`` inserts the (task, slot, attempt)
  claim whose ``run_id`` becomes the run's id. Claiming itself (one short transaction per
  claim, what a lost race means) is ``tradeassist.runs.claims``.
* **Leases**: ``renew_lease`` moves a claim's ``lease_expires_at`` (the worker's heartbeat);
  ``unfinished_claims`` are the claims with no run yet (executing, or their worker died), and
  ``unfinished_claim`` one of them. What a lapsed lease means is ``tradeassist.runs.reaping``.
* **What a run is about**: its task, portfolio and owner (``run_context``); the claimed run as
  its task notebook opens it (``claimed_run``); the user the task's work acts as
  (``acting_user``).
* **The run** (``add_run``: ``task_runs`` is append-only, written once when the run has ended)
  and its **input snapshot** (``add_snapshot``).

Past runs are listed, shown and replayed by ``run_history``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from ..core.enums import RunStatus
from ..core.errors import NotFound, ValidationError
from ..core.timeutil import ensure_utc
from ..db.models import Portfolio, RunInputSnapshot, TaskDefinition, TaskRun, TaskRunClaim, User


# --------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------
def lock_task(session: Session, task_id: int) -> TaskDefinition | None:
    """The task's row, locked until the transaction ends; None when another runner holds the
    lock (PostgreSQL skips it) or the task is gone."""
    return session.exec(
        select(TaskDefinition).where(TaskDefinition.task_id == task_id).with_for_update(skip_locked=True)
    ).first()


def add_claim(
    session: Session,
    *,
    task_id: int,
    slot_at: datetime,
    worker: str,
    manual: bool = False,
    worker_process: str | None = None,
    lease_expires_at: datetime | None = None,
    attempt: int = 1,
    retry_of: int | None = None,
    member: int = 0,
) -> int:
    """Insert the claim of (task, slot, attempt) and return its ``run_id``. The unique key
    makes an attempt claimed already an ``IntegrityError``. ``member``: a household's further
    runs (1, 2, ...), claimed as their runs are recorded."""
    row = TaskRunClaim(
        task_id=task_id,
        slot_at=slot_at,
        worker=worker,
        manual=manual,
        worker_process=worker_process,
        lease_expires_at=lease_expires_at,
        attempt=attempt,
        retry_of=retry_of,
        member=member,
    )
    session.add(row)
    session.flush()
    assert row.run_id is not None  # flushed
    return row.run_id


# --------------------------------------------------------------------------------------------
# Leases
# --------------------------------------------------------------------------------------------
def renew_lease(session: Session, run_id: int, until: datetime) -> None:
    """Move the claim's lease to ``until`` (its one mutable column)."""
    session.execute(
        update(TaskRunClaim).where(col(TaskRunClaim.run_id) == run_id).values(lease_expires_at=until)
    )


def _unfinished() -> Any:
    return (
        select(TaskRunClaim)
        .outerjoin(TaskRun, col(TaskRun.run_id) == col(TaskRunClaim.run_id))
        .where(col(TaskRun.run_id).is_(None))
    )


def unfinished_claims(session: Session) -> list[TaskRunClaim]:
    """Claims whose run has not been recorded (executing, or their worker died), oldest first."""
    return list(session.exec(_unfinished().order_by(col(TaskRunClaim.run_id))).all())


def unfinished_claim(session: Session, run_id: int) -> TaskRunClaim | None:
    """The claim ``run_id`` if its run has not been recorded yet."""
    found: TaskRunClaim | None = session.exec(_unfinished().where(col(TaskRunClaim.run_id) == run_id)).first()
    return found


def recorded_run(session: Session, run_id: int) -> TaskRun | None:
    return session.get(TaskRun, run_id)


# --------------------------------------------------------------------------------------------
# What a run is about
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunContext:
    """The task of a run, its portfolio (None for a GLOBAL task) and who is told about it: the
    portfolio's owner, else the task's creator."""

    task: TaskDefinition
    portfolio: Portfolio | None
    owner: User


def run_context(session: Session, task_id: int) -> RunContext:
    task = session.get(TaskDefinition, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    portfolio = session.get(Portfolio, task.portfolio_id) if task.portfolio_id is not None else None
    owner = session.get(User, portfolio.owner_user_id if portfolio else task.created_by_user_id)
    assert owner is not None
    return RunContext(task, portfolio, owner)


@dataclass(frozen=True)
class ClaimedRun:
    """A claimed run as its notebook sees it: the task, the portfolio's name, the slot."""

    run_id: int
    task: TaskDefinition
    portfolio: str | None
    slot_at: datetime
    manual: bool


def claimed_run(session: Session, run_id: int) -> ClaimedRun:
    claim = session.get(TaskRunClaim, run_id)
    if claim is None:
        raise NotFound(f"no claimed run {run_id}: task notebooks are run by `tradeassist tasks`")
    task = session.get(TaskDefinition, claim.task_id)
    assert task is not None
    portfolio = None
    if task.portfolio_id is not None:
        row = session.get(Portfolio, task.portfolio_id)
        portfolio = row.name if row else None
    return ClaimedRun(run_id, task, portfolio, ensure_utc(claim.slot_at), claim.manual)


def acting_user(session: Session, user_id: int) -> User:
    """The user a task's work acts as (the task's creator), who must exist and be enabled."""
    user = session.get(User, user_id)
    if user is None or not user.is_enabled:
        raise ValidationError(f"the task's owner (user {user_id}) is missing or disabled")
    return user


def portfolio_owner(session: Session, portfolio_id: int) -> User:
    """Who is told about a portfolio's recommendation: its owner."""
    portfolio = session.get(Portfolio, portfolio_id)
    if portfolio is None:
        raise NotFound(f"no portfolio with id {portfolio_id}")
    owner = session.get(User, portfolio.owner_user_id)
    assert owner is not None  # the foreign key guarantees it
    return owner


def portfolio_id_named(session: Session, name: str) -> int | None:
    found = session.exec(select(Portfolio).where(Portfolio.name == name)).first()
    return found.portfolio_id if found else None


# --------------------------------------------------------------------------------------------
# The run and its input snapshot
# --------------------------------------------------------------------------------------------
def add_run(
    session: Session,
    *,
    run_id: int,
    task_id: int,
    portfolio_id: int | None,
    strategy_version_id: int | None,
    started_at: datetime,
    ended_at: datetime,
    status: RunStatus,
    input_hash: str,
    output_summary: Mapping[str, Any],
    slot_at: datetime,
    as_of: datetime,
    notebook_path: str | None,
    html_path: str | None,
    error_message: str | None,
    household_run_id: int | None = None,
) -> TaskRun:
    """Write the ended run (flushed: its recommendation and alerts point at it).
    ``household_run_id``: a household's runs, the id of its first run."""
    row = TaskRun(
        run_id=run_id,
        task_id=task_id,
        portfolio_id=portfolio_id,
        strategy_version_id=strategy_version_id,
        started_at=started_at,
        ended_at=ended_at,
        status=status,
        input_hash=input_hash,
        output_summary=dict(output_summary),
        slot_at=slot_at,
        as_of=as_of,
        notebook_path=notebook_path,
        html_path=html_path,
        error_message=error_message,
        household_run_id=household_run_id,
    )
    session.add(row)
    session.flush()
    return row


def add_snapshot(session: Session, run_id: int, snapshot: Mapping[str, Any]) -> None:
    session.add(RunInputSnapshot(run_id=run_id, snapshot_json=dict(snapshot)))
