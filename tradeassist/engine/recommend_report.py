"""What a recommendation says: the rules it fired, its rationale, constraints report and
headline, in the words and figures ``recommend --json`` shows and the reviewers re-check.

Money in the headline is ``core.money.format_gbp`` (``£1,234.56``, ``-£5.00``); weights and
drift are shown to 6 decimal places, objectives to 12.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any, Protocol

from ..core.enums import TaskKind, TradeAction
from ..core.money import ZERO, format_gbp
from ..policy import Policy
from .model import PortfolioState, RecommendationLine
from .scope import NO_SLEEVE_HELD, REASON_WORDS, Scoped
from .valuation import SleeveDrift

WEIGHT_PLACES = Decimal("0.000001")  # weights and drift shown to 6 decimal places
OBJECTIVE_PLACES = Decimal("1E-12")

# Rules fired, as they appear in the rationale.
FROZEN = "PORTFOLIO_FROZEN"
DRIFT_CHECK_ONLY = "DRIFT_CHECK_ONLY"
BAND_BREACHED = "BAND_BREACHED"
NO_BAND_BREACHED = "NO_BAND_BREACHED"
NOT_NEEDED = "NO_REBALANCE_NEEDED"
BUY_ONLY = "BUY_ONLY"
SELLS_ALLOWED = "SELLS_ALLOWED"
CASH_BELOW_BUFFER = "CASH_BELOW_BUFFER"
NOTHING_AFFORDABLE = "NO_AFFORDABLE_TRADE_LIST"
NO_IMPROVEMENT = "NO_TRADE_IMPROVES_DRIFT"
NOTHING_TO_VALUE = "NOTHING_TO_VALUE"
LISTINGS_LEFT_ALONE = "LISTINGS_LEFT_ALONE"
UNTARGETED_SLEEVE = "UNTARGETED_SLEEVE_HELD"
SEARCH_NOT_PROVEN = "SEARCH_STOPPED_AT_NODE_LIMIT"

# Reason codes of lines.
ALLOCATE = "ALLOCATE_CASH"
REBALANCE_BUY = "REBALANCE_BUY"
REBALANCE_SELL = "REBALANCE_SELL"
BELOW_MIN_TRADE = "BELOW_MIN_TRADE"


def shown(value: Fraction, places: Decimal) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(places, rounding=ROUND_HALF_EVEN)


def sleeve_rows(before: tuple[SleeveDrift, ...], after: tuple[SleeveDrift, ...]) -> dict[str, Any]:
    after_by = {row.sleeve: row for row in after}
    rows = {}
    for row in before:
        post = after_by[row.sleeve]
        rows[row.sleeve] = {
            "target": row.target,
            "value_before": row.value_gbp,
            "value_after": post.value_gbp,
            "weight_before": shown(row.weight, WEIGHT_PLACES),
            "weight_after": shown(post.weight, WEIGHT_PLACES),
            "drift_before": shown(row.drift, WEIGHT_PLACES),
            "drift_after": shown(post.drift, WEIGHT_PLACES),
            "breached_before": row.breached,
            "breached_after": post.breached,
        }
    return rows


def positions_report(state: PortfolioState, work: PortfolioState, policy: Policy) -> list[dict[str, Any]]:
    """Every listing the recommendation looked at, as the guard re-checks it: units, price,
    value (None when there is no price: never zero), whether it is in the base and targeted."""
    rows = []
    for original, scoped in zip(state.positions, work.positions, strict=True):
        price = original.price_gbp
        rows.append(
            {
                "ticker": original.ticker,
                "exchange": original.exchange,
                "sleeve": original.sleeve,
                "units": original.units,
                "price_gbp": price,
                "price_stale": original.price_stale,
                "value_base": original.priced_value,
                "in_base": scoped.valued,
                "targeted": original.sleeve in policy.sleeve_targets,
            }
        )
    return rows


class Proof(Protocol):
    """What a search reports of its answer (the single engine's and the household's)."""

    @property
    def proven_optimal(self) -> bool: ...

    @property
    def nodes(self) -> int: ...

    @property
    def bound(self) -> Fraction: ...


def search_report(solution: Proof | None, max_nodes: int) -> dict[str, Any]:
    if solution is None:
        return {"ran": True, "feasible": False, "max_nodes": max_nodes}
    return {
        "ran": True,
        "feasible": True,
        "proven_optimal": solution.proven_optimal,
        "nodes": solution.nodes,
        "max_nodes": max_nodes,
        "lower_bound": shown(solution.bound, OBJECTIVE_PLACES),
    }


def breached(drift: Sequence[SleeveDrift]) -> list[str]:
    return [row.sleeve for row in drift if row.breached]


def untargeted(before: Sequence[SleeveDrift], policy: Policy) -> list[str]:
    return sorted({row.sleeve for row in before if row.sleeve not in policy.sleeve_targets})


def standing_rules(scoped: Scoped, before: Sequence[SleeveDrift], policy: Policy) -> list[str]:
    """The rules fired before any search: the scope's, what is left alone, untargeted
    sleeves, and whether a band is breached."""
    rules: list[str] = list(scoped.rules)
    if scoped.left_alone or scoped.blocking:
        rules.append(LISTINGS_LEFT_ALONE)
    if untargeted(before, policy):
        rules.append(UNTARGETED_SLEEVE)
    rules.append(BAND_BREACHED if breached(before) else NO_BAND_BREACHED)
    return rules


def constraints_report(
    state: PortfolioState,
    policy: Policy,
    lines: tuple[RecommendationLine, ...],
    money_available: Decimal,
    search: dict[str, Any],
    base: Decimal,
) -> dict[str, Any]:
    executed = [line for line in lines if not line.suppressed_by_min_trade]
    buys = sum((line.amount_base for line in executed if line.action is TradeAction.BUY), ZERO)
    sells = sum((line.amount_base for line in executed if line.action is TradeAction.SELL), ZERO)
    fees = policy.fee_per_trade_base * len(executed)
    cash_left = money_available - (buys - sells) - fees
    return {
        "cash": state.cash_gbp,
        "contribution": state.contribution_gbp,
        "cash_buffer": policy.cash_buffer_base,
        "money_available": money_available,
        "buy_consideration": buys,
        "sell_consideration": sells,
        "total_consideration": buys - sells,
        "fees": fees,
        "cash_left": cash_left,
        "cash_after": cash_left + policy.cash_buffer_base,
        "min_trade": policy.min_trade_base,
        "fee_per_trade": policy.fee_per_trade_base,
        "executed_lines": len(executed),
        "base_value": base,
        "max_turnover": policy.max_turnover,
        "turnover_limit": policy.max_turnover * base,
        "hard_rules": policy.hard_rules(),
        "suppressed_lines": [
            {
                "ticker": line.ticker,
                "exchange": line.exchange,
                "action": line.action.value,
                "amount_base": line.amount_base,
                "estimated_units": line.estimated_units,
            }
            for line in lines
            if line.suppressed_by_min_trade
        ],
        "search": search,
    }


def headline(
    kind: TaskKind,
    rules: list[str],
    breaches: list[str],
    lines: tuple[RecommendationLine, ...],
    report: dict,
    scoped: Scoped,
) -> str:
    executed = [line for line in lines if not line.suppressed_by_min_trade]
    if kind is TaskKind.WEEKLY_REVIEW:
        if not breaches:
            return "Drift check: every sleeve is within its band."
        found = f"Drift check: {len(breaches)} sleeve(s) outside their bands ({', '.join(breaches)})"
        return f"{found}. {headline(TaskKind.QUARTERLY_REBAL, rules, breaches, lines, report, scoped)}"
    if FROZEN in rules:
        return "No trades: the portfolio is frozen."
    if scoped.blocked:
        names = ", ".join(f"{e['ticker']}:{e['exchange']}" for e in scoped.blocking)
        return (
            f"No trades: {names} held without a good price (none, or too old); it is never valued at "
            'zero. Import its prices, or set "unpriced": "exclude" in the policy to leave it out.'
        )
    if NO_SLEEVE_HELD in rules:
        return (
            f"No trades: none of the strategy's sleeves ({', '.join(scoped.sleeves_not_held)}) has a "
            "listing in this portfolio that can be bought; map listings to sleeves with "
            "`tradeassist constituent add`."
        )
    if NOTHING_TO_VALUE in rules:
        return "No trades: nothing in the portfolio can be valued."
    if NOT_NEEDED in rules:
        return "No trades: every sleeve is within its drift band."
    if not executed:
        if NOTHING_AFFORDABLE in rules:
            short = format_gbp(-report["money_available"])
            return f"No trades: cash is {short} short of the buffer and nothing can be sold."
        return (
            f"No trades: no affordable whole-unit trade brings the sleeves closer to target "
            f"({format_gbp(report['money_available'])} available)."
        )
    buys = [line for line in executed if line.action is TradeAction.BUY]
    sells = [line for line in executed if line.action is TradeAction.SELL]
    parts = []
    if sells:
        parts.append(f"sell {len(sells)} line(s) for {format_gbp(report['sell_consideration'])}")
    if buys:
        parts.append(f"buy {len(buys)} line(s) for {format_gbp(report['buy_consideration'])}")
    text = " and ".join(parts)
    fees, left = format_gbp(report["fees"]), format_gbp(report["cash_left"])
    return f"{text[0].upper()}{text[1:]}; fees {fees}, {left} left unspent."


def left_alone_summary(rationale: Mapping[str, Any]) -> str | None:
    """One line saying what was left alone and why, or None when nothing was."""
    entries = rationale.get("left_alone") or ()
    if not entries:
        return None
    parts = []
    for entry in entries:
        value = entry.get("value_base")
        worth = "value unknown" if value is None else format_gbp(Decimal(str(value)))
        reason = REASON_WORDS.get(str(entry.get("reason")), str(entry.get("reason")).lower())
        parts.append(f"{entry['ticker']}:{entry['exchange']} ({reason}, {worth})")
    return "Left alone: " + "; ".join(parts) + "."
