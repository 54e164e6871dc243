"""What a recommendation may touch and what it measures weights on, before any search.

The strategy says which sleeves it targets; the portfolio holds what it holds. ``scope`` reads
both and decides, for every position, whether it is part of the *base* (the holdings the
weights are measured on, plus cash and contribution), whether it may trade, or whether it is
left alone, and why. Three rules make advice safe by construction:

* **Untargeted holdings are left alone.** A held listing with no constituent row (sleeve
  ``UNMAPPED``) or in a sleeve the strategy does not target is neither bought nor sold and is
  taken out of the base, unless the policy says ``"untargeted": "sell"`` (then it counts with
  a target of 0, and a rebalance that may sell can sell it). Reason ``UNTARGETED``.
* **Nothing is valued at zero for lack of a price.** A held listing in the base without a good
  price (none, or older than the policy allows) blocks the recommendation (rule
  ``UNPRICED_HOLDING``: no lines, a headline naming the listings), unless the policy says
  ``"unpriced": "exclude"``: then it is left alone and out of the base like an untargeted
  holding (reason ``NO_GOOD_PRICE`` or ``STALE_PRICE``).
* **A sleeve the portfolio cannot hold does not become idle cash.** A targeted sleeve with no
  tradeable listing and no value in the portfolio has its target shared out among the other
  sleeves pro rata (rule ``SLEEVE_NOT_HELD``; the rescaled targets are reported).

Everything is exact: rescaled targets are rounded to 12 decimal places (half-even) and the
largest absorbs the last digits so they still sum to exactly 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..core.frozen import FrozenDict
from ..core.money import CONTEXT, ONE, ZERO
from ..policy import Policy
from .model import NO_GOOD_PRICE, NOT_IN_CALCS, NOT_TRADEABLE, STALE_PRICE, PortfolioState, Position

UNTARGETED = "UNTARGETED"

# Rules fired by scoping, as they appear in the rationale.
UNTARGETED_HELD = "UNTARGETED_HOLDINGS_LEFT_ALONE"
UNPRICED_HOLDING = "UNPRICED_HOLDING"
UNPRICED_EXCLUDED = "UNPRICED_HOLDINGS_EXCLUDED"
SLEEVE_NOT_HELD = "SLEEVE_NOT_HELD"
NO_SLEEVE_HELD = "NO_SLEEVE_HELD"

TARGET_PLACES = Decimal("1E-12")

# What each reason means, in words an investor reads.
REASON_WORDS = {
    UNTARGETED: "not in the strategy",
    NO_GOOD_PRICE: "no price",
    STALE_PRICE: "price too old",
    NOT_IN_CALCS: "excluded from calculations",
    NOT_TRADEABLE: "not monitored",
}


@dataclass(frozen=True)
class Scoped:
    """The state and policy the search works on, and what was set aside."""

    state: PortfolioState  # positions outside the base have include_in_calcs False
    policy: Policy  # targets rescaled when a sleeve cannot be held
    left_alone: tuple[Mapping[str, Any], ...]  # ticker, exchange, reason, value_base (None: unknown)
    excluded_value: Decimal  # known value of held listings taken out of the base
    blocking: tuple[Mapping[str, Any], ...]  # held listings without a good price, when they block
    sleeves_not_held: tuple[str, ...]
    rules: tuple[str, ...]

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)


def _price_problem(position: Position) -> str | None:
    if position.price_gbp is None:
        return NO_GOOD_PRICE
    if position.price_stale:
        return STALE_PRICE
    return None


def _entry(position: Position, reason: str) -> dict[str, Any]:
    return {
        "ticker": position.ticker,
        "exchange": position.exchange,
        "reason": reason,
        "value_base": position.priced_value,
    }


def rescaled_targets(targets: Mapping[str, Decimal], dropped: set[str]) -> dict[str, Decimal]:
    """The remaining targets scaled to sum to exactly 1, to 12 decimal places."""
    kept = {code: weight for code, weight in targets.items() if code not in dropped}
    share = sum(kept.values(), ZERO)
    if share <= ZERO:
        return {}
    scaled = {
        code: CONTEXT.divide(weight, share).quantize(TARGET_PLACES, rounding=ROUND_HALF_EVEN)
        for code, weight in kept.items()
    }
    largest = max(sorted(scaled), key=lambda code: scaled[code])
    scaled[largest] += ONE - sum(scaled.values(), ZERO)
    return scaled


@dataclass
class _Sorted:
    """The positions as ``scope`` sorts them: kept (in or out of the calculations), left
    alone (with the value that leaves out of the base) or blocking, and the rules fired."""

    positions: list[Position] = field(default_factory=list)
    left_alone: list[dict[str, Any]] = field(default_factory=list)
    blocking: list[dict[str, Any]] = field(default_factory=list)
    excluded: Decimal = ZERO
    rules: list[str] = field(default_factory=list)

    def out_of_calcs(self, position: Position) -> None:
        self.positions.append(replace(position, include_in_calcs=False))

    def set_aside(self, position: Position, reason: str) -> None:
        entry = _entry(position, reason)
        self.left_alone.append(entry)
        if position.units > ZERO and entry["value_base"] is not None:
            self.excluded += entry["value_base"]
        self.out_of_calcs(position)

    def fire(self, rule: str) -> None:
        if rule not in self.rules:
            self.rules.append(rule)


def _sort(state: PortfolioState, policy: Policy) -> _Sorted:
    """Each position kept, left alone or blocking, by the policy's ``untargeted`` and
    ``unpriced`` rules; a listing without a good price is never valued at zero."""
    targeted = set(policy.sleeve_targets)
    out = _Sorted()
    for position in state.positions:
        held = position.units > ZERO
        problem = _price_problem(position)
        if not position.include_in_calcs:
            out.set_aside(position, NOT_IN_CALCS)
        elif position.sleeve not in targeted and policy.untargeted == "hold":
            if held:
                out.set_aside(position, UNTARGETED)
                out.fire(UNTARGETED_HELD)
            else:
                out.out_of_calcs(position)
        elif problem is not None and held:
            if policy.unpriced == "block":
                out.blocking.append(_entry(position, problem))
                out.out_of_calcs(position)
            else:
                out.set_aside(position, problem)
                out.fire(UNPRICED_EXCLUDED)
        elif problem is not None:
            # Not held: nothing to value, but it cannot be bought without a good price.
            out.left_alone.append({**_entry(position, problem), "value_base": ZERO})
            out.out_of_calcs(position)
        else:
            if not position.tradeable:
                out.left_alone.append(_entry(position, NOT_TRADEABLE))
            out.positions.append(position)
    if out.blocking:
        out.rules.append(UNPRICED_HOLDING)
    return out


def _sleeves_not_held(state: PortfolioState, targeted: set[str]) -> tuple[str, ...]:
    """Targeted sleeves with nothing valued and no listing that can be bought, sorted."""
    held_value: dict[str, Decimal] = {}
    can_trade: set[str] = set()
    for position in state.positions:
        if position.valued:
            held_value[position.sleeve] = held_value.get(position.sleeve, ZERO) + position.value_gbp
        if position.can_trade:
            can_trade.add(position.sleeve)
    return tuple(
        sorted(code for code in targeted if code not in can_trade and held_value.get(code, ZERO) == ZERO)
    )


def scope(state: PortfolioState, policy: Policy) -> Scoped:
    """What the engine may value and trade: the positions sorted (``_sort``), and the targets
    rescaled over the sleeves that are held or can be bought."""
    out = _sort(state, policy)
    scoped_state = replace(state, positions=tuple(out.positions))
    not_held = _sleeves_not_held(scoped_state, set(policy.sleeve_targets))
    rules = out.rules
    scoped_policy = policy
    if not_held:
        targets = rescaled_targets(policy.sleeve_targets, set(not_held))
        if targets:
            rules.append(SLEEVE_NOT_HELD)
            scoped_policy = policy.model_copy(update={"sleeve_targets": FrozenDict(targets)})
        else:
            rules.append(NO_SLEEVE_HELD)
    return Scoped(
        state=scoped_state,
        policy=scoped_policy,
        left_alone=tuple(FrozenDict(entry) for entry in out.left_alone),
        excluded_value=out.excluded,
        blocking=tuple(FrozenDict(entry) for entry in out.blocking),
        sleeves_not_held=not_held,
        rules=tuple(rules),
    )
