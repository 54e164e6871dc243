"""Exactly-once slot claims: a runner takes a (task, slot) by inserting its claim row.

Each claim is its own short transaction, committed before the notebook runs:

1. lock the task's row: on PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED``, so a runner that
   finds another one claiming this task moves on to the next task instead of waiting (several
   machines spread across the tasks); on SQLite the write transaction (``BEGIN IMMEDIATE``)
   already serialises claimers;
2. under the lock, compute the due slot from the last scheduled claim;
3. insert the claim. ``UNIQUE(task_id, slot_at)`` decides whatever happens: an
   ``IntegrityError`` means another runner has the slot, and it is skipped quietly.

The rows are read and written by ``services.run_records``; this module holds the transactions.

The claim's ``run_id`` becomes the run's id. A runner that dies after claiming leaves a claim
without a run: that slot is not run again (at most once), and ``runs list`` shows it RUNNING.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..core.errors import AlreadyExists
from ..core.timeutil import ensure_utc
from ..db.engine import unit_of_work
from ..services import run_records
from ..services import tasks as task_service


@dataclass(frozen=True)
class Claim:
    run_id: int
    task_id: int
    slot_at: datetime
    manual: bool = False
    collapsed: int = 0  # earlier missed slots this one stands for
    collapsed_exact: bool = True
    worker: str | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def claim_due(engine: Engine, task_id: int, now: datetime, *, worker: str | None = None) -> Claim | None:
    """Claim the task's due slot at ``now``; None when nothing is due or another runner has it."""
    worker = worker or worker_name()
    try:
        with unit_of_work(engine) as session:
            task = run_records.lock_task(session, task_id)
            if task is None:
                return None  # locked by another runner (PostgreSQL), or gone
            due = task_service.due_slot(session, task, now)
            if due is None:
                return None
            run_id = run_records.add_claim(session, task_id=task_id, slot_at=due.slot_at, worker=worker)
            return Claim(
                run_id=run_id,
                task_id=task_id,
                slot_at=ensure_utc(due.slot_at),
                collapsed=due.collapsed,
                collapsed_exact=due.collapsed_exact,
                worker=worker,
            )
    except IntegrityError:
        return None


def claim_next_due(
    engine: Engine, now: datetime, *, worker: str | None = None, skip: set[int] | None = None
) -> Claim | None:
    """Claim the first due slot of any enabled task (by task id); None when none is left."""
    with unit_of_work(engine, readonly=True) as session:
        task_ids = task_service.enabled_task_ids(session)
    for task_id in task_ids:
        if skip and task_id in skip:
            continue
        claim = claim_due(engine, task_id, now, worker=worker)
        if claim is not None:
            return claim
    return None


def claim_manual(engine: Engine, task_id: int, at: datetime, *, worker: str | None = None) -> Claim:
    """Claim a run a person asked for, at ``at``; refused when that task already has a run
    claimed at exactly that moment."""
    worker = worker or worker_name()
    at = ensure_utc(at)
    try:
        with unit_of_work(engine) as session:
            run_id = run_records.add_claim(session, task_id=task_id, slot_at=at, worker=worker, manual=True)
            return Claim(run_id=run_id, task_id=task_id, slot_at=at, manual=True, worker=worker)
    except IntegrityError:
        raise AlreadyExists(
            f"task {task_id} already has a run at {at.isoformat()}; give another --at"
        ) from None
