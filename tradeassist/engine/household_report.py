"""What a household recommendation says: one recommendation per account, each with its own
lines, money and headline, sharing the household's rationale (the combined allocation before
and after, why money went to each account, sleeves no account can hold, the search's proof)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ..core.enums import TaskKind, TradeAction
from ..core.money import ZERO, format_gbp
from ..policy import Policy
from .household_model import Account, HouseholdRecommendation, combined
from .household_problem import AccountInput
from .model import PortfolioState, Recommendation, RecommendationLine
from .recommend import trade_lines
from .recommend_report import (
    BUY_ONLY,
    CASH_BELOW_BUFFER,
    DRIFT_CHECK_ONLY,
    FROZEN,
    NO_IMPROVEMENT,
    NOT_NEEDED,
    NOTHING_AFFORDABLE,
    NOTHING_TO_VALUE,
    OBJECTIVE_PLACES,
    SEARCH_NOT_PROVEN,
    SELLS_ALLOWED,
    breached,
    constraints_report,
    headline,
    positions_report,
    search_report,
    shown,
    sleeve_rows,
    standing_rules,
)
from .scope import Scoped
from .valuation import SleeveDrift, apply_trades, drift_report, objective, total_value

__all__ = [
    "BUY_ONLY",
    "DRIFT_CHECK_ONLY",
    "NOTHING_AFFORDABLE",
    "NOTHING_TO_VALUE",
    "NOT_NEEDED",
    "NO_IMPROVEMENT",
    "SEARCH_NOT_PROVEN",
    "SELLS_ALLOWED",
    "assemble",
    "breached",
    "household_rules",
    "search_report",
]

HOUSEHOLD = "HOUSEHOLD"  # the rule every household recommendation fires


def household_rules(scoped: Scoped, before: Sequence[SleeveDrift], policy: Policy) -> list[str]:
    """The household's rule, then ``recommend_report.standing_rules``."""
    return [HOUSEHOLD, *standing_rules(scoped, before, policy)]


def _why(
    name: str,
    lines: Sequence[RecommendationLine],
    sleeve_of: dict[tuple[str, str], str],
    holders: dict[str, list[str]],
    accounts: int,
    money_available: Decimal,
) -> list[str]:
    """Why money went where it did in one account, in words."""
    said: list[str] = []
    bought: dict[str, Decimal] = {}
    sold: dict[str, Decimal] = {}
    for line in lines:
        if line.suppressed_by_min_trade:
            continue
        sleeve = sleeve_of[(line.ticker, line.exchange)]
        into = bought if line.action is TradeAction.BUY else sold
        into[sleeve] = into.get(sleeve, ZERO) + line.amount_base
    for sleeve, amount in sorted(sold.items()):
        said.append(
            f"Sells {format_gbp(amount)} of {sleeve}: over target across the household; "
            f"the sale pays for buys in {name}."
        )
    for sleeve, amount in sorted(bought.items()):
        can = holders.get(sleeve, [])
        if accounts > 1 and can == [name]:
            said.append(
                f"Buys {format_gbp(amount)} of {sleeve}: under target, and {name} is the only "
                "account that can hold it."
            )
        else:
            said.append(f"Buys {format_gbp(amount)} of {sleeve}: under target across the household.")
    if not said and money_available < ZERO:
        said.append(f"No trade in {name}: {_below_buffer(money_available)}")
    elif not said:
        said.append(
            f"No trade in {name}: nothing here improves the household's allocation "
            f"({format_gbp(money_available)} available)."
        )
    return said


def _below_buffer(money_available: Decimal) -> str:
    return (
        f"its cash is {format_gbp(-money_available)} short of the cash buffer, so it buys nothing "
        "until it is topped up (it is never taken further below the buffer)."
    )


