"""Recording a run once it has ended, in one transaction.

What is written: the ``task_runs`` row, the ``run_input_snapshots`` row (``input_hash`` =
SHA-256 of its canonical JSON), the recommendation (stored and reviewed:
``services.workflows.record_recommendation``; its owner told with the trades, the verdict
and the report's path: ``presentation.run_email.ready_payload``), the alerts the run raised,
and for a FAILED or FROZEN run an alert and a notification. If that transaction fails, the
run alone is written, FAILED with the reason. Every secret value is masked before anything is
stored.

SQLite's "database is locked" is not a failure of the run: the transaction is tried again for
a bounded time (``locked.retry_locked``). A worker whose lease lapsed while it was alive (a
suspended machine) may find its run recorded FAILED meanwhile by another runner (``reaping``):
it then writes nothing and says so.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..core import jsonutil
from ..core.enums import Channel, RunStatus, Severity
from ..core.timeutil import utcnow
from ..db.engine import unit_of_work
from ..presentation.run_email import ready_payload
from ..services import audit, governance, notifications, run_records, workflows
from . import kinds, notebook_api
from .locked import DatabaseBusy, retry_locked
from .masking import scrub_text, strip_secrets
from .state import ActiveRun, RunOutcome

log = logging.getLogger(__name__)

RUN_FAILED = "RUN_FAILED"
RUN_FROZEN = "RUN_FROZEN"
MAX_ERROR = 2000


def record(engine: Engine, run: ActiveRun) -> RunOutcome:
    """Write the run and everything it produced in one transaction; if that fails, write the
    run alone as FAILED with the reason."""
    run.error = scrub_text(run.error, run.secrets)
    if run.error:
        run.error = run.error[:MAX_ERROR]
    what = f"recording run {run.claim.run_id}"
    try:
        return retry_locked(lambda: _write(engine, run, full=True), what=what)
    except DatabaseBusy:
        raise
    except Exception as exc:
        elsewhere = _recorded_elsewhere(engine, run)
        if elsewhere is not None:
            return elsewhere
        run.status = RunStatus.FAILED
        run.error = scrub_text(f"recording the run failed: {type(exc).__name__}: {exc}", run.secrets)
        run.error = (run.error or "")[:MAX_ERROR]
        log.error("run %s: %s", run.claim.run_id, run.error)
        return retry_locked(lambda: _write(engine, run, full=False), what=what)


def _recorded_elsewhere(engine: Engine, run: ActiveRun) -> RunOutcome | None:
    """The run as another runner recorded it meanwhile (its lease had lapsed), if it did."""
    with unit_of_work(engine, readonly=True) as session:
        row = run_records.recorded_run(session, run.claim.run_id)
        if row is None:
            return None
        status, detail, summary = row.status, row.error_message, dict(row.output_summary)
    error = (
        f"this worker finished after its lease had lapsed: run {run.claim.run_id} had been recorded "
        f"{status.value} by another runner ({detail}); this worker's result was not recorded"
    )
    log.warning("run %s: %s", run.claim.run_id, error)
    return _outcome(run, RunStatus.FAILED, error, summary, None)


def _outcome(
    run: ActiveRun,
    status: RunStatus,
    error: str | None,
    summary: Mapping[str, Any],
    recommendation_id: int | None,
) -> RunOutcome:
    return RunOutcome(
        run_id=run.claim.run_id,
        task=run.task.name,
        kind=run.kind,
        portfolio=run.portfolio_name,
        status=status,
        slot_at=run.claim.slot_at,
        as_of=run.as_of,
        notebook_path=str(run.notebook_path) if run.notebook_path else None,
        html_path=str(run.html_path) if run.html_path else None,
        error=error,
        summary=summary,
        recommendation_id=recommendation_id,
        attempt=run.claim.attempt,
        retry_of=run.claim.retry_of,
    )


def _snapshot(run: ActiveRun) -> dict[str, Any]:
    inputs: Any = None
    if run.frozen is not None:
        inputs = {"freeze": run.frozen.row(run.portfolio_name)}
    elif run.result is not None:
        inputs = run.result.get("inputs")
    snapshot = {"run": run.run_params(), "inputs": inputs}
    # The stored JSON form (exact decimals as strings): what the hash and a replay both read.
    stored: dict[str, Any] = strip_secrets(jsonutil.loads_decimal(jsonutil.dumps(snapshot)), run.secrets)
    return stored


def _summary(run: ActiveRun) -> dict[str, Any]:
    summary: dict[str, Any] = {"kind": run.kind.value, "collapsed_slots": run.claim.collapsed}
    if not run.claim.collapsed_exact:
        summary["collapsed_slots_at_least"] = True
    if run.claim.manual:
        summary["manual"] = True
    if run.claim.attempt > 1:
        summary["attempt"] = run.claim.attempt
        summary["retry_of"] = run.claim.retry_of
    if run.result is not None:
        summary.update(run.result.get("summary") or {})
        summary["issues"] = len(run.result.get("issues") or [])
    if run.frozen is not None:
        summary["frozen"] = {"reason_code": run.frozen.reason_code, "since": run.frozen.set_at}
    if run.error:
        summary["error"] = scrub_text(run.error, run.secrets)
    summary.update(run.extra_summary)
    stored: dict[str, Any] = strip_secrets(jsonutil.loads_decimal(jsonutil.dumps(summary)), run.secrets)
    return stored


def _strategy_version_id(snapshot: Mapping[str, Any]) -> int | None:
    inputs = snapshot.get("inputs")
    if not isinstance(inputs, Mapping):
        return None
    value = inputs.get("strategy_version_id")
    if isinstance(value, int):
        return value
    strategy = inputs.get("strategy")
    if isinstance(strategy, Mapping) and isinstance(strategy.get("strategy_version_id"), int):
        return int(strategy["strategy_version_id"])
    return None


def _write(engine: Engine, run: ActiveRun, *, full: bool) -> RunOutcome:
    with unit_of_work(engine) as session:
        outcome = write_run(session, run, full=full)
    log.info("run %s (%s %s): %s", run.claim.run_id, run.kind.value, run.task.name, run.status.value)
    return outcome


def write_run(session: Session, run: ActiveRun, *, full: bool) -> RunOutcome:
    """Everything ``record`` writes, in the caller's transaction (``full``: with what the
    notebook produced; else the run alone)."""
    if full and run.result is not None and run.result.get("household"):
        return write_household(session, run)
    ended = utcnow()
    recommendation = None
    issues: list[kinds.Issue] = []
    if full and run.result is not None:
        recommendation = notebook_api.recommendation_from_json(run.result.get("recommendation"))
        issues = [kinds.Issue.from_json(item) for item in run.result.get("issues") or []]
    snapshot = _snapshot(run)
    row = run_records.add_run(  # the run first: the recommendation and the alerts point at it
        session,
        run_id=run.claim.run_id,
        task_id=run.claim.task_id,
        portfolio_id=run.portfolio.portfolio_id if run.portfolio else None,
        strategy_version_id=_strategy_version_id(snapshot),
        started_at=run.started_at,
        ended_at=ended,
        status=run.status,
        input_hash=jsonutil.sha256_of(snapshot),
        output_summary=_summary(run),
        slot_at=run.claim.slot_at,
        as_of=run.as_of,
        notebook_path=str(run.notebook_path) if run.notebook_path else None,
        html_path=str(run.html_path) if run.html_path else None,
        error_message=run.error,
    )
    recommendation_id = None
    if recommendation is not None and run.portfolio is not None and recommendation.lines:
        assert run.portfolio.portfolio_id is not None  # read from the database
        stored = workflows.record_recommendation(
            session,
            run_id=run.claim.run_id,
            portfolio_id=run.portfolio.portfolio_id,
            recommendation=recommendation,
        )
        if stored is not None:
            recommendation_id = stored.recommendation_id
            # The portfolio's owner is told: the trades, the review verdict, the report's path.
            workflows.notify_ready(session, stored=stored, owner=run.owner, payload=ready_payload(stored))
    run_records.add_snapshot(session, run.claim.run_id, snapshot)
    _alerts_and_notices(session, run, issues)
    _audit(session, run, recommendation_id)
    return _outcome(run, run.status, run.error, row.output_summary, recommendation_id)


def write_household(session: Session, run: ActiveRun) -> RunOutcome:
    """A household's run, recorded as one run per account, in the caller's transaction.

    The first account's run is the claimed run; each other account's is a claim of the same
    task, slot and attempt with its ``member`` number (1, 2, ...), written here with its run.
    Every run has the joint input snapshot (the same JSON, so the same ``input_hash``), its own
    portfolio, its account's figures in ``output_summary`` (``household``: the strategy, the
    first run, the accounts) and ``household_run_id`` the first run's id. Each account's
    recommendation, if it has lines, is stored on its own run, reviewed, and its owner told.
    The alerts the run raised go on the first run.
    """
    assert run.result is not None
    household = run.result["household"]
    issues = [kinds.Issue.from_json(item) for item in run.result.get("issues") or []]
    snapshot = _snapshot(run)
    input_hash = jsonutil.sha256_of(snapshot)
    strategy_version_id = _strategy_version_id(snapshot)
    base = _summary(run)
    ended = utcnow()
    first = run.claim.run_id
    names = [str(a["portfolio"]) for a in household["accounts"]]
    outcomes: list[RunOutcome] = []
    for member, account in enumerate(household["accounts"]):
        portfolio_id = int(account["portfolio_id"])
        run_id = first
        if member:
            run_id = run_records.add_claim(
                session,
                task_id=run.claim.task_id,
                slot_at=run.claim.slot_at,
                worker=run.claim.worker or "",
                manual=run.claim.manual,
                attempt=run.claim.attempt,
                member=member,
            )
        recommendation = notebook_api.recommendation_from_json(account["recommendation"])
        mine = kinds.recommendation_result(run.kind, {}, recommendation).summary
        part = {"strategy": household["strategy"], "run_id": first, "member": member, "accounts": names}
        summary = {**base, **mine, "household": {**part, "headline": household["headline"]}}
        stored_summary = strip_secrets(jsonutil.loads_decimal(jsonutil.dumps(summary)), run.secrets)
        row = run_records.add_run(
            session,
            run_id=run_id,
            task_id=run.claim.task_id,
            portfolio_id=portfolio_id,
            strategy_version_id=strategy_version_id,
            started_at=run.started_at,
            ended_at=ended,
            status=run.status,
            input_hash=input_hash,
            output_summary=stored_summary,
            slot_at=run.claim.slot_at,
            as_of=run.as_of,
            notebook_path=str(run.notebook_path) if run.notebook_path else None,
            html_path=str(run.html_path) if run.html_path else None,
            error_message=None,
            household_run_id=first,
        )
        run_records.add_snapshot(session, run_id, snapshot)
        recommendation_id = None
        if recommendation is not None and recommendation.lines:
            stored = workflows.record_recommendation(
                session, run_id=run_id, portfolio_id=portfolio_id, recommendation=recommendation
            )
            if stored is not None:
                recommendation_id = stored.recommendation_id
                owner = run_records.portfolio_owner(session, portfolio_id)
                workflows.notify_ready(session, stored=stored, owner=owner, payload=ready_payload(stored))
        _audit(session, run, recommendation_id, run_id=run_id, household=part)
        outcome = _outcome(run, run.status, None, row.output_summary, recommendation_id)
        outcomes.append(
            dataclasses.replace(outcome, run_id=run_id, portfolio=names[member], household_run_id=first)
        )
    _alerts_and_notices(session, run, issues)
    return dataclasses.replace(outcomes[0], members=tuple(outcomes[1:]))


def _alerts_and_notices(session: Session, run: ActiveRun, issues: list[kinds.Issue]) -> None:
    """The alerts the run raised; for a FAILED run its own alert; the owner told of a FAILED or
    FROZEN run."""
    for issue in issues:
        _raise_issue(session, run, issue)
    if run.status is RunStatus.FAILED:
        _alert_failure(session, run)
    if run.status in (RunStatus.FAILED, RunStatus.FROZEN):
        _notify(session, run)


def _audit(
    session: Session,
    run: ActiveRun,
    recommendation_id: int | None,
    *,
    run_id: int | None = None,
    household: Mapping[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        actor=None,
        action="TASK_RUN_RECORDED",
        entity_type="task_run",
        entity_id=run_id if run_id is not None else run.claim.run_id,
        details={
            **({"household": dict(household)} if household is not None else {}),
            "task": run.task.name,
            "kind": run.kind.value,
            "status": run.status.value,
            "slot_at": run.claim.slot_at,
            "manual": run.claim.manual,
            "recommendation_id": recommendation_id,
            "worker": run.claim.worker,
            "attempt": run.claim.attempt,
            "retry_of": run.claim.retry_of,
            **run.extra_context,
        },
    )


def _portfolio_id(session: Session, run: ActiveRun, name: str | None) -> int | None:
    if name is None:
        return run.portfolio.portfolio_id if run.portfolio else None
    if run.portfolio is not None and run.portfolio.name == name:
        return run.portfolio.portfolio_id
    return run_records.portfolio_id_named(session, name)


def _raise_issue(session: Session, run: ActiveRun, issue: kinds.Issue) -> None:
    context = strip_secrets(dict(issue.context), run.secrets)
    governance.raise_alert(
        session,
        portfolio_id=_portfolio_id(session, run, issue.portfolio),
        code=issue.code,
        severity=issue.severity,
        message=scrub_text(issue.message, run.secrets) or issue.code,
        context={**context, "task_id": run.task.task_id},
        run_id=run.claim.run_id,
        dedupe_keys=("ticker", "exchange"),
    )


def _alert_failure(session: Session, run: ActiveRun) -> None:
    governance.raise_alert(
        session,
        portfolio_id=run.portfolio.portfolio_id if run.portfolio else None,
        code=RUN_FAILED,
        severity=Severity.CRITICAL,
        message=f"task {run.task.name!r} ({run.kind.value}) run {run.claim.run_id} failed: {run.error}",
        context={
            "task_id": run.task.task_id,
            "task": run.task.name,
            "run_id": run.claim.run_id,
            **run.extra_context,
        },
        run_id=run.claim.run_id,
        dedupe=False,
    )


def _notify(session: Session, run: ActiveRun) -> None:
    failed = run.status is RunStatus.FAILED
    event = RUN_FAILED if failed else RUN_FROZEN
    where = f" on {run.portfolio_name}" if run.portfolio_name else ""
    if failed:
        subject = f"tradeassist: {run.kind.value} run {run.claim.run_id}{where} FAILED"
        body = f"Task {run.task.name!r} failed: {run.error}"
    else:
        assert run.frozen is not None
        subject = f"tradeassist: {run.kind.value} run {run.claim.run_id}{where} skipped: portfolio frozen"
        body = (
            f"Task {run.task.name!r} made no recommendation: the portfolio is frozen "
            f"({run.frozen.reason_code}: {run.frozen.reason_detail}). Clear the freeze to resume."
        )
    payload = {
        "event": event,
        "subject": subject,
        "body": scrub_text(body, run.secrets),
        "run_id": run.claim.run_id,
        "task": run.task.name,
        "kind": run.kind.value,
        "portfolio": run.portfolio_name,
        "status": run.status.value,
        "notebook_path": str(run.notebook_path) if run.notebook_path else None,
        "html_path": str(run.html_path) if run.html_path else None,
    }
    assert run.owner.user_id is not None  # read from the database
    notifications.enqueue(
        session,
        user_id=run.owner.user_id,
        portfolio_id=run.portfolio.portfolio_id if run.portfolio else None,
        channel=Channel.EMAIL,
        target=run.owner.email,
        payload=payload,
        dedup_key=f"{event}:{run.task.task_id}:{run.claim.run_id}",
    )
