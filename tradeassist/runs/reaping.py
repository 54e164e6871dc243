"""Runs whose worker died: recorded FAILED, with an alert, and their slot retried once.

``run-due`` starts here. A claim with no recorded run whose lease has lapsed (``leases.lapse``:
the lease expired, or its process on this machine is gone) is a run that will never end by
itself. In one transaction, under the task's lock (as a claim is taken):

* the run is written as it ends any other time (``recording.write_run``): ``task_runs``
  FAILED, ``started_at`` its claim's time, ``ended_at`` now, the error "the worker (host, pid
  N) stopped without finishing; lease expired at ..." and what happens next, its input
  snapshot, a CRITICAL ``RUN_FAILED`` alert (context: ``reason`` LEASE_LAPSED, the lost
  worker, the lease, the retry's run id), a notification to the owner, and the
  ``TASK_RUN_RECORDED`` audit event (``recorded_by`` names this runner);
* its slot is retried once: a claim of the same (task, slot) as ``attempt`` 2, ``retry_of``
  the dead run, taken by this runner, which executes it straight away. Not retried: a retry
  that died too (attempt 2 of 2: it stays FAILED and its alert says so), a run a person asked
  for (``tasks run``), a disabled task's run, and a slot a later one has superseded (claimed
  since, or due now: it runs instead, as missed slots collapse).

Two runners that find the same dead claim: the task's lock (PostgreSQL) or the write lock
(SQLite) lets one in; the other finds the run recorded and moves on, and the unique keys of
``task_runs`` and (task, slot, attempt) would refuse a second record or retry anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ..core.timeutil import ensure_utc, utcnow
from ..db.engine import unit_of_work
from ..db.models import TaskDefinition, TaskRunClaim
from ..services import run_records
from ..services import tasks as task_service
from .claims import Claim, lease_until
from .leases import Lapse, Worker, lapse, lease_seconds, this_worker
from .locked import retry_locked
from .recording import write_run
from .state import ActiveRun, RunOutcome

MAX_ATTEMPTS = 2  # the first run of a slot and its one retry
LEASE_LAPSED = "LEASE_LAPSED"


@dataclass(frozen=True)
class Lost:
    """A dead run, now recorded FAILED, and the claim of its retry (None: not retried)."""

    outcome: RunOutcome
    retry: Claim | None


def reap_next(
    engine: Engine,
    now: datetime,
    *,
    secrets: set[str],
    seen: set[int],
    worker: Worker | None = None,
    lease: float | None = None,
) -> Lost | None:
    """Record the next dead run (of those not in ``seen``) FAILED and claim its retry; None
    when no claim has lapsed. ``now`` is the run-due's time (whether a later slot is due);
    leases are read against the clock."""
    who = worker or this_worker()
    lease = lease_seconds() if lease is None else lease

    def lapsed() -> list[int]:
        clock = utcnow()
        with unit_of_work(engine, readonly=True) as session:
            return [c.run_id for c in run_records.unfinished_claims(session) if c.run_id and lapse(c, clock)]

    for run_id in retry_locked(lapsed, what="looking for dead runs"):
        if run_id in seen:
            continue
        seen.add(run_id)
        try:
            lost = retry_locked(
                partial(_reap, engine, run_id, now, secrets, who, lease), what=f"recording dead run {run_id}"
            )
        except IntegrityError:
            continue  # another runner recorded or retried it first
        if lost is not None:
            return lost
    return None


def _reap(
    engine: Engine, run_id: int, now: datetime, secrets: set[str], who: Worker, lease: float
) -> Lost | None:
    with unit_of_work(engine) as session:
        claim = run_records.unfinished_claim(session, run_id)
        if claim is None or run_records.lock_task(session, claim.task_id) is None:
            return None  # recorded meanwhile, or another runner holds the task (PostgreSQL)
        claim = run_records.unfinished_claim(session, run_id)  # again, under the task's lock
        why = lapse(claim, utcnow()) if claim is not None else None
        if claim is None or why is None:
            return None
        context = run_records.run_context(session, claim.task_id)
        retry, next_step = _retry(session, claim, context.task, now, who, lease)
        dead = Claim(
            run_id=run_id,
            task_id=claim.task_id,
            slot_at=ensure_utc(claim.slot_at),
            manual=claim.manual,
            worker=claim.worker,
            attempt=claim.attempt,
            retry_of=claim.retry_of,
        )
        run = ActiveRun(
            dead,
            context.task,
            context.portfolio,
            context.owner,
            as_of=ensure_utc(claim.slot_at),
            started_at=ensure_utc(claim.claimed_at),
            secrets=secrets,
        )
        run.error = f"{why.describe()}; {next_step}"
        run.extra_summary = {"lease": _lease_summary(why, retry, who)}
        run.extra_context = {
            "reason": LEASE_LAPSED,
            "lost_worker": claim.worker,
            "lease_expires_at": why.lease_expires_at,
            "retry_run_id": retry.run_id if retry else None,
            "recorded_by": who.name,
        }
        outcome = write_run(session, run, full=False)
    return Lost(outcome, retry)


def _lease_summary(why: Lapse, retry: Claim | None, who: Worker) -> dict[str, Any]:
    return {
        "worker": why.worker,
        "expires_at": why.lease_expires_at,
        "expired": why.expired,
        "retry_run_id": retry.run_id if retry else None,
        "recorded_by": who.name,
    }


def _retry(
    session: Session, claim: TaskRunClaim, task: TaskDefinition, now: datetime, who: Worker, lease: float
) -> tuple[Claim | None, str]:
    """Claim the dead run's slot again (attempt + 1) if it is to be retried; and what happens
    next, in words."""
    if claim.manual:
        return None, "not retried: a run a person asked for (run it again with `tradeassist tasks run`)"
    if claim.attempt >= MAX_ATTEMPTS:
        return None, f"not retried again: attempt {claim.attempt} of {MAX_ATTEMPTS}, the slot's one retry"
    if not task.is_enabled:
        return None, "not retried: the task is disabled"
    slot = ensure_utc(claim.slot_at)
    last = task_service.last_scheduled_slot(session, claim.task_id)
    if last is not None and last > slot:
        return None, f"not retried: the later slot {last.isoformat()} has been claimed since"
    due = task_service.due_slot(session, task, now)
    if due is not None:
        return (
            None,
            f"not retried: the later slot {ensure_utc(due.slot_at).isoformat()} is due and runs instead",
        )
    attempt = claim.attempt + 1
    run_id = run_records.add_claim(
        session,
        task_id=claim.task_id,
        slot_at=slot,
        worker=who.name,
        worker_process=who.process,
        lease_expires_at=lease_until(lease),
        attempt=attempt,
        retry_of=claim.run_id,
    )
    retry = Claim(
        run_id=run_id,
        task_id=claim.task_id,
        slot_at=slot,
        worker=who.name,
        attempt=attempt,
        retry_of=claim.run_id,
        lease=lease,
    )
    return retry, f"retried as run {run_id} (attempt {attempt} of {MAX_ATTEMPTS})"
