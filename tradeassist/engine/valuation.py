"""Valuation, sleeve weights, drift and the rebalance objective, exactly.

Weights are over the valued holdings plus cash: cash is not a sleeve, it only sits in the
denominator, so a portfolio holding cash is below target in every sleeve. The cash counted
is ``cash_gbp + contribution_gbp`` (the money this run has to work with). Weights and the
objective are ``Fraction`` values: compared exactly, never rounded, so ties are real ties.

A sleeve breaches its band when ``|w - t| > absolute``, or, for a positive target,
``|w - t| / t > relative``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from ..core.errors import ValidationError
from ..core.frozen import FrozenDict
from ..core.money import CONTEXT, ZERO
from ..policy import DriftBands, Policy
from .model import ListingKey, PortfolioState, Position


@dataclass(frozen=True)
class SleeveDrift:
    sleeve: str
    target: Decimal
    value_gbp: Decimal
    weight: Fraction
    breached: bool

    @property
    def drift(self) -> Fraction:
        """Weight minus target: positive when over target."""
        return self.weight - Fraction(self.target)


def sleeve_codes(state: PortfolioState, policy: Policy) -> tuple[str, ...]:
    """Targeted sleeves and the sleeves of valued holdings (target 0 when untargeted), sorted."""
    held = {p.sleeve for p in state.positions if p.valued}
    return tuple(sorted(set(policy.sleeve_targets) | held))


def sleeve_values(state: PortfolioState, policy: Policy) -> Mapping[str, Decimal]:
    values = dict.fromkeys(sleeve_codes(state, policy), ZERO)
    for position in state.positions:
        if position.valued:
            values[position.sleeve] += position.value_gbp
    return FrozenDict(values)


def total_value(state: PortfolioState) -> Decimal:
    """Valued holdings plus cash plus this run's contribution: the weights' denominator."""
    return sum((p.value_gbp for p in state.positions), ZERO) + state.cash_available_gbp


def sleeve_weights(state: PortfolioState, policy: Policy) -> Mapping[str, Fraction]:
    """Exact weights per sleeve; all zero when there is nothing to value."""
    total = total_value(state)
    values = sleeve_values(state, policy)
    if total <= ZERO:
        return FrozenDict(dict.fromkeys(values, Fraction(0)))
    return FrozenDict({code: Fraction(value) / Fraction(total) for code, value in values.items()})


def target_of(policy: Policy, sleeve: str) -> Decimal:
    return policy.sleeve_targets.get(sleeve, ZERO)


def breaches(weight: Fraction, target: Decimal, bands: DriftBands) -> bool:
    gap = abs(weight - Fraction(target))
    if gap > Fraction(bands.absolute):
        return True
    return target > ZERO and gap / Fraction(target) > Fraction(bands.relative)


def drift_report(state: PortfolioState, policy: Policy) -> tuple[SleeveDrift, ...]:
    weights = sleeve_weights(state, policy)
    values = sleeve_values(state, policy)
    return tuple(
        SleeveDrift(
            sleeve=code,
            target=target_of(policy, code),
            value_gbp=values[code],
            weight=weights[code],
            breached=breaches(weights[code], target_of(policy, code), policy.drift_bands),
        )
        for code in weights
    )


def objective(state: PortfolioState, policy: Policy) -> Fraction:
    """The rebalance objective: the sum over sleeves of (weight - target) squared."""
    weights = sleeve_weights(state, policy)
    return sum(((w - Fraction(target_of(policy, code))) ** 2 for code, w in weights.items()), Fraction(0))


def apply_trades(
    state: PortfolioState, trades: Mapping[ListingKey, int], fee_per_trade: Decimal
) -> PortfolioState:
    """The state after executing ``trades`` (signed whole units per listing) at the state's prices.

    Cash becomes cash + contribution - net consideration - fee x executed lines; the
    contribution is spent into cash. Refuses trades in listings it cannot price.
    """
    positions = {p.key: p for p in state.positions}
    cash = state.cash_available_gbp
    updated: dict[ListingKey, Position] = {}
    for key, units in trades.items():
        if units == 0:
            continue
        position = positions.get(key)
        if position is None or position.price_gbp is None:
            raise ValidationError(f"cannot trade {key[0]}:{key[1]}: not a priced position")
        cash -= CONTEXT.multiply(position.price_gbp, Decimal(units)) + fee_per_trade
        updated[key] = Position(
            ticker=position.ticker,
            exchange=position.exchange,
            sleeve=position.sleeve,
            units=position.units + units,
            price_gbp=position.price_gbp,
            tradeable=position.tradeable,
            include_in_calcs=position.include_in_calcs,
        )
    return PortfolioState(
        cash_gbp=cash,
        positions=tuple(updated.get(p.key, p) for p in state.positions),
        contribution_gbp=ZERO,
        frozen=state.frozen,
    )
