"""Several accounts under one strategy, weighed together.

A household holds a strategy across accounts (a SIPP and an ISA both governed by one version):
its sleeves are compared with their targets over every account's valued holdings plus cash,
as if one portfolio held them all. The rules are ``valuation``'s, unchanged: cash sits in the
denominator only, a holding without a price is left out (never counted as zero), weights are
exact ``Fraction`` values. One account alone gives exactly ``valuation.drift_report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from ..core.money import ZERO
from ..policy import Policy
from .model import PortfolioState
from .valuation import SleeveDrift, breaches, sleeve_values, target_of, total_value


def drift_across(states: Sequence[PortfolioState], policy: Policy) -> tuple[SleeveDrift, ...]:
    """Each sleeve of ``policy`` (and each sleeve some account values) against its target, over
    the valued holdings plus cash of every state together; sorted by sleeve code."""
    values: dict[str, Decimal] = dict.fromkeys(policy.sleeve_targets, ZERO)
    for state in states:
        for code, value in sleeve_values(state, policy).items():
            values[code] = values.get(code, ZERO) + value
    total = sum((total_value(state) for state in states), ZERO)
    rows = []
    for code in sorted(values):
        weight = Fraction(values[code]) / Fraction(total) if total > ZERO else Fraction(0)
        target = target_of(policy, code)
        rows.append(
            SleeveDrift(
                sleeve=code,
                target=target,
                value_gbp=values[code],
                weight=weight,
                breached=breaches(weight, target, policy.drift_bands),
            )
        )
    return tuple(rows)
