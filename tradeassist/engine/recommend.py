"""From a portfolio state and a policy to a ``Recommendation``: rules, optimizer, report.

The rules, in order:

1. ``WEEKLY_REVIEW`` is a drift check: it trades, like ``QUARTERLY_REBAL``, only when some
   sleeve breaches its band, and otherwise reports drift.
2. A frozen portfolio is never traded.
3. ``QUARTERLY_REBAL`` trades only when some sleeve breaches its drift band.
4. ``MONTHLY_ALLOC`` always invests what it can.
5. Trades come from ``optimizer.solve``: the whole-unit trade list minimising the sum of
   squared weight deviations (see its docstring), selling only where the policy's
   ``allow_sells`` lets the kind sell. Listings without a good price, excluded from
   calculations or marked not tradeable are never traded.

Money, precisely (all GBP, exact, never rounded):

* money available = cash + contribution - cash buffer (negative when cash is short of the
  buffer; then only selling can make a trade list affordable);
* total consideration = buys - sells, each line's amount being units x GBP price, fees excluded;
* fees = fee per trade x executed lines;
* cash left = money available - total consideration - fees, never negative for a trade list
  the optimizer returns, so total consideration + fees + cash left = money available exactly;
  the cash balance after the trades is cash left + the cash buffer.

Suppressed lines show what the unconstrained ideal would have traded where the minimum trade
size stopped it. The unconstrained ideal is the continuous optimum (no whole units, no minimum
trade, no fees) of each sleeve's net spend, split among the sleeve's tradeable listings by the
policy's ``constituent_split`` (equal by default); a listing the ideal would trade at least one
whole unit of, for less than the minimum trade, and that the optimizer leaves alone, gets a
``suppressed_by_min_trade`` line with those units and their amount.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ..core.enums import TRADING_KINDS, TaskKind, TradeAction
from ..core.errors import ValidationError
from ..core.money import ZERO
from ..policy import Policy, parse_policy, parse_stored_policy, policy_to_dict
from .model import (
    PortfolioState,
    Recommendation,
    RecommendationLine,
    state_from_dict,
    state_to_dict,
)
from .optimizer import DEFAULT_MAX_NODES, solve
from .problem import AllocationProblem, build_problem, constituent_shares
from .recommend_report import (
    ALLOCATE,
    BAND_BREACHED,
    BELOW_MIN_TRADE,
    BUY_ONLY,
    CASH_BELOW_BUFFER,
    DRIFT_CHECK_ONLY,
    FROZEN,
    LISTINGS_LEFT_ALONE,
    NO_BAND_BREACHED,
    NO_IMPROVEMENT,
    NOT_NEEDED,
    NOTHING_AFFORDABLE,
    NOTHING_TO_VALUE,
    OBJECTIVE_PLACES,
    REBALANCE_BUY,
    REBALANCE_SELL,
    SEARCH_NOT_PROVEN,
    SELLS_ALLOWED,
    UNTARGETED_SLEEVE,
    WEIGHT_PLACES,
    breached,
    constraints_report,
    headline,
    left_alone_summary,
    positions_report,
    search_report,
    shown,
    sleeve_rows,
    standing_rules,
    untargeted,
)
from .scope import NO_SLEEVE_HELD, Scoped, scope
from .valuation import SleeveDrift, apply_trades, drift_report, objective, total_value

__all__ = [
    "ALLOCATE",
    "BAND_BREACHED",
    "BELOW_MIN_TRADE",
    "BUY_ONLY",
    "CASH_BELOW_BUFFER",
    "DRIFT_CHECK_ONLY",
    "FROZEN",
    "LISTINGS_LEFT_ALONE",
    "NOTHING_AFFORDABLE",
    "NOTHING_TO_VALUE",
    "NOT_NEEDED",
    "NO_BAND_BREACHED",
    "NO_IMPROVEMENT",
    "OBJECTIVE_PLACES",
    "REBALANCE_BUY",
    "REBALANCE_SELL",
    "SEARCH_NOT_PROVEN",
    "SELLS_ALLOWED",
    "SNAPSHOT_VERSION",
    "UNTARGETED_SLEEVE",
    "WEIGHT_PLACES",
    "left_alone_summary",
    "recommend",
    "recommend_from_snapshot",
    "snapshot",
]

SNAPSHOT_VERSION = 1


def recommendation_kind(kind: TaskKind | str) -> TaskKind:
    """The task kind, checked to be one that produces recommendations."""
    try:
        value = TaskKind(str(kind))
    except ValueError:
        raise ValidationError(f"kind: {kind!r} is not a task kind") from None
    if value not in TRADING_KINDS:
        raise ValidationError(f"kind: {value} does not produce recommendations")
    return value


def _ideal_units(
    state: PortfolioState, policy: Policy, problem: AllocationProblem, sells: bool
) -> dict[int, int]:
    """Whole units per position index the unconstrained ideal would trade (signed)."""
    ts = problem.target_scale
    sleeves = len(problem.sleeves)
    positions = state.positions
    tradeable = [i for i, p in enumerate(positions) if p.can_trade]
    index = {code: s for s, code in enumerate(problem.sleeves)}
    money = problem.money_scale
    sell_room = [0] * sleeves
    for i in tradeable:
        p = positions[i]
        assert p.price_gbp is not None
        if sells:
            sell_room[index[p.sleeve]] += int(p.units) * int(p.price_gbp * money)
    spendable = max(0, problem.budget + sum(sell_room))
    has_listing = {index[positions[i].sleeve] for i in tradeable}
    lows = [-ts * room for room in sell_room]
    highs = [ts * spendable if s in has_listing else 0 for s in range(sleeves)]
    spends = problem.relaxed_spends(lows, highs)
    if spends is None:
        return {}
    by_sleeve: dict[str, list[int]] = {}
    for i in tradeable:
        by_sleeve.setdefault(positions[i].sleeve, []).append(i)
    ideal = {}
    for code, members in by_sleeve.items():
        shares = constituent_shares(policy, code, [positions[i] for i in members])
        sleeve_spend = spends[index[code]] / (ts * money)  # GBP
        for i, share in zip(members, shares, strict=True):
            price = positions[i].price_gbp
            assert price is not None
            amount = sleeve_spend * share
            units = int(abs(amount) / Fraction(price))  # whole units, toward zero
            if amount < 0:
                units = -min(units, int(positions[i].units))
            if units:
                ideal[i] = units
    return ideal


def trade_lines(
    state: PortfolioState,
    kind: TaskKind,
    trades: Mapping[int, int],
    ideal: Mapping[int, int],
    min_trade: Decimal,
) -> tuple[RecommendationLine, ...]:
    executed, suppressed = [], []
    for i, position in enumerate(state.positions):
        price = position.price_gbp
        if price is None:
            continue
        units = trades.get(i, 0)
        if units:
            action = TradeAction.BUY if units > 0 else TradeAction.SELL
            if action is TradeAction.SELL:
                reason = REBALANCE_SELL
            else:
                reason = ALLOCATE if kind is TaskKind.MONTHLY_ALLOC else REBALANCE_BUY
            executed.append(_line(position.ticker, position.exchange, action, units, price, False, reason))
            continue
        wanted = ideal.get(i, 0)
        if wanted and abs(wanted) * price < min_trade:
            action = TradeAction.BUY if wanted > 0 else TradeAction.SELL
            line = _line(position.ticker, position.exchange, action, wanted, price, True, BELOW_MIN_TRADE)
            suppressed.append(line)
    # Sells first: they fund the buys.
    executed.sort(key=lambda line: (line.action is TradeAction.BUY, line.ticker, line.exchange))
    suppressed.sort(key=lambda line: (line.ticker, line.exchange))
    return (*executed, *suppressed)


def _line(
    ticker: str, exchange: str, action: TradeAction, units: int, price: Decimal, suppressed: bool, reason: str
) -> RecommendationLine:
    count = Decimal(abs(units))
    return RecommendationLine(
        ticker=ticker,
        exchange=exchange,
        action=action,
        amount_base=count * price,
        estimated_units=count,
        suppressed_by_min_trade=suppressed,
        reason_code=reason,
    )


def recommend(
    state: PortfolioState,
    policy: Policy | Mapping[str, Any] | str,
    kind: TaskKind | str,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Recommendation:
    """The recommendation for one portfolio and one task kind. Pure: same input, same output."""
    policy = parse_policy(policy)
    kind = recommendation_kind(kind)
    scoped = scope(state, policy)
    work, rules_policy = scoped.state, scoped.policy
    before = drift_report(work, rules_policy)
    money_available = state.cash_available_gbp - policy.cash_buffer_base
    rules = _standing_rules(scoped, before, policy, money_available)
    total_before = total_value(work)
    trades, ideal, search = _search(state, kind, policy, scoped, before, rules, total_before, max_nodes)
    lines = trade_lines(work, kind, trades, ideal, policy.min_trade_base)
    after_state = apply_trades(
        work,
        {work.positions[i].key: q for i, q in trades.items()},
        policy.fee_per_trade_base,
    )
    report = constraints_report(state, policy, lines, money_available, search, total_before)
    executed = sum(1 for line in lines if not line.suppressed_by_min_trade)
    objectives = (
        objective(work, rules_policy),
        objective(after_state, rules_policy) + executed * _line_penalty(policy, total_before),
    )
    after = drift_report(after_state, rules_policy)
    return Recommendation(
        headline=headline(kind, rules, breached(before), lines, report, scoped),
        rationale=_rationale(state, policy, kind, scoped, rules, (before, after), objectives, search),
        constraints_report=report,
        lines=lines,
    )


def _standing_rules(
    scoped: Scoped, before: Sequence[SleeveDrift], policy: Policy, money_available: Decimal
) -> list[str]:
    """``recommend_report.standing_rules``, and cash short of the buffer."""
    rules = standing_rules(scoped, before, policy)
    if money_available < ZERO:
        rules.append(CASH_BELOW_BUFFER)
    return rules


def _search(
    state: PortfolioState,
    kind: TaskKind,
    policy: Policy,
    scoped: Scoped,
    before: Sequence[SleeveDrift],
    rules: list[str],
    total_before: Decimal,
    max_nodes: int,
) -> tuple[dict[int, int], dict[int, int], dict[str, Any]]:
    """Whether to search for trades and, if so, the optimizer's: (units by position index, the
    unconstrained ideal's units, the search report). Appends the rules it fires to ``rules``."""
    work, rules_policy = scoped.state, scoped.policy
    if state.frozen:
        rules.append(FROZEN)
    elif scoped.blocked or NO_SLEEVE_HELD in rules:
        pass  # the rule already fired says why
    elif total_before <= ZERO:
        rules.append(NOTHING_TO_VALUE)
    elif kind in (TaskKind.QUARTERLY_REBAL, TaskKind.WEEKLY_REVIEW) and not breached(before):
        rules.append(DRIFT_CHECK_ONLY if kind is TaskKind.WEEKLY_REVIEW else NOT_NEEDED)
    else:
        sells = policy.sells_allowed(kind)
        rules.append(SELLS_ALLOWED if sells else BUY_ONLY)
        problem = build_problem(work, rules_policy, sells=sells)
        solution = solve(problem, max_nodes=max_nodes)
        search = search_report(solution, max_nodes)
        if solution is None:
            rules.append(NOTHING_AFFORDABLE)
            return {}, {}, search
        trades = {problem.items[k].position: q for k, q in enumerate(solution.units) if q}
        if not solution.proven_optimal:
            rules.append(SEARCH_NOT_PROVEN)
        if not trades:
            rules.append(NO_IMPROVEMENT)
        return trades, _ideal_units(work, rules_policy, problem, sells), search
    return {}, {}, {"ran": False}


