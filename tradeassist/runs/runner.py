"""The runner: execute a claimed slot's notebook with papermill, keep the artefacts, record the run.

One run, start to end:

1. **Frozen? Skipped?** A kind that recommends, on a frozen portfolio, is not executed: the
   run is FROZEN, with no recommendation, and the owner is notified. A scheduled PRICE_REFRESH
   slot on a day the London Stock Exchange does not trade (``engine.market_calendar``) is not
   executed either: the run is SKIPPED, its reason in the summary (``skipped_because``).
2. **Execute** ``<notebooks_dir>/<KIND>.ipynb`` with papermill and a real kernel (``kernel``).
   Parameters: ``run_id``, ``portfolio``, ``as_of`` and ``db_url`` without its password; a
   parameter the notebook's ``parameters`` cell does not declare is refused before anything
   runs. The kernel gets the database password and every other secret through its
   environment only.
3. **Artefacts** (``artefacts``): the executed notebook at
   ``$TRADEASSIST_REPORTS_DIR/runs/<yyyy>/<mm>/<run_id>-<KIND>.ipynb`` and its HTML report
   page beside it. Every secret value is removed from both before they are written for good.
4. **Record** (``recording``), in one transaction: the run, its input snapshot, the
   recommendation (reviewed, and its owner told), the alerts the run raised, and for a FAILED
   or FROZEN run an alert and a notification.
5. **Report** (``artefacts.finish_report``): the page again, now with the review verdict, the
   input hash and the strategy version the recording wrote.

From claim to record the run holds a lease on its claim, renewed by a heartbeat thread
(``leases.Heartbeat``); a run whose worker died is found by the next ``run_due``, recorded
FAILED and retried once (``reaping``). Every transaction survives SQLite's "database is locked"
with a bounded retry (``locked``).

A cell error or a timeout makes the run FAILED (papermill raises ``PapermillExecutionError``
for the first, but nbclient's ``CellTimeoutError`` for the second, after saving the notebook as
if every cell had completed: the saved notebook is marked failed). A notebook that ran to the
end is SUCCESS, even when it recommends nothing.

Notebook directory: ``notebooks_dir`` argument, else ``TRADEASSIST_TASK_NOTEBOOKS_DIR``, else
``notebooks/tasks`` of the repository this package sits in.

This module is what the CLI calls (``run_due``, ``run_task``); the names of the steps it uses
stay importable from here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from ..core.config import redact_url, reports_dir, resolve_db_url, settings
from ..core.enums import RunStatus, TaskKind
from ..core.errors import ValidationError
from ..core.redaction import secret_values
from ..core.timeutil import ensure_utc, london_date, utcnow
from ..db.engine import unit_of_work
from ..db.models import User
from ..engine.market_calendar import closed_because
from ..services import governance, run_records
from ..services import tasks as task_service
from ..services.task_kinds import SPECS, parse_config
from . import notebook_api
from .artefacts import artefact_paths, finish_artefacts, finish_report
from .claims import Claim, claim_due, claim_manual, plan_due
from .kernel import (
    check_parameters,
    declared_parameters,
    describe_failure,
    execute_notebook,
    kernel_environment,
    kernel_name,
)
from .leases import Heartbeat, lease_seconds, this_worker
from .locked import retry_locked
from .masking import scrub_text, strip_secrets
from .reaping import reap_next
from .recording import RUN_FAILED, RUN_FROZEN, record
from .state import ActiveRun, RunOutcome

__all__ = [
    "NOTEBOOKS_ENV",
    "PARAMETERS",
    "RUN_FAILED",
    "RUN_FROZEN",
    "RunOutcome",
    "check_parameters",
    "declared_parameters",
    "execute_claim",
    "execute_notebook",
    "kernel_environment",
    "kernel_name",
    "notebooks_dir",
    "redact_url",
    "run_due",
    "run_task",
    "scrub_text",
    "secret_values",
    "strip_secrets",
]

NOTEBOOKS_ENV = "TRADEASSIST_TASK_NOTEBOOKS_DIR"
PARAMETERS = ("run_id", "portfolio", "as_of", "db_url")


def default_notebooks_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "notebooks" / "tasks"


def notebooks_dir(explicit: str | Path | None = None) -> Path:
    chosen = explicit or settings().task_notebooks_dir or default_notebooks_dir()
    return Path(chosen).expanduser().resolve()


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------
def _load(engine: Engine, claim: Claim, as_of: datetime, secrets: set[str]) -> ActiveRun:
    return retry_locked(lambda: _read_run(engine, claim, as_of, secrets), what=f"reading run {claim.run_id}")


def _read_run(engine: Engine, claim: Claim, as_of: datetime, secrets: set[str]) -> ActiveRun:
    with unit_of_work(engine, readonly=True) as session:
        context = run_records.run_context(session, claim.task_id)
        run = ActiveRun(
            claim, context.task, context.portfolio, context.owner, ensure_utc(as_of), utcnow(), secrets
        )
        portfolio = context.portfolio
        if portfolio is not None and portfolio.portfolio_id is not None and SPECS[run.kind].recommends:
            status = governance.freeze_status(session, portfolio.portfolio_id)
            run.frozen = status if status.is_frozen else None
    return run


def execute_claim(
    engine: Engine,
    claim: Claim,
    *,
    db_url: str,
    as_of: datetime | None = None,
    notebooks: str | Path | None = None,
    reports: str | Path | None = None,
    timeout: int | None = None,
) -> RunOutcome:
    """Run a claimed slot to its end and record it, renewing the claim's lease meanwhile;
    never raises for a failed notebook."""
    db_url = resolve_db_url(db_url)
    secrets = secret_values(db_url)
    with Heartbeat(engine, claim.run_id, claim.lease or lease_seconds()):
        run = _load(engine, claim, as_of or claim.slot_at, secrets)
        if run.frozen is not None:
            run.status = RunStatus.FROZEN
        elif (reason := skip_reason(run)) is not None:
            run.status = RunStatus.SKIPPED
            run.extra_summary["skipped_because"] = reason
        else:
            _execute(run, db_url=db_url, notebooks=notebooks, reports=reports, timeout=timeout)
        outcome = record(engine, run)
        finish_report(engine, run)  # the page again, with the review the recording made
        return outcome


def skip_reason(run: ActiveRun) -> str | None:
    """Why a scheduled slot is recorded SKIPPED rather than run, or None: a PRICE_REFRESH slot
    on a day the London Stock Exchange does not trade has no new close to fetch. A run asked
    for by hand (``tasks run``) always runs."""
    if run.kind is not TaskKind.PRICE_REFRESH or run.claim.manual:
        return None
    day = london_date(run.claim.slot_at)
    why = closed_because(day)
    if why is None:
        return None
    return f"no new prices to fetch: the London Stock Exchange is closed on {day.isoformat()} ({why})"


def _execute(
    run: ActiveRun,
    *,
    db_url: str,
    notebooks: str | Path | None,
    reports: str | Path | None,
    timeout: int | None,
) -> None:
    source = notebooks_dir(notebooks) / f"{run.kind.value}.ipynb"
    try:
        config = parse_config(run.kind, run.task.module_config)
    except ValidationError as exc:
        run.error = str(exc)
        return
    if not source.is_file():
        run.error = f"no notebook for {run.kind.value}: {source} does not exist"
        return
    root = Path(reports).expanduser().resolve() if reports else reports_dir()
    run.notebook_path, run.html_path = artefact_paths(root, run.claim.run_id, run.kind, run.started_at)
    limit = timeout if timeout is not None else config.timeout_seconds
    parameters = {
        "run_id": run.claim.run_id,
        "portfolio": run.portfolio_name,
        "as_of": run.as_of.isoformat(),
        "db_url": redact_url(db_url),
    }
    nb = None
    with tempfile.TemporaryDirectory(prefix="tradeassist-kernel-") as scratch:
        env = kernel_environment(db_url, os.path.join(scratch, "ipython"))
        with open(os.path.join(scratch, "kernel.log"), "w+b") as kernel_log:
            try:
                nb = execute_notebook(
                    source,
                    run.notebook_path,
                    parameters,
                    timeout=limit,
                    env=env,
                    kernel_log=kernel_log,
                    secrets=run.secrets,
                )
                run.result = notebook_api.read_result(nb)
                if run.result is None:
                    run.error = f"{source.name} ran to the end but published no result"
                else:
                    run.status = RunStatus.SUCCESS
            except ValidationError as exc:  # unknown parameters: nothing was executed
                run.error = str(exc)
                run.notebook_path = None
            except Exception as exc:
                run.error = describe_failure(exc, limit, kernel_log)
    finish_artefacts(run, nb)


# --------------------------------------------------------------------------------------------
# What the CLI calls
# --------------------------------------------------------------------------------------------
def run_due(
    engine: Engine,
    *,
    now: datetime | None = None,
    db_url: str,
    notebooks: str | Path | None = None,
    reports: str | Path | None = None,
    timeout: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[RunOutcome]:
    """Record every run whose worker died FAILED and retry its slot once; then run every due
    slot once (missed ones collapsed), claiming each before running it, until none is left.
    Safe to start on several processes or machines at once. ``on_step(1)`` after each run
    (a progress bar)."""
    now = ensure_utc(now or utcnow())
    db_url = resolve_db_url(db_url)
    worker = this_worker()
    lease = lease_seconds()

    def execute(claim: Claim) -> RunOutcome:
        outcome = execute_claim(
            engine, claim, db_url=db_url, as_of=now, notebooks=notebooks, reports=reports, timeout=timeout
        )
        if on_step is not None:
            on_step(1)
        return outcome

    outcomes = []
    seen: set[int] = set()
    secrets = secret_values(db_url)
    while (
        lost := reap_next(engine, now, secrets=secrets, seen=seen, worker=worker, lease=lease)
    ) is not None:
        outcomes.append(lost.outcome)
        if lost.retry is not None:  # executed at once: its lease is renewed from now on
            outcomes.append(execute(lost.retry))
    tried: set[int] = set()
    while planned := [p for p in plan_due(engine, now) if p.task_id not in tried]:
        for item in planned:
            tried.add(item.task_id)
            claim = claim_due(engine, item.task_id, now, worker=worker, lease=lease, planned=item)
            if claim is not None:
                outcomes.append(execute(claim))
    return outcomes


def run_task(
    engine: Engine,
    *,
    actor: User,
    name: str,
    db_url: str,
    at: datetime | None = None,
    notebooks: str | Path | None = None,
    reports: str | Path | None = None,
    timeout: int | None = None,
) -> RunOutcome:
    """Run a task now (or as of ``at``), whatever its schedule; the schedule is not moved."""
    at = ensure_utc(at or utcnow())
    with unit_of_work(engine, readonly=True) as session:
        task = task_service.task_for(session, actor, name, "run tasks")
        task_id = task.task_id
    assert task_id is not None
    claim = claim_manual(engine, task_id, at)
    return execute_claim(
        engine, claim, db_url=db_url, as_of=at, notebooks=notebooks, reports=reports, timeout=timeout
    )
