"""Task kinds: what each one needs (``module_config``, a portfolio) and the work it does.

``module_config`` is validated per kind with pydantic when a task is added (unknown keys are
refused, so a typo is an error rather than a silently ignored setting) and stored in its
normalised JSON form (decimals as strings). Every kind accepts ``timeout_seconds``, the limit
on each notebook cell of its runs.

The work functions (``compute``) are what a task notebook calls through
``notebook_api``; they read through the services and return a ``KindResult`` (plain JSON
values plus the engine's recommendation). They never write run rows: the runner does, in one
transaction, once the notebook has finished. PRICE_REFRESH is the one kind whose work writes
(the prices it downloads, through the price service, in transactions of their own).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from ..core import jsonutil
from ..core.enums import Severity, TaskKind
from ..core.errors import ValidationError

DEFAULT_TIMEOUT_SECONDS = 600


class KindConfig(BaseModel):
    """Settings every kind accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: int = Field(default=DEFAULT_TIMEOUT_SECONDS, ge=1, le=24 * 3600)


class PriceRefreshConfig(KindConfig):
    """Download prices for the portfolio's listings (or every listing, for a GLOBAL task)."""


class ReviewConfig(KindConfig):
    """A drift check: recommends only when a band is breached."""


class MonthlyAllocConfig(KindConfig):
    """Invest the month's contribution (GBP) that arrives with the run."""

    contribution: Decimal = Field(gt=0, max_digits=18, decimal_places=2)


class QuarterlyRebalConfig(KindConfig):
    """A rebalance that trades only when a band is breached."""


class AlertOnlyConfig(KindConfig):
    """Raise alerts for stale or missing prices; never recommends."""

    max_age_business_days: int | None = Field(default=None, ge=0, le=60)


@dataclass(frozen=True)
class KindSpec:
    kind: TaskKind
    config_model: type[KindConfig]
    needs_portfolio: bool  # a PORTFOLIO task only
    recommends: bool  # produces a recommendation; a frozen portfolio stops it (FROZEN run)


SPECS: dict[TaskKind, KindSpec] = {
    TaskKind.PRICE_REFRESH: KindSpec(TaskKind.PRICE_REFRESH, PriceRefreshConfig, False, False),
    TaskKind.WEEKLY_REVIEW: KindSpec(TaskKind.WEEKLY_REVIEW, ReviewConfig, True, True),
    TaskKind.MONTHLY_ALLOC: KindSpec(TaskKind.MONTHLY_ALLOC, MonthlyAllocConfig, True, True),
    TaskKind.QUARTERLY_REBAL: KindSpec(TaskKind.QUARTERLY_REBAL, QuarterlyRebalConfig, True, True),
    TaskKind.ALERT_ONLY: KindSpec(TaskKind.ALERT_ONLY, AlertOnlyConfig, False, False),
}


def parse_kind(value: TaskKind | str) -> TaskKind:
    try:
        return TaskKind(str(value).strip().upper())
    except ValueError:
        known = ", ".join(k.value for k in TaskKind)
        raise ValidationError(f"task kind {value!r}: expected one of {known}") from None


def spec(kind: TaskKind | str) -> KindSpec:
    return SPECS[parse_kind(kind)]


def parse_config(kind: TaskKind | str, raw: Mapping[str, Any] | str | None) -> KindConfig:
    """The kind's settings from a dict or JSON text (``--config``), or a ``ValidationError``
    naming every bad key."""
    chosen = spec(kind)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = {}
    if isinstance(raw, str):
        try:
            raw = jsonutil.loads_decimal(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"--config: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, Mapping):
        raise ValidationError("module_config: expected a JSON object")
    try:
        return chosen.config_model.model_validate(dict(raw))
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in exc.errors()
        )
        raise ValidationError(f"module_config for {chosen.kind.value}: {problems}") from None


