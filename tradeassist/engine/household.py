"""One strategy across several accounts: the household recommendation.

A UK investor holds one asset allocation across a SIPP, an ISA and a general account (GIA),
but each account spends only its own cash, holds only its own constituents, and only a sale in
the GIA can cost capital gains tax. ``recommend_household`` solves one problem for all of them:

* sleeve targets apply to the combined base of every account (holdings in the strategy plus
  cash plus contributions, all accounts together);
* each account's cash plus its contribution, less the policy's cash buffer, is its own budget:
  money never moves between accounts, and a sale in one account funds buys in the same one
  (an account already below its buffer is never taken further below it, and otherwise left
  alone: it does not stop the others trading);
* each account trades only its own positions (its constituents say what it can hold); the same
  listing in two accounts is two holdings;
* fees and the minimum trade are per line, as in the policy, with the policy's optional
  ``fee_per_trade_by_portfolio`` override per account;
* the objective is the single-portfolio one over the whole household: the squared deviation
  of the combined sleeve weights plus the per-line penalty (``engine.problem``);
* ties go to less selling in the GIA (sales in the ISA and SIPP first), then the single
  portfolio's tie-breaks; with ``"cgt": "avoid_gains_over_allowance"`` no list realises GIA
  gains beyond the owner's annual exempt amount left (a hard rule of the search).

The rules of a single account keep their meaning per account: a sleeve does not both sell and
buy in one account unless ``sell_and_buy_in_same_sleeve``, ``max_lines_per_sleeve`` counts one
account's lines, a frozen account is never traded. The turnover cap is over the household's
combined base, and a sleeve with a target that the household holds is never sold to nothing.

Pure: the same accounts, policy and kind give the same recommendations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from ..core.enums import TaskKind
from ..core.errors import ValidationError
from ..core.money import ZERO, decimal_str, to_decimal
from ..policy import Policy, parse_policy, parse_stored_policy, policy_to_dict
from . import household_report as report
from .household_model import Account, HouseholdRecommendation, combined, untag
from .household_problem import AccountInput, build_household
from .household_search import solve_household
from .model import PortfolioState, Position, state_from_dict, state_to_dict
from .recommend import recommendation_kind
from .scope import NO_SLEEVE_HELD, Scoped, scope
from .valuation import drift_report, total_value

# The household search's default node limit (bound evaluations): 9-18 s of CPU on a
# 50-listing household of three accounts, where it stops with its best list and the gap.
HOUSEHOLD_MAX_NODES = 100_000


def combined_state(accounts: Sequence[Account]) -> PortfolioState:
    """Every account's positions in one state (exchanges tagged), cash and contributions summed."""
    return combined([a.state for a in accounts])


def _scoped_accounts(accounts: Sequence[Account], scoped: Scoped) -> list[AccountInput]:
    """Each account's positions as the household's scope left them (untagged again)."""
    positions: list[list[Position]] = [[] for _ in accounts]
    for position in scoped.state.positions:
        exchange, k = untag(position.exchange)
        positions[k].append(replace(position, exchange=exchange))
    return [
        AccountInput(
            name=a.name,
            state=replace(a.state, positions=tuple(own)),
            taxable=a.taxable,
            gain_per_unit=dict(a.gain_per_unit),
        )
        for a, own in zip(accounts, positions, strict=True)
    ]


def _check(accounts: Sequence[Account]) -> None:
    if not accounts:
        raise ValidationError("household: no accounts")
    names = [a.name for a in accounts]
    if len(set(names)) != len(names):
        raise ValidationError("household: each account appears once")


