"""A household's recommendations: the joint solve, each general account's tax, and the
household's own figures in each account's rationale.

``recommend`` computes from ``household.prepare_household``'s inputs; ``recommend_from_snapshot``
from the joint input snapshot alone (no database, no clock), which is what ``runs replay``
compares. Both give, per account, the engine's ``Recommendation`` with that account's lines,
``engine.tax.proposals.apply_tax`` applied in a general account (each SELL line's
``estimated_gain_base``, a BUY HMRC would match with a recent sale flagged), and the
household's figures under ``rationale["household"]`` (``household_summary``), so that every
stored recommendation of a household says which household it belongs to and how the combined
allocation moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..core.enums import TaskKind
from ..core.errors import ValidationError
from ..core.jsonutil import plain, sha256_of
from ..core.timeutil import london_date
from ..engine.household import HouseholdRecommendation, recommend_household, recommend_household_from_snapshot
from ..engine.model import Recommendation
from ..engine.tax.proposals import TaxContext, apply_tax, context_from_dict
from .household import SNAPSHOT_SCHEMA, HouseholdInputs, household_kind, is_household_snapshot


@dataclass(frozen=True)
class AccountAdvice:
    """One account's part of the household's advice."""

    portfolio: str
    portfolio_id: int
    tax_treatment: str
    contribution: Decimal
    recommendation: Recommendation


@dataclass(frozen=True)
class HouseholdAdvice:
    """The household's advice: its own headline and rationale, and one recommendation per
    account (in the household's order: its portfolios by id)."""

    strategy: str
    strategy_version_id: int | None
    kind: TaskKind
    as_of: datetime
    headline: str
    rationale: Mapping[str, Any]
    accounts: tuple[AccountAdvice, ...]
    input_hash: str

    def for_portfolio(self, name: str) -> AccountAdvice:
        for account in self.accounts:
            if account.portfolio == name:
                return account
        raise KeyError(name)


@dataclass(frozen=True)
class _Facts:
    name: str
    portfolio_id: int
    tax_treatment: str
    contribution: Decimal
    tax: TaxContext | None


def household_summary(strategy: str, solved: HouseholdRecommendation) -> dict[str, Any]:
    """What each account's rationale carries under ``household``: the engine's household
    figures (each account's money and why, the combined sleeves before and after, the sleeves
    no account can hold, the objective, the exempt amount left), with the strategy's label,
    the household's headline and its accounts' names (``account_names``)."""
    source = plain(solved.rationale)
    figures = source.get("household")
    summary: dict[str, Any] = dict(figures) if isinstance(figures, Mapping) else {}
    summary |= {"strategy": strategy, "headline": solved.headline, "account_names": list(solved.accounts)}
    return summary


def _finish(
    solved: HouseholdRecommendation,
    facts: Sequence[_Facts],
    *,
    strategy: str,
    strategy_version_id: int | None,
    kind: TaskKind,
    as_of: datetime,
    input_hash: str,
) -> HouseholdAdvice:
    if tuple(solved.accounts) != tuple(f.name for f in facts):
        raise ValidationError(
            f"household: the engine answered for {list(solved.accounts)}, not {[f.name for f in facts]}"
        )
    summary = household_summary(strategy, solved)
    day = london_date(as_of)
    accounts = []
    for fact, recommendation in zip(facts, solved.recommendations, strict=True):
        if fact.tax is not None:
            recommendation = apply_tax(recommendation, fact.tax, day)
        recommendation = Recommendation(
            recommendation.headline,
            dict(recommendation.rationale) | {"household": summary},
            recommendation.constraints_report,
            recommendation.lines,
        )
        accounts.append(
            AccountAdvice(fact.name, fact.portfolio_id, fact.tax_treatment, fact.contribution, recommendation)
        )
    return HouseholdAdvice(
        strategy=strategy,
        strategy_version_id=strategy_version_id,
        kind=kind,
        as_of=as_of,
        headline=solved.headline,
        rationale=plain(solved.rationale),
        accounts=tuple(accounts),
        input_hash=input_hash,
    )


def recommend(inputs: HouseholdInputs) -> HouseholdAdvice:
    """The household's recommendations for these inputs (pure)."""
    solved = recommend_household(
        inputs.engine_accounts,
        inputs.policy,
        inputs.kind,
        gain_allowance_left=inputs.gain_allowance_left,
    )
    facts = [
        _Facts(a.name, a.portfolio_id, a.tax_treatment.value, a.contribution, a.tax) for a in inputs.accounts
    ]
    return _finish(
        solved,
        facts,
        strategy=inputs.strategy,
        strategy_version_id=inputs.strategy_version_id,
        kind=inputs.kind,
        as_of=inputs.as_of,
        input_hash=inputs.input_hash,
    )


def recommend_from_snapshot(snapshot: Mapping[str, Any]) -> HouseholdAdvice:
    """Recompute a household's recommendations from its joint input snapshot alone."""
    if not is_household_snapshot(snapshot):
        raise ValidationError("not a household's input snapshot")
    if snapshot.get("schema") != SNAPSHOT_SCHEMA:
        raise ValidationError(f"input snapshot schema {snapshot.get('schema')!r} is not {SNAPSHOT_SCHEMA}")
    parameters = snapshot["parameters"]
    solved = recommend_household_from_snapshot(snapshot["engine"])
    facts = [
        _Facts(
            str(a["portfolio"]),
            int(a["portfolio_id"]),
            str(a["tax_treatment"]),
            Decimal(str(a.get("contribution") or "0")),
            context_from_dict(a["tax"]) if a.get("tax") is not None else None,
        )
        for a in snapshot["accounts"]
    ]
    strategy = snapshot.get("strategy") or {}
    return _finish(
        solved,
        facts,
        strategy=str(parameters["strategy"]),
        strategy_version_id=strategy.get("strategy_version_id"),
        kind=household_kind(parameters["kind"]),
        as_of=datetime.fromisoformat(str(parameters["as_of"])),
        input_hash=sha256_of(snapshot),
    )


# --------------------------------------------------------------------------------------------
# As JSON
# --------------------------------------------------------------------------------------------
ALLOCATION_FIELDS = (
    "target",
    "weight_before",
    "weight_after",
    "drift_before",
    "drift_after",
    "value_before",
    "value_after",
    "breached_before",
    "breached_after",
)


def allocation_rows(rationale: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The household's allocation per sleeve, before and after the trades of every account
    (from the household rationale's ``sleeves``): one row per sleeve."""
    sleeves = rationale.get("sleeves") or {}
    if isinstance(sleeves, Mapping):
        items = list(sleeves.items())
    else:  # a list of rows naming their sleeve
        items = [(str(row.get("sleeve")), row) for row in sleeves]
    return [
        {"sleeve": code, **{k: row.get(k) for k in ALLOCATION_FIELDS if k in row}}
        for code, row in items
        if isinstance(row, Mapping)
    ]


def account_document(account: AccountAdvice) -> dict[str, Any]:
    """One account's part of ``recommend --strategy --json``: the portfolio, its tax treatment
    and contribution, the stored four keys and the explain keys (as ``recommend --json``)."""
    reco = account.recommendation
    return {
        "portfolio": account.portfolio,
        "tax_treatment": account.tax_treatment,
        "contribution": account.contribution,
        **reco.to_json_dict(),
        **reco.explain(),
    }


def document(advice: HouseholdAdvice) -> dict[str, Any]:
    """``recommend --strategy LABEL --json``: the household's decision, its allocation before
    and after per sleeve, every account's recommendation, and every line with its account."""
    accounts = [account_document(a) for a in advice.accounts]
    lines = [{"portfolio": a["portfolio"], **line} for a in accounts for line in a["lines"]]
    result: dict[str, Any] = plain(
        {
            "strategy": advice.strategy,
            "strategy_version_id": advice.strategy_version_id,
            "kind": advice.kind.value,
            "as_of": advice.as_of,
            "input_hash": advice.input_hash,
            "headline": advice.headline,
            "allocation": allocation_rows(advice.rationale),
            "rationale": advice.rationale,
            "accounts": accounts,
            "lines": lines,
        }
    )
    return result