def assemble(
    accounts: Sequence[Account],
    inputs: Sequence[AccountInput],
    policy: Policy,
    kind: TaskKind,
    scoped: Scoped,
    rules: list[str],
    trades: Sequence[dict[int, int]],
    search: dict[str, Any],
    gain_allowance_left: Decimal | None,
) -> HouseholdRecommendation:
    rules_policy = scoped.policy
    work = scoped.state
    before = drift_report(work, rules_policy)
    total_before = total_value(work)
    names = [a.name for a in accounts]
    holders: dict[str, list[str]] = {}
    for account in inputs:  # which accounts can trade each sleeve
        for p in account.state.positions:
            able = holders.setdefault(p.sleeve, [])
            if p.can_trade and account.name not in able:
                able.append(account.name)
    lines_of: list[tuple[RecommendationLine, ...]] = []
    afters: list[PortfolioState] = []
    for account, own in zip(inputs, trades, strict=True):
        lines = trade_lines(account.state, kind, own, {}, policy.min_trade_base)
        lines_of.append(lines)
        keyed = {account.state.positions[i].key: q for i, q in own.items()}
        afters.append(apply_trades(account.state, keyed, policy.fee_for(account.name)))
    after = drift_report(combined(afters), rules_policy)
    executed = sum(len([x for x in lines if not x.suppressed_by_min_trade]) for lines in lines_of)
    penalty = (
        Fraction(0) if total_before <= ZERO else (Fraction(policy.line_penalty) / Fraction(total_before)) ** 2
    )
    objective_before = objective(work, rules_policy)
    objective_after = objective(combined(afters), rules_policy) + executed * penalty
    per_account: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    for account, original, lines in zip(inputs, accounts, lines_of, strict=True):
        own_policy = policy.model_copy(update={"fee_per_trade_base": policy.fee_for(account.name)})
        available = original.state.cash_available_gbp - policy.cash_buffer_base
        report = constraints_report(original.state, own_policy, lines, available, search, total_before)
        reports.append(report)
        sleeve_of = {p.key: p.sleeve for p in account.state.positions}
        per_account.append(
            {
                "account": account.name,
                "general_account": account.taxable,
                "money_available": available,
                "buy_consideration": report["buy_consideration"],
                "sell_consideration": report["sell_consideration"],
                "fees": report["fees"],
                "cash_left": report["cash_left"],
                "lines": len([x for x in lines if not x.suppressed_by_min_trade]),
                "why": _why(account.name, lines, sleeve_of, holders, len(inputs), available),
            }
        )
    household = {
        "accounts": per_account,
        "sleeves": sleeve_rows(tuple(before), tuple(after)),
        "sleeves_no_account_can_hold": list(scoped.sleeves_not_held),
        "objective_before": shown(objective_before, OBJECTIVE_PLACES),
        "objective_after": shown(objective_after, OBJECTIVE_PLACES),
        "gain_allowance_left": gain_allowance_left,
        "cgt": policy.cgt,
    }
    shared = {
        "kind": kind.value,
        "rules_fired": rules,
        "bands": {"absolute": policy.drift_bands.absolute, "relative": policy.drift_bands.relative},
        "targets_used": dict(rules_policy.sleeve_targets),
        "sleeves_not_held": list(scoped.sleeves_not_held),
        "sleeves": household["sleeves"],
        "breached_before": breached(before),
        "breached_after": breached(after),
        "objective_before": household["objective_before"],
        "objective_after": household["objective_after"],
        "objective": household["objective_after"],
        "line_penalty_base": policy.line_penalty,
        "lower_bound": search.get("lower_bound"),
        "proven_optimal": search.get("proven_optimal"),
        "nodes": search.get("nodes"),
        "left_alone": [*scoped.left_alone, *scoped.blocking],
        "excluded_value_base": scoped.excluded_value,
        "unpriced_holdings": list(scoped.blocking),
        "household": household,
    }
    recommendations = []
    for k, (account, original, lines) in enumerate(zip(inputs, accounts, lines_of, strict=True)):
        own_rules = [*rules, FROZEN] if original.state.frozen else list(rules)
        if original.state.cash_available_gbp - policy.cash_buffer_base < ZERO:
            own_rules.append(CASH_BELOW_BUFFER)
        text = headline(kind, own_rules, breached(before), lines, reports[k], scoped)
        if CASH_BELOW_BUFFER in own_rules and not any(not x.suppressed_by_min_trade for x in lines):
            text = f"No trades: {_below_buffer(reports[k]['money_available'])}"
        recommendations.append(
            Recommendation(
                headline=f"{account.name}: {text} (one plan across {', '.join(names)})"
                if len(names) > 1
                else text,
                rationale={
                    **shared,
                    "rules_fired": own_rules,
                    "account": account.name,
                    "why": per_account[k]["why"],
                    "positions": positions_report(original.state, account.state, policy),
                },
                constraints_report=reports[k],
                lines=lines,
            )
        )
    return HouseholdRecommendation(
        headline=_headline(kind, rules, names, reports, scoped, before),
        rationale=shared,
        accounts=tuple(names),
        recommendations=tuple(recommendations),
    )


def _headline(
    kind: TaskKind,
    rules: list[str],
    names: Sequence[str],
    reports: Sequence[dict[str, Any]],
    scoped: Scoped,
    before: Sequence[SleeveDrift],
) -> str:
    """The decision first: what the household does, account by account (from each account's
    constraints report)."""
    parts = []
    for name, report in zip(names, reports, strict=True):
        buys, sells = report["buy_consideration"], report["sell_consideration"]
        if not buys and not sells:
            continue
        doing = []
        if sells:
            doing.append(f"sell {format_gbp(sells)}")
        if buys:
            doing.append(f"buy {format_gbp(buys)}")
        parts.append(f"{name}: {' and '.join(doing)}")
    if not parts:
        empty: tuple[RecommendationLine, ...] = ()
        text = headline(kind, list(rules), breached(before), empty, _summed(reports), scoped)
        return f"Household ({', '.join(names)}): {text}"
    fees = sum((r["fees"] for r in reports), ZERO)
    return f"Household plan: {'; '.join(parts)}; fees {format_gbp(fees)}."


def _summed(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = ("money_available", "buy_consideration", "sell_consideration", "fees", "cash_left")
    return {key: sum((r[key] for r in reports), ZERO) for key in keys}