def recommend_household(
    accounts: Sequence[Account],
    policy: Policy | Mapping[str, Any] | str,
    kind: TaskKind | str,
    *,
    gain_allowance_left: Decimal | None = None,
    max_nodes: int = HOUSEHOLD_MAX_NODES,
) -> HouseholdRecommendation:
    """The household recommendation for these accounts (in this order) and one task kind.

    ``gain_allowance_left``: the owner's annual exempt amount not yet used in the tax year,
    read under ``"cgt": "avoid_gains_over_allowance"`` (None: no limit).
    """
    _check(accounts)
    policy = parse_policy(policy)
    kind = recommendation_kind(kind)
    combined = combined_state(accounts)
    scoped = scope(combined, policy)
    work, rules_policy = scoped.state, scoped.policy
    before = drift_report(work, rules_policy)
    total_before = total_value(work)
    inputs = _scoped_accounts(accounts, scoped)
    rules = report.household_rules(scoped, before, policy)
    trades: list[dict[int, int]] = [{} for _ in accounts]
    search: dict[str, Any] = {"ran": False}
    if scoped.blocked or NO_SLEEVE_HELD in rules:
        pass  # the rule already fired says why
    elif total_before <= ZERO:
        rules.append(report.NOTHING_TO_VALUE)
    elif kind in (TaskKind.QUARTERLY_REBAL, TaskKind.WEEKLY_REVIEW) and not report.breached(before):
        rules.append(report.DRIFT_CHECK_ONLY if kind is TaskKind.WEEKLY_REVIEW else report.NOT_NEEDED)
    else:
        sells = policy.sells_allowed(kind)
        rules.append(report.SELLS_ALLOWED if sells else report.BUY_ONLY)
        problem = build_household(
            inputs, work, rules_policy, sells=sells, gain_allowance_left=gain_allowance_left
        )
        solution = solve_household(problem, max_nodes=max_nodes)
        search = report.search_report(solution, max_nodes)
        if solution is None:
            rules.append(report.NOTHING_AFFORDABLE)
        else:
            for index, q in enumerate(solution.units):
                if q:
                    trades[problem.account_of[index]][problem.items[index].position] = q
            if not solution.proven_optimal:
                rules.append(report.SEARCH_NOT_PROVEN)
            if not any(trades):
                rules.append(report.NO_IMPROVEMENT)
    return report.assemble(accounts, inputs, policy, kind, scoped, rules, trades, search, gain_allowance_left)


# --------------------------------------------------------------------------------------------
# The joint input snapshot
# --------------------------------------------------------------------------------------------
SNAPSHOT_VERSION = 1


def household_snapshot(
    accounts: Sequence[Account],
    policy: Policy | Mapping[str, Any] | str,
    kind: TaskKind | str,
    *,
    gain_allowance_left: Decimal | None = None,
    max_nodes: int = HOUSEHOLD_MAX_NODES,
) -> dict[str, Any]:
    """Everything ``recommend_household`` reads, as plain JSON: the joint input snapshot."""
    _check(accounts)
    return {
        "snapshot_version": SNAPSHOT_VERSION,
        "kind": recommendation_kind(kind).value,
        "max_nodes": max_nodes,
        "policy": policy_to_dict(policy, as_written=True),
        "gain_allowance_left": decimal_str(gain_allowance_left),
        "accounts": [
            {
                "name": a.name,
                "taxable": a.taxable,
                "gain_per_unit": {k: decimal_str(v) for k, v in sorted(a.gain_per_unit.items())},
                "state": state_to_dict(a.state),
            }
            for a in accounts
        ],
    }


def recommend_household_from_snapshot(data: Mapping[str, Any]) -> HouseholdRecommendation:
    """Recompute a household recommendation from its snapshot alone (equal to the original)."""
    if not isinstance(data, Mapping) or data.get("snapshot_version") != SNAPSHOT_VERSION:
        raise ValidationError(f"household snapshot: expected snapshot_version {SNAPSHOT_VERSION}")
    allowance = data.get("gain_allowance_left")
    accounts = [
        Account(
            name=str(raw["name"]),
            state=state_from_dict(raw["state"]),
            taxable=bool(raw.get("taxable", False)),
            gain_per_unit={
                k: to_decimal(v, what="gain_per_unit") for k, v in raw.get("gain_per_unit", {}).items()
            },
        )
        for raw in data.get("accounts", ())
    ]
    return recommend_household(
        accounts,
        parse_stored_policy(data["policy"]),
        data["kind"],
        gain_allowance_left=None if allowance is None else to_decimal(allowance, what="gain_allowance_left"),
        max_nodes=int(data.get("max_nodes", HOUSEHOLD_MAX_NODES)),
    )