def config_json(config: KindConfig) -> dict[str, Any]:
    """The stored form: defaults left out, decimals as exact strings."""
    return json.loads(jsonutil.dumps(config.model_dump(exclude_defaults=True)))


def validate_config(kind: TaskKind | str, raw: Mapping[str, Any] | str | None) -> dict[str, Any]:
    return config_json(parse_config(kind, raw))


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
    ``issues`` (alerts to raise) and the engine ``recommendation`` (None: nothing to do)."""

    kind: TaskKind
    inputs: Mapping[str, Any]
    summary: Mapping[str, Any]
    tables: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    issues: tuple[Issue, ...] = ()
    recommendation: Any = None  # tradeassist.engine.model.Recommendation


@dataclass(frozen=True)
class WorkContext:
    """What the work of one run may use: the engine, the acting user (the task's creator),
    the portfolio (None for a GLOBAL task), the moment, and the settings."""

    engine: Any
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


def _actor(session: Any, user_id: int) -> Any:
    from ..db.models import User

    user = session.get(User, user_id)
    if user is None or not user.is_enabled:
        raise ValidationError(f"the task's owner (user {user_id}) is missing or disabled")
    return user


def _price_refresh(ctx: WorkContext) -> KindResult:
    from ..db.engine import unit_of_work
    from ..services import price_refresh

    # Plan (read), download (no transaction: no lock held on the network), store (write).
    with unit_of_work(ctx.engine, readonly=True) as session:
        targets, skipped = price_refresh.plan_refresh(
            session, actor=_actor(session, ctx.actor_user_id), portfolio=ctx.portfolio
        )
    fetched = price_refresh.fetch_targets(targets)
    with unit_of_work(ctx.engine) as session:
        outcomes = skipped + price_refresh.apply_refresh(
            session, actor=_actor(session, ctx.actor_user_id), fetched=fetched
        )
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


def _alert_only(ctx: WorkContext) -> KindResult:
    from ..db.engine import unit_of_work
    from ..services import governance, prices
    from ..services.access import accessible_portfolios, portfolio_for

    config = ctx.config
    max_age = getattr(config, "max_age_business_days", None)
    if max_age is None:
        max_age = prices.DEFAULT_MAX_AGE_BUSINESS_DAYS
    rows: list[dict[str, Any]] = []
    issues: list[Issue] = []
    open_alerts = 0
    with unit_of_work(ctx.engine, readonly=True) as session:
        actor = _actor(session, ctx.actor_user_id)
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
                if not row["is_stale"]:
                    continue
                missing = row["as_of"] is None
                where = f"{row['ticker']}:{row['exchange']}"
                issues.append(
                    Issue(
                        code="PRICE_MISSING" if missing else "PRICE_STALE",
                        severity=Severity.WARN,
                        message=(
                            f"{portfolio.name}: no good price for {where}"
                            if missing
                            else f"{portfolio.name}: the latest good price of {where} is from "
                            f"{row['as_of']}, {row['age_business_days']} business days old (limit {max_age})"
                        ),
                        portfolio=portfolio.name,
                        context={"ticker": row["ticker"], "exchange": row["exchange"], "as_of": row["as_of"]},
                    )
                )
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
    from ..db.engine import unit_of_work

    try:
        from ..services import advice
    except ModuleNotFoundError as exc:  # the advice service lands separately
        raise ValidationError(f"{kind.value} needs the recommendation service ({exc.name})") from None
    contribution = getattr(ctx.config, "contribution", None)
    with unit_of_work(ctx.engine, readonly=True) as session:
        inputs = advice.prepare_inputs(
            session, portfolio=ctx.portfolio, kind=kind, as_of=ctx.as_of, contribution=contribution
        )
    recommendation = advice.recommend(inputs)
    return recommendation_result(kind, inputs.snapshot, recommendation, getattr(inputs, "state", None))


def recommendation_result(
    kind: TaskKind, snapshot: Mapping[str, Any], recommendation: Any, state: Any = None
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
    )
