"""The ``builtin-rules`` checks of the trades themselves: who may trade, line sizes and
amounts, the money they cost, drift, and the hard rules of the policy and the manifesto."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...core.enums import TRADING_KINDS
from ...core.money import ZERO, decimal_str, format_gbp
from ...manifesto import ManifestoRules
from .base import ReviewRequest
from .builtin_reading import (
    PENNY,
    Findings,
    Held,
    Key,
    Line,
    comes,
    consideration,
    count_units,
    largest_drift,
    mapping,
    policy_amount,
    read_policy_names,
    report_amount,
)


def check_trading_rules(request: ReviewRequest, executed: list[Line], found: Findings) -> None:
    policy, kind = request.policy, request.task_kind
    found.checks.append("frozen portfolio")
    if request.portfolio_frozen and executed:
        found.fails.append(f"the portfolio is frozen, yet {len(executed)} line(s) would trade")
    found.checks.append("task kind trades")
    if kind is not None and kind not in TRADING_KINDS and executed:
        found.fails.append(f"{kind} never trades, yet {len(executed)} line(s) would trade")
    found.checks.append("sells allowed")
    sells = [line for line in executed if line.action == "SELL"]
    allow = mapping(policy.get("allow_sells"))
    if sells and kind is None:
        found.warns.append("the task kind is not given: cannot tell whether the policy allows selling")
    elif sells and kind is not None and allow.get(kind) is not True:
        for line in sells:
            found.fails.append(f"{line.label}: the policy does not allow {kind} to sell")


def check_sizes(policy: Mapping[str, Any], lines: list[Line], found: Findings) -> None:
    minimum = policy_amount(policy, "min_trade_base", found)
    found.checks.append("minimum trade")
    for line in lines:
        if not line.suppressed and line.amount == ZERO:
            found.fails.append(f"{line.label}: an executed line of zero")
        elif minimum is not None and not line.suppressed and line.amount < minimum:
            found.fails.append(f"{line.label}: below the minimum trade of {format_gbp(minimum)}")
        elif minimum is not None and line.suppressed and line.amount >= minimum:
            found.warns.append(
                f"{line.label}: suppressed although it reaches the minimum of {format_gbp(minimum)}"
            )
    found.checks.append("whole units")
    if policy.get("whole_units", True) is True:
        for line in lines:
            if not line.suppressed and line.units != line.units.to_integral_value():
                found.fails.append(f"{line.label}: {decimal_str(line.units)} units is not a whole number")


def check_line_prices(executed: list[Line], holdings: Mapping[Key, Held] | None, found: Findings) -> None:
    if holdings is None:
        return
    found.checks.append("line amounts")
    for line in executed:
        holding = holdings.get(line.key)
        if holding is None or holding.price is None:
            continue
        computed = line.units * holding.price
        if abs(computed - line.amount) > PENNY:
            units, price = count_units(line.units), format_gbp(holding.price)
            found.warns.append(
                f"{line.label}: {units} at {price} {comes(line.units)} to "
                f"{format_gbp(computed)}, not the amount stated; the larger is checked"
            )


@dataclass(frozen=True, slots=True)
class MoneyIn:
    """The cash the report says the recommendation starts from."""

    available: Decimal | None  # cash plus contribution: stated, else their sum
    base_cash: Decimal | None  # what the base counts: cash plus contribution, when stated


def read_money_in(report: Mapping[str, Any], found: Findings) -> MoneyIn:
    cash = report_amount(report, "cash", found)
    contribution = report_amount(report, "contribution", found)
    stated = report_amount(report, "cash_available", found)
    summed = None if cash is None and contribution is None else (cash or ZERO) + (contribution or ZERO)
    return MoneyIn(
        available=stated if stated is not None else summed, base_cash=summed if summed is not None else stated
    )


@dataclass(frozen=True, slots=True)
class Cash:
    after: Decimal | None  # cash after the trades and fees, recomputed where possible
    before: Decimal | None  # cash plus contribution, when stated
    buffer: Decimal | None
    fee: Decimal


def check_money(
    policy: Mapping[str, Any],
    report: Mapping[str, Any],
    money_in: MoneyIn,
    executed: list[Line],
    found: Findings,
) -> Cash:
    fee = policy_amount(policy, "fee_per_trade_base", found) or ZERO
    buffer = policy_amount(policy, "cash_buffer_base", found)
    buys = sum((line.amount for line in executed if line.action == "BUY"), ZERO)
    sells = sum((line.amount for line in executed if line.action == "SELL"), ZERO)
    fees = fee * len(executed)
    net = buys - sells
    stated_fees = report_amount(report, "fees", found)
    if stated_fees is not None and stated_fees != fees:
        found.warns.append(
            f"the constraints report states fees of {format_gbp(stated_fees)}; "
            f"{len(executed)} line(s) at {format_gbp(fee)} cost {format_gbp(fees)}"
        )
        fees = max(fees, stated_fees)
    available = money_in.available
    stated_after = report_amount(report, "cash_after", found)
    found.checks.append("money available")
    if available is not None and net + fees > available:
        found.fails.append(
            f"the trades cost {format_gbp(net)} plus {format_gbp(fees)} fees, "
            f"more than the {format_gbp(available)} available"
        )
    after = stated_after
    if available is not None:
        computed = available - net - fees
        if stated_after is not None and stated_after != computed:
            found.warns.append(
                f"the constraints report leaves {format_gbp(stated_after)} cash; "
                f"the lines leave {format_gbp(computed)}"
            )
        after = computed if stated_after is None else min(stated_after, computed)
    found.checks.append("cash buffer")
    if after is None:
        if executed:
            found.warns.append(
                "the constraints report states neither the cash available nor the cash left: "
                "the cash buffer was not checked"
            )
    elif buffer is not None and after < buffer:
        found.fails.append(
            f"the trades leave {format_gbp(after)} cash, below the {format_gbp(buffer)} buffer"
        )
    return Cash(after=after, before=available, buffer=buffer, fee=fee)


def check_drift(rationale: Mapping[str, Any], found: Findings) -> None:
    before = after = None
    for stem in ("drift_before", "max_drift_before"):
        if rationale.get(stem) is not None:
            before = largest_drift(rationale[stem], stem, found)
            break
    for stem in ("drift_after", "max_drift_after"):
        if rationale.get(stem) is not None:
            after = largest_drift(rationale[stem], stem, found)
            break
    if before is not None and after is not None:
        found.checks.append("drift reduced")
        if after > before:
            found.fails.append(
                f"the drift after trading ({decimal_str(after)}) exceeds "
                f"the drift before ({decimal_str(before)})"
            )


def _says(policy_hits: frozenset[str], manifesto_hits: frozenset[str], policy_rule: str, rule: str) -> str:
    """'the policy says never buy', 'the manifesto says avoid', or both."""
    if policy_hits and manifesto_hits:
        if policy_rule == rule:
            return f"the policy and the manifesto say {rule}"
        return f"the policy says {policy_rule} and the manifesto says {rule}"
    return f"the policy says {policy_rule}" if policy_hits else f"the manifesto says {rule}"


def check_hard_rules(
    request: ReviewRequest,
    rules: ManifestoRules,
    executed: list[Line],
    holdings: Mapping[Key, Held] | None,
    found: Findings,
) -> None:
    """The policy's hard rules and the manifesto's: one FAIL per line and rule."""
    policy = request.policy
    for problem in rules.problems:
        found.warns.append(f"{problem}: that rule was not checked")
    sleeves = {str(code).upper() for code in mapping(policy.get("sleeve_targets"))}
    found.checks.append("hard rules")
    limits = []
    policy_max = policy_amount(policy, "max_trade_base", found, warn_missing=False)
    if policy_max is not None:
        limits.append((policy_max, "policy"))
    if rules.max_single_trade is not None:
        limits.append((rules.max_single_trade, "manifesto"))
    if limits:
        limit = min(amount for amount, _ in limits)
        sources = [source for amount, source in limits if amount == limit]
        if sources == ["manifesto"]:
            words = f"the manifesto's max single trade of {format_gbp(limit)}"
        elif sources == ["policy"]:
            words = f"the policy's largest single trade of {format_gbp(limit)}"
        else:
            words = f"the largest single trade of {format_gbp(limit)} that the policy and the manifesto set"
        for line in executed:
            if consideration(line, holdings) > limit:
                found.fails.append(f"{line.label}: above {words}")
    for action, policy_key, policy_rule, manifesto_names, rule in (
        ("SELL", "never_sell", "never sell", rules.never_sell, "never sell"),
        ("BUY", "never_buy", "never buy", rules.avoid, "avoid"),
    ):
        policy_names = read_policy_names(policy, policy_key, found)
        every = policy_names | manifesto_names
        for line in executed:
            if line.action != action:
                continue
            from_policy, from_manifesto = line.names & policy_names, line.names & manifesto_names
            if from_policy or from_manifesto:
                hit = ", ".join(sorted(from_policy | from_manifesto))
                said = _says(from_policy, from_manifesto, policy_rule, rule)
                found.fails.append(f"{line.label}: {said}: {hit}")
            elif line.sleeve is None and every & sleeves:
                named = sorted(every & sleeves)
                source = "manifesto's" if set(named) <= manifesto_names else "policy's"
                shown = rule if source == "manifesto's" else policy_rule
                found.warns.append(
                    f"{line.label}: its sleeve is not known, so the {source} "
                    f"'{shown}: {', '.join(named)}' could not be checked"
                )
