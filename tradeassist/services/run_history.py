"""Past runs: list them, show one, and replay one from its stored input snapshot alone.

A run is visible to whoever may use its portfolio; runs of GLOBAL tasks (which read every
portfolio) to the bootstrap admin. A claimed slot whose run has not been recorded yet (it is
executing, or its runner died and its lease has not lapsed yet: ``runs.reaping``) is listed
with status RUNNING. ``show_run`` says which worker ran it, and which attempt at its slot it was
(a retry names the run it retried).

**Replay** recomputes the recommendation with the engine from ``run_input_snapshots`` alone
(no other table is read) and compares it with what the run stored: the headline, the
rationale, the constraints report and every line. It also checks the snapshot still hashes
to the run's ``input_hash``. A run of a household (``task_runs.household_run_id``) holds the
joint snapshot: replaying any of its runs recomputes the joint solve and compares every
account's recommendation with what that account's run stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from ..core import jsonutil
from ..core.enums import TRADING_KINDS, RunStatus
from ..core.errors import AccessDenied, NotFound, ValidationError
from ..db.models import (
    Alert,
    Portfolio,
    Recommendation,
    RunInputSnapshot,
    TaskDefinition,
    TaskRun,
    TaskRunClaim,
    User,
)
from . import advice, household_results
from .access import accessible_portfolios, require_access
from .household import is_household_snapshot
from .recommendation_records import line_json, stored_lines

RUNNING = "RUNNING"


def _visible_portfolios(session: Session, actor: User) -> dict[int, str]:
    return {
        p.portfolio_id: p.name for p in accessible_portfolios(session, actor) if p.portfolio_id is not None
    }


def _may_see(actor: User, portfolio_id: int | None, names: Mapping[int, str]) -> bool:
    return portfolio_id in names if portfolio_id is not None else actor.is_bootstrap_admin


def _list_row(claim: TaskRunClaim, run: TaskRun | None, portfolio: str | None, status: str) -> dict[str, Any]:
    return {
        "run_id": claim.run_id,
        "task_id": claim.task_id,
        "portfolio": portfolio,
        "status": status,
        "started_at": run.started_at if run else None,
        "ended_at": run.ended_at if run else None,
        "input_hash": run.input_hash if run else None,
        "notebook_path": run.notebook_path if run else None,
        "html_path": run.html_path if run else None,
    }


def list_runs(
    session: Session,
    *,
    actor: User,
    task: str | None = None,
    portfolio: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Every run the actor may see, oldest first: ``run_id``, ``task_id``, ``portfolio``,
    ``status``, ``started_at``, ``ended_at``, ``input_hash``, ``notebook_path``, ``html_path``."""
    names = _visible_portfolios(session, actor)
    query = (
        select(TaskRunClaim, TaskRun, TaskDefinition)
        .join(TaskDefinition, col(TaskDefinition.task_id) == col(TaskRunClaim.task_id))
        .outerjoin(TaskRun, col(TaskRun.run_id) == col(TaskRunClaim.run_id))
        .order_by(col(TaskRunClaim.run_id))
    )
    if task is not None:
        query = query.where(TaskDefinition.name == task)
    rows = []
    for claim, run, definition in session.exec(query).all():
        portfolio_id = run.portfolio_id if run is not None else definition.portfolio_id
        if not _may_see(actor, portfolio_id, names):
            continue
        name = names.get(portfolio_id) if portfolio_id is not None else None
        if portfolio is not None and name != portfolio:
            continue
        row_status = run.status.value if run is not None else RUNNING
        if status is not None and row_status != status.upper():
            continue
        rows.append(_list_row(claim, run, name, row_status))
    return rows


@dataclass(frozen=True)
class _Found:
    run: TaskRun
    task: TaskDefinition
    portfolio: str | None


def _get(session: Session, actor: User, run_id: int, operation: str) -> _Found:
    run = session.get(TaskRun, run_id)
    if run is None:
        claim = session.get(TaskRunClaim, run_id)
        if claim is not None:
            raise NotFound(f"run {run_id} has not ended yet (claimed at {claim.claimed_at.isoformat()})")
        raise NotFound(f"no run {run_id}")
    task = session.get(TaskDefinition, run.task_id)
    assert task is not None
    name = None
    if run.portfolio_id is not None:
        portfolio = session.get(Portfolio, run.portfolio_id)
        assert portfolio is not None
        require_access(session, actor, portfolio, operation)
        name = portfolio.name
    elif not actor.is_bootstrap_admin:
        raise AccessDenied(
            f"{actor.email} may not {operation}: runs of GLOBAL tasks are the bootstrap admin's",
            actor_user_id=actor.user_id,
            entity_type="task_run",
            entity_id=run_id,
            operation=operation,
        )
    return _Found(run, task, name)