def _rationale(
    state: PortfolioState,
    policy: Policy,
    kind: TaskKind,
    scoped: Scoped,
    rules: list[str],
    drift: tuple[Sequence[SleeveDrift], Sequence[SleeveDrift]],
    objectives: tuple[Fraction, Fraction],
    search: Mapping[str, Any],
) -> dict[str, Any]:
    """Why: the rules fired, the sleeves before and after, the objective and the search's
    proof, and every listing looked at (left alone or not)."""
    before, after = drift
    objective_before, objective_after = objectives
    return {
        "kind": kind.value,
        "rules_fired": rules,
        "bands": {"absolute": policy.drift_bands.absolute, "relative": policy.drift_bands.relative},
        "targets_used": dict(scoped.policy.sleeve_targets),
        "sleeves_not_held": list(scoped.sleeves_not_held),
        "sleeves": sleeve_rows(tuple(before), tuple(after)),
        "breached_before": breached(before),
        "breached_after": breached(after),
        "objective_before": shown(objective_before, OBJECTIVE_PLACES),
        "objective_after": shown(objective_after, OBJECTIVE_PLACES),
        "objective": shown(objective_after, OBJECTIVE_PLACES),
        "line_penalty_base": policy.line_penalty,
        "lower_bound": search.get("lower_bound"),
        "proven_optimal": search.get("proven_optimal"),
        "nodes": search.get("nodes"),
        "left_alone": [*scoped.left_alone, *scoped.blocking],
        "excluded_value_base": scoped.excluded_value,
        "unpriced_holdings": list(scoped.blocking),
        "untargeted_sleeves": untargeted(before, policy),
        "positions": positions_report(state, scoped.state, policy),
    }


