"""The ``builtin-rules`` checks against the holdings: none valued at zero, no sale beyond
what is held, of a holding outside the strategy or that empties a sleeve, turnover within its
limit, and no cash left idle that one more line could have invested."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal
from typing import Any

from ...core.enums import TRADING_KINDS, TaskKind
from ...core.errors import ValidationError
from ...core.money import ZERO, format_gbp, to_decimal
from ...manifesto import ManifestoRules
from .base import ReviewRequest
from .builtin_checks import Cash, MoneyIn
from .builtin_reading import (
    DEFAULT_MAX_TURNOVER,
    PENNY,
    Findings,
    Held,
    Key,
    Line,
    comes,
    consideration,
    count_units,
    percent,
    policy_amount,
    read_policy_names,
    report_amount,
)


def check_holdings(holdings: Mapping[Key, Held], left_alone: set[Key], found: Findings) -> None:
    """No held listing is valued at zero, and none goes missing from the base unexplained."""
    found.checks.append("every holding valued")
    for holding in holdings.values():
        if holding.units <= ZERO:
            continue
        held = f"{holding.label} ({count_units(holding.units)})"
        if holding.in_base:
            if holding.price is None:
                found.fails.append(
                    f"{held} is counted in the portfolio with no price: a holding is never valued "
                    f"at zero; import its prices or leave it out"
                )
            elif holding.stale:
                found.fails.append(
                    f"{held} is counted in the portfolio on a price too old to trust; refresh its prices"
                )
            elif holding.value is None:
                found.fails.append(f"{held} is counted in the portfolio with no value")
            elif holding.value == ZERO:
                found.fails.append(f"{held} is counted in the portfolio at {format_gbp(ZERO)}")
            elif abs(holding.value - holding.units * holding.price) > PENNY:
                found.warns.append(
                    f"{held} is valued at {format_gbp(holding.value)}, but {count_units(holding.units)} at "
                    f"{format_gbp(holding.price)} {comes(holding.units)} to "
                    f"{format_gbp(holding.units * holding.price)}; "
                    f"the smaller is counted"
                )
        elif holding.key not in left_alone:
            found.fails.append(
                f"{held} is held but neither counted in the portfolio nor listed as left alone: "
                f"its value would go missing"
            )


def _target_zero(sleeve: str | None, targets: Mapping[str, Decimal], untargeted: str) -> bool:
    """A sleeve the policy wants at nothing: targeted at 0, or untargeted when those are sold."""
    if sleeve is not None and sleeve in targets:
        return targets[sleeve] == ZERO
    return untargeted == "sell"


def check_sells(
    policy: Mapping[str, Any],
    targets: Mapping[str, Decimal],
    holdings: Mapping[Key, Held],
    executed: list[Line],
    found: Findings,
) -> None:
    """No SELL beyond what is held, of an untargeted holding, or that empties a sleeve."""
    untargeted = str(policy.get("untargeted") or "hold")
    net: dict[Key, Decimal] = {}
    for line in executed:
        net[line.key] = net.get(line.key, ZERO) + line.signed_units
    found.checks.append("sells within holdings")
    _check_sells_within_holdings(holdings, executed, net, found)
    found.checks.append("untargeted holdings kept")
    if untargeted != "sell":
        _check_untargeted_kept(targets, holdings, executed, found)
    found.checks.append("no sleeve sold to zero")
    _check_no_sleeve_emptied(targets, untargeted, holdings, executed, net, found)


def _check_sells_within_holdings(
    holdings: Mapping[Key, Held], executed: list[Line], net: Mapping[Key, Decimal], found: Findings
) -> None:
    """No listing sold beyond the units held (told once per listing)."""
    told: set[Key] = set()
    for line in executed:
        if line.action != "SELL" or line.key in told:
            continue
        holding = holdings.get(line.key)
        units = holding.units if holding is not None else ZERO
        if units + net[line.key] < ZERO:
            told.add(line.key)
            sold = units - (units + net[line.key])
            has = f"only {count_units(units)} held" if units else "none held"
            found.fails.append(
                f"{line.label}: sells {count_units(sold)} of {line.ticker} on {line.exchange}, {has}"
            )


def _check_untargeted_kept(
    targets: Mapping[str, Decimal], holdings: Mapping[Key, Held], executed: list[Line], found: Findings
) -> None:
    """No SELL of a holding outside the strategy (not targeted, or in a sleeve without a target)."""
    for line in executed:
        if line.action != "SELL":
            continue
        holding = holdings.get(line.key)
        sleeve = holding.sleeve if holding is not None else line.sleeve
        if holding is None and sleeve is None:
            continue  # not held: told above
        if (holding is not None and not holding.targeted) or sleeve not in targets:
            where = f"sleeve {sleeve}" if sleeve else "no sleeve"
            found.fails.append(
                f"{line.label}: {line.ticker} on {line.exchange} is not in the strategy ({where}); "
                f'the policy leaves such holdings alone (set "untargeted" to "sell" to sell them)'
            )


def _check_no_sleeve_emptied(
    targets: Mapping[str, Decimal],
    untargeted: str,
    holdings: Mapping[Key, Held],
    executed: list[Line],
    net: Mapping[Key, Decimal],
    found: Findings,
) -> None:
    """No sleeve with value before the trades and a target above 0 is left with nothing."""
    before: dict[str | None, Decimal] = {}
    after: dict[str | None, Decimal] = {}
    for holding in holdings.values():
        if not holding.in_base or holding.units <= ZERO:
            continue
        value = holding.counted
        before[holding.sleeve] = before.get(holding.sleeve, ZERO) + value
        left = max(holding.units + net.get(holding.key, ZERO), ZERO)
        share = value * left / holding.units
        after[holding.sleeve] = after.get(holding.sleeve, ZERO) + share
    for line in executed:  # buys of listings not held yet add to their sleeve
        if line.action == "BUY" and line.key not in holdings and line.sleeve is not None:
            after[line.sleeve] = after.get(line.sleeve, ZERO) + line.amount
    for sleeve in sorted(before, key=lambda s: s or ""):
        if before[sleeve] <= ZERO or after.get(sleeve, ZERO) > ZERO:
            continue
        if _target_zero(sleeve, targets, untargeted):
            continue
        name = f"sleeve {sleeve}" if sleeve else "the holdings without a sleeve"
        found.fails.append(
            f"the trades sell all of {name} ({format_gbp(before[sleeve])} before, nothing after); "
            f"a sleeve with a target is never sold out"
        )


def check_turnover(
    policy: Mapping[str, Any],
    report: Mapping[str, Any],
    money_in: MoneyIn,
    holdings: Mapping[Key, Held] | None,
    executed: list[Line],
    found: Findings,
) -> None:
    raw = policy.get("max_turnover")
    try:
        limit = DEFAULT_MAX_TURNOVER if raw is None else to_decimal(raw, what="the policy's largest turnover")
    except ValidationError as exc:
        found.fails.append(str(exc))
        return
    stated = report_amount(report, "base_value", found)
    base: Decimal | None
    if holdings is not None:
        invested = sum((h.counted for h in holdings.values() if h.in_base), ZERO)
        base = invested + (money_in.base_cash or ZERO)
        if stated is not None and stated != base:
            found.warns.append(
                f"the constraints report states a portfolio of {format_gbp(stated)}; its holdings and "
                f"cash come to {format_gbp(base)}, which is what turnover is measured on"
            )
    else:
        base = stated
    sells = sum((consideration(line, holdings) for line in executed if line.action == "SELL"), ZERO)
    if base is None:
        return  # no holdings and no stated base: said once, with the holdings
    found.checks.append("turnover")
    if sells > limit * base:
        found.fails.append(
            f"the sells come to {format_gbp(sells)}, more than the {percent(limit)} of the portfolio "
            f"({format_gbp(limit * base)} of {format_gbp(base)}) one recommendation may sell"
        )


def _fitting_line(
    holdings: Mapping[Key, Held],
    left_alone: set[Key],
    targets: Mapping[str, Decimal],
    never_buy: frozenset[str],
    spare: Decimal,
    minimum: Decimal,
    fee: Decimal,
    largest: Decimal | None,
) -> str | None:
    """The cheapest whole-unit line of at least the minimum that ``spare`` pays for, with its fee."""
    best: tuple[Decimal, str] | None = None
    for holding in holdings.values():
        price = holding.price
        if (
            price is None
            or price <= ZERO
            or holding.stale
            or not holding.in_base
            or not holding.targeted
            or holding.key in left_alone
            or targets.get(holding.sleeve or "", ZERO) <= ZERO
            or {holding.ticker.upper(), ":".join(holding.key), holding.sleeve or ""} & never_buy
        ):
            continue
        units = max(Decimal(1), (minimum / price).to_integral_value(rounding=ROUND_CEILING))
        amount = units * price
        if amount + fee > spare or (largest is not None and amount > largest):
            continue
        if best is None or amount < best[0]:
            best = (amount, f"{count_units(units)} of {holding.label} for {format_gbp(amount)}")
    return None if best is None else best[1]


def check_idle_cash(
    request: ReviewRequest,
    rules: ManifestoRules,
    cash: Cash,
    targets: Mapping[str, Decimal],
    holdings: Mapping[Key, Held] | None,
    left_alone: set[Key],
    executed: list[Line],
    found: Findings,
) -> None:
    kind = request.task_kind
    if request.portfolio_frozen or (kind is not None and kind not in TRADING_KINDS):
        return
    if kind in (TaskKind.QUARTERLY_REBAL.value, TaskKind.WEEKLY_REVIEW.value) and not executed:
        return  # a drift check that found nothing to do does not invest
    policy = request.policy
    minimum = policy_amount(policy, "min_trade_base", Findings())
    if cash.after is None or cash.buffer is None or minimum is None:
        return
    found.checks.append("cash invested")
    spare = cash.after - cash.buffer
    if spare <= minimum:
        return
    example = ""
    if holdings is not None:
        if str(policy.get("unpriced") or "block") == "block" and any(
            h.units > ZERO and h.targeted and (h.price is None or h.stale) for h in holdings.values()
        ):
            return  # a held listing without a good price stops the recommendation, as the policy says
        never_buy = read_policy_names(policy, "never_buy", Findings()) | rules.avoid
        largest = policy_amount(policy, "max_trade_base", Findings(), warn_missing=False)
        if rules.max_single_trade is not None:
            largest = min(rules.max_single_trade, largest or rules.max_single_trade)
        fitting = _fitting_line(holdings, left_alone, targets, never_buy, spare, minimum, cash.fee, largest)
        if fitting is None:
            return  # no whole-unit line of the minimum fits: the cash cannot be invested
        example = f" (for example {fitting})"
    found.warns.append(
        f"{format_gbp(spare)} is left unspent above the {format_gbp(cash.buffer)} cash buffer, more than "
        f"the smallest trade of {format_gbp(minimum)}: another line could have been bought{example}"
    )
