"""The work of each task kind, and what it produces (``KindResult``).

The work functions (``compute``) are what a task notebook calls through ``notebook_api``; they
read through the services and return a ``KindResult`` (plain JSON values plus the engine's
recommendation). They never write run rows: the runner does, in one transaction, once the
notebook has finished. PRICE_REFRESH is the one kind whose work writes (the prices it
downloads, through the price service, in transactions of their own).

What each kind accepts (``module_config``) and whether it recommends is
``services.task_kinds``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from ..core import jsonutil
from ..core.enums import Severity, TaskKind
from ..core.errors import ValidationError
from ..db.engine import unit_of_work
from ..engine.model import PortfolioState
from ..engine.model import Recommendation as EngineRecommendation
from ..services import advice, governance, price_refresh, prices
from ..services.access import accessible_portfolios, portfolio_for
from ..services.run_records import acting_user
from ..services.task_kinds import HouseholdConfig, KindConfig, parse_kind
from . import household
from .locked import retry_locked


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Issue:
    """Something the run found that deserves an alert (raised by the runner, with the run id)."""

    code: str
    severity: Severity
    message: str
    portfolio: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "portfolio": self.portfolio,
            "context": json.loads(jsonutil.dumps(dict(self.context))),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Issue:
        return cls(
            code=str(data["code"]),
            severity=Severity(str(data["severity"])),
            message=str(data["message"]),
            portfolio=data.get("portfolio"),
            context=dict(data.get("context") or {}),
        )


@dataclass(frozen=True)
class KindResult:
    """What a run's work produced: ``inputs`` (the canonical snapshot of everything read),
    ``summary`` (short, for ``output_summary``), ``tables`` (name -> rows, for display),
    ``issues`` (alerts to raise), the engine ``recommendation`` (None: nothing to do) and
    ``analysis``, the engine's recommendation whatever its lines (what the report shows of a
    run that recommends nothing: drift, what was left alone, the cash). A household's run
    has ``household`` instead of the last two: each account's recommendation, and the
    household's own headline and rationale."""

    kind: TaskKind
    inputs: Mapping[str, Any]
    summary: Mapping[str, Any]
    tables: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    issues: tuple[Issue, ...] = ()
    recommendation: EngineRecommendation | None = None
    analysis: EngineRecommendation | None = None
    # A household's run: every account's recommendation (``runs.household.household_json``).
    household: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class WorkContext:
    """What the work of one run may use: the engine, the acting user (the task's creator),
    the portfolio (None for a GLOBAL task), the moment, and the settings."""

    engine: Engine
    actor_user_id: int
    portfolio: str | None
    as_of: datetime
    config: KindConfig


# --------------------------------------------------------------------------------------------
# The work of each kind (called in the notebook's kernel, through notebook_api)
# --------------------------------------------------------------------------------------------
def compute(kind: TaskKind | str, ctx: WorkContext) -> KindResult:
    chosen = parse_kind(kind)
    if chosen is TaskKind.PRICE_REFRESH:
        return _price_refresh(ctx)
    if chosen is TaskKind.ALERT_ONLY:
        return _alert_only(ctx)
    return _recommend(chosen, ctx)


def _price_refresh(ctx: WorkContext) -> KindResult:
    # Plan (read), download (no transaction: no lock held on the network), store (write).
    with unit_of_work(ctx.engine, readonly=True) as session:
        targets, skipped = price_refresh.plan_refresh(
            session, actor=acting_user(session, ctx.actor_user_id), portfolio=ctx.portfolio
        )
    fetched = price_refresh.fetch_targets(targets)

    # Stored again while SQLite says "database is locked", for a bounded time.
    def store() -> list[price_refresh.RefreshOutcome]:
        with unit_of_work(ctx.engine) as session:
            return price_refresh.apply_refresh(
                session, actor=acting_user(session, ctx.actor_user_id), fetched=fetched
            )

    outcomes = skipped + retry_locked(store, what="storing the refreshed prices")
    rows = [json.loads(jsonutil.dumps(o.row())) for o in outcomes]
    issues = tuple(
        Issue(
            code="PRICE_REFRESH_FAILED",
            severity=Severity.WARN,
            message=f"price refresh of {o.ticker}:{o.exchange} failed: {o.message}",
            portfolio=ctx.portfolio,
            context={"ticker": o.ticker, "exchange": o.exchange, "provider": o.provider},
        )
        for o in outcomes
        if o.status == "failed"
    )
    summary = {
        "listings": len(outcomes),
        "refreshed": sum(o.status == "refreshed" for o in outcomes),
        "failed": sum(o.status == "failed" for o in outcomes),
        "skipped": sum(o.status == "skipped" for o in outcomes),
        "inserted": sum(o.inserted for o in outcomes),
    }
    inputs = {
        "portfolio": ctx.portfolio,
        "targets": [
            {
                "ticker": t.ticker,
                "exchange": t.exchange,
                "provider": t.provider,
                "symbol": t.symbol,
                "start": t.start.isoformat() if t.start else None,
            }
            for t in targets
        ],
    }
    return KindResult(TaskKind.PRICE_REFRESH, inputs, summary, {"refresh": rows}, issues)


