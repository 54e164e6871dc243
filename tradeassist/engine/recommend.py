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

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from ..core.enums import TaskKind, TradeAction
from ..core.errors import ValidationError
from ..core.money import ZERO, round_cash
from ..policy import Policy, parse_policy, parse_stored_policy, policy_to_dict
from .model import (
    PortfolioState,
    Recommendation,
    RecommendationLine,
    state_from_dict,
    state_to_dict,
)
from .optimizer import DEFAULT_MAX_NODES, Solution, solve
from .problem import AllocationProblem, build_problem, constituent_shares
from .scope import NO_SLEEVE_HELD, REASON_WORDS, Scoped, scope
from .valuation import SleeveDrift, apply_trades, drift_report, objective, total_value

SNAPSHOT_VERSION = 1
ENGINE_KINDS = (TaskKind.WEEKLY_REVIEW, TaskKind.MONTHLY_ALLOC, TaskKind.QUARTERLY_REBAL)
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


def _kind(kind: TaskKind | str) -> TaskKind:
    try:
        value = TaskKind(str(kind))
    except ValueError:
        raise ValidationError(f"kind: {kind!r} is not a task kind") from None
    if value not in ENGINE_KINDS:
        raise ValidationError(f"kind: {value} does not produce recommendations")
    return value


def _gbp(amount: Decimal) -> str:
    return f"£{round_cash(amount):,.2f}"


def _shown(value: Fraction, places: Decimal) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(places, rounding=ROUND_HALF_EVEN)


def _sleeve_rows(before: tuple[SleeveDrift, ...], after: tuple[SleeveDrift, ...]) -> dict[str, Any]:
    after_by = {row.sleeve: row for row in after}
    rows = {}
    for row in before:
        post = after_by[row.sleeve]
        rows[row.sleeve] = {
            "target": row.target,
            "value_before": row.value_gbp,
            "value_after": post.value_gbp,
            "weight_before": _shown(row.weight, WEIGHT_PLACES),
            "weight_after": _shown(post.weight, WEIGHT_PLACES),
            "drift_before": _shown(row.drift, WEIGHT_PLACES),
            "drift_after": _shown(post.drift, WEIGHT_PLACES),
            "breached_before": row.breached,
            "breached_after": post.breached,
        }
    return rows


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


