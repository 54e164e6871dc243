"""What a run's report says beyond its notebook, read from the database; and sending it.

* ``run_summary`` (access-checked like ``runs show``): what the email about a run says (the
  headline, the lines, the review verdict, the open alerts, the sleeves for its charts); the
  message itself is composed by ``presentation.run_email``.
* ``recorded_facts`` (the runner's, no access check): what only the recorded run knows, for
  its report page: the status, the input hash, the strategy version, the recommendation and
  its latest verdict.
* ``send_email`` sends with no transaction open (the SMTP exchange has its own timeouts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import TRADING_KINDS
from ..core.errors import NotFound, TradeAssistError
from ..db.models import (
    Portfolio,
    Recommendation,
    RunInputSnapshot,
    StrategyVersion,
    TaskDefinition,
    TaskRun,
    TaskRunClaim,
    User,
)
from ..providers.channels import Channel as ChannelProvider
from ..providers.channels import DeliveryResult, OutgoingMessage, get_channel
from . import advice, governance, recommendations, run_history
from .reviews import latest_verdict, verdict_row
from .task_kinds import parse_kind


@dataclass(frozen=True)
class RunSummary:
    """What the email says about one run."""

    run_id: int
    kind: str
    portfolio: str | None
    status: str
    as_of: Any
    headline: str
    lines: tuple[Mapping[str, Any], ...] = ()
    recommendation_id: int | None = None
    recommendation_status: str | None = None
    verdict: Mapping[str, Any] | None = None
    alerts: tuple[Mapping[str, Any], ...] = ()
    sleeves: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bands: Mapping[str, Any] = field(default_factory=dict)
    html_path: str | None = None
    error: str | None = None
    task: str | None = None
    constraints_report: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Reading the run
# --------------------------------------------------------------------------------------------
def _recomputed(session: Session, run: TaskRun, kind: str) -> Mapping[str, Any] | None:
    """A run that stored no recommendation (nothing to trade) still has a rationale: the
    engine recomputes it from the run's input snapshot alone."""
    if run.status.value != "SUCCESS" or parse_kind(kind) not in TRADING_KINDS:
        return None
    snapshot = session.get(RunInputSnapshot, run.run_id)
    inputs = (snapshot.snapshot_json or {}).get("inputs") if snapshot else None
    if not isinstance(inputs, Mapping) or "state" not in inputs:
        return None
    try:
        return advice.recommend_from_snapshot(inputs).to_json_dict()
    except TradeAssistError:
        return None


def run_summary(session: Session, *, actor: User, run_id: int) -> RunSummary:
    """The run as the email shows it (access-checked like ``runs show``)."""
    detail = run_history.show_run(session, actor=actor, run_id=run_id)
    run = session.get(TaskRun, run_id)
    assert run is not None
    stored = detail["recommendation"]
    reco_row = None
    document: Mapping[str, Any] | None = None
    if stored is not None:
        reco_row = recommendations.get_recommendation(
            session, actor=actor, recommendation_id=stored["recommendation_id"]
        )
        reco = session.get(Recommendation, stored["recommendation_id"])
        assert reco is not None
        document = {
            "headline": reco.headline,
            "rationale": reco.rationale,
            "constraints_report": reco.constraints_report,
        }
    else:
        document = _recomputed(session, run, detail["kind"])
    alerts: list[Mapping[str, Any]] = []
    if run.portfolio_id is not None:
        portfolio = session.get(Portfolio, run.portfolio_id)
        alerts = [
            governance.alert_row(a, portfolio.name if portfolio else None)
            for a in governance.open_alerts(session, portfolio_id=run.portfolio_id)
        ]
    rationale = (document or {}).get("rationale") or {}
    verdicts = reco_row["verdicts"] if reco_row else []
    return RunSummary(
        run_id=run_id,
        kind=detail["kind"],
        portfolio=detail["portfolio"],
        status=detail["status"],
        as_of=detail["as_of"],
        headline=(document or {}).get("headline") or _no_headline(detail),
        lines=tuple(reco_row["lines"]) if reco_row else (),
        recommendation_id=reco_row["recommendation_id"] if reco_row else None,
        recommendation_status=reco_row["status"] if reco_row else None,
        verdict=verdicts[-1] if verdicts else None,
        alerts=tuple(alerts),
        sleeves=rationale.get("sleeves") or {},
        bands=rationale.get("bands") or {},
        html_path=detail["html_path"],
        error=detail["error_message"],
        task=detail["task"],
        constraints_report=(document or {}).get("constraints_report") or {},
    )


def _no_headline(detail: Mapping[str, Any]) -> str:
    if detail["status"] != "SUCCESS":
        return f"{detail['kind']} run {detail['run_id']} {detail['status']}"
    return f"{detail['kind']} run {detail['run_id']}: nothing to recommend"


# --------------------------------------------------------------------------------------------
# What only the recorded run knows (for its report page)
# --------------------------------------------------------------------------------------------
def recorded_facts(session: Session, run_id: int) -> dict[str, Any]:
    """The recorded run as its report page shows it; the runner's read (no access check)."""
    run = session.get(TaskRun, run_id)
    claim = session.get(TaskRunClaim, run_id)
    if run is None or claim is None:
        raise NotFound(f"no recorded run {run_id}")
    task = session.get(TaskDefinition, run.task_id)
    strategy = None
    if run.strategy_version_id is not None:
        version = session.get(StrategyVersion, run.strategy_version_id)
        if version is not None:
            strategy = {
                "label": version.version_label,
                "strategy_version_id": version.strategy_version_id,
                "policy_sha256": version.policy_sha256,
            }
    reco = session.exec(
        select(Recommendation)
        .where(Recommendation.run_id == run_id)
        .order_by(col(Recommendation.recommendation_id))
    ).first()
    verdict = latest_verdict(session, reco.recommendation_id) if reco and reco.recommendation_id else None
    return {
        "run_id": run_id,
        "task": task.name if task is not None else None,
        "status": run.status.value,
        "error": run.error_message,
        "input_hash": run.input_hash,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "attempt": claim.attempt,
        "manual": claim.manual,
        "strategy": strategy,
        "recommendation_id": reco.recommendation_id if reco else None,
        "recommendation_status": reco.status.value if reco else None,
        "verdict": verdict_row(verdict) if verdict is not None else None,
    }


# --------------------------------------------------------------------------------------------
# The report file and sending
# --------------------------------------------------------------------------------------------
def read_report(summary: RunSummary) -> bytes | None:
    if not summary.html_path:
        return None
    try:
        return Path(summary.html_path).read_bytes()
    except OSError:
        return None


def send_email(
    message: OutgoingMessage,
    to: str,
    *,
    channel: ChannelProvider | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
) -> DeliveryResult:
    """Send now through the EMAIL channel (SMTP settings from ``TRADEASSIST_SMTP_*``), not the outbox.

    ``timeout`` bounds each SMTP step (default 30 s), ``deadline`` the whole exchange (default
    120 s, or the timeout if longer): a server that stalls or drips its replies fails the send
    then, retryable, and nothing waits longer.
    """
    if channel is None:
        options = {"timeout": timeout, "deadline": deadline}
        channel = get_channel("EMAIL", **{k: v for k, v in options.items() if v is not None})
    return channel.send(message, to)