def _price_issue(portfolio: str, row: Mapping[str, Any], max_age: int) -> Issue:
    """The alert for a listing whose latest good price is stale, or missing."""
    missing = row["as_of"] is None
    where = f"{row['ticker']}:{row['exchange']}"
    return Issue(
        code="PRICE_MISSING" if missing else "PRICE_STALE",
        severity=Severity.WARN,
        message=(
            f"{portfolio}: no good price for {where}"
            if missing
            else f"{portfolio}: the latest good price of {where} is from "
            f"{row['as_of']}, {row['age_business_days']} business days old (limit {max_age})"
        ),
        portfolio=portfolio,
        context={"ticker": row["ticker"], "exchange": row["exchange"], "as_of": row["as_of"]},
    )


def _alert_only(ctx: WorkContext) -> KindResult:
    max_age = getattr(ctx.config, "max_age_business_days", None)
    if max_age is None:
        max_age = prices.DEFAULT_MAX_AGE_BUSINESS_DAYS
    rows: list[dict[str, Any]] = []
    issues: list[Issue] = []
    open_alerts = 0
    with unit_of_work(ctx.engine, readonly=True) as session:
        actor = acting_user(session, ctx.actor_user_id)
        if ctx.portfolio is not None:
            chosen = [portfolio_for(session, actor, ctx.portfolio, "check prices")]
        else:
            chosen = accessible_portfolios(session, actor)
        for portfolio in chosen:
            open_alerts += len(governance.open_alerts(session, portfolio_id=portfolio.portfolio_id))
            latest = prices.portfolio_latest(
                session, actor=actor, portfolio=portfolio.name, as_of=ctx.as_of, max_age_business_days=max_age
            )
            for row in latest:
                rows.append({"portfolio": portfolio.name, **json.loads(jsonutil.dumps(row))})
                if row["is_stale"]:
                    issues.append(_price_issue(portfolio.name, row, max_age))
    summary = {
        "portfolios": len(chosen),
        "listings_checked": len(rows),
        "stale": sum(1 for i in issues if i.code == "PRICE_STALE"),
        "missing": sum(1 for i in issues if i.code == "PRICE_MISSING"),
        "open_alerts_before": open_alerts,
    }
    inputs = {"as_of": ctx.as_of, "max_age_business_days": max_age, "prices": rows}
    return KindResult(
        TaskKind.ALERT_ONLY, json.loads(jsonutil.dumps(inputs)), summary, {"prices": rows}, tuple(issues)
    )


def _recommend(kind: TaskKind, ctx: WorkContext) -> KindResult:
    if isinstance(ctx.config, HouseholdConfig):  # a household's task: every account at once
        snapshot, solved = household.solve(ctx.engine, ctx.actor_user_id, ctx.as_of, kind, ctx.config)
        summary, tables = household.summary_and_tables(solved)
        return KindResult(kind, snapshot, summary, tables, household=household.household_json(solved))
    if ctx.portfolio is None:  # the task service refuses such a task: a recommendation is for a portfolio
        raise ValidationError(f"a {kind.value} run needs a portfolio")
    contribution = getattr(ctx.config, "contribution", None)
    with unit_of_work(ctx.engine, readonly=True) as session:
        inputs = advice.prepare_inputs(
            session, portfolio=ctx.portfolio, kind=kind, as_of=ctx.as_of, contribution=contribution
        )
    recommendation = advice.recommend(inputs)
    return recommendation_result(kind, inputs.snapshot, recommendation, inputs.state)


def recommendation_result(
    kind: TaskKind,
    snapshot: Mapping[str, Any],
    recommendation: EngineRecommendation | None,
    state: PortfolioState | None = None,
) -> KindResult:
    """A result from the engine's recommendation: nothing to do when it has no lines."""
    lines = list(recommendation.lines) if recommendation is not None else []
    line_rows = [line.to_json_dict() for line in lines]
    executed = [line for line in lines if not line.suppressed_by_min_trade]
    summary: dict[str, Any] = {
        "headline": recommendation.headline if recommendation is not None else "nothing to do",
        "lines": len(lines),
        "executed_lines": len(executed),
        "buy_gbp": sum((line.amount_base for line in executed if line.action.value == "BUY"), Decimal(0)),
        "sell_gbp": sum((line.amount_base for line in executed if line.action.value == "SELL"), Decimal(0)),
    }
    tables: dict[str, list[dict[str, Any]]] = {"recommendation_lines": line_rows}
    if state is not None and getattr(state, "positions", None) is not None:
        by_sleeve: dict[str, Decimal] = {}
        for position in state.positions:
            by_sleeve[position.sleeve] = by_sleeve.get(position.sleeve, Decimal(0)) + position.value_gbp
        tables["sleeves"] = [{"sleeve": s, "value_gbp": v} for s, v in sorted(by_sleeve.items())]
    return KindResult(
        kind,
        json.loads(jsonutil.dumps(dict(snapshot))),
        json.loads(jsonutil.dumps(summary)),
        json.loads(jsonutil.dumps(tables)),
        (),
        recommendation if lines else None,
        recommendation,
    )