def _line_penalty(policy: Policy, total: Decimal) -> Fraction:
    """(P / T)**2: what one executed line adds to the objective."""
    if total <= ZERO:
        return Fraction(0)
    return (Fraction(policy.line_penalty) / Fraction(total)) ** 2


def snapshot(
    state: PortfolioState,
    policy: Policy | Mapping[str, Any] | str,
    kind: TaskKind | str,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> dict[str, Any]:
    """Everything ``recommend`` reads, as plain JSON (decimals as strings): a run's input snapshot."""
    return {
        "snapshot_version": SNAPSHOT_VERSION,
        "kind": recommendation_kind(kind).value,
        "max_nodes": max_nodes,
        "policy": policy_to_dict(policy, as_written=True),
        "state": state_to_dict(state),
    }


def recommend_from_snapshot(data: Mapping[str, Any]) -> Recommendation:
    """Recompute a recommendation from a stored snapshot alone (equal to the original)."""
    if not isinstance(data, Mapping) or data.get("snapshot_version") != SNAPSHOT_VERSION:
        raise ValidationError(f"snapshot: expected snapshot_version {SNAPSHOT_VERSION}")
    unknown = sorted(set(data) - {"snapshot_version", "kind", "max_nodes", "policy", "state"})
    if unknown:
        raise ValidationError(f"snapshot: unknown key(s) {', '.join(unknown)}")
    max_nodes = data.get("max_nodes", DEFAULT_MAX_NODES)
    if not isinstance(max_nodes, int) or isinstance(max_nodes, bool) or max_nodes < 1:
        raise ValidationError("snapshot: max_nodes must be a positive integer")
    return recommend(
        state_from_dict(data["state"]),
        parse_stored_policy(data["policy"]),
        data["kind"],
        max_nodes=max_nodes,
    )