def _lines(
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


def _headline(
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
        return f"{found}. {_headline(TaskKind.QUARTERLY_REBAL, rules, breaches, lines, report, scoped)}"
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
            short = _gbp(-report["money_available"])
            return f"No trades: cash is {short} short of the buffer and nothing can be sold."
        return (
            f"No trades: no affordable whole-unit trade brings the sleeves closer to target "
            f"({_gbp(report['money_available'])} available)."
        )
    buys = [line for line in executed if line.action is TradeAction.BUY]
    sells = [line for line in executed if line.action is TradeAction.SELL]
    parts = []
    if sells:
        parts.append(f"sell {len(sells)} line(s) for {_gbp(report['sell_consideration'])}")
    if buys:
        parts.append(f"buy {len(buys)} line(s) for {_gbp(report['buy_consideration'])}")
    text = " and ".join(parts)
    return (
        f"{text[0].upper()}{text[1:]}; fees {_gbp(report['fees'])}, {_gbp(report['cash_left'])} left unspent."
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
    kind = _kind(kind)
    sells = policy.sells_allowed(kind)
    scoped = scope(state, policy)
    work, rules_policy = scoped.state, scoped.policy
    before = drift_report(work, rules_policy)
    breaches = [row.sleeve for row in before if row.breached]
    rules: list[str] = list(scoped.rules)
    left_alone = [*scoped.left_alone, *scoped.blocking]
    if left_alone:
        rules.append(LISTINGS_LEFT_ALONE)
    untargeted = sorted({row.sleeve for row in before if row.sleeve not in policy.sleeve_targets})
    if untargeted:
        rules.append(UNTARGETED_SLEEVE)
    rules.append(BAND_BREACHED if breaches else NO_BAND_BREACHED)
    money_available = state.cash_available_gbp - policy.cash_buffer_base
    if money_available < ZERO:
        rules.append(CASH_BELOW_BUFFER)
    total_before = total_value(work)

    trades: dict[int, int] = {}
    ideal: dict[int, int] = {}
    search: dict[str, Any] = {"ran": False}
    if state.frozen:
        rules.append(FROZEN)
    elif scoped.blocked or NO_SLEEVE_HELD in rules:
        pass  # the rule already fired says why
    elif total_before <= ZERO:
        rules.append(NOTHING_TO_VALUE)
    elif kind in (TaskKind.QUARTERLY_REBAL, TaskKind.WEEKLY_REVIEW) and not breaches:
        rules.append(DRIFT_CHECK_ONLY if kind is TaskKind.WEEKLY_REVIEW else NOT_NEEDED)
    else:
        rules.append(SELLS_ALLOWED if sells else BUY_ONLY)
        problem = build_problem(work, rules_policy, sells=sells)
        solution = solve(problem, max_nodes=max_nodes)
        search = _search_report(solution, max_nodes)
        if solution is None:
            rules.append(NOTHING_AFFORDABLE)
        else:
            trades = {problem.items[k].position: q for k, q in enumerate(solution.units) if q}
            if not solution.proven_optimal:
                rules.append(SEARCH_NOT_PROVEN)
            if not trades:
                rules.append(NO_IMPROVEMENT)
            ideal = _ideal_units(work, rules_policy, problem, sells)

    lines = _lines(work, kind, trades, ideal, policy.min_trade_base)
    after_state = apply_trades(
        work,
        {work.positions[i].key: q for i, q in trades.items()},
        policy.fee_per_trade_base,
    )
    after = drift_report(after_state, rules_policy)
    report = _constraints(state, policy, lines, money_available, search, total_before)
    executed = sum(1 for line in lines if not line.suppressed_by_min_trade)
    penalty = _line_penalty(policy, total_before)
    objective_before = objective(work, rules_policy)
    objective_after = objective(after_state, rules_policy) + executed * penalty
    rationale = {
        "kind": kind.value,
        "rules_fired": rules,
        "bands": {"absolute": policy.drift_bands.absolute, "relative": policy.drift_bands.relative},
        "targets_used": dict(rules_policy.sleeve_targets),
        "sleeves_not_held": list(scoped.sleeves_not_held),
        "sleeves": _sleeve_rows(before, after),
        "breached_before": breaches,
        "breached_after": [row.sleeve for row in after if row.breached],
        "objective_before": _shown(objective_before, OBJECTIVE_PLACES),
        "objective_after": _shown(objective_after, OBJECTIVE_PLACES),
        "objective": _shown(objective_after, OBJECTIVE_PLACES),
        "line_penalty_base": policy.line_penalty,
        "lower_bound": search.get("lower_bound"),
        "proven_optimal": search.get("proven_optimal"),
        "nodes": search.get("nodes"),
        "left_alone": left_alone,
        "excluded_value_base": scoped.excluded_value,
        "unpriced_holdings": list(scoped.blocking),
        "untargeted_sleeves": untargeted,
        "positions": _positions(state, work, policy),
    }
    return Recommendation(
        headline=_headline(kind, rules, breaches, lines, report, scoped),
        rationale=rationale,
        constraints_report=report,
        lines=lines,
    )


def _line_penalty(policy: Policy, total: Decimal) -> Fraction:
    """(P / T)**2: what one executed line adds to the objective."""
    if total <= ZERO:
        return Fraction(0)
    return (Fraction(policy.line_penalty) / Fraction(total)) ** 2


def _positions(state: PortfolioState, work: PortfolioState, policy: Policy) -> list[dict[str, Any]]:
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
                "value_base": None if price is None else original.units * price,
                "in_base": scoped.valued,
                "targeted": original.sleeve in policy.sleeve_targets,
            }
        )
    return rows


def left_alone_summary(rationale: Mapping[str, Any]) -> str | None:
    """One line saying what was left alone and why, or None when nothing was."""
    entries = rationale.get("left_alone") or ()
    if not entries:
        return None
    parts = []
    for entry in entries:
        value = entry.get("value_base")
        worth = "value unknown" if value is None else _gbp(Decimal(str(value)))
        reason = REASON_WORDS.get(str(entry.get("reason")), str(entry.get("reason")).lower())
        parts.append(f"{entry['ticker']}:{entry['exchange']} ({reason}, {worth})")
    return "Left alone: " + "; ".join(parts) + "."


def _search_report(solution: Solution | None, max_nodes: int) -> dict[str, Any]:
    if solution is None:
        return {"ran": True, "feasible": False, "max_nodes": max_nodes}
    return {
        "ran": True,
        "feasible": True,
        "proven_optimal": solution.proven_optimal,
        "nodes": solution.nodes,
        "max_nodes": max_nodes,
        "lower_bound": _shown(solution.bound, OBJECTIVE_PLACES),
    }


def _constraints(
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
        "kind": _kind(kind).value,
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