def stored_recommendation(session: Session, run_id: int) -> dict[str, Any] | None:
    """The run's recommendation as the engine writes it (``to_json_dict`` form), or None."""
    reco = session.exec(select(Recommendation).where(Recommendation.run_id == run_id)).first()
    if reco is None:
        return None
    assert reco.recommendation_id is not None  # read from the database
    return {
        "recommendation_id": reco.recommendation_id,
        "status": reco.status.value,
        "headline": reco.headline,
        "rationale": reco.rationale,
        "constraints_report": reco.constraints_report,
        "lines": [line_json(*row) for row in stored_lines(session, [reco.recommendation_id])],
    }


def show_run(session: Session, *, actor: User, run_id: int, with_snapshot: bool = False) -> dict[str, Any]:
    found = _get(session, actor, run_id, "read runs")
    run = found.run
    claim = session.get(TaskRunClaim, run_id)
    assert claim is not None  # a run is recorded for its claim
    alerts = session.exec(select(Alert).where(Alert.run_id == run_id).order_by(col(Alert.alert_id))).all()
    detail: dict[str, Any] = {
        "run_id": run.run_id,
        "task_id": run.task_id,
        "task": found.task.name,
        "kind": found.task.task_kind.value,
        "portfolio": found.portfolio,
        "status": run.status.value,
        "worker": claim.worker,
        "attempt": claim.attempt,
        "retry_of": claim.retry_of,
        "slot_at": run.slot_at,
        "as_of": run.as_of,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "strategy_version_id": run.strategy_version_id,
        "input_hash": run.input_hash,
        "notebook_path": run.notebook_path,
        "html_path": run.html_path,
        "error_message": run.error_message,
        "output_summary": run.output_summary,
        "household_run_id": run.household_run_id,
        "household": household_members(session, run),
        "recommendation": stored_recommendation(session, run_id),
        "alerts": [
            {"alert_id": a.alert_id, "severity": a.severity.value, "code": a.code, "message": a.message}
            for a in alerts
        ],
    }
    if with_snapshot:
        snapshot = session.get(RunInputSnapshot, run_id)
        detail["input_snapshot"] = snapshot.snapshot_json if snapshot else None
    return detail


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replay:
    run_id: int
    differences: tuple[str, ...]

    @property
    def identical(self) -> bool:
        return not self.differences


