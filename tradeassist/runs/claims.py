"""Exactly-once slot claims: a runner takes a (task, slot) by inserting its claim row.

Finding what is due and claiming it are apart, so that the write lock is held for moments:

1. **Plan**, in a read-only transaction (no lock on either database): every enabled task's due
   slot at ``now``, computed from its last scheduled claim (``plan_due``). Counting thousands of
   missed slots takes seconds; no other runner waits for it.
2. **Claim**, one short write transaction per slot (``claim_due``): lock the task's row (on
   PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED``, so a runner that finds another one claiming
   this task moves on to the next task; on SQLite ``BEGIN IMMEDIATE`` serialises claimers);
   check that what the plan was computed from (the task's schedule and its last scheduled
   claim) has not changed, else compute the due slot again under the lock; insert the claim.
   ``UNIQUE(task_id, slot_at, attempt)`` decides whatever happens: an ``IntegrityError`` means
   another runner has the slot, and it is skipped quietly.

Each transaction is retried while SQLite says "database is locked" (``locked.retry_locked``).
The rows are read and written by ``services.run_records``.

The claim's ``run_id`` becomes the run's id. The claim names its worker and carries its lease
(``leases``): a runner that dies after claiming leaves a claim without a run, which ``runs
list`` shows RUNNING until the lease lapses; then the next ``run-due`` records it FAILED and
retries the slot once (``reaping``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ..core.errors import AlreadyExists
from ..core.timeutil import ensure_utc, utcnow
from ..db.engine import unit_of_work
from ..db.models import TaskDefinition
from ..services import run_records
from ..services import tasks as task_service
from ..services.schedule import DueSlot
from .leases import Worker, lease_seconds, this_worker
from .locked import retry_locked


@dataclass(frozen=True)
class Claim:
    run_id: int
    task_id: int
    slot_at: datetime
    manual: bool = False
    collapsed: int = 0  # earlier missed slots this one stands for
    collapsed_exact: bool = True
    worker: str | None = None
    attempt: int = 1
    retry_of: int | None = None  # the dead run this one retries
    lease: float | None = None  # seconds; the heartbeat renews the lease by as much


def worker_name() -> str:
    return this_worker().name


def _worker(worker: str | Worker | None) -> Worker:
    """The claiming worker: this process (a bare name keeps this process's identity)."""
    if isinstance(worker, Worker):
        return worker
    here = this_worker()
    return here if worker is None else Worker(worker, here.process)


def lease_until(lease: float) -> datetime:
    return utcnow() + timedelta(seconds=lease)


# --------------------------------------------------------------------------------------------
# Plan, then claim
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """A task's due slot, and what it was computed from."""

    task_id: int
    due: DueSlot
    basis: tuple[Any, ...]


def _basis(session: Session, task: TaskDefinition) -> tuple[Any, ...]:
    assert task.task_id is not None  # read from the database
    return (
        task.is_enabled,
        task.schedule_type,
        task.schedule_expr,
        task.timezone,
        task_service.last_scheduled_slot(session, task.task_id),
    )


def plan_due(engine: Engine, now: datetime) -> list[Planned]:
    """Every enabled task with a slot due at ``now``, by task id (read-only: locks nothing)."""

    def plan() -> list[Planned]:
        with unit_of_work(engine, readonly=True) as session:
            return [
                Planned(item.task.task_id, item.due, _basis(session, item.task))
                for item in task_service.due_tasks(session, now=now)
                if item.task.task_id is not None
            ]

    return retry_locked(plan, what="planning the due runs")


def claim_due(
    engine: Engine,
    task_id: int,
    now: datetime,
    *,
    worker: str | Worker | None = None,
    lease: float | None = None,
    planned: Planned | None = None,
) -> Claim | None:
    """Claim the task's due slot at ``now``; None when nothing is due or another runner has it.
    ``planned``: the slot computed beforehand, used when its basis is unchanged."""
    who = _worker(worker)
    lease = lease_seconds() if lease is None else lease

    def claim() -> Claim | None:
        with unit_of_work(engine) as session:
            task = run_records.lock_task(session, task_id)
            if task is None:
                return None  # locked by another runner (PostgreSQL), or gone
            if planned is not None and planned.basis == _basis(session, task):
                due: DueSlot | None = planned.due
            else:
                due = task_service.due_slot(session, task, now)
            if due is None:
                return None
            run_id = run_records.add_claim(
                session,
                task_id=task_id,
                slot_at=due.slot_at,
                worker=who.name,
                worker_process=who.process,
                lease_expires_at=lease_until(lease),
            )
            return Claim(
                run_id=run_id,
                task_id=task_id,
                slot_at=ensure_utc(due.slot_at),
                collapsed=due.collapsed,
                collapsed_exact=due.collapsed_exact,
                worker=who.name,
                lease=lease,
            )

    try:
        return retry_locked(claim, what=f"claiming task {task_id}")
    except IntegrityError:
        return None


def claim_next_due(
    engine: Engine,
    now: datetime,
    *,
    worker: str | Worker | None = None,
    skip: set[int] | None = None,
    lease: float | None = None,
) -> Claim | None:
    """Claim the first due slot of any enabled task (by task id); None when none is left."""
    for planned in plan_due(engine, now):
        if skip and planned.task_id in skip:
            continue
        claim = claim_due(engine, planned.task_id, now, worker=worker, lease=lease, planned=planned)
        if claim is not None:
            return claim
    return None


def claim_manual(
    engine: Engine,
    task_id: int,
    at: datetime,
    *,
    worker: str | Worker | None = None,
    lease: float | None = None,
) -> Claim:
    """Claim a run a person asked for, at ``at``; refused when that task already has a run
    claimed at exactly that moment."""
    who = _worker(worker)
    lease = lease_seconds() if lease is None else lease
    at = ensure_utc(at)

    def claim() -> Claim:
        with unit_of_work(engine) as session:
            run_id = run_records.add_claim(
                session,
                task_id=task_id,
                slot_at=at,
                worker=who.name,
                manual=True,
                worker_process=who.process,
                lease_expires_at=lease_until(lease),
            )
            return Claim(
                run_id=run_id, task_id=task_id, slot_at=at, manual=True, worker=who.name, lease=lease
            )

    try:
        return retry_locked(claim, what=f"claiming task {task_id}")
    except IntegrityError:
        raise AlreadyExists(
            f"task {task_id} already has a run at {at.isoformat()}; give another --at"
        ) from None
