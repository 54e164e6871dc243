"""A household task's work: one solve for every account of a strategy, as a run's result.

A household task (GLOBAL, its ``module_config`` naming a strategy: ``services.task_kinds``)
runs the kind's own notebook (``MONTHLY_ALLOC.ipynb`` or ``QUARTERLY_REBAL.ipynb``) like any
other task; ``kinds.compute`` solves it here and makes its result, which carries the joint input snapshot
(``inputs``) and, under ``household``, every account's recommendation with its portfolio, which
the runner records as one run per account (``recording.write_household``).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from ..core import jsonutil
from ..core.enums import TaskKind
from ..db.engine import unit_of_work
from ..services import household, household_results
from ..services.household_results import HouseholdAdvice
from ..services.run_records import acting_user
from ..services.task_kinds import HouseholdConfig


def solve(
    engine: Engine, actor_user_id: int, as_of: datetime, kind: TaskKind, config: HouseholdConfig
) -> tuple[dict[str, Any], HouseholdAdvice]:
    """Read the household (as the task's actor) and solve it: the joint snapshot and the advice."""
    with unit_of_work(engine, readonly=True) as session:
        inputs = household.prepare_household(
            session,
            actor=acting_user(session, actor_user_id),
            strategy=config.strategy,
            kind=kind,
            as_of=as_of,
            contributions=dict(config.contributions),
        )
    snapshot: dict[str, Any] = json.loads(jsonutil.dumps(dict(inputs.snapshot)))
    return snapshot, household_results.recommend(inputs)


def household_json(advice: HouseholdAdvice) -> dict[str, Any]:
    """The household as a run publishes it: its headline and rationale, and each account's
    portfolio (name and id), tax treatment, contribution and recommendation."""
    result: dict[str, Any] = json.loads(
        jsonutil.dumps(
            {
                "strategy": advice.strategy,
                "strategy_version_id": advice.strategy_version_id,
                "headline": advice.headline,
                "rationale": advice.rationale,
                "input_hash": advice.input_hash,
                "accounts": [
                    {
                        "portfolio": a.portfolio,
                        "portfolio_id": a.portfolio_id,
                        "tax_treatment": a.tax_treatment,
                        "contribution": a.contribution,
                        "recommendation": a.recommendation.to_json_dict(),
                    }
                    for a in advice.accounts
                ],
            }
        )
    )
    return result


def summary_and_tables(advice: HouseholdAdvice) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The run's short summary (the household's headline, its lines and money) and its table of
    lines, each with its account."""
    lines = [(a.portfolio, line) for a in advice.accounts for line in a.recommendation.lines]
    executed = [(name, line) for name, line in lines if not line.suppressed_by_min_trade]
    summary = {
        "headline": advice.headline,
        "strategy": advice.strategy,
        "accounts": len(advice.accounts),
        "lines": len(lines),
        "executed_lines": len(executed),
        "buy_gbp": sum((line.amount_base for _, line in executed if line.action.value == "BUY"), Decimal(0)),
        "sell_gbp": sum(
            (line.amount_base for _, line in executed if line.action.value == "SELL"), Decimal(0)
        ),
    }
    tables = {"recommendation_lines": [{"portfolio": name, **line.to_json_dict()} for name, line in lines]}
    return json.loads(jsonutil.dumps(summary)), json.loads(jsonutil.dumps(tables))