def _diff(path: str, stored: Any, recomputed: Any, out: list[str]) -> None:
    if isinstance(stored, Mapping) and isinstance(recomputed, Mapping):
        for key in sorted(set(stored) | set(recomputed), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in stored:
                out.append(f"{where}: not stored, recomputed {jsonutil.dumps(recomputed[key])}")
            elif key not in recomputed:
                out.append(f"{where}: stored {jsonutil.dumps(stored[key])}, not recomputed")
            else:
                _diff(where, stored[key], recomputed[key], out)
        return
    if isinstance(stored, list) and isinstance(recomputed, list) and len(stored) == len(recomputed):
        for index, (a, b) in enumerate(zip(stored, recomputed, strict=True)):
            _diff(f"{path}[{index}]", a, b, out)
        return
    if _same_scalar(stored, recomputed):
        return
    out.append(f"{path}: stored {jsonutil.dumps(stored)}, recomputed {jsonutil.dumps(recomputed)}")


def _same_scalar(a: Any, b: Any) -> bool:
    if a == b:
        return True
    try:  # "202.50" and "202.5" are the same amount
        return Decimal(str(a)) == Decimal(str(b)) and not isinstance(a, bool) and not isinstance(b, bool)
    except ArithmeticError:
        return False


LineKey = tuple[str, str, str, bool]


def _line_key(line: Mapping[str, Any]) -> LineKey:
    return (line["ticker"], line["exchange"], line["action"], bool(line["suppressed_by_min_trade"]))


def _line_differences(stored: list[Mapping[str, Any]], recomputed: list[Mapping[str, Any]]) -> list[str]:
    mine = {_line_key(line): line for line in stored}
    theirs = {_line_key(line): line for line in recomputed}
    out: list[str] = []
    for line_key in sorted(set(mine) | set(theirs)):
        label = f"line {line_key[0]}:{line_key[1]} {line_key[2]}" + (" (suppressed)" if line_key[3] else "")
        if line_key not in mine:
            out.append(f"{label}: not stored, recomputed {jsonutil.dumps(theirs[line_key])}")
        elif line_key not in theirs:
            out.append(f"{label}: stored {jsonutil.dumps(mine[line_key])}, not recomputed")
        else:
            for field_name in ("amount_base", "estimated_units", "reason_code"):
                a, b = mine[line_key].get(field_name), theirs[line_key].get(field_name)
                if not _same_scalar(jsonutil.plain(a), jsonutil.plain(b)):
                    out.append(
                        f"{label} {field_name}: stored {jsonutil.dumps(a)}, recomputed {jsonutil.dumps(b)}"
                    )
    return out


def compare_recommendations(
    stored: Mapping[str, Any] | None, recomputed: Mapping[str, Any] | None
) -> list[str]:
    """Differences between the stored and the recomputed recommendation (``to_json_dict`` form;
    None or no lines both mean "nothing to do")."""
    stored = stored if stored and stored.get("lines") else None
    recomputed = recomputed if recomputed and recomputed.get("lines") else None
    if stored is None and recomputed is None:
        return []
    if stored is None or recomputed is None:
        present = recomputed if stored is None else stored
        assert present is not None
        side = "recomputed" if stored is None else "stored"
        return [
            f"recommendation: only {side} has one ({present['headline']!r}, {len(present['lines'])} lines)"
        ]
    out: list[str] = []
    for key in ("headline", "rationale", "constraints_report"):
        _diff(key, jsonutil.plain(stored.get(key)), jsonutil.plain(recomputed.get(key)), out)
    return out + _line_differences(stored["lines"], recomputed["lines"])


def replay_run(session: Session, *, actor: User, run_id: int) -> Replay:
    """Recompute run ``run_id``'s recommendation from its input snapshot alone and compare."""
    found = _get(session, actor, run_id, "replay runs")
    run = found.run
    kind = found.task.task_kind
    if kind not in TRADING_KINDS:
        raise ValidationError(f"run {run_id} ({kind.value}) computes no recommendation: nothing to replay")
    if run.status is not RunStatus.SUCCESS:
        raise ValidationError(f"run {run_id} is {run.status.value}: it computed nothing to replay")
    snapshot_row = session.get(RunInputSnapshot, run_id)
    if snapshot_row is None:
        raise NotFound(f"run {run_id} has no input snapshot")
    snapshot = snapshot_row.snapshot_json
    differences: list[str] = []
    actual_hash = jsonutil.sha256_of(snapshot)
    if actual_hash != run.input_hash:
        differences.append(
            f"input snapshot: SHA-256 {actual_hash} differs from the run's input_hash {run.input_hash}"
        )
    if is_household_snapshot(snapshot["inputs"]):
        return Replay(run_id, tuple(differences + _household_differences(session, run, snapshot)))
    recomputed = advice.recommend_from_snapshot(snapshot["inputs"])
    differences += compare_recommendations(stored_recommendation(session, run_id), recomputed.to_json_dict())
    return Replay(run_id, tuple(differences))


# --------------------------------------------------------------------------------------------
# Households: one run per account, one joint solve
# --------------------------------------------------------------------------------------------
def household_runs(session: Session, run: TaskRun) -> list[TaskRun]:
    """The runs of ``run``'s household (first run first); ``[]`` for a run of one portfolio."""
    if run.household_run_id is None:
        return []
    return list(
        session.exec(
            select(TaskRun)
            .where(TaskRun.household_run_id == run.household_run_id)
            .order_by(col(TaskRun.run_id))
        ).all()
    )


def household_members(session: Session, run: TaskRun) -> list[dict[str, Any]]:
    """Each run of ``run``'s household: its ``run_id``, ``portfolio`` and ``recommendation_id``."""
    members = household_runs(session, run)
    if not members:
        return []
    names = {p.portfolio_id: p.name for p in session.exec(select(Portfolio)).all()}
    recos = {
        r.run_id: r.recommendation_id
        for r in session.exec(
            select(Recommendation).where(col(Recommendation.run_id).in_([m.run_id for m in members]))
        ).all()
    }
    return [
        {
            "run_id": m.run_id,
            "portfolio": names.get(m.portfolio_id or 0),
            "recommendation_id": recos.get(m.run_id),
        }
        for m in members
    ]


def _household_differences(session: Session, run: TaskRun, snapshot: Mapping[str, Any]) -> list[str]:
    """Replaying one run of a household replays the joint solve: every account's
    recommendation recomputed from the snapshot is compared with what its run stored (each
    difference named by its account), and every run of the household must hold the same
    snapshot (its hash)."""
    recomputed = household_results.recommend_from_snapshot(snapshot["inputs"])
    members = household_runs(session, run) or [run]
    by_portfolio = {m.portfolio_id: m for m in members}
    out: list[str] = []
    for member in members:
        if member.input_hash != run.input_hash:
            out.append(
                f"run {member.run_id} of the household: input_hash {member.input_hash} differs from "
                f"{run.input_hash}"
            )
    for account in recomputed.accounts:
        own = by_portfolio.get(account.portfolio_id)
        if own is None:
            out.append(f"{account.portfolio}: recomputed, but no run of the household is for it")
            continue
        differences = compare_recommendations(
            stored_recommendation(session, own.run_id), account.recommendation.to_json_dict()
        )
        out += [f"{account.portfolio} (run {own.run_id}): {d}" for d in differences]
    solved = {a.portfolio_id for a in recomputed.accounts}
    out += [
        f"run {m.run_id}: its portfolio is not one of the household's recomputed accounts"
        for m in members
        if m.portfolio_id not in solved
    ]
    return out
