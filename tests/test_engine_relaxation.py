"""The water-filling relaxation: exact optimum, feasibility, and the sign of its derivative."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from tradeassist.engine.relaxation import (
    activation_bound,
    level_counts,
    level_fit,
    level_interval,
    relaxed_spends,
    relaxed_value,
    relaxed_value_and_slope,
)


@st.composite
def instances(draw: st.DrawFn, scale: int = 1) -> tuple:
    n = draw(st.integers(1, 5))
    ints = st.integers(-50, 50)
    values = [draw(ints) * scale for _ in range(n)]
    lows = [draw(st.integers(-20, 0)) * scale for _ in range(n)]
    highs = [low + draw(st.integers(0, 40)) * scale for low in lows]
    targets = [draw(st.integers(-10, 60)) * scale for _ in range(n)]
    budget = draw(st.integers(-60, 80)) * scale
    return values, lows, highs, targets, budget


def cost(values, spends, targets) -> Fraction:
    return sum(((v + y - t) ** 2 for v, y, t in zip(values, spends, targets, strict=True)), Fraction(0))


@settings(max_examples=200, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_the_water_level_is_optimal_and_feasible(case, rng: random.Random) -> None:
    values, lows, highs, targets, budget = case
    found = relaxed_value(values, lows, highs, targets, budget)
    spends = relaxed_spends(values, lows, highs, targets, budget)
    if found is None:
        assert spends is None and sum(lows) > budget
        return
    assert spends is not None
    assert sum(spends) <= budget
    assert all(low <= y <= high for low, y, high in zip(lows, spends, highs, strict=True))
    best = cost(values, spends, targets)
    assert Fraction(*found) == best
    for _ in range(20):  # no feasible point (on a quarter grid) does better
        trial = [Fraction(rng.randint(4 * low, 4 * high), 4) for low, high in zip(lows, highs, strict=True)]
        if sum(trial) <= budget:
            assert cost(values, trial, targets) >= best


@settings(max_examples=200, deadline=None)
@given(instances(scale=6), st.data())
def test_the_slope_has_the_sign_of_the_right_derivative(case, data) -> None:
    """Moving targets down by weights and the budget by budget_weight: compare with a tiny step."""
    values, lows, highs, targets, budget = case
    n = len(values)
    weights = [data.draw(st.integers(0, 3)) for _ in range(n)]
    budget_weight = data.draw(st.integers(0, 4))
    here = relaxed_value_and_slope(values, lows, highs, targets, budget, weights, budget_weight)
    if here is None:
        return
    step = 1000  # everything times 1000, parameters moved by 1: a step of 1/1000
    there = relaxed_value_and_slope(
        [v * step for v in values],
        [low * step for low in lows],
        [high * step for high in highs],
        [t * step - w for t, w in zip(targets, weights, strict=True)],
        budget * step - budget_weight,
        weights,
        budget_weight,
    )
    slope = here[2]
    if there is None:  # a smaller budget is infeasible: the value rises without bound
        assert slope > 0
        return
    change = Fraction(there[0], there[1]) - Fraction(here[0], here[1]) * step * step
    noise = Fraction(1, 10**4) * (abs(Fraction(here[0], here[1])) * step + 1)  # second-order term
    if change > noise:
        assert slope >= 0
    if change < -noise:
        assert slope <= 0


def test_base_cost_and_slope_are_added() -> None:
    plain = relaxed_value_and_slope([0], [0], [10], [5], 3, [1], 1)
    based = relaxed_value_and_slope([0], [0], [10], [5], 3, [1], 1, base_cost=7, base_slope=2)
    assert plain is not None and based is not None
    assert Fraction(based[0], based[1]) == Fraction(plain[0], plain[1]) + 7


def test_a_binding_budget_cuts_to_a_common_shortfall() -> None:
    # Two sleeves 10 short each, 10 to spend: each gets 5 and ends 5 short.
    assert relaxed_spends([0, 0], [0, 0], [100, 100], [10, 10], 10) == [5, 5]
    found = relaxed_value([0, 0], [0, 0], [100, 100], [10, 10], 10)
    assert found is not None and Fraction(*found) == 50


@st.composite
def activation_instances(draw: st.DrawFn) -> tuple:
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        x, target = draw(st.integers(-30, 30)), draw(st.integers(-10, 40))
        a_lo = draw(st.integers(-3, 0))
        a_hi = draw(st.integers(0, 3))
        b_lo = a_lo - draw(st.integers(0, 8))
        b_hi = a_hi + draw(st.integers(0, 8))
        rows.append((x, target, a_lo, a_hi, b_lo, b_hi))
    return rows, draw(st.integers(-10, 25)), draw(st.integers(0, 4)), draw(st.integers(0, 50))


def least_cost(rows, budget: int, further: int, base: int) -> int | None:
    """Brute force over integer spends: at most ``further`` sleeves leave their stay range."""
    best = None
    options = []
    for _, _, a_lo, a_hi, b_lo, b_hi in rows:
        stay = [(y, 0) for y in range(a_lo, a_hi + 1)]
        options.append(stay + [(y, 1) for y in range(b_lo, b_hi + 1) if not a_lo <= y <= a_hi])
    for choice in itertools.product(*options):
        if sum(y for y, _ in choice) > budget or sum(m for _, m in choice) > further:
            continue
        value = base + sum((row[0] + y - row[1]) ** 2 for row, (y, _) in zip(rows, choice, strict=True))
        best = value if best is None else min(best, value)
    return best


@settings(max_examples=300, deadline=None)
@given(activation_instances())
def test_the_activation_bound_never_exceeds_the_least_cost(case) -> None:
    rows, budget, further, base = case
    found = activation_bound(rows, budget, further, base)
    exact = least_cost(rows, budget, further, base)
    if found is None:
        assert exact is None  # None means infeasible even without whole units
        return
    (num, den), plain = found
    if exact is not None:
        assert Fraction(num, den) <= exact
    if further == 0:  # nothing may move: the bound is the relaxation, exact at its own optimum
        assert plain is False


def test_the_activation_bound_charges_for_every_sleeve_that_moves() -> None:
    # Two sleeves 10 short of target, money for both: with one further line only one may move.
    rows = [(0, 10, 0, 0, 0, 20), (0, 10, 0, 0, 0, 20)]
    assert activation_bound(rows, 20, 2) == ((0, 1), True)
    (num, den), plain = activation_bound(rows, 20, 1)
    assert Fraction(num, den) == 100 and not plain
    assert activation_bound(rows, 20, 0) == ((200, 1), False)


# -- the per-sleeve costs of the optimizer's Lagrangian bound -------------------------------
@settings(max_examples=300, deadline=None)
@given(st.integers(-60, 60), st.integers(0, 30), st.integers(-40, 10), st.integers(0, 50))
def test_the_level_cost_over_an_interval_is_its_least_value(w: int, h: int, low: int, width: int) -> None:
    high = low + width
    least = min((y - w) ** 2 + 2 * h * y for y in range(low, high + 1))  # the optimum is an integer
    assert level_interval(w, h, low, high) == least


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-200, 200), st.integers(0, 40), st.integers(1, 25), st.integers(-12, 8), st.integers(0, 10)
)
def test_the_level_cost_over_counts_is_its_least_value(
    w: int, h: int, step: int, first: int, width: int
) -> None:
    last = first + width
    least = min((q * step - w) ** 2 + 2 * h * q * step for q in range(first, last + 1))
    assert level_counts(w, h, step, first, last) == least


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-200, 200),
    st.integers(0, 40),
    st.integers(0, 30),
    st.integers(1, 25),
    st.integers(-12, 8),
    st.integers(0, 10),
)
def test_one_more_line_on_a_range_is_its_least_value(
    w: int, h: int, reach: int, step: int, first: int, width: int
) -> None:
    last = first + width
    least = min(
        (y + q * step - w) ** 2 + 2 * h * (y + q * step)
        for q in range(first, last + 1)
        for y in range(0, reach + 1)
    )
    assert level_fit(w, h, reach, step, first, last) == least
    assert level_fit(w, h, 0, step, first, last) == level_counts(w, h, step, first, last)
